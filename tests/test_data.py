"""The data walls, checked by hand: pipeline starvation, data gravity, the speed of light."""
import json
import math
import pickle

import numpy as np
import pint
import pytest

import mlsysim_lab as ml
from mlsysim_lab.data import (EGRESS_PRICE, FIBER_GROUP_INDEX, SPEED_OF_LIGHT, STORAGE, crossover_size, pipeline,
                              propagation, round_trip, transfer)
from mlsysim_lab.results import Result, Wall

A100 = ml.hardware("A100 SXM 80GB")


def mag(q, unit):
    return q.to(unit).magnitude


# ---------------------------------------------------------------------------------------- input pipeline
def test_a100_resnet50_fed_from_a_250_mb_s_ssd_is_starved():
    served = ml.serve("ResNet-50", A100, batch=256)
    rate = mag(served.throughput, "sample/s")
    r = pipeline(served, storage="250 MB/s")
    assert mag(r.sample_bytes, "B") == 150_528  # the model's input: one 224x224x3 uint8 image
    supply = 250e6 / 150_528  # 1,661 images/s
    assert mag(r.supply, "sample/s") == pytest.approx(supply)
    assert mag(r.utilization, "") == pytest.approx(supply / rate)
    assert mag(r.utilization, "") < 0.1  # the GPU is busy under a tenth of the time
    assert mag(r.bandwidth_needed, "GB/s") == pytest.approx(rate * 150_528 / 1e9)
    assert r.bottleneck is Wall.INGEST and not r.fits
    assert r.margin == pytest.approx(rate * 150_528 / 250e6)
    need = ml.Q_(rate * 150_528, "B/s").to("GB/s")  # ~4 GB/s at the fitted A100 inference efficiency (issue 5)
    assert "starved" in r.verdict and f"needs {need:.3g~P}, has 250 MB/s" in r.verdict


def test_preprocessing_binds_when_workers_are_too_few():
    # 2,500 images/s; 8 workers at 10 ms each supply 800/s: busy 32%, and 25 workers would be needed.
    r = pipeline("2500 sample/s", storage="NVMe Gen4", sample_bytes="110 kB", workers=8, preprocess="10 ms")
    assert mag(r.utilization, "") == pytest.approx(800 / 2500)
    assert mag(r.workers_needed, "") == 25
    assert mag(r.bandwidth_needed, "MB/s") == pytest.approx(275)
    assert r.bottleneck is Wall.PREPROCESSING
    terms = {k: mag(v, "s") for k, v in r.terms.items()}
    assert terms == pytest.approx(dict(compute=1 / 2500, storage=110e3 / 7.45e9, preprocessing=10e-3 / 8))
    assert r.margin == pytest.approx(terms["preprocessing"] / terms["compute"])
    assert STORAGE["NVMe Gen4"] in r.assumptions
    fed = pipeline("2500 sample/s", storage="NVMe Gen4", sample_bytes="110 kB", workers=32, preprocess="10 ms")
    assert fed.fits and fed.bottleneck is Wall.COMPUTE and mag(fed.utilization, "") == 1.0
    assert mag(fed.throughput, "sample/s") == pytest.approx(2500)


def test_pipeline_limits():
    # Infinite storage bandwidth and no CPU stage: compute-bound, fully busy.
    r = pipeline("1000 sample/s", storage="1e30 B/s", sample_bytes="1 MB")
    assert r.bottleneck is Wall.COMPUTE and mag(r.utilization, "") == 1.0 and r.fits
    assert mag(r.terms["preprocessing"], "s") == 0 and mag(r.workers_needed, "") == 0
    # A very slow disk: utilisation -> supply / demand -> 0.
    slow = pipeline("1000 sample/s", storage="1 kB/s", sample_bytes="1 MB")
    assert mag(slow.utilization, "") == pytest.approx(1e-6)


def test_doubling_the_accelerators_on_the_same_storage_halves_utilisation():
    # Storage sized for 80% at 128 GPUs: 256 GPUs get 40% (the seed's BW_req = N U S / T).
    per_gpu = 100.0
    bw = 0.8 * 128 * per_gpu * 1e6  # B/s for 1 MB samples
    r = pipeline(f"{per_gpu} sample/s", storage=f"{bw} B/s", sample_bytes="1 MB",
                 accelerators=np.array([128, 256]))
    assert np.allclose(r.utilization.magnitude, [0.8, 0.4])


def test_storage_tiers_by_name():
    assert STORAGE["RAM"].value == pytest.approx(25.6e9) and STORAGE["SATA SSD"].value == pytest.approx(560e6)
    values = [STORAGE[k].value for k in ("HDD", "SATA SSD", "NVMe Gen3", "NVMe Gen4", "RAM")]
    assert values == sorted(values)
    for name in ("hdd", "sata-ssd", "NVME gen3", "nvme_gen4", "ram"):
        r = pipeline("100 sample/s", storage=name, sample_bytes="1 MB")
        assert len(r.assumptions) == 1 and r.assumptions[0].source
    utilisation = [mag(pipeline("20000 sample/s", storage=k, sample_bytes="150 kB").utilization, "")
                   for k in ("HDD", "SATA SSD", "NVMe Gen3", "NVMe Gen4", "RAM")]
    assert np.all(np.diff(utilisation) >= 0) and utilisation[0] < 0.1 and utilisation[-1] == 1.0


def test_token_demand_from_a_training_run_needs_bytes_per_token():
    t = ml.train("Llama-2-7B", ml.cluster("H100 SXM", gpus=8), tokens=1e9, global_batch_tokens=2**20, zero=1)
    tps = mag(t.tokens_per_second, "token/s")
    r = pipeline(t, storage="HDD", sample_bytes="4 B")
    assert mag(r.demand, "sample/s") == pytest.approx(tps)
    assert mag(r.bandwidth_needed, "B/s") == pytest.approx(4 * tps)  # text is light: a disk keeps up
    assert r.bottleneck is Wall.COMPUTE and r.fits
    with pytest.raises(ml.InputError, match="pass sample_bytes="):
        pipeline(t, storage="HDD")


def test_pipeline_sweeps_are_monotone_and_equal_stacked_scalars():
    bws = np.array([50e6, 250e6, 1e9, 3.5e9, 25e9])
    r = pipeline("20000 sample/s", storage=bws * ml.Q_("1 B/s"), sample_bytes="150 kB", workers=32,
                 preprocess="2 ms")
    u = r.utilization.magnitude
    assert np.all(np.diff(u) >= 0)
    stacked = [mag(pipeline("20000 sample/s", storage=f"{b} B/s", sample_bytes="150 kB", workers=32,
                            preprocess="2 ms").utilization, "") for b in bws]
    assert np.allclose(u, stacked, rtol=1e-12)
    walls = list(r.bottleneck)
    assert walls[0] is Wall.INGEST and walls[-1] is Wall.PREPROCESSING  # faster storage exposes the CPUs
    workers = np.array([1, 4, 16, 64, 256])
    w = pipeline("20000 sample/s", storage="RAM", sample_bytes="150 kB", workers=workers, preprocess="2 ms")
    assert np.all(np.diff(w.utilization.magnitude) >= 0) and w.bottleneck[-1] is Wall.COMPUTE


# ---------------------------------------------------------------------------------------- data gravity
def test_fifty_terabytes_over_ten_gigabit():
    r = transfer("50 TB", bandwidth="10 Gbit/s", egress_price="0.08 USD/GB", compute_cost="200 USD")
    assert mag(r.time, "s") == pytest.approx(50e12 * 8 / 10e9)  # 40,000 s
    assert mag(r.time, "h") == pytest.approx(11.11, abs=0.01)
    assert mag(r.egress, "USD") == pytest.approx(4000)
    assert mag(r.crossover, "TB") == pytest.approx(2.5)  # between the seed's "below ~1 TB" and "above ~5 TB"
    assert r.bottleneck is Wall.DATA_GRAVITY and r.margin == pytest.approx(20)
    assert r.move == "compute" and "move the compute" in r.verdict
    small = transfer("1 TB", bandwidth="10 Gbit/s", egress_price="0.08 USD/GB", compute_cost="200 USD")
    assert small.move == "data" and small.bottleneck is Wall.COST
    assert mag(small.egress, "USD") == pytest.approx(80)


def test_bits_bytes_and_binary_prefixes_are_not_confused():
    tib = transfer("50 TiB", bandwidth="10 Gbit/s", egress_price="0.08 USD/GB")
    assert mag(tib.time, "s") == pytest.approx(50 * 2**40 * 8 / 10e9)  # 43,980 s: 10% more than 50 TB
    gbyte = transfer("50 TB", bandwidth="10 GB/s", egress_price="0.08 USD/GB")
    assert mag(gbyte.time, "s") == pytest.approx(5000)  # 8x faster than 10 Gbit/s
    per_gib = transfer("1 GiB", bandwidth="1 GB/s", egress_price="0.08 USD/GB")
    assert mag(per_gib.egress, "USD") == pytest.approx(0.08 * 2**30 / 1e9)


def test_default_egress_price_and_deadline():
    r = transfer("50 TB", bandwidth="10 Gbit/s")
    assert mag(r.egress, "USD") == pytest.approx(50e3 * EGRESS_PRICE.value)
    assert EGRESS_PRICE in r.assumptions and r.move is None
    late = transfer("50 TB", bandwidth="10 Gbit/s", deadline="10 h", compute_cost="1e6 USD")
    assert not late.fits and late.bottleneck is Wall.DATA_GRAVITY
    assert late.margin == pytest.approx(40000 / 36000)
    assert "misses the deadline: needs 11.1 h, has 10 h" in late.verdict
    on_time = transfer("50 TB", bandwidth="100 Gbit/s", deadline="10 h")
    assert on_time.fits


def test_transfer_limits_and_monotone_sweeps():
    sizes = np.array([0.1, 1, 10, 100]) * 1e12
    r = transfer(sizes * ml.Q_("1 B"), bandwidth="10 Gbit/s", egress_price="0.08 USD/GB", compute_cost="200 USD")
    assert np.allclose(r.time.magnitude, sizes / 1.25e9) and np.allclose(r.egress.magnitude, sizes * 0.08e-9)
    assert np.all(r.crossover.magnitude == pytest.approx(2.5e12))
    assert list(r.move) == ["data", "data", "compute", "compute"]
    assert [w.value for w in r.bottleneck] == ["cost", "cost", "data gravity", "data gravity"]
    stacked = [mag(transfer(f"{s} B", bandwidth="10 Gbit/s", egress_price="0.08 USD/GB").egress, "USD")
               for s in sizes]
    assert np.allclose(r.egress.magnitude, stacked)
    free = transfer("50 TB", bandwidth="1e30 B/s", egress_price="0 USD/GB")
    assert mag(free.time, "s") == pytest.approx(0, abs=1e-12) and mag(free.egress, "USD") == 0
    assert math.isinf(mag(transfer("1 TB", bandwidth="1 GB/s", egress_price="0 USD/GB", compute_cost="1 USD")
                          .crossover, "B"))  # free egress: moving the data always wins
    assert crossover_size(200.0, 0.08e-9) == pytest.approx(2.5e12)


# ---------------------------------------------------------------------------------------- speed of light
def test_three_thousand_km_is_about_30_ms_round_trip():
    r = propagation("3000 km")
    speed = SPEED_OF_LIGHT / 1.4682
    assert mag(r.speed, "km/s") == pytest.approx(204_190, abs=1)  # about 2/3 c
    assert mag(r.round_trip, "ms") == pytest.approx(2 * 3e6 / speed * 1e3)  # 29.4 ms
    assert mag(r.round_trip, "ms") == pytest.approx(30, rel=0.025)
    assert r.bottleneck is Wall.LIGHT and FIBER_GROUP_INDEX in r.assumptions
    textbook = propagation("3000 km", refractive_index=SPEED_OF_LIGHT / 2e8)  # the seed's 200,000 km/s
    assert mag(textbook.round_trip, "ms") == pytest.approx(30)


def test_ten_ms_sla_at_1500_km_is_infeasible():
    r = propagation("1500 km", sla="10 ms")
    assert mag(r.round_trip, "ms") == pytest.approx(14.69, abs=0.01)  # "15 ms" of propagation
    assert not r.fits and r.bottleneck is Wall.LIGHT
    assert r.margin == pytest.approx(mag(r.round_trip, "ms") / 10)
    assert mag(r.max_distance, "km") == pytest.approx(1021, abs=1)  # the seed's "max feasible ~1,000 km"
    assert "infeasible at any processing speed" in r.verdict
    # Even with slow processing dominating, light alone breaks the SLA, so light is named.
    slow = propagation("1500 km", sla="10 ms", processing="20 ms")
    assert slow.bottleneck is Wall.LIGHT and mag(slow.max_distance, "km") == 0


def test_processing_can_break_an_sla_light_would_meet():
    r = propagation("500 km", sla="10 ms", processing="6 ms")
    rtt = 2 * 500e3 * 1.4682 / SPEED_OF_LIGHT
    assert mag(r.latency, "s") == pytest.approx(rtt + 6e-3)
    assert not r.fits and r.bottleneck is Wall.COMPUTE and "does not fit" in r.verdict
    assert mag(r.max_distance, "km") == pytest.approx(4e-3 * SPEED_OF_LIGHT / 1.4682 / 2 / 1e3)
    ok = propagation("500 km", sla="10 ms", processing="2 ms")
    assert ok.fits and "fits" in ok.verdict


def test_light_limits():
    zero = propagation("0 km", processing="1 ms")
    assert mag(zero.round_trip, "s") == 0 and zero.bottleneck is Wall.COMPUTE  # zero distance: no propagation
    vacuum = propagation("1000 km", refractive_index=1.0)
    assert mag(vacuum.round_trip, "ms") == pytest.approx(2e6 / SPEED_OF_LIGHT * 1e3)  # 6.67 ms
    assert round_trip(1e6, 1.0) < round_trip(1e6, 1.4682)


def test_light_sweeps_are_monotone_and_equal_stacked_scalars():
    d = np.array([0, 100, 1000, 3000, 10000]) * 1e3
    r = propagation(d * ml.Q_("1 m"), sla="50 ms", processing="5 ms")
    assert np.all(np.diff(r.latency.magnitude) > 0)
    assert list(r.fits) == [True, True, True, True, False]  # 3,000 km: 29.4 + 5 ms; 10,000 km: 103 ms
    stacked = [mag(propagation(f"{x} m", sla="50 ms", processing="5 ms").latency, "s") for x in d]
    assert np.allclose(r.latency.to("s").magnitude, stacked, rtol=1e-12)
    proc = np.array([0.0, 10, 20, 40]) * 1e-3
    reach = propagation("100 km", sla="50 ms", processing=proc * ml.Q_("1 s")).max_distance.magnitude
    assert np.all(np.diff(reach) < 0)


# ---------------------------------------------------------------------------------------- contract and errors
SOLVERS = {
    "pipeline": lambda: pipeline("2500 sample/s", storage="SATA SSD", sample_bytes="110 kB", workers=8,
                                 preprocess="5 ms"),
    "transfer": lambda: transfer("10 TB", bandwidth="10 Gbit/s", compute_cost="500 USD"),
    "propagation": lambda: propagation("2000 km", sla="30 ms", processing="5 ms"),
}


@pytest.mark.parametrize("name", list(SOLVERS))
def test_results_honour_the_common_contract(name):
    r = SOLVERS[name]()
    assert isinstance(r, Result) and isinstance(r.bottleneck, Wall)
    for field in r.fields:
        assert isinstance(getattr(r, field), pint.Quantity), field
    assert str(r.bottleneck) in r.explain() and r.verdict
    data = json.loads(r.to_json())
    assert data["bottleneck"] == r.bottleneck.value
    assert pickle.loads(pickle.dumps(r)).to_dict() == r.to_dict()


@pytest.mark.parametrize("call, message", [
    (lambda: pipeline(2500, storage="HDD", sample_bytes="1 MB"), "'demand' got 2500 (a bare number)"),
    (lambda: pipeline("2 GB/s", storage="HDD", sample_bytes="1 MB"),
     "'demand' got 2 GB/s ([information] / [time]); expected [count] / [time] or [token] / [time]"),
    (lambda: pipeline("100 sample/s", storage="SSD", sample_bytes="1 MB"), "unknown storage tier 'SSD'"),
    (lambda: pipeline("100 sample/s", storage="1 GB", sample_bytes="1 MB"), "'storage' got 1 GB"),
    (lambda: pipeline("100 sample/s", storage="HDD", sample_bytes="1 MB/s"), "'sample_bytes' got"),
    (lambda: pipeline("100 sample/s", storage="HDD"), "pass sample_bytes="),
    (lambda: pipeline("100 sample/s", storage="HDD", sample_bytes="1 MB", workers=0), "'workers' must be > 0"),
    (lambda: pipeline("100 sample/s", storage="HDD", sample_bytes="1 MB", preprocess="-1 ms"), "'preprocess'"),
    (lambda: pipeline("-5 sample/s", storage="HDD", sample_bytes="1 MB"), "'demand' must be > 0"),
    (lambda: pipeline(ml.memory("Llama-2-7B", "H100 SXM"), storage="HDD", sample_bytes="1 MB"), "'demand' must"),
    (lambda: transfer(50e12, bandwidth="10 Gbit/s"), "'size' got 50000000000000.0 (a bare number)"),
    (lambda: transfer("50 TB", bandwidth="10 Gbps"), "'bandwidth' got '10 Gbps'"),
    (lambda: transfer("50 TB", bandwidth="10 Gbit/s", egress_price="0.08 USD"), "'egress_price' got 0.08 USD"),
    (lambda: transfer("50 TB", bandwidth="10 Gbit/s", compute_cost="200 GB"), "'compute_cost' got 200 GB"),
    (lambda: transfer("0 TB", bandwidth="10 Gbit/s"), "'size' must be > 0"),
    (lambda: propagation("5 ms"), "'distance' got 5 ms"),
    (lambda: propagation("-1 km"), "'distance' must be >= 0"),
    (lambda: propagation("1 km", sla=10), "'sla' got 10 (a bare number)"),
    (lambda: propagation("1 km", refractive_index=0.5), "'refractive_index' must be >= 1"),
    (lambda: propagation("1 km", refractive_index=float("nan")), "'refractive_index' must be finite"),
])
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ml.InputError) as err:
        call()
    assert message in str(err.value)
