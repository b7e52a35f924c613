"""Serving fleets, paged KV, speculative decoding and the seed's "$9 million question", computed."""
import json
import math
import pickle

import numpy as np
import pytest

import mlsysim_lab as ml
from mlsysim_lab import catalog, scenarios
from mlsysim_lab.fleet import fleet, paged_kv, reasoning, speculative
from mlsysim_lab.memory import kv_cache_bytes
from mlsysim_lab.queueing import queue
from mlsysim_lab.results import Wall

H100 = ml.hardware("H100 SXM")
L70 = "Llama-3.1-70B"
SLO = dict(ttft="2 s", itl="50 ms")


def mag(q, unit=""):
    return q.to(unit).magnitude if unit else q.magnitude


def boundless(capacity):
    """An H100 with a different memory capacity (to remove or tighten the KV wall)."""
    data = H100.model_dump()
    data.update(name=f"H100 with {capacity}", aliases=[], memory={"capacity": capacity, "bandwidth": "3.35 TB/s"})
    return ml.Hardware(**data)


# ---------------------------------------------------------------------------------------------- fleet
def test_fleet_by_hand_little_erlang_and_minimality():
    r = fleet(L70, H100, qps="40 req/s", tp=8, prompt_tokens=1024, output_tokens=256, **SLO)
    b, reps = mag(r.batch), mag(r.replicas)
    # Service time per slot: own prefill + (B - 1) others' prefills + 255 decode steps at ITL(B).
    one = ml.serve(L70, H100, batch=1, prompt_tokens=1024, output_tokens=256, tp=8)
    at_b = ml.serve(L70, H100, batch=b, prompt_tokens=1024, output_tokens=256, tp=8)
    prefill = mag(one.ttft, "s")
    service = b * prefill + 255 * mag(at_b.itl, "s")
    assert mag(r.service, "s") == pytest.approx(service)
    assert mag(r.itl, "s") == pytest.approx(mag(at_b.itl, "s") + (b - 1) * prefill / 255)
    # Little's law: 40 req/s x S requests in flight need at least that many slots.
    assert reps * b >= 40 * service
    # The queue at that size, from queueing.queue(): its p99 wait plus the prefill meets the TTFT SLO...
    q = queue("40 req/s", f"{service} s", servers=reps * b)
    assert mag(r.latency, "s") == pytest.approx(mag(q.wait_percentile, "s") + service)
    assert mag(r.ttft, "s") == pytest.approx(mag(q.wait_percentile, "s") + prefill) and mag(r.ttft, "s") <= 2.0
    # ...and one replica fewer at this batch would not (unstable or over the SLO).
    fewer = queue("40 req/s", f"{service} s", servers=(reps - 1) * b)
    assert not fewer.fits or mag(fewer.wait_percentile, "s") + prefill > 2.0
    assert mag(r.gpus) == 8 * reps and mag(r.utilisation) == pytest.approx(40 * service / (reps * b))
    assert mag(r.tokens_per_gpu, "token/s") == pytest.approx(40 * 256 / mag(r.gpus))
    assert sum(t.to("s").magnitude for t in r.terms.values()) == pytest.approx(mag(r.latency, "s"))
    assert r.fits and r.bottleneck is Wall.LATENCY_SLO  # the 50 ms ITL stops the batch
    assert mag(r.itl, "s") <= 0.050


def test_fleet_cost_fields_by_hand():
    r = fleet(L70, H100, qps="40 req/s", tp=8, gpu_hour="2.5 USD/h", **SLO)
    gpus = mag(r.gpus)
    assert mag(r.capex, "USD") == pytest.approx(gpus * 30000)  # the catalog's H100 price
    assert mag(r.token_cost, "USD/Mtoken") == pytest.approx(gpus * 2.5 / 3600 / (40 * 256) * 1e6)
    cheap = fleet(L70, H100, qps="40 req/s", tp=8, gpu_price="20000 USD", **SLO)
    assert mag(cheap.capex, "USD") == pytest.approx(gpus * 20000)
    assert math.isnan(mag(cheap.token_cost, "USD/Mtoken"))  # no hourly price given


def test_vanishing_load_needs_one_replica():
    r = fleet(L70, H100, qps="1e-4 req/s", tp=8, **SLO)
    assert mag(r.replicas) == 1 and mag(r.gpus) == 8
    assert r.bottleneck is Wall.MEMORY_CAPACITY and "one replica" in r.verdict
    assert mag(r.ttft, "s") == pytest.approx(mag(ml.serve(L70, H100, tp=8).ttft, "s"), rel=1e-3)


def test_kv_capacity_binds_and_boundless_memory_removes_the_batching_wall():
    # An 8B model with 4K-token requests on one H100: the KV cache fills before a loose SLO binds.
    kw = dict(qps="200 req/s", prompt_tokens=2048, output_tokens=2048, ttft="2 s", itl="200 ms")
    tight = fleet("Llama-3.1-8B", H100, **kw)
    assert tight.bottleneck is Wall.BATCHING
    assert mag(tight.batch) <= mag(tight.max_batch) and mag(tight.batch) >= 0.9 * mag(tight.max_batch)
    assert "batching binds" in tight.verdict
    roomy = fleet("Llama-3.1-8B", boundless("2 TB"), **kw)
    assert roomy.bottleneck is not Wall.BATCHING
    assert mag(roomy.batch) > mag(tight.max_batch) and mag(roomy.gpus) < mag(tight.gpus)


def test_compute_binds_past_the_compute_bound_batch():
    r = fleet(L70, H100, qps="120 req/s", tp=8, prompt_tokens=256, output_tokens=512, ttft="2 s", itl="200 ms")
    assert r.bottleneck is Wall.COMPUTE and mag(r.batch) >= mag(r.compute_bound_batch)


def test_more_load_needs_more_replicas():
    qps = ml.Q_(np.array([1.0, 5.0, 20.0, 60.0, 150.0, 400.0]), "req/s")
    r = fleet(L70, H100, qps=qps, tp=8, **SLO)
    assert np.all(np.diff(mag(r.replicas)) >= 0) and mag(r.replicas)[-1] > 3 * mag(r.replicas)[2]
    assert np.all(r.fits)


def test_tighter_slos_need_more_replicas():
    itl = [mag(fleet(L70, H100, qps="100 req/s", tp=8, ttft="2 s", itl=f"{t} ms").gpus) for t in (200, 60, 30, 20)]
    assert itl == sorted(itl) and itl[-1] > itl[0]
    # A TTFT SLO buys queueing room. With hundreds of slots Erlang-C waits are tiny, so show it without
    # batching (max_batch=1: one request per GPU, an M/M/c over GPUs); below the prefill time no fleet fits.
    ttft = [mag(fleet("Llama-3.1-8B", H100, qps="2 req/s", max_batch=1, itl="50 ms", ttft=f"{t} ms").gpus)
            for t in (5000, 1000, 300, 100)]
    assert ttft == sorted(ttft) and ttft[-1] > ttft[0]
    unbatched = fleet("Llama-3.1-8B", H100, qps="2 req/s", max_batch=1, itl="50 ms", ttft="1 s")
    batched = fleet("Llama-3.1-8B", H100, qps="2 req/s", itl="50 ms", ttft="1 s")
    assert mag(batched.gpus) < mag(unbatched.gpus) and unbatched.bottleneck is Wall.BATCHING
    assert not fleet(L70, H100, qps="100 req/s", tp=8, itl="50 ms", ttft="40 ms").fits  # prefill is 43.6 ms
    e2e = [mag(fleet(L70, H100, qps="100 req/s", tp=8, latency=f"{t} s").gpus) for t in (20, 8, 5)]
    assert e2e == sorted(e2e)


def test_array_of_rates_equals_scalar_calls():
    rates = [3.0, 30.0, 90.0]
    swept = fleet(L70, H100, qps=ml.Q_(np.array(rates), "req/s"), tp=8, **SLO)
    for i, x in enumerate(rates):
        one = fleet(L70, H100, qps=f"{x} req/s", tp=8, **SLO)
        for field in ("gpus", "batch", "latency", "ttft", "itl", "utilisation"):
            assert mag(getattr(swept, field))[i] == pytest.approx(mag(getattr(one, field))), field
        assert swept.bottleneck[i] is one.bottleneck


def test_infeasible_designs_are_verdicts():
    slow = fleet(L70, H100, qps="10 req/s", tp=8, itl="5 ms")
    assert not slow.fits and slow.bottleneck is Wall.LATENCY_SLO
    assert slow.verdict.startswith("no batch meets the ITL SLO of 5 ms: batch 1 already takes")
    assert math.isinf(mag(slow.gpus))
    big = fleet(L70, H100, qps="10 req/s", tp=1, **SLO)
    assert not big.fits and big.bottleneck is Wall.MEMORY_CAPACITY and big.verdict.startswith("does not fit")
    json.loads(big.to_json())


def test_fleet_result_contract():
    r = fleet(L70, H100, qps="40 req/s", tp=8, **SLO)
    assert pickle.loads(pickle.dumps(r)).to_dict() == r.to_dict()
    text = r.explain()
    assert str(r.bottleneck) in text and "binding wall" in text and "prefill pauses decoding" in text
    assert all(t.check("[time]") for t in r.terms.values())


@pytest.mark.parametrize("call, message", [
    (lambda: fleet(L70, H100, qps="10 req/s", tp=8), "fleet(): give at least one SLO"),
    (lambda: fleet(L70, H100, qps=10, tp=8, **SLO), "fleet(): 'qps' got 10 (a bare number)"),
    (lambda: fleet(L70, H100, qps="10 GB", tp=8, **SLO), "'qps' got 10 GB"),
    (lambda: fleet(L70, H100, qps="10 req/s", tp=8, ttft="2 GB"), "'ttft' got 2 GB"),
    (lambda: fleet(L70, H100, qps="10 req/s", tp=8, percentile=1.5, **SLO), "'percentile' is a fraction"),
    (lambda: fleet(L70, H100, qps="10 req/s", tp=3, **SLO), "tp=3 does not divide"),
    (lambda: fleet(L70, H100, qps="10 req/s", tp=8, output_tokens=0, **SLO), "'output_tokens' must be > 0"),
    (lambda: fleet("Llama-2-70B", H100, qps="1 req/s", tp=8, prompt_tokens=4000, output_tokens=512, **SLO),
     "exceeds Llama-2-70B's context of 4,096 tokens"),
    (lambda: fleet("ResNet-50", H100, qps="10 req/s", **SLO), "is not a transformer"),
    (lambda: fleet(L70, H100, qps="10 req/s", tp=8, gpu_hour="2.5 USD", **SLO), "'gpu_hour' got 2.5 USD"),
    (lambda: fleet(L70, H100, qps="10 req/s", tp=8, max_batch=0, **SLO), "'max_batch' must be > 0"),
])
def test_fleet_bad_input_errors(call, message):
    with pytest.raises(ml.InputError) as err:
        call()
    assert message in str(err.value)


# ---------------------------------------------------------------------------------------------- paged KV
def test_static_reservation_waste_seeds():
    r = paged_kv("Llama-2-7B", H100, tokens=128, max_context=512)
    assert mag(r.static_waste) == pytest.approx(0.75)  # average 128 of 512 reserved: 75% padding
    assert mag(r.paged_waste) == 0.0  # 128 is a whole number of 16-token pages
    assert mag(paged_kv("Llama-3.1-8B", H100, tokens=4096, max_context=32768).static_waste) == pytest.approx(0.875)
    assert mag(paged_kv("Llama-2-7B", H100, tokens=130, max_context=512).paged_waste) == pytest.approx(1 - 130 / 144)


def test_paged_concurrency_by_hand():
    # Llama-2-7B fp16 on 80 GB: free = 80e9 - 2 x 6.738e9 B; KV per token = 32 layers x 2 x 32 x 128 x 2 B.
    free = 80e9 - 2 * 6.738e9
    per_token = kv_cache_bytes(1, 32, 2 * 32 * 128, 2)
    assert per_token == 524288
    r = paged_kv("Llama-2-7B", H100, tokens=1000)
    assert mag(r.static_batch) == math.floor(free / (4096 * per_token))  # 30 at the full 4K reservation
    assert mag(r.paged_batch) == math.floor(free / (1008 * per_token))  # 1000 tokens -> 63 pages of 16
    assert r.bottleneck is Wall.BATCHING and mag(r.gain) == pytest.approx(mag(r.paged_batch) / mag(r.static_batch))
    assert "wastes 76% of the KV cache" in r.verdict


def test_paged_limits_and_monotonicity():
    full = paged_kv("Llama-2-7B", H100, tokens=4096)
    assert mag(full.gain) == 1.0 and mag(full.static_waste) == 0.0 and mag(full.paged_waste) == 0.0
    tokens = np.array([64, 256, 1024, 4096])
    r = paged_kv("Llama-2-7B", H100, tokens=tokens)
    assert np.all(np.diff(mag(r.paged_batch)) < 0) and np.all(np.diff(mag(r.static_waste)) < 0)
    for i, n in enumerate(tokens):
        assert mag(r.paged_batch)[i] == mag(paged_kv("Llama-2-7B", H100, tokens=int(n)).paged_batch)
    over = paged_kv("Llama-2-70B", H100, tokens=100)  # 138 GB of weights on 80 GB
    assert not over.fits and over.bottleneck is Wall.MEMORY_CAPACITY and mag(over.paged_batch) == 0


@pytest.mark.parametrize("call, message", [
    (lambda: paged_kv("Llama-2-7B", H100, tokens=5000), "exceeds the static reservation max_context (4096)"),
    (lambda: paged_kv("Llama-2-7B", H100, tokens=100, block=0), "'block' must be > 0"),
    (lambda: paged_kv("Llama-2-7B", H100, tokens="100 GB"), "'tokens' got 100 GB"),
    (lambda: paged_kv("ResNet-50", H100, tokens=100), "has no KV cache"),
])
def test_paged_bad_input_errors(call, message):
    with pytest.raises(ml.InputError) as err:
        call()
    assert message in str(err.value)


# ---------------------------------------------------------------------------------------------- speculative
def test_speculative_expected_tokens_and_speedup_by_hand():
    # Leviathan et al. eq. 1: (1 - 0.8^5) / (1 - 0.8) = 3.3616 tokens per target step; / (4 x 0.05 + 1).
    r = speculative(acceptance=0.8, draft_tokens=4, cost_ratio=0.05)
    assert mag(r.tokens_per_step) == pytest.approx((1 - 0.8 ** 5) / 0.2)
    assert mag(r.speedup) == pytest.approx(3.3616 / 1.2)
    assert r.fits and r.bottleneck is Wall.MEMORY_BANDWIDTH
    assert mag(r.best_speedup) >= mag(r.speedup)


def test_speculative_limits():
    assert mag(speculative(acceptance=1.0, draft_tokens=5, cost_ratio=0).tokens_per_step) == 6  # gamma + 1
    never = speculative(acceptance=0.0, draft_tokens=4, cost_ratio=0.1)
    assert mag(never.tokens_per_step) == 1 and mag(never.speedup) == pytest.approx(1 / 1.4)
    assert not never.fits and "slower than plain decoding" in never.verdict
    free = speculative(acceptance=0.6, draft_tokens=3, cost_ratio=0)
    assert mag(free.speedup) == pytest.approx(mag(free.tokens_per_step))


def test_speculative_sweeps_are_monotone_and_match_scalars():
    alphas = np.linspace(0.0, 0.95, 8)
    r = speculative(acceptance=alphas, draft_tokens=4, cost_ratio=0.05)
    assert np.all(np.diff(mag(r.speedup)) > 0) and np.all(np.diff(mag(r.best_draft_tokens)) >= 0)
    for i, a in enumerate(alphas):
        assert mag(r.speedup)[i] == pytest.approx(mag(speculative(acceptance=float(a), draft_tokens=4,
                                                                  cost_ratio=0.05).speedup))


@pytest.mark.parametrize("call, message", [
    (lambda: speculative(acceptance=1.5), "'acceptance' is a probability in [0, 1]"),
    (lambda: speculative(acceptance=0.5, draft_tokens=0), "'draft_tokens' must be > 0"),
    (lambda: speculative(acceptance=0.5, cost_ratio=-1), "'cost_ratio' must be >= 0"),
])
def test_speculative_bad_input_errors(call, message):
    with pytest.raises(ml.InputError) as err:
        call()
    assert message in str(err.value)


# ---------------------------------------------------------------------------------------------- $9M question
def test_the_nine_million_question_computed_from_the_scenario():
    sc = catalog.scenario("CoT K=8 serving bill")
    assert catalog.scenario("$9 million question") is sc
    r = scenarios.evaluate(sc)
    # What the core computes (Llama-3.1-70B, 8 x H100 per replica, 120 req/s, 256 + 8 x 512 tokens,
    # MLPerf server SLO): 40 GPUs -> 352 GPUs at $30,000 each (304 before the defaults were fitted on published
    # measurements, issue 5: the fitted per-layer overhead slows the large-batch reasoning replicas).
    assert mag(r.gpus) == 40 and mag(r.reasoning_gpus) == 352
    assert mag(r.capex, "USD") == pytest.approx(1.20e6) and mag(r.reasoning_capex, "USD") == pytest.approx(10.56e6)
    assert mag(r.gpu_ratio) == pytest.approx(8.8) and mag(r.capex_ratio) == pytest.approx(8.8)
    # The deck's figures, within 20%: $1.2M -> $9.1M, ~7x latency and ~7x GPUs.
    assert mag(r.capex, "USD") == pytest.approx(1.2e6, rel=0.2)
    assert mag(r.reasoning_capex, "USD") == pytest.approx(9.1e6, rel=0.2)
    assert 6 < mag(r.same_batch_latency / r.latency) < 9  # same batch: K times the tokens, a little slower each
    assert r.bottleneck is Wall.REASONING and r.fits
    assert r.with_reasoning.bottleneck is Wall.BATCHING  # 4,352-token sequences fill the KV cache
    text = r.explain()
    for step in ("latency per request", "in flight (Little)", "352 GPUs", "capital = 40 GPUs x $30,000 = $1.20M",
                 "$10.56M", "binding wall: reasoning"):
        assert step in text, step


def test_one_reasoning_step_costs_nothing_extra():
    r = reasoning(L70, H100, qps="50 req/s", tp=8, prompt_tokens=256, step_tokens=256, steps=1, **SLO)
    assert mag(r.gpu_ratio) == 1.0 and mag(r.latency_ratio) == 1.0 and mag(r.capex_ratio) == 1.0


def test_more_reasoning_steps_need_more_gpus():
    gpus = [mag(reasoning(L70, H100, qps="50 req/s", tp=8, prompt_tokens=256, step_tokens=256, steps=k,
                          **SLO).reasoning_gpus) for k in (1, 2, 4, 8, 16)]
    assert gpus == sorted(gpus) and gpus[0] < gpus[2] < gpus[3] < gpus[4]  # K = 2 can round to K = 1's count


def test_reasoning_result_contract_and_errors():
    r = reasoning(L70, H100, qps="50 req/s", tp=8, prompt_tokens=256, step_tokens=256, steps=4, **SLO)
    again = pickle.loads(pickle.dumps(r))
    assert again.to_dict() == r.to_dict() and again.baseline.to_dict() == r.baseline.to_dict()
    data = json.loads(r.to_json())
    assert data["with_reasoning"]["fields"]["gpus"]["value"] == mag(r.reasoning_gpus)
    assert all(t.check("[currency]") for t in r.terms.values())
    assert mag(r.terms["baseline"] + r.terms["reasoning"], "USD") == pytest.approx(mag(r.reasoning_capex, "USD"))
    infeasible = reasoning(L70, H100, qps="50 req/s", tp=8, step_tokens=256, steps=8, itl="5 ms")
    assert not infeasible.fits and infeasible.verdict.startswith("infeasible: no batch meets the ITL SLO")
    with pytest.raises(ml.InputError, match="reasoning\\(\\): 'steps' must be > 0"):
        reasoning(L70, H100, qps="50 req/s", tp=8, steps=0, **SLO)
    with pytest.raises(ml.InputError, match="reasoning\\(\\): give at least one SLO"):
        reasoning(L70, H100, qps="50 req/s", tp=8)


def test_hardware_without_a_price_gives_gpus_but_no_bill():
    r = reasoning(L70, "A100 SXM 80GB", qps="20 req/s", tp=8, prompt_tokens=256, step_tokens=256, steps=2, **SLO)
    assert math.isnan(mag(r.capex, "USD")) and mag(r.reasoning_gpus) >= mag(r.gpus) > 0
    assert "no price known (pass gpu_price=)" in r.explain() and "$" not in r.verdict
    priced = reasoning(L70, "A100 SXM 80GB", qps="20 req/s", tp=8, prompt_tokens=256, step_tokens=256, steps=2,
                       gpu_price="15000 USD", **SLO)
    assert mag(priced.capex, "USD") == pytest.approx(15000 * mag(priced.gpus))


def test_errata_llama2_70b_at_128k_fits_11_sequences_on_8_h100_not_1():
    # GQA: 80 layers x 2 x 8 x 128 x 2 B = 327,680 B per token -> 42.9 GB per 131,072-token sequence (not
    # ~343 GB with full MHA); 8 x 80 GB minus 138 GB of weights holds 11 such sequences.
    r = paged_kv("Llama-2-70B", H100, tokens=131072, max_context=131072, tp=8)
    assert mag(r.kv_per_token, "B") * 8 * 131072 == pytest.approx(42.95e9, rel=1e-3)
    assert mag(r.static_batch) == 11


def test_requests_in_flight_obey_littles_law():
    # L = lambda x S: the busy batch slots across the fleet; utilisation is L over all slots.
    r = ml.fleet("Llama-2-70B", "H100 SXM", qps="120 req/s", tp=4, latency="20 s")
    assert r.in_flight.to("req").m == pytest.approx((r.qps * r.service).to("req").m)
    assert r.in_flight.m == pytest.approx(r.utilisation.m * r.replicas.m * r.batch.m)
