"""The reliability and checkpoint walls, checked by hand: cluster MTBF, p^N, Young-Daly, goodput."""
import json
import math
import pickle

import numpy as np
import pint
import pytest

import mlsysim_lab as ml
from mlsysim_lab.reliability import (CHECKPOINT_BYTES_PER_PARAM, GPU_MTBF, RESTART, all_up, checkpoint,
                                     goodput, goodput_fraction, mtbf, young_daly)
from mlsysim_lab.results import Result, Wall

HOUR = 3600.0


def mag(q, unit):
    return q.to(unit).magnitude


def daly_exact_goodput(delta, tau, m, restart):
    """Daly 2006's exponential-failure model: T_wall = M e^(R/M) (e^((tau+delta)/M) - 1) T_work / tau."""
    return tau / (m * math.exp(restart / m) * math.expm1((tau + delta) / m))


# ---------------------------------------------------------------------------------------- cluster MTBF
def test_default_gpu_mtbf_is_derived_from_llama3():
    # 419 unexpected interruptions in 54 days on 16,384 H100: 16,384 x 1,296 h / 419 = 50,677 h per GPU.
    assert GPU_MTBF.value / HOUR == pytest.approx(16384 * 54 * 24 / 419)
    assert GPU_MTBF.value / HOUR == pytest.approx(50_677, abs=1)
    r = mtbf(16384)
    assert mag(r.mtbf, "h") == pytest.approx(54 * 24 / 419)  # 3.09 h: the job's own interruption interval
    assert mag(r.failures, "") == pytest.approx(419 / 54)  # 7.76 per day
    assert GPU_MTBF in r.assumptions and "Llama 3" in GPU_MTBF.source


@pytest.mark.parametrize("gpus, each, hours", [
    (10_000, "10000 h", 1.0),  # verified seed: 10,000 GPUs x 10,000 h -> 1 h
    (25_000, "50000 h", 2.0),  # errata: the plan said 4.4 h
    (10_000, "50000 h", 5.0),
    (16_000, "50000 h", 3.125),
])
def test_cluster_mtbf_is_per_part_mtbf_over_count(gpus, each, hours):
    r = mtbf(gpus, gpu_mtbf=each, period="30 day")
    assert mag(r.mtbf, "h") == pytest.approx(hours)
    assert mag(r.failures, "") == pytest.approx(720 / hours)  # 10,000 x 50,000 h: 144 failures in 30 days
    assert r.bottleneck is Wall.RELIABILITY and r.assumptions == ()


def test_cluster_mtbf_adds_failure_rates_of_every_part():
    r = mtbf(1000, gpu_mtbf="50000 h", hosts=125, host_mtbf="100000 h", nics=1000, nic_mtbf="1e6 h",
             switches=10, switch_mtbf="1e5 h", period="1000 h")
    rate = 1000 / 5e4 + 125 / 1e5 + 1000 / 1e6 + 10 / 1e5  # per hour
    assert mag(r.mtbf, "h") == pytest.approx(1 / rate)  # 44.7 h
    terms = {k: v.magnitude for k, v in r.terms.items()}
    assert terms == pytest.approx(dict(gpus=20.0, hosts=1.25, nics=1.0, switches=0.1))
    assert sum(terms.values()) == pytest.approx(mag(r.failures, ""))
    assert r.margin == pytest.approx(20 / 1.25)  # GPUs fail 16x more often than hosts


def test_mtbf_limits_and_survival():
    one = mtbf(1, gpu_mtbf="1000 h", period="1000 h")
    assert mag(one.mtbf, "h") == pytest.approx(1000)
    assert mag(one.survival, "") == pytest.approx(math.exp(-1))  # one MTBF: P(no failure) = 1/e
    assert math.isinf(one.margin)
    tiny = mtbf(8, gpu_mtbf="1e12 h", period="1 day")
    assert mag(tiny.survival, "") == pytest.approx(1.0)  # MTBF -> infinity: nothing fails
    cluster = ml.cluster("H100 SXM", gpus=64)
    assert mag(mtbf(cluster).mtbf, "s") == pytest.approx(GPU_MTBF.value / 64)


def test_mtbf_sweep_is_monotone_and_equals_stacked_scalars():
    gpus = np.array([8, 64, 512, 4096, 32768])
    r = mtbf(gpus, gpu_mtbf="50000 h")
    assert r.mtbf.magnitude.shape == (5,)
    assert np.all(np.diff(r.mtbf.magnitude) < 0) and np.all(np.diff(r.survival.magnitude) < 0)
    stacked = [mag(mtbf(int(n), gpu_mtbf="50000 h").mtbf, "s") for n in gpus]
    assert np.allclose(r.mtbf.to("s").magnitude, stacked, rtol=1e-12)


# ---------------------------------------------------------------------------------------- p^N
def test_all_components_up_is_p_to_the_n():
    r = all_up(1000, up=0.999)
    assert mag(r.probability, "") == pytest.approx(0.999 ** 1000)
    assert round(mag(r.probability, ""), 3) == 0.368  # verified seed
    assert mag(r.expected_down, "") == pytest.approx(1.0)
    sdc = all_up(10_000, up=1 - 1e-4)  # verified seed: 1 - (1 - 1e-4)^10,000 = 0.632
    assert 1 - mag(sdc.probability, "") == pytest.approx(0.632, abs=5e-4)
    assert r.bottleneck is Wall.RELIABILITY and "0.368" in r.verdict


def test_all_up_from_mtbf_and_period_matches_the_cluster_survival():
    r = all_up(1000, mtbf="50000 h", period="24 h")
    assert mag(r.up, "") == pytest.approx(math.exp(-24 / 50000))
    assert mag(r.probability, "") == pytest.approx(mag(mtbf(1000, gpu_mtbf="50000 h").survival, ""))
    assert mag(all_up(1, up=0.9).probability, "") == pytest.approx(0.9)  # one part: its own p
    assert mag(all_up(500, up=1.0).probability, "") == 1.0  # perfect parts never fail


def test_all_up_decreases_with_n_and_matches_stacked_scalars():
    n = np.array([1, 10, 100, 1000, 10000])
    r = all_up(n, up=0.999)
    assert np.all(np.diff(r.probability.magnitude) < 0)
    assert np.allclose(r.probability.magnitude, [mag(all_up(int(k), up=0.999).probability, "") for k in n])


# ---------------------------------------------------------------------------------------- Young-Daly
def test_young_daly_five_hour_mtbf_two_minute_write_is_34_6_min_not_27():
    r = checkpoint(size="1 TB", bandwidth=f"{1e12 / 120} B/s", mtbf="5 h")
    assert mag(r.write_time, "s") == pytest.approx(120)
    assert mag(r.interval, "s") == pytest.approx(math.sqrt(2 * 120 * 18000))  # 2,078 s
    assert mag(r.interval, "min") == pytest.approx(34.64, abs=0.01)
    assert abs(mag(r.interval, "min") - 27) > 7  # errata: the plan's 27 min is wrong
    assert young_daly(120.0, 18000.0) == pytest.approx(2078.46, abs=0.01)


def test_young_daly_16000_gpus_at_50000_h():
    # 50,000 h / 16,000 = 3.125 h = 11,250 s; sqrt(2 x 120 x 11,250) = 1,643 s = 27.4 min. The brief's
    # "~1,610 s" is what a rounded 3.0 h MTBF gives: sqrt(2 x 120 x 10,800) = 1,610 s.
    r = checkpoint(size="240 GB", bandwidth="2 GB/s", gpus=16_000, mtbf=mtbf(16_000, gpu_mtbf="50000 h"))
    assert mag(r.mtbf, "h") == pytest.approx(3.125)
    assert mag(r.interval, "s") == pytest.approx(1643.2, abs=0.1)
    rounded = checkpoint(size="240 GB", bandwidth="2 GB/s", mtbf="3 h")
    assert mag(rounded.interval, "s") == pytest.approx(1610, abs=0.5)


def test_checkpoint_size_is_weights_plus_fp32_adam_state():
    # Verified seed: 175B x 14 B/param = 2.45 TB; at 1 GB/s 2,450 s = 40.8 min.
    assert CHECKPOINT_BYTES_PER_PARAM == {"mixed": 14.0, "fp32": 12.0}
    r = checkpoint(params="175e9 param", bandwidth="1 GB/s", mtbf="5 h")
    assert mag(r.size, "TB") == pytest.approx(2.45)
    assert mag(r.write_time, "min") == pytest.approx(40.83, abs=0.01)
    assert mag(r.bytes_per_param, "B/param") == 14
    gpt3 = checkpoint("GPT-3", bandwidth="1 GB/s", mtbf="5 h")
    assert mag(gpt3.size, "TB") == pytest.approx(2.45)
    fp32 = checkpoint(params=175e9, bandwidth="1 GB/s", mtbf="5 h", precision="fp32")
    assert mag(fp32.size, "TB") == pytest.approx(175e9 * 12 / 1e12)
    custom = checkpoint(params=1e9, bandwidth="1 GB/s", mtbf="5 h", bytes_per_param=2)
    assert mag(custom.size, "GB") == pytest.approx(2)


def test_at_the_optimum_checkpoint_tax_equals_rework_tax():
    r = checkpoint(size="240 GB", bandwidth="2 GB/s", mtbf="5 h", restart="0 s")
    terms = {k: mag(v, "s") for k, v in r.terms.items()}
    assert terms["checkpoint"] == pytest.approx(terms["rework"])  # delta = tau^2 / (2 MTBF)
    assert terms["restart"] == 0
    assert mag(r.goodput, "") == pytest.approx(1 - math.sqrt(2 * 120 / 18000))
    assert r.margin == pytest.approx(1.0)
    with_restart = checkpoint(size="240 GB", bandwidth="2 GB/s", mtbf="5 h")  # default R = write time
    assert RESTART in with_restart.assumptions and mag(with_restart.restart, "s") == pytest.approx(120)
    assert with_restart.bottleneck is Wall.RELIABILITY
    assert with_restart.margin == pytest.approx((120 + 2078.46 * 120 / 18000) / 120, rel=1e-4)


def test_young_interval_maximises_first_order_goodput_in_a_sweep():
    taus = np.linspace(300, 6000, 2000)
    r = checkpoint(size="240 GB", bandwidth="2 GB/s", mtbf="5 h", interval=taus * ml.Q_("1 s"), restart="60 s")
    best = taus[np.argmax(r.goodput.magnitude)]
    assert best == pytest.approx(math.sqrt(2 * 120 * 18000), rel=2e-3)
    short = r.bottleneck[0], r.bottleneck[-1]
    assert short == (Wall.CHECKPOINT, Wall.RELIABILITY)  # too-frequent writes vs too much rework


def test_first_order_goodput_agrees_with_dalys_exact_model_in_its_range():
    # A grid of write times and restarts (MTBF = 1) at Young's interval: within 0.005 of the exact model
    # while tau + delta + R <= MTBF/10, within 0.03 up to MTBF/4 (the bounds the module docstring states).
    delta, restart = np.meshgrid(np.geomspace(1e-7, 0.05, 60), np.linspace(0, 0.25, 60))
    tau = young_daly(delta, 1.0)
    reach = tau + delta + restart
    exact = tau / (np.exp(restart) * np.expm1(tau + delta))
    error = np.abs(goodput_fraction(delta, tau, 1.0, restart) - exact)
    assert error[reach <= 0.1].max() < 0.005
    assert error[reach <= 0.25].max() < 0.03
    assert error[reach <= 0.5].max() > 0.05  # why results warn beyond MTBF/4
    for d, m, r in [(120, 18000, 120), (60, 50000, 300)]:  # the scalar form, for readers
        t = young_daly(d, m)
        assert goodput_fraction(d, t, m, r) == pytest.approx(daly_exact_goodput(d, t, m, r), abs=0.01)


def test_checkpoint_warns_outside_the_first_order_range():
    r = checkpoint(params="175e9 param", bandwidth="1 GB/s", mtbf="5 h")  # 41 min write on a 5 h MTBF
    assert "beyond the first-order model's range" in r.verdict and "x MTBF" in r.verdict
    short = goodput("1 day", write_time="2 min", mtbf="1000 h", interval="10 min", restart="0 s")
    assert "delta << tau" in short.verdict  # a write taking a fifth of the interval
    fine = checkpoint(size="1 TB", bandwidth=f"{1e12 / 120} B/s", mtbf="5 h")  # the 34.6 min seed case
    assert "note" not in fine.verdict


# ---------------------------------------------------------------------------------------- goodput
def test_goodput_of_a_training_run_by_hand():
    t = ml.train("Llama-2-7B", ml.cluster("H100 SXM", gpus=64), tokens=1e11, global_batch_tokens=2**22, zero=1)
    g = goodput(t, write_time="2 min")
    ideal = mag(t.time_to_train, "s")
    m = GPU_MTBF.value / 64
    tau = math.sqrt(2 * 120 * m)
    u = 1 - 120 / tau - (tau / 2 + 120) / m
    assert mag(g.goodput, "") == pytest.approx(u)
    assert mag(g.time_to_train, "s") == pytest.approx(ideal / u)
    assert mag(g.ideal_time, "s") == pytest.approx(ideal)
    assert mag(g.failures, "") == pytest.approx(ideal / u / m)
    assert mag(g.gpus, "") == 64
    lost = sum(mag(v, "s") for v in g.terms.values())
    assert lost == pytest.approx(ideal / u - ideal)  # terms add up to the lost wall-clock time
    assert g.bottleneck is Wall.RELIABILITY and g.fits


def test_goodput_from_a_time_and_a_checkpoint_result():
    ck = checkpoint(size="1 TB", bandwidth="10 GB/s", gpus=16384)
    g = goodput("54 day", write_time=ck, gpus=16384, restart="10 min")
    m = GPU_MTBF.value / 16384
    tau = math.sqrt(2 * 100 * m)
    u = 1 - 100 / tau - (tau / 2 + 600) / m
    assert mag(g.goodput, "") == pytest.approx(u)
    assert mag(g.time_to_train, "day") == pytest.approx(54 / u)
    same = goodput("54 day", write_time="100 s", mtbf=mtbf(16384), restart="10 min")
    assert mag(same.goodput, "") == pytest.approx(u)


def test_goodput_limits():
    # MTBF -> infinity: only the checkpoint tax is left, 1 - delta / tau.
    fixed = goodput("10 day", write_time="1 min", mtbf="1e12 h", interval="1 h", restart="0 s")
    assert mag(fixed.goodput, "") == pytest.approx(1 - 60 / 3600, rel=1e-9)
    ideal = goodput("10 day", write_time="1 min", mtbf="1e12 h", restart="0 s")
    assert mag(ideal.goodput, "") == pytest.approx(1.0, abs=1e-4)  # Young stretches tau: goodput -> 1
    assert mag(ideal.time_to_train, "day") == pytest.approx(10, rel=1e-4)
    # Writes as long as the MTBF: no progress is possible; a verdict, not an exception.
    stuck = goodput("10 day", write_time="3 h", mtbf="2 h")
    assert not stuck.fits and math.isinf(mag(stuck.time_to_train, "s"))
    assert mag(stuck.goodput, "") == 0 and "never finishes" in stuck.verdict


def test_checkpoint_bound_when_writes_dominate():
    g = goodput("10 day", write_time="5 min", mtbf="100 h", interval="20 min", restart="0 s")
    assert g.bottleneck is Wall.CHECKPOINT
    ck, rework = 300 / 1200, 1200 / (2 * 100 * 3600)
    assert g.margin == pytest.approx(ck / rework)
    assert "checkpointing costs most" in g.verdict


def test_goodput_sweeps_are_monotone_and_equal_stacked_scalars():
    gpus = np.array([1024, 4096, 16384, 65536])
    r = goodput("30 day", write_time="2 min", gpus=gpus)
    u = r.goodput.magnitude
    assert u.shape == (4,) and np.all(np.diff(u) < 0) and np.all(np.diff(r.time_to_train.magnitude) > 0)
    stacked = [mag(goodput("30 day", write_time="2 min", gpus=int(n)).goodput, "") for n in gpus]
    assert np.allclose(u, stacked, rtol=1e-12)
    writes = np.array([10.0, 60, 300, 1200])
    w = goodput("30 day", write_time=writes * ml.Q_("1 s"), gpus=16384)
    assert np.all(np.diff(w.goodput.magnitude) < 0)
    bws = np.array([1.0, 10, 100])
    ck = checkpoint(params=70e9, bandwidth=bws * ml.Q_("1 GB/s"), gpus=4096)
    assert np.all(np.diff(ck.goodput.magnitude) > 0)
    assert np.allclose(ck.goodput.magnitude,
                       [mag(checkpoint(params=70e9, bandwidth=f"{b} GB/s", gpus=4096).goodput, "") for b in bws])


# ---------------------------------------------------------------------------------------- contract and errors
SOLVERS = {
    "mtbf": lambda: mtbf(4096, period="7 day"),
    "all_up": lambda: all_up(1000, up=0.999),
    "checkpoint": lambda: checkpoint(params=70e9, bandwidth="5 GB/s", gpus=1024),
    "goodput": lambda: goodput("30 day", write_time="2 min", gpus=1024),
}


@pytest.mark.parametrize("name", list(SOLVERS))
def test_results_honour_the_common_contract(name):
    r = SOLVERS[name]()
    assert isinstance(r, Result) and isinstance(r.bottleneck, Wall)
    assert r.bottleneck in (Wall.RELIABILITY, Wall.CHECKPOINT)
    for field in r.fields:
        assert isinstance(getattr(r, field), pint.Quantity), field
    assert str(r.bottleneck) in r.explain() and r.verdict
    data = json.loads(r.to_json())
    assert data["bottleneck"] == r.bottleneck.value
    assert pickle.loads(pickle.dumps(r)).to_dict() == r.to_dict()


@pytest.mark.parametrize("call, message", [
    (lambda: mtbf(0), "'gpus' must be > 0"),
    (lambda: mtbf(8, gpu_mtbf=50000), "'gpu_mtbf' got 50000 (a bare number)"),
    (lambda: mtbf(8, gpu_mtbf="5 GB"), "expected [time]"),
    (lambda: mtbf(8, hosts=1), "hosts=1 needs host_mtbf="),
    (lambda: mtbf(8, hosts=-1, host_mtbf="1 h"), "'hosts' must be >= 0"),
    (lambda: mtbf(ml.serve("Llama-2-7B", "H100 SXM")), "must be a count, a Cluster or a TrainResult"),
    (lambda: all_up(10, up=1.5), "'up' is a probability"),
    (lambda: all_up(10), "give either up="),
    (lambda: all_up(10, mtbf="1 h"), "needs period="),
    (lambda: all_up(10, up=0.9, period="1 h"), "period= goes with mtbf="),
    (lambda: checkpoint(bandwidth="1 GB/s", mtbf="1 h"), "give exactly one of model=, params= or size="),
    (lambda: checkpoint("GPT-3", size="1 TB", bandwidth="1 GB/s", mtbf="1 h"), "exactly one of"),
    (lambda: checkpoint(params=1e9, bandwidth="1 GB", mtbf="1 h"), "'bandwidth' got 1 GB"),
    (lambda: checkpoint(params=1e9, bandwidth="1 GB/s", mtbf="1 h", precision="fp8"), "'precision' must be"),
    (lambda: checkpoint(params=1e9, bandwidth="1 GB/s"), "give mtbf="),
    (lambda: checkpoint(params=1e9, bandwidth="1 GB/s", mtbf="1 h", interval="-5 min"), "'interval' must be > 0"),
    (lambda: checkpoint("GPT-33", bandwidth="1 GB/s", mtbf="1 h"), "did you mean"),
    (lambda: goodput(ml.serve("Llama-2-7B", "H100 SXM"), write_time="1 min"), "'run' must be a TrainResult"),
    (lambda: goodput("1 day", write_time="1 min"), "give mtbf="),
    (lambda: goodput("1 day", write_time="0 s", mtbf="1 h"), "'write_time' must be > 0"),
    (lambda: goodput("1 day", write_time="1 min", mtbf="1 h", restart="-1 s"), "'restart' must be >= 0"),
    (lambda: goodput(float("nan"), write_time="1 min", mtbf="1 h"), "'run' got nan"),
])
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ml.InputError) as err:
        call()
    assert message in str(err.value)
