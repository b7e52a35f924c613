"""Each formula against a number derived by hand, with units; the seed's claims, asserted."""
import numpy as np
import pytest

import mlsysim_lab as ml
from mlsysim_lab import efficiency as eff
from mlsysim_lab.memory import activation_bytes, kv_cache_bytes, training_state_bytes
from mlsysim_lab.network import allreduce_time, ring_allreduce_time, tree_allreduce_time
from mlsysim_lab.results import Wall
from mlsysim_lab.serving import decode_step_cost

H100, A100 = ml.hardware("H100 SXM"), ml.hardware("A100 SXM 80GB")
LLAMA70, LLAMA7 = ml.workload("Llama-2-70B"), ml.workload("Llama-2-7B")


def mag(q, unit):
    return q.to(unit).magnitude


# ---------------------------------------------------------------------------------------- Iron Law
def test_iron_law_by_hand():
    # 1 TFLOP at 989.4 TFLOP/s x 0.5 = 2.0214 ms; 1 GB at 3.35 TB/s x 0.8 = 0.3731 ms -> compute-bound.
    r = ml.iron_law(H100, ops="1 TFLOP", bytes="1 GB", precision="bf16", efficiency=0.5,
                    bandwidth_efficiency=0.8, overhead="10 us")
    peak = mag(H100.peak["bf16"], "FLOP/s")
    assert mag(r.time, "s") == pytest.approx(1e12 / (peak * 0.5) + 10e-6)
    assert mag(r.terms["memory"], "s") == pytest.approx(1e9 / (3.35e12 * 0.8))
    assert r.bottleneck is Wall.COMPUTE
    assert r.margin == pytest.approx((1e12 / (peak * 0.5)) / (1e9 / (3.35e12 * 0.8)))
    assert mag(r.intensity, "FLOP/B") == pytest.approx(1000)


def test_iron_law_limits():
    # Zero bytes: pure compute. Zero ops: pure memory.
    assert ml.iron_law(H100, ops="1 TFLOP", bytes="0 B").bottleneck is Wall.COMPUTE
    r = ml.iron_law(H100, ops="0 FLOP", bytes="1 GB", bandwidth_efficiency=1.0)
    assert r.bottleneck is Wall.MEMORY_BANDWIDTH and mag(r.time, "s") == pytest.approx(1e9 / 3.35e12)


def test_iron_law_accepts_macs_and_refuses_wrong_units():
    a = ml.iron_law(H100, ops="1 TMAC", bytes="1 GB")
    b = ml.iron_law(H100, ops="2 TFLOP", bytes="1 GB")
    assert a.time == b.time
    with pytest.raises(ml.UnitError, match="iron_law\\(\\): 'bytes' got 1 GB/s \\(\\[information\\] / \\[time\\]\\)"):
        ml.iron_law(H100, ops="1 TFLOP", bytes="1 GB/s")
    with pytest.raises(ml.InputError, match="'efficiency' is a fraction of peak"):
        ml.iron_law(H100, ops="1 TFLOP", bytes="1 GB", efficiency=1.5)


def test_ridge_point_h100_dense_bf16_is_about_295():
    r = ml.roofline(LLAMA70, H100, batch=1, phase="decode", precision="bf16")
    assert mag(r.ridge, "FLOP/B") == pytest.approx(989.4e12 / 3.35e12, rel=0.01)  # ~295, not the sparse ~590
    assert 290 < mag(r.ridge, "FLOP/B") < 300


# ---------------------------------------------------------------------------------------- the seed's claims
def test_a100_to_h100_is_3_2x_peak_but_1_6x_on_llm_decode():
    peak_ratio = H100.peak["bf16"] / A100.peak["bf16"]
    assert float(peak_ratio) == pytest.approx(3.17, abs=0.05)
    fabric = dict(fabric="NVLink 4")
    decode = ml.serve(LLAMA7, A100, batch=1).itl / ml.serve(LLAMA7, H100, batch=1).itl
    assert 1.4 < float(decode) < 1.75  # bandwidth ratio 1.64, diluted by the fixed per-layer overhead (issue 5)
    big = ml.serve(LLAMA70, A100, tp=2, fabric="NVLink 3").itl / ml.serve(LLAMA70, H100, tp=2, **fabric).itl
    assert 1.5 < float(big) < 1.75


def test_llama_2_70b_fp16_weights_do_not_fit_one_h100():
    m = ml.memory(LLAMA70, H100, batch=1, context=1, precision="fp16")
    assert mag(m.weights, "GB") == pytest.approx(137.96, rel=0.01)  # 68.98e9 params x 2 B
    assert not m.fits and m.bottleneck is Wall.MEMORY_CAPACITY
    assert "does not fit: needs 138 GB, has 80 GB" in m.verdict
    r = ml.serve(LLAMA70, H100, batch=1)
    assert not r.fits and r.bottleneck is Wall.MEMORY_CAPACITY and r.margin > 1.7


def test_decode_at_batch_1_is_memory_bound_and_the_crossover_batch_is_reported():
    llama3 = ml.workload("Llama-3-8B")  # grouped-query attention: 8 KV heads
    r = ml.serve(llama3, H100, batch=1, prompt_tokens=128, output_tokens=64)
    assert r.bottleneck is Wall.MEMORY_BANDWIDTH and r.fits
    b_star = int(r.compute_bound_batch.magnitude)
    assert 100 < b_star < 2000
    below = ml.serve(llama3, H100, batch=b_star - 1, prompt_tokens=128, output_tokens=64, overhead="0 s")
    above = ml.serve(llama3, H100, batch=b_star, prompt_tokens=128, output_tokens=64, overhead="0 s")
    assert below.terms["memory"] > below.terms["compute"]
    assert above.terms["compute"] >= above.terms["memory"]


def test_mha_decode_never_turns_compute_bound():
    # Llama-2-7B has full multi-head attention: at 576 tokens of context each sequence already reads
    # 0.30 GB of KV per step (~113 us at 80% of 3.35 TB/s) for only ~13.5 GFLOP (~27 us): the KV read per
    # sequence outgrows its FLOPs, so batching never makes decode compute-bound.
    r = ml.serve(LLAMA7, H100, batch=1, prompt_tokens=512, output_tokens=128)
    assert np.isinf(r.compute_bound_batch.magnitude)


# ---------------------------------------------------------------------------------------- memory
def test_kv_cache_respects_gqa():
    # 128K tokens x 80 layers x (2 x 8 x 128) values x 2 B = 42.9 GB, not 343.6 GB (full MHA).
    per_seq = kv_cache_bytes(131072, 80, 2 * 8 * 128, 2)
    assert per_seq / 1e9 == pytest.approx(42.95, rel=1e-3)
    m = ml.memory(LLAMA70, H100, batch=1, context=131072, precision="fp16")
    assert mag(m.kv_cache, "GB") == pytest.approx(42.95, rel=1e-3)
    mha = kv_cache_bytes(131072, 80, 2 * 64 * 128, 2)
    assert mha / 1e9 == pytest.approx(343.6, rel=1e-3)


def test_kv_cache_grows_linearly_with_context_and_batch():
    a = ml.memory(LLAMA7, H100, batch=2, context=1000).kv_cache
    b = ml.memory(LLAMA7, H100, batch=4, context=2000).kv_cache
    assert float(b / a) == pytest.approx(4.0)


def test_adam_mixed_precision_is_16_bytes_per_param_and_zero_shards_it():
    w, g, o = training_state_bytes(175e9, "bf16", 0, 64)
    assert (w + g + o) / 1e12 == pytest.approx(2.8)  # 175B x 16 B = 2.8 TB (the errata's 1.4 TB is wrong)
    w1, g1, o1 = training_state_bytes(7e9, "bf16", 1, 8)
    assert (w1, g1, o1) == (14e9, 14e9, 84e9 / 8)
    w3, g3, o3 = training_state_bytes(7e9, "bf16", 3, 8)
    assert w3 + g3 + o3 == pytest.approx(112e9 / 8)
    assert sum(training_state_bytes(7e9, "fp32", 0, 1)) == pytest.approx(112e9)


def test_activations_follow_korthikanti():
    s, b, h, a, L = 2048, 1, 12288, 96, 96  # GPT-3 175B
    none = activation_bytes(s * b, s, h, a, L, "none")
    assert none == pytest.approx(s * b * h * (34 + 5 * a * s / h) * L)
    assert activation_bytes(s * b, s, h, a, L, "selective") == pytest.approx(34 * s * b * h * L)
    assert activation_bytes(s * b, s, h, a, L, "full") == pytest.approx(2 * s * b * h * L)


# ---------------------------------------------------------------------------------------- decode and prefill
def test_decode_flops_and_bytes_by_hand():
    f = LLAMA7._f
    flops, nbytes = decode_step_cost(f, 1, 1000, 2, 2)
    n_matmul = LLAMA7.params.to("param").magnitude - LLAMA7.vocab * LLAMA7.d_model
    assert flops == pytest.approx(2 * n_matmul + 4 * 32 * 4096 * 1000)
    assert nbytes == pytest.approx(n_matmul * 2 + 1000 * 32 * 2 * 32 * 128 * 2)


def test_itl_equals_bytes_over_bandwidth_when_memory_bound():
    r = ml.serve(LLAMA7, H100, batch=1, prompt_tokens=100, output_tokens=2, overhead="0 s",
                 bandwidth_efficiency=1.0)
    f = LLAMA7._f
    ctx = 101
    expected = (f.matmul_total * 2 + ctx * 32 * 8192 * 2) / 3.35e12
    assert mag(r.itl, "s") == pytest.approx(expected, rel=1e-9)
    assert mag(r.tokens_per_second, "token/s") == pytest.approx(1 / expected, rel=1e-9)


def test_quantization_shrinks_memory_and_speeds_decode():
    fp16 = ml.serve(LLAMA7, H100, precision="fp16")
    int8 = ml.serve(LLAMA7, H100, precision="int8")
    int4 = ml.serve(LLAMA7, H100, precision="int4")
    assert int4.memory_per_device < int8.memory_per_device < fp16.memory_per_device
    assert int4.itl < int8.itl < fp16.itl


def test_moe_decode_reads_only_active_experts_at_batch_1():
    mix = ml.workload("Mixtral-8x7B")
    f = mix._f
    _, bytes1 = decode_step_cost(f, 1, 1, 2, 2)
    assert bytes1 == pytest.approx((f.matmul_active) * 2 + 32 * f.kv_dim * 2, rel=1e-6)
    _, bytes_big = decode_step_cost(f, 256, 1, 2, 2)
    assert bytes_big / 256 < bytes1 and bytes_big > f.matmul_total * 2 * 0.999


def test_tensor_parallel_adds_network_and_one_device_has_none():
    one = ml.serve(LLAMA7, H100, batch=8)
    two = ml.serve(LLAMA7, H100, batch=8, tp=2)
    assert mag(one.terms["network"], "s") == 0
    assert mag(two.terms["network"], "s") > 0
    assert two.memory_per_device < one.memory_per_device


def test_tp_must_divide_heads():
    with pytest.raises(ml.InputError, match="tp=3 does not divide Llama-2-70B's 64 attention heads"):
        ml.serve(LLAMA70, H100, tp=3)


# ---------------------------------------------------------------------------------------- collectives
def test_ring_allreduce_by_hand_and_limits():
    # 280 GB over 64 ranks at 50 GB/s: 2 x 63/64 x 280e9 / 50e9 = 11.025 s (+ latency).
    assert ring_allreduce_time(280e9, 64, 50e9, 0.0) == pytest.approx(11.025)
    assert ring_allreduce_time(1e9, 1, 50e9, 5e-6) == 0.0
    assert tree_allreduce_time(1e9, 1, 50e9, 5e-6) == 0.0
    # Small messages take the tree; large ones the ring.
    assert allreduce_time(1e3, 1024, 50e9, 5e-6) == tree_allreduce_time(1e3, 1024, 50e9, 5e-6)
    assert allreduce_time(1e10, 8, 50e9, 5e-6) == ring_allreduce_time(1e10, 8, 50e9, 5e-6)


def test_allreduce_is_monotone_in_bandwidth_and_size():
    bws = np.array([10e9, 50e9, 100e9, 400e9])
    t = allreduce_time(1e9, 64, bws, 5e-6)
    assert np.all(np.diff(t) < 0)
    assert np.all(np.diff(allreduce_time(np.array([1e6, 1e8, 1e10]), 64, 50e9, 5e-6)) > 0)


# ---------------------------------------------------------------------------------------- training
def test_training_flops_per_token_is_6n_plus_attention():
    r = ml.train(LLAMA7, H100, tokens=1e9, global_batch_tokens=4096, seq_len=4096)
    f = LLAMA7._f
    assert mag(r.flops_per_token, "FLOP/token") == pytest.approx(6 * f.matmul_active + 6 * 32 * 4096 * 4096)
    assert mag(r.total_flops, "FLOP") == pytest.approx(1e9 * mag(r.flops_per_token, "FLOP/token"))


def test_one_device_training_has_no_communication_and_mfu_below_eta():
    r = ml.train(LLAMA7, ml.cluster(H100, gpus=1), tokens=1e9, global_batch_tokens=2**20, zero=0)
    assert mag(r.terms["network"], "s") == 0
    assert 0 < r.mfu.magnitude <= eff.compute_efficiency("nvidia-hopper", "training").value
    # Llama-2-7B with Adam needs 112 GB + activations: it does not fit one 80 GB H100.
    assert not r.fits and r.bottleneck is Wall.MEMORY_CAPACITY


def test_time_to_train_and_gpu_hours_are_consistent():
    c = ml.cluster(H100, gpus=1024)
    r = ml.train(LLAMA70, c, tokens=2e12, global_batch_tokens=2**22, zero=3, recompute="full")
    steps = 2e12 / 2**22
    assert r.steps.magnitude == pytest.approx(steps)
    assert mag(r.time_to_train, "s") == pytest.approx(steps * mag(r.step_time, "s"))
    assert mag(r.gpu_hours, "h") == pytest.approx(mag(r.time_to_train, "h") * 1024)
    assert r.fits


def test_data_parallel_node_speeds_up_but_less_than_linearly():
    one = ml.train(LLAMA7, ml.cluster(H100, gpus=1), tokens=1e9, global_batch_tokens=2**21, zero=3,
                   recompute="full", overlap=False)
    eight = ml.train(LLAMA7, ml.cluster(H100, gpus=8), tokens=1e9, global_batch_tokens=2**21, zero=3,
                     recompute="full", overlap=False)
    speedup = float(one.step_time / eight.step_time)
    assert 4 < speedup < 8


def test_global_batch_smaller_than_one_micro_batch_per_gpu_is_an_error():
    with pytest.raises(ml.InputError, match="smaller than one micro-batch"):
        ml.train(LLAMA70, ml.cluster(H100, gpus=1024), tokens=2e12, global_batch_tokens=4e6)


# ---------------------------------------------------------------------------------------- vectorised = scalar
def test_arrays_give_the_same_answers_as_scalars():
    batches = np.array([1, 4, 16, 64, 256])
    vec = ml.serve(LLAMA7, H100, batch=batches)
    for i, b in enumerate(batches):
        one = ml.serve(LLAMA7, H100, batch=int(b))
        assert mag(vec.itl, "s")[i] == pytest.approx(mag(one.itl, "s"))
        assert vec.bottleneck[i] == one.bottleneck
    rv = ml.roofline("ResNet-50", H100, batch=batches, phase="inference")
    assert mag(rv.intensity, "FLOP/B")[2] == pytest.approx(
        mag(ml.roofline("ResNet-50", H100, batch=16, phase="inference").intensity, "FLOP/B"))


# ---------------------------------------------------------------------------------------- small devices
def test_resnet50_does_not_fit_an_mcu():
    # 25.6M int8 weights = 25.6 MB against the ESP32-S3 module's 8 MiB flash: x3.05 over.
    r = ml.memory("ResNet-50", "ESP32-S3", precision="int8")
    assert not r.fits and r.bottleneck is Wall.MEMORY_CAPACITY
    assert r.margin == pytest.approx(25.6e6 / 2**23, rel=0.01) and "does not fit flash" in r.verdict


def test_keyword_spotting_fits_an_mcu_with_weights_in_flash():
    r = ml.memory("DS-CNN", "ESP32-S3", precision="int8")
    assert r.fits and r.bottleneck is Wall.SRAM and "weights in flash" in r.verdict


def test_activations_that_overflow_sram_hit_the_sram_wall():
    big_input = ml.SampleWorkload(name="cam", family="x", task="vision", kind="cnn", params="10e3 param",
                                  flops_per_sample="1 MMAC", input_bytes="600 KiB", source="a test model")
    r = ml.memory(big_input, "ESP32-S3", precision="int8")
    assert not r.fits and r.bottleneck is Wall.SRAM and "activations do not fit SRAM" in r.verdict


def test_cold_start_over_pcie_by_hand():
    # 140 GB of fp16 Llama-2-70B weights over PCIe 5.0 x16 at 64 GB/s per direction: 2.19 s.
    from mlsysim_lab.network import host_transfer
    r = host_transfer(H100, bytes="140 GB")
    assert mag(r.time, "s") == pytest.approx(140 / 64) and r.bottleneck is Wall.HOST_TRANSFER
    assert mag(host_transfer(H100, bytes="0 B").time, "s") == 0


def test_weight_streaming_hides_behind_compute_above_the_hiding_batch():
    from mlsysim_lab.compute import weight_streaming
    r = weight_streaming("GPT-3", H100, injection="1.2 TB/s", batch=1)
    assert r.bottleneck is Wall.STREAMING
    b = int(r.hiding_batch.magnitude)
    assert weight_streaming("GPT-3", H100, injection="1.2 TB/s", batch=b).bottleneck is Wall.COMPUTE
    faster = weight_streaming("GPT-3", H100, injection="2.4 TB/s", batch=1)
    assert faster.hiding_batch.magnitude == pytest.approx(b / 2, abs=1)


def test_cnn_batch_moves_from_memory_or_overhead_to_compute_bound():
    small = ml.serve("ResNet-50", H100, batch=1)
    big = ml.serve("ResNet-50", H100, batch=256)
    assert small.bottleneck in (Wall.MEMORY_BANDWIDTH, Wall.OVERHEAD)
    assert big.bottleneck is Wall.COMPUTE


# ---------------------------------------------------------------------------------------- operators
def test_operator_signatures_by_hand():
    from mlsysim_lab.compute import operator
    # GEMM N=512 fp16: 2 x 512^3 FLOPs over 3 x 512^2 x 2 B -> 170.7 FLOP/B, left of H100's ridge (~295).
    g = operator("dense", H100, m=512, n=512, k=512)
    assert mag(g.intensity, "FLOP/B") == pytest.approx(512 / 3) and g.bottleneck is Wall.MEMORY_BANDWIDTH
    assert operator("dense", H100, m=8192, n=8192, k=8192).bottleneck is Wall.COMPUTE
    # Unfused attention moves the seq^2 scores; FlashAttention does not.
    plain = operator("attention", H100, batch=1, seq=4096, heads=32, head_dim=128, flash=False)
    fused = operator("attention", H100, batch=1, seq=4096, heads=32, head_dim=128)
    assert mag(fused.intensity, "FLOP/B") == pytest.approx(4 * 4096**2 * 32 * 128 / (4 * 4096 * 32 * 128 * 2))
    assert plain.intensity < fused.intensity
    assert mag(operator("embedding", H100, tokens=4096, dim=4096).intensity, "FLOP/B") == 0
    conv = operator("conv2d", H100, batch=1, height=56, width=56, channels_in=64, channels_out=64, kernel=3)
    assert mag(conv.ops, "FLOP") == pytest.approx(2 * 56 * 56 * 64 * 64 * 9)


def test_operator_refuses_wrong_shapes():
    from mlsysim_lab.compute import operator
    with pytest.raises(ml.InputError, match="a dense operator takes m, n, k; missing k"):
        operator("dense", H100, m=1, n=1)
    with pytest.raises(ml.InputError, match="unknown kind 'lstm'"):
        operator("lstm", H100, m=1)


@pytest.mark.parametrize("model", ["DS-CNN", "ResNet-8", "MobileNetV1-0.25 VWW", "MobileNetV2", "ResNet-50"])
@pytest.mark.parametrize("device", ["ESP32-S3", "STM32F746", "nRF52840"])
def test_serve_and_memory_apply_one_fit_rule_on_microcontrollers(model, device):
    # Weights execute in place from flash, activations live in SRAM: serve() and memory() agree.
    s, m = ml.serve(model, device, precision="int8"), ml.memory(model, device, precision="int8")
    assert bool(s.fits) == bool(m.fits)
    if not m.fits:
        assert s.bottleneck is m.bottleneck and s.margin == pytest.approx(m.margin) and s.verdict == m.verdict
    sweep = ml.serve(model, device, precision="int8", batch=np.array([1, 2]))
    assert bool(sweep.fits[0]) == bool(m.fits)


def test_int4_weights_compute_in_int8_where_a_device_has_no_16_bit_peak():
    # Phone NPUs publish an int8 peak only: W4A8, 35 TOP/s on the A17 Pro; GPUs keep W4A16.
    npu = ml.roofline("MobileNetV2", "Apple A17 Pro", precision="int4", phase="inference")
    assert mag(npu.peak, "OP/s") == pytest.approx(35e12)
    assert mag(ml.roofline("Llama-2-7B", H100, precision="int4").peak, "FLOP/s") == pytest.approx(
        mag(H100.peak["fp16"], "FLOP/s"))
    assert ml.serve("DS-CNN", "STM32F746", precision="int4").fits


def test_results_show_zetta_and_yotta_prefixes():
    from mlsysim_lab.units import show
    assert show(5.76e23, "FLOP") == "576 ZFLOP" and show(3.8e25, "FLOP") == "38 YFLOP"
