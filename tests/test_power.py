"""The power wall: thermal throttling, energy per inference, battery life."""
import json
import math
import pickle

import numpy as np
import pint
import pytest

import mlsysim_lab as ml
from mlsysim_lab.power import ENVELOPE, THERMAL_TIME_CONSTANT, battery, energy, throttle, throttle_curve
from mlsysim_lab.results import Result, Wall


def mag(q, unit):
    return q.to(unit).magnitude


# ---------------------------------------------------------------------------------------- throttle
def test_phone_burst_at_4x_its_envelope_by_hand():
    # 12 W burst, 3 W sustainable, tau = 100 s: t_k = 100 ln(12 / 9) = 28.77 s; then 3/12 = 25% of peak.
    r = throttle(power="12 W", envelope="3 W", time="90 s", latency=ml.Q_(1 / 60, "s"))
    assert mag(r.time_to_throttle, "s") == pytest.approx(100 * math.log(4 / 3))
    assert r.sustained_fraction.magnitude == pytest.approx(0.25)
    # The reference lab's phone: 60 FPS for ~30 s, 15 FPS by 90 s (floor 25%, knee ~30 s) is reproduced.
    assert mag(r.time_to_throttle, "s") == pytest.approx(30, rel=0.05)
    assert mag(r.peak_rate, "1/s") == pytest.approx(60) and mag(r.rate, "1/s") == pytest.approx(15)
    knee = 100 * math.log(4 / 3)
    assert r.average_fraction.magnitude == pytest.approx((knee + 0.25 * (90 - knee)) / 90)
    assert not r.fits and r.bottleneck is Wall.POWER and r.margin == pytest.approx(4.0)
    assert "thermal throttle: draws 12 W in a 3 W envelope" in r.verdict and "(15/s of 60/s)" in r.verdict
    assert THERMAL_TIME_CONSTANT in r.assumptions


def test_throttle_limits():
    within = throttle(power="2 W", envelope="3 W", time="1 h")
    assert within.fits and math.isinf(mag(within.time_to_throttle, "s")) and within.fraction.magnitude == 1.0
    assert "never throttles" in within.verdict
    at_once = throttle(power="3000 W", envelope="3 W")
    assert mag(at_once.time_to_throttle, "s") == pytest.approx(100 * math.log(3000 / 2997))  # ~0.1 s
    assert at_once.fraction.magnitude == pytest.approx(1e-3)  # default time: the sustained state
    before = throttle(power="12 W", envelope="3 W", time="10 s")
    assert before.fraction.magnitude == 1.0 and before.average_fraction.magnitude == 1.0


def test_throttle_monotonicity_sweeps():
    t = ml.Q_(np.array([0.0, 10, 30, 60, 600]), "s")
    r = throttle(power="12 W", envelope="3 W", time=t)
    assert np.all(np.diff(r.fraction.magnitude) <= 0) and np.all(np.diff(r.average_fraction.magnitude) <= 0)
    p = ml.Q_(np.array([4.0, 6.0, 12.0, 48.0]), "W")
    knee = throttle(power=p, envelope="3 W").time_to_throttle.magnitude
    assert np.all(np.diff(knee) < 0)  # hotter bursts throttle sooner
    fraction, average, knee_f, sustained = throttle_curve(np.inf, 12.0, 3.0, 100.0, 1.0)
    assert (fraction, average, sustained) == (0.25, 0.25, 0.25)


def test_dvfs_exponent_keeps_more_speed_than_power():
    r = throttle(power="12 W", envelope="3 W", exponent=1 / 3)
    assert r.sustained_fraction.magnitude == pytest.approx(0.25 ** (1 / 3))  # 63% of peak at 25% of power


def test_device_tdp_against_a_power_envelope():
    # Jetson Orin NX: 25 W TDP in the 25 W edge envelope: never throttles.
    edge = throttle("Jetson Orin NX 16GB")
    assert edge.fits and mag(edge.envelope, "W") == ENVELOPE["edge"].value
    # An H100 (700 W) in a 300 W envelope throttles after 100 ln(700/400) = 56 s to 3/7 of peak.
    h = throttle("H100 SXM", envelope="300 W", time="10 min")
    assert mag(h.time_to_throttle, "s") == pytest.approx(100 * math.log(700 / 400))
    assert h.sustained_fraction.magnitude == pytest.approx(3 / 7)
    assert mag(throttle(power="5 W", envelope="mobile").envelope, "W") == 5.0


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(envelope="3 W"), ml.InputError, "no hardware given; pass power="),
    (dict(power="5 W"), ml.InputError, "give envelope="),
    (dict(hardware="Apple A17 Pro", envelope="5 W"), ml.InputError, "Apple A17 Pro has no TDP"),
    (dict(power="5 W", envelope="space"), ml.UnitError, "'envelope' got 'space'"),
    (dict(power="-5 W", envelope="3 W"), ml.InputError, "'power' must be > 0"),
    (dict(power="5 W", envelope="3 W", exponent=2), ml.InputError, "'exponent' must be in (0, 1]"),
    (dict(power="5 J", envelope="3 W"), ml.UnitError, "'power' got 5 J"),
    (dict(power="5 W", envelope="3 W", time=5), ml.UnitError, "a bare number"),
])
def test_throttle_bad_input(kwargs, error, message):
    with pytest.raises(error) as err:
        throttle(**kwargs)
    assert message in str(err.value)


# ---------------------------------------------------------------------------------------- energy
def test_radio_energy_by_hand():
    # V1-02 D: BLE at 100 mW for 128 ms = 12.8 mJ.
    r = energy(power="100 mW", latency="128 ms")
    assert mag(r.energy, "mJ") == pytest.approx(12.8)
    assert r.verdict == "12.8 mJ = 100 mW x 128 ms"


def test_energy_defaults_to_tdp_and_is_linear():
    r = energy("H100 SXM", latency="10 ms")
    assert mag(r.energy, "J") == pytest.approx(7.0)
    sweep = energy(power="1 W", latency=ml.Q_(np.array([1.0, 2.0, 4.0]), "s"))
    assert np.allclose(sweep.energy.magnitude, [1.0, 2.0, 4.0])


def test_energy_bad_input():
    with pytest.raises(ml.UnitError, match="'latency' got 5"):
        energy(power="1 W", latency=5)
    with pytest.raises(ml.InputError, match="Snapdragon 8 Gen 3 has no TDP"):
        energy("Snapdragon 8 Gen 3", latency="1 ms")


# ---------------------------------------------------------------------------------------- battery
def test_thirty_seconds_at_3_w_is_0_17_percent_of_15_wh():
    # Errata V2-11: 90 J / 54,000 J = 0.17%, not the plan's 15%.
    r = battery("15 Wh", power="3 W", time="30 s")
    assert r.used.magnitude == pytest.approx(90 / 54000)
    assert mag(r.life, "h") == pytest.approx(5.0)
    assert "uses 0.167% of 54 kJ" in r.verdict and r.fits


def test_coin_cell_duty_cycle_by_hand():
    # 250 mAh x 3 V = 0.75 Wh = 2700 J; 10 mW for 1% of the time + 5 uW asleep = 104.95 uW -> 297.8 days.
    r = battery("0.75 Wh", power="10 mW", duty=0.01, idle_power="5 uW")
    assert mag(r.capacity, "J") == pytest.approx(2700)
    assert mag(r.average_power, "uW") == pytest.approx(104.95)
    assert mag(r.life, "day") == pytest.approx(2700 / 104.95e-6 / 86400)


def test_battery_limits_and_monotonicity():
    assert math.isinf(mag(battery("1 Wh", power="1 W", duty=0).life, "s"))
    always = battery("1 Wh", power="1 W", duty=1, idle_power="1 mW")
    assert mag(always.life, "h") == pytest.approx(1.0) and not always.fits  # one day needs 24 Wh
    duty = np.array([0.001, 0.01, 0.1, 1.0])
    life = battery("1 Wh", power="1 W", duty=duty, idle_power="1 mW").life.magnitude
    assert np.all(np.diff(life) < 0)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(capacity="1 Wh", power="1 W", duty=1.5), ml.InputError, "'duty' is the fraction of time active"),
    (dict(capacity="250 mAh", power="1 W"), ml.UnitError, "'capacity'"),  # charge, not energy: x voltage first
    (dict(capacity="1 W", power="1 W"), ml.UnitError, "'capacity' got 1 W"),
    (dict(capacity="1 Wh", power="1 W", time="-1 s"), ml.InputError, "'time' must be > 0"),
])
def test_battery_bad_input(kwargs, error, message):
    with pytest.raises(error) as err:
        battery(**kwargs)
    assert message in str(err.value)


# ---------------------------------------------------------------------------------------- common contract
@pytest.mark.parametrize("make", [
    lambda: throttle(power="12 W", envelope="3 W", time="90 s", latency="16.7 ms"),
    lambda: energy(power="100 mW", latency="128 ms"),
    lambda: battery("15 Wh", power="3 W", time="30 s"),
])
def test_results_honour_the_common_contract(make):
    r = make()
    assert isinstance(r, Result) and r.bottleneck is Wall.POWER
    for field in r.fields:
        assert isinstance(getattr(r, field), pint.Quantity), field
    assert "binding wall: power" in r.explain()
    assert set(json.loads(r.to_json())["fields"]) == set(r.fields)
    assert pickle.loads(pickle.dumps(r)).to_dict() == r.to_dict()
