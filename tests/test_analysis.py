"""The analysis walls: sensitivity (which input binds) and synthesis (the inverse roofline)."""
import json
import pickle

import numpy as np
import pytest

import mlsysim_lab as ml
from mlsysim_lab import efficiency as eff
from mlsysim_lab.analysis import _elasticity, _scaled_hardware, sensitivity, synthesize
from mlsysim_lab.results import Wall

H100 = ml.hardware("H100 SXM")
LLAMA7, LLAMA70 = ml.workload("Llama-2-7B"), ml.workload("Llama-2-70B")
DECODE = dict(model=LLAMA7, hardware=H100, batch=1, efficiency=0.5, bandwidth_efficiency=0.8, overhead="0 s")


def mag(q, unit):
    return q.to(unit).magnitude


def rows(result):
    return {row["input"]: row for row in result.rows}


# ---------------------------------------------------------------------------------------- sensitivity
def test_memory_bound_decode_is_inversely_proportional_to_bandwidth_and_blind_to_compute():
    s = sensitivity(ml.serve, DECODE, output="itl")
    r = rows(s)
    assert r["bandwidth_efficiency"]["elasticity"] == pytest.approx(-1.0, abs=1e-9)
    assert r["hardware.bandwidth"]["elasticity"] == pytest.approx(-1.0, abs=1e-9)
    assert r["efficiency"]["elasticity"] == 0.0 and r["hardware.peak"]["elasticity"] == 0.0
    assert r["hardware.capacity"]["elasticity"] == 0.0
    assert s.rows[0]["input"] in ("hardware.bandwidth", "bandwidth_efficiency")
    assert s.bottleneck is Wall.MEMORY_BANDWIDTH and s.elasticity.magnitude == pytest.approx(-1.0)
    # low / high are the output at the perturbed inputs: ITL x 1/0.9 and x 1/1.1.
    base = mag(s.base, "s")
    assert mag(r["bandwidth_efficiency"]["low"], "s") == pytest.approx(base / 0.9)
    assert mag(r["bandwidth_efficiency"]["high"], "s") == pytest.approx(base / 1.1)
    assert "most sensitive to hardware.bandwidth (elasticity -1.00: +10% moves it -9.1%)" in s.verdict


def test_fixed_overhead_dilutes_the_bandwidth_elasticity():
    s = sensitivity(ml.serve, {**DECODE, "overhead": None}, output="itl")
    base = ml.serve(**{**DECODE, "overhead": None})
    share = float(base.terms["memory"] / base.itl)  # d ln ITL / d ln BW = -t_m / ITL
    assert rows(s)["hardware.bandwidth"]["elasticity"] == pytest.approx(-share, rel=0.01)
    # With the fitted per-layer overhead (efficiency.py, issue 5) about a quarter of a batch-1 step is fixed cost.
    assert -1 < rows(s)["hardware.bandwidth"]["elasticity"] < -0.7


def test_compute_bound_iron_law_follows_peak_and_ops():
    s = sensitivity(ml.iron_law, dict(hardware="H100 SXM", ops="1 TFLOP", bytes="1 GB", efficiency=0.5),
                    output="time")
    r = rows(s)
    assert r["efficiency"]["elasticity"] == pytest.approx(-1.0)
    assert r["hardware.peak"]["elasticity"] == pytest.approx(-1.0)
    assert r["ops"]["elasticity"] == pytest.approx(1.0)
    assert r["bytes"]["elasticity"] == 0.0 and r["hardware.bandwidth"]["elasticity"] == 0.0
    assert s.bottleneck is Wall.COMPUTE


def test_training_time_is_proportional_to_tokens():
    c = ml.cluster(H100, gpus=8)
    s = sensitivity(ml.train, dict(model=LLAMA7, system=c, tokens=1e9, global_batch_tokens=2 ** 20, zero=3),
                    output="time_to_train", inputs=["tokens", "system.peak"])
    r = rows(s)
    assert r["tokens"]["elasticity"] == pytest.approx(1.0)
    assert -1.0 <= r["system.peak"]["elasticity"] < -0.5
    assert set(r) == {"tokens", "system.peak"}


def test_whole_counts_are_rounded_and_refused_sides_dropped():
    s = sensitivity(ml.serve, {**DECODE, "batch": 1, "bandwidth_efficiency": 1.0}, output="itl")
    r = rows(s)
    assert r["batch"]["low"] is None and r["batch"]["high"] is not None  # batch 0 is refused: one-sided
    assert r["bandwidth_efficiency"]["high"] is None  # 1.1 of peak is refused
    assert r["bandwidth_efficiency"]["elasticity"] == pytest.approx(-1.0)
    assert "tp" not in r  # layout choices are not perturbed unless named
    named = rows(sensitivity(ml.serve, {**DECODE, "tp": 1, "fabric": "NVLink 4"}, output="itl", inputs=["tp"]))
    assert named["tp"]["low"] is None and named["tp"]["high"] is not None


def test_rows_are_sorted_by_magnitude_and_the_result_round_trips():
    s = sensitivity(ml.serve, DECODE, output="tokens_per_second")
    mags = [abs(row["elasticity"]) for row in s.rows if np.isfinite(row["elasticity"])]
    assert mags == sorted(mags, reverse=True)
    data = json.loads(s.to_json())
    assert data["output"] == "tokens_per_second" and data["rows"][0]["input"] == s.rows[0]["input"]
    assert data["rows"][0]["high"]["unit"] == "tok/s" and data["base"]["unit"] == "tok/s"
    again = pickle.loads(pickle.dumps(s))
    assert again.to_dict() == s.to_dict() and again.rows[0]["input"] == s.rows[0]["input"]
    assert set(s.terms) == {row["input"] for row in s.rows}


def test_elasticity_is_exact_for_power_laws_and_linear_otherwise():
    assert _elasticity(1.0, 0.9 ** 2, 1.1 ** 2, 0.9, 1.1) == pytest.approx(2.0)
    assert _elasticity(1.0, 1 / 0.9, None, 0.9, float("nan")) == pytest.approx(-1.0)
    assert _elasticity(2.0, -1.0, 5.0, 0.9, 1.1) == pytest.approx((5.0 + 1.0) / 2.0 / 0.2)
    assert np.isnan(_elasticity(1.0, None, None, 0.9, 1.1))


def test_scaled_hardware_is_a_new_validated_spec():
    faster = _scaled_hardware(H100, "bandwidth", 1.1)
    assert faster._f.bandwidth == pytest.approx(3.35e12 * 1.1) and H100._f.bandwidth == 3.35e12
    assert _scaled_hardware(H100, "peak", 2.0)._f.peak["bf16"] == pytest.approx(2 * H100._f.peak["bf16"])
    assert _scaled_hardware(H100, "capacity", 0.5)._f.capacity == pytest.approx(40e9)


@pytest.mark.parametrize("kwargs, message", [
    (dict(fn=ml.serve, base_inputs=DECODE, output="latencyy"), "has no field 'latencyy'"),
    (dict(fn=ml.serve, base_inputs=DECODE, output="itl", rel=1.5), "'rel' is a relative change"),
    (dict(fn=ml.serve, base_inputs=DECODE, output="itl", rel=0), "'rel' must be > 0"),
    (dict(fn="serve", base_inputs=DECODE, output="itl"), "'fn' must be a solver"),
    (dict(fn=ml.serve, base_inputs=[1], output="itl"), "'base_inputs' must be a dict"),
    (dict(fn=ml.serve, base_inputs=DECODE, output="itl", inputs=["precision"]), "cannot perturb precision"),
    (dict(fn=ml.serve, base_inputs={**DECODE, "batch": np.arange(1, 4)}, output="itl"), "is an array"),
])
def test_sensitivity_bad_input(kwargs, message):
    with pytest.raises(ml.InputError, match=message):
        sensitivity(**kwargs)


# ---------------------------------------------------------------------------------------- synthesis
def _exact_device(y, name="synthetic"):
    """A device with exactly the synthesised minimum spec, in the family whose efficiencies were assumed."""
    return ml.Hardware(name=name, vendor="test", family="default", tier="datacenter", source="synthesized spec",
                       peak={"fp16": ml.Q_(mag(y.peak, "FLOP/s"), "FLOP/s")},
                       memory=dict(capacity=ml.Q_(mag(y.capacity, "B"), "B"),
                                   bandwidth=ml.Q_(mag(y.bandwidth, "B/s"), "B/s")))


def test_the_minimum_spec_meets_the_itl_slo_exactly_in_serve():
    y = synthesize(LLAMA7, itl="20 ms", batch=8)
    hw = _exact_device(y)
    r = ml.serve(LLAMA7, hw, batch=8)
    assert mag(r.itl, "s") == pytest.approx(0.020, rel=1e-9)
    assert mag(r.memory_per_device, "B") == pytest.approx(mag(y.capacity, "B"))
    # By hand: ITL - overhead = 20 ms - 32 layers x the per-layer overhead for the step's bytes at the default
    # bandwidth efficiency, the KV cache's short per-head reads counted at their lower efficiency.
    from mlsysim_lab.memory import kv_cache_bytes
    from mlsysim_lab.serving import decode_step_cost
    budget = 0.020 - 32 * eff.LAYER_OVERHEAD.value
    flops, nbytes = decode_step_cost(LLAMA7._f, 8, 1024 + 128, 2, 2)
    kv = kv_cache_bytes(8 * 1152, 32, LLAMA7._f.kv_dim, 2)
    slow_kv = kv / eff.kv_transfer_factor(1152 * 128 * 2 * 2)
    assert mag(y.bandwidth, "B/s") == pytest.approx((nbytes - kv + slow_kv) / (budget * eff.MEMORY_BANDWIDTH.value))
    eta = eff.compute_efficiency("default", "decode").value
    assert mag(y.peak, "FLOP/s") == pytest.approx(flops / (budget * eta))


def test_the_minimum_spec_meets_a_ttft_slo_exactly():
    y = synthesize(LLAMA7, ttft="500 ms", prompt_tokens=2048)
    r = ml.serve(LLAMA7, _exact_device(y), prompt_tokens=2048)
    assert mag(r.ttft, "s") == pytest.approx(0.5, rel=1e-9)


def test_the_cheapest_system_meeting_the_slo_is_chosen():
    y = synthesize(LLAMA7, itl="20 ms", batch=8)
    assert y.fits and y.choice is not None
    chosen = y.candidates[0]
    assert chosen["hardware"] == y.choice and chosen["meets"] and mag(chosen["itl"], "ms") <= 20
    priced = [c for c in y.candidates if c["meets"] and c["price"] is not None]
    assert chosen["price"] == min(c["price"] for c in priced)
    assert y.price == chosen["price"] and y.devices.magnitude == chosen["devices"]
    never_run = [c for c in y.candidates if c["devices"] is None]
    assert never_run and all(c["itl"] is None and c["reason"] for c in never_run)
    assert y.bottleneck in (Wall.MEMORY_BANDWIDTH, Wall.COMPUTE, Wall.MEMORY_CAPACITY) and y.margin <= 1
    fewest = synthesize(LLAMA70, itl="50 ms", objective="devices")
    assert fewest.devices.magnitude == min(c["devices"] for c in fewest.candidates if c["meets"])


def test_tighter_slos_and_bigger_batches_need_more_bandwidth():
    need = [mag(synthesize(LLAMA7, itl=f"{ms} ms", candidates=[H100]).bandwidth, "B/s") for ms in (5, 10, 20, 40)]
    assert all(a > b for a, b in zip(need, need[1:]))
    by_batch = [mag(synthesize(LLAMA7, itl="20 ms", batch=b, candidates=[H100]).bandwidth, "B/s")
                for b in (1, 8, 64)]
    assert all(a < b for a, b in zip(by_batch, by_batch[1:]))


def test_an_slo_below_the_software_overhead_is_infeasible_on_any_hardware():
    y = synthesize(LLAMA70, itl="1 ms")  # 80 layers x the per-layer overhead (~4 ms) alone exceed it
    assert not y.fits and y.bottleneck is Wall.OVERHEAD and y.choice is None
    alone = ml.Q_(80 * eff.LAYER_OVERHEAD.value, "s").to("ms")
    assert 80 * eff.LAYER_OVERHEAD.value > 1e-3 and f"the software overhead alone is {alone:.3g~P}" in y.verdict


def test_an_unreachable_slo_names_the_wall():
    y = synthesize(LLAMA7, itl="5 ms", candidates=["Jetson AGX Orin 64GB"])
    assert not y.fits and y.bottleneck is Wall.MEMORY_BANDWIDTH
    assert y.candidates[0]["reason"].startswith("ITL too slow")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(), ml.InputError, "give an SLO"),
    (dict(itl="20 ms", objective="fast"), ml.InputError, "'objective' must be"),
    (dict(itl="20 ms", candidates=[]), ml.InputError, "'candidates' is empty"),
    (dict(itl="20 GB"), ml.UnitError, "'itl' got 20 GB"),
    (dict(itl="20 ms", batch=0), ml.InputError, "'batch' must be > 0"),
])
def test_synthesize_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        synthesize(LLAMA7, **kwargs)


def test_synthesize_round_trips_and_refuses_per_sample_models():
    y = synthesize(LLAMA7, itl="20 ms", candidates=[H100, "A100 SXM 80GB"])
    assert pickle.loads(pickle.dumps(y)).to_dict() == y.to_dict()
    data = json.loads(y.to_json())
    assert data["choice"] == y.choice and data["candidates"][0]["itl"]["unit"] == "s"
    assert "binding wall" in y.explain()
    with pytest.raises(ml.InputError, match="per-sample model"):
        synthesize("ResNet-50", itl="5 ms")
