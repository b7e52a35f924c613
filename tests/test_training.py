"""3D-parallel training: the pipeline bubble, collectives on the critical path, layouts, and a published run."""
import numpy as np
import pytest

import mlsysim_lab as ml
from mlsysim_lab.network import (all_gather_time, all_to_all_time, hierarchical_allreduce_time,
                                 ring_allreduce_time, topology_factors)
from mlsysim_lab.results import Wall
from mlsysim_lab.training import search, weak_scaling

H100, A100 = ml.hardware("H100 SXM"), ml.hardware("A100 SXM 80GB")
LLAMA70, GPT3 = ml.workload("Llama-2-70B"), ml.workload("GPT-3")


def test_megatron_gpt3_175b_on_1024_a100_reproduces_published_throughput():
    # Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM"
    # (SC21), Table 1, 175B row: tp 8, pp 8, 1024 A100, batch 1536, seq 2048, full recomputation:
    # 140 TFLOP/s per GPU counted with recomputation (their FLOP formula 96 B s l h^2 (...) includes the
    # extra forward). Our hardware-FLOP throughput must land within 15% without any per-case tuning.
    r = ml.train(GPT3, ml.cluster(A100, gpus=1024), tokens=300e9, global_batch_tokens=1536 * 2048, seq_len=2048,
                 tp=8, pp=8, recompute="full", micro_batch=1)
    achieved = r.hfu.magnitude * A100.peak["bf16"].to("TFLOP/s").magnitude
    assert achieved == pytest.approx(140, rel=0.15)
    assert r.fits and r.bottleneck is Wall.COMPUTE


@pytest.mark.parametrize("pp, m, bubble", [(4, 4, 3 / 7), (8, 72, 7 / 79), (1, 8, 0.0)])
def test_pipeline_bubble_is_p_minus_1_over_m_plus_p_minus_1(pp, m, bubble):
    # (p - 1) / (m + p - 1): P4 M4 -> 43%; 8 stages need m > 63 to go under 10%; p = 1 -> no bubble.
    seq = 4096
    r = ml.train(LLAMA70, ml.cluster(H100, gpus=8 * pp), tokens=1e9, global_batch_tokens=m * seq,
                 seq_len=seq, tp=8, pp=pp, zero=1)
    assert r.bubble_fraction.magnitude == pytest.approx(bubble)
    assert r.micro_batches.magnitude == pytest.approx(m)
    if pp == 1:
        assert r.terms["bubble"].magnitude == 0


def test_bubble_term_shrinks_with_more_micro_batches():
    fractions = [ml.train(LLAMA70, ml.cluster(H100, gpus=32), tokens=1e9, global_batch_tokens=m * 4096, tp=8,
                          pp=4, zero=1).bubble_fraction.magnitude for m in (4, 16, 64)]
    assert fractions[0] > fractions[1] > fractions[2]


def test_one_gpu_has_no_communication_and_tp_adds_it():
    small = ml.workload("Llama-2-7B")
    one = ml.train(small, H100, tokens=1e9, global_batch_tokens=2**16, zero=0, recompute="full")
    assert one.terms["network"].magnitude == 0
    tp2 = ml.train(small, ml.cluster(H100, gpus=2), tokens=1e9, global_batch_tokens=2**16, tp=2, recompute="full")
    assert tp2.terms["network"].magnitude > 0


def test_infinite_bandwidth_makes_training_compute_bound():
    fast = ml.Fabric(name="ideal", kind="nvlink", scope="scale-up", bandwidth="1e9 TB/s", latency="1e-9 ns",
                     source="a thought experiment")
    c = ml.Cluster(accelerator=H100, per_node=8, nodes=4, intra_fabric=fast, inter_fabric=fast, nics_per_node=8)
    r = ml.train(LLAMA70, c, tokens=1e9, global_batch_tokens=2**22, tp=8, zero=1, recompute="selective")
    assert r.terms["network"].magnitude < 1e-6 * r.step_time.magnitude
    assert r.bottleneck is Wall.COMPUTE


def test_oversubscription_slows_data_parallel_traffic():
    fat = ml.cluster(H100, gpus=256)
    thin = ml.cluster(H100, gpus=256, oversubscription=4.0)
    kw = dict(tokens=1e9, global_batch_tokens=2**21, zero=1, overlap=False, recompute="selective")
    assert ml.train(LLAMA70, thin, tp=8, **kw).terms["network"] > ml.train(LLAMA70, fat, tp=8, **kw).terms["network"]


def test_more_gpus_train_faster_but_scale_sublinearly():
    times = [ml.train(LLAMA70, ml.cluster(H100, gpus=n), tokens=2e12, global_batch_tokens=2**22, tp=8, zero=1,
                      recompute="selective").time_to_train.to("day").magnitude for n in (256, 1024)]
    assert times[1] < times[0] < 4 * times[1] * 1.02


def test_layout_errors_name_the_problem():
    c = ml.cluster(H100, gpus=64)
    with pytest.raises(ml.InputError, match="tp=16 exceeds the 8 GPUs of one node"):
        ml.train(LLAMA70, ml.cluster(H100, gpus=64), tokens=1e9, global_batch_tokens=2**22, tp=16)
    with pytest.raises(ml.InputError, match="pp=96 exceeds Llama-2-70B's 80 layers"):
        ml.train(LLAMA70, ml.cluster(H100, gpus=768), tokens=1e9, global_batch_tokens=2**22, tp=8, pp=96)
    with pytest.raises(ml.InputError, match="tp x pp x dp = 8 x 2 x 2 = 32 GPUs, but the cluster has 64"):
        ml.train(LLAMA70, c, tokens=1e9, global_batch_tokens=2**22, tp=8, pp=2, dp=2)
    with pytest.raises(ml.InputError, match="ep=2 needs a mixture-of-experts model"):
        ml.train(LLAMA70, c, tokens=1e9, global_batch_tokens=2**22, tp=8, ep=2)


def test_moe_expert_parallelism_shards_experts_and_adds_all_to_all():
    mix = ml.workload("Mixtral-8x7B")
    c = ml.cluster(H100, gpus=64)
    kw = dict(tokens=1e9, global_batch_tokens=2**21, tp=8, zero=1, recompute="selective")
    ep1, ep8 = ml.train(mix, c, ep=1, **kw), ml.train(mix, c, ep=8, **kw)
    assert ep8.memory_per_device < ep1.memory_per_device
    assert ep8.terms["network"] > ep1.terms["network"]


def test_search_ranks_feasible_layouts_and_explains_rejections():
    result = search(LLAMA70, ml.cluster(H100, gpus=64), global_batch_tokens=2**21)
    rows = result.feasible
    assert rows and all(a["step_time"] <= b["step_time"] for a, b in zip(rows, rows[1:]))
    best = rows[0]
    assert best["tp"] * best["pp"] * best["dp"] == 64
    assert result.step_time.magnitude == pytest.approx(best["step_time"])
    reasons = " ".join(r["reason"] for r in result.rejected)
    assert "memory capacity" in reasons  # tp1 pp1 cannot hold 70B with Adam
    assert "best of" in result.verdict


def test_search_with_nothing_feasible_says_why():
    with pytest.raises(ml.InputError, match="no layout of Llama-3.1-405B fits 8 x H100 SXM"):
        search("Llama-3.1-405B", ml.cluster(H100, gpus=8), global_batch_tokens=2**20)


def test_weak_scaling_from_8_to_100000_gpus_is_closed_form():
    r = weak_scaling(LLAMA70, H100, gpus=np.array([8, 64, 1024, 16384, 100000]), tp=8)
    eff = r.efficiency.magnitude
    assert eff[0] == pytest.approx(1.0)
    assert np.all(np.diff(eff) <= 1e-12) and 0.3 < eff[-1] < 1.0


# ------------------------------------------------------------------------------------- collectives
def test_collective_formulas_by_hand():
    # All-gather of 8 GB over 8 ranks at 400 GB/s: 7/8 x 8e9 / 4e11 = 17.5 ms (+ 7 x 1 us).
    assert all_gather_time(8e9, 8, 400e9, 1e-6) == pytest.approx(0.0175 + 7e-6)
    assert all_to_all_time(8e9, 8, 400e9, 0.0) == pytest.approx(0.0175)
    assert 2 * all_gather_time(8e9, 8, 400e9, 0.0) == pytest.approx(ring_allreduce_time(8e9, 8, 400e9, 0.0))
    # Hierarchical: reduce-scatter + all-gather inside the node, all-reduce of an eighth across nodes.
    t = hierarchical_allreduce_time(8e9, 8, 16, 400e9, 0.0, 50e9, 0.0)
    assert t == pytest.approx(2 * 0.0175 + ring_allreduce_time(1e9, 16, 50e9, 0.0))


def test_topologies_change_bandwidth_or_latency_steps():
    assert topology_factors("fat-tree", 1024, 8) == (1.0, 1.0)
    assert topology_factors("dragonfly", 1024, 8)[0] == 0.5
    taper, steps = topology_factors("torus", 4096, 4)
    assert taper == 1.0 and float(steps) == pytest.approx(3 * 15 / 4095)  # 16 x 16 x 16 torus


def test_search_tables_survive_pickle_and_json():
    import json
    import pickle

    result = search(LLAMA70, ml.cluster(H100, gpus=64), global_batch_tokens=2**21)
    again = pickle.loads(pickle.dumps(result))
    assert again.feasible == result.feasible and again.rejected == result.rejected
    data = json.loads(result.to_json())
    assert data["feasible"][0]["tp"] == result.feasible[0]["tp"] and len(data["rejected"]) == len(result.rejected)


def test_uneven_pipeline_runs_at_the_pace_of_the_heaviest_stage():
    # 80 layers on 3 stages: the heaviest holds 27, so each slot costs 27/80 of a full pass, not 1/3.
    kw = dict(tokens=1e9, global_batch_tokens=64 * 4096, tp=8, zero=1, recompute="selective", overlap=False)
    three = ml.train(LLAMA70, ml.cluster(H100, gpus=24), pp=3, **kw)
    four = ml.train(LLAMA70, ml.cluster(H100, gpus=32), pp=4, **kw)
    m = three.micro_batches.magnitude
    assert three.terms["compute"].magnitude / four.terms["compute"].magnitude == pytest.approx((27 / 80) / (20 / 80))
    assert m == 64


def test_tensor_parallelism_may_span_hosts_on_a_scale_up_fabric():
    tpu = ml.hardware("TPU v4")
    c = ml.cluster("TPU v4 host", nodes=64)
    assert c.inter_fabric.scope == "scale-up"
    r = ml.train("PaLM-540B", c, tokens=1e9, global_batch_tokens=2**20, tp=16, pp=1, zero=3, recompute="full")
    assert r.inputs["tp"] == 16 and tpu.name in repr(c)
