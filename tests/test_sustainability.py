"""The carbon and water walls: energy, operational and embodied carbon, water, checked by hand."""
import json
import math
import pickle

import numpy as np
import pint
import pytest

import mlsysim_lab as ml
from mlsysim_lab.results import Result, Wall
from mlsysim_lab.sustainability import (DEFAULT_EMBODIED, IDLE_FRACTION, LIFETIME_YEARS, draw, footprint,
                                        footprint_kernel)

HOURS_PER_YEAR = 365.25 * 24
IDLE = IDLE_FRACTION.value
# Explicit site numbers, so no test depends on a catalog grid value.
SITE = dict(pue=1.2, carbon_intensity="400 gCO2e/kWh", wue="1.8 L/kWh", electricity_price="0.10 USD/kWh")


def mag(q, unit):
    return q.to(unit).magnitude


@pytest.fixture(scope="module")
def run():
    """A small training run: Llama-2-7B on 2 trillion tokens over 64 H100 (eight DGX H100)."""
    return ml.train("Llama-2-7B", ml.cluster("H100 SXM", gpus=64), tokens=2e12, global_batch_tokens=2**22, zero=1)


def test_energy_carbon_water_and_cost_by_hand():
    # 8 x 700 W x 10 h = 56 kWh of IT energy; x PUE 1.2 = 67.2 kWh at the meter.
    r = footprint("H100 SXM", gpus=8, duration="10 h", embodied="150 kgCO2e", lifetime=5, **SITE)
    assert mag(r.it_energy, "kWh") == pytest.approx(56)
    assert mag(r.energy, "kWh") == pytest.approx(67.2)
    assert mag(r.operational, "kgCO2e") == pytest.approx(67.2 * 0.4)  # 26.9 kg
    assert mag(r.water, "L") == pytest.approx(56 * 1.8)  # WUE is per IT kWh
    assert mag(r.cost, "USD") == pytest.approx(6.72)
    embodied = 8 * 150 * 10 / (5 * HOURS_PER_YEAR)  # kg: the run's share of the hardware's 5-year life
    assert mag(r.embodied, "kgCO2e") == pytest.approx(embodied)
    assert mag(r.carbon, "kgCO2e") == pytest.approx(26.88 + embodied)
    assert r.embodied_share.magnitude == pytest.approx(embodied / (26.88 + embodied))
    assert r.bottleneck is Wall.CARBON and r.margin == pytest.approx(26.88 / embodied)
    assert {k: mag(v, "kgCO2e") for k, v in r.terms.items()} == pytest.approx(
        dict(operational=26.88, embodied=embodied))
    assert "26.9 kgCO2e operational" in r.verdict and "400 gCO2e/kWh" in r.verdict


def test_quebec_and_poland_differ_by_exactly_their_intensity_ratio(run):
    quebec, poland = ml.grid("Quebec"), ml.grid("Poland")
    q, p = (footprint(run, grid=g, pue=1.1) for g in (quebec, poland))
    assert mag(q.energy, "kWh") == mag(p.energy, "kWh")
    ratio = poland.carbon_intensity.to("gCO2e/kWh").magnitude / quebec.carbon_intensity.to("gCO2e/kWh").magnitude
    assert mag(p.operational, "gCO2e") / mag(q.operational, "gCO2e") == pytest.approx(ratio, rel=1e-12)
    assert ratio > 10  # a hydro grid against a coal grid: an order of magnitude and more
    assert mag(q.embodied, "gCO2e") == mag(p.embodied, "gCO2e")  # the hardware does not care where it runs


def test_a_train_result_supplies_cluster_and_duration(run):
    r = footprint(run, **SITE, utilization=1)
    assert mag(r.duration, "s") == pytest.approx(mag(run.time_to_train, "s"))
    assert mag(r.gpus, "") == 64
    # The cluster is laid out as DGX H100 nodes: 10.2 kW per 8 GPUs, host included.
    assert mag(r.power, "kW") == pytest.approx(8 * 10.2)
    assert mag(r.it_energy, "kWh") == pytest.approx(8 * 10.2 * mag(run.time_to_train, "h"))
    assert any("DGX H100 node power" in a.source for a in r.assumptions)


def test_energy_is_linear_in_time_and_pue():
    t = ml.Q_(np.array([1.0, 2.0, 5.0, 10.0]), "h")
    r = footprint("H100 SXM", duration=t, **SITE)
    assert mag(r.energy, "kWh") == pytest.approx(0.7 * 1.2 * t.magnitude)
    assert np.all(np.diff(r.carbon.magnitude) > 0)
    one, two = (footprint("H100 SXM", duration="1 day", **{**SITE, "pue": pue}) for pue in (1.0, 2.0))
    assert mag(two.energy, "kWh") == pytest.approx(2 * mag(one.energy, "kWh"))
    assert mag(two.operational, "gCO2e") == pytest.approx(2 * mag(one.operational, "gCO2e"))
    assert mag(two.water, "L") == pytest.approx(mag(one.water, "L"))  # site water follows IT energy
    assert mag(two.embodied, "gCO2e") == pytest.approx(mag(one.embodied, "gCO2e"))
    e, it, op, emb, water, cost = footprint_kernel(np.array([100.0, 200.0]), 10.0, 1.5, 2.0, 0.5, 3.0, 60.0, 20.0)
    assert list(e) == [1500.0, 3000.0] and list(op) == [3000.0, 6000.0] and emb == 30.0


def test_zero_utilization_draws_the_idle_floor_only():
    idle = footprint("H100 SXM", gpus=4, duration="1 h", utilization=0, **SITE)
    assert mag(idle.power, "W") == pytest.approx(4 * 700 * IDLE)
    busy = footprint("H100 SXM", gpus=4, duration="1 h", utilization=1, **SITE)
    assert mag(busy.power, "W") == pytest.approx(4 * 700)
    u = np.linspace(0, 1, 6)
    sweep = footprint("H100 SXM", duration="1 h", utilization=u, **SITE)
    assert np.all(np.diff(sweep.power.magnitude) > 0)
    assert draw(700.0, u, IDLE) == pytest.approx(700 * (IDLE + (1 - IDLE) * u))
    assert IDLE_FRACTION in idle.assumptions


def test_embodied_carbon_comes_from_the_catalog_or_a_flagged_default():
    h100 = footprint("H100 SXM", duration="1 yr", **SITE)
    assert mag(h100.embodied, "kgCO2e") == pytest.approx(164 / LIFETIME_YEARS.value)  # NVIDIA HGX H100 PCF
    assert LIFETIME_YEARS in h100.assumptions
    h200 = footprint("H200 SXM", duration="1 yr", **SITE)  # no published figure: the documented default
    assert DEFAULT_EMBODIED in h200.assumptions
    assert mag(h200.embodied, "kgCO2e") == pytest.approx(150 / LIFETIME_YEARS.value)
    jetson = footprint("Jetson AGX Orin 64GB", duration="1 yr", **SITE)
    assert mag(jetson.embodied, "gCO2e") == 0 and any("not counted" in a.source for a in jetson.assumptions)
    clean = footprint("B200", duration="1 yr", **{**SITE, "carbon_intensity": "0 gCO2e/kWh"})
    assert mag(clean.operational, "gCO2e") == 0  # a zero-carbon grid leaves only the embodied carbon
    assert mag(clean.carbon, "kgCO2e") == pytest.approx(284.25 / 6) and clean.embodied_share.magnitude == 1


def test_budgets_name_the_carbon_or_the_water_wall():
    r = footprint("H100 SXM", gpus=8, duration="10 h", budget="10 kgCO2e", **SITE)
    assert r.bottleneck is Wall.CARBON and not r.fits and "over the carbon budget: needs" in r.verdict
    assert r.margin == pytest.approx(mag(r.carbon, "kgCO2e") / 10)
    w = footprint("H100 SXM", gpus=8, duration="10 h", budget="1000 L", **SITE)
    assert w.bottleneck is Wall.WATER and w.fits and "within the water budget: needs 101 L of 1 kL" in w.verdict
    assert w.margin == pytest.approx(100.8 / 1000)


def test_result_honours_the_common_contract():
    r = footprint("DGX H100", duration="1 day")  # catalog grid: US average
    assert isinstance(r, Result)
    for field in r.fields:
        assert isinstance(getattr(r, field), pint.Quantity), field
    for term in r.terms.values():
        assert term.check("[carbon]")
    data = json.loads(r.to_json())
    assert data["bottleneck"] == "carbon" and set(data["fields"]) == set(r.fields)
    assert pickle.loads(pickle.dumps(r)).to_dict() == r.to_dict()
    assert "binding wall: carbon" in r.explain() and "|" in r._repr_markdown_()
    assert mag(r.gpus, "") == 8 and "US average" in r.verdict


def test_a_grid_without_a_price_leaves_the_cost_unknown():
    r = footprint("H100 SXM", duration="1 h", grid="Poland")
    assert math.isnan(mag(r.cost, "USD")) and "electricity" not in r.verdict


@pytest.mark.parametrize("call, message", [
    (lambda run: footprint(run, duration="1 h"), "a TrainResult already gives the duration"),
    (lambda run: footprint("H100 SXM"), "give duration="),
    (lambda run: footprint(duration="1 h"), "give a system"),
    (lambda run: footprint("H100 SXM", duration="-1 h"), "'duration' must be >= 0"),
    (lambda run: footprint("H100 SXM", duration="5 GB"), "'duration' got 5 GB"),
    (lambda run: footprint("H100 SXM", duration=5), "'duration' got 5 (a bare number)"),
    (lambda run: footprint("H100 SXM", duration="1 h", utilization=1.5), "'utilization' is the fraction"),
    (lambda run: footprint("H100 SXM", duration="1 h", pue=0.8), "'pue' is facility energy / IT energy"),
    (lambda run: footprint("H100 SXM", duration="1 h", carbon_intensity="400 g/kWh"), "'carbon_intensity' got"),
    (lambda run: footprint("H100 SXM", duration="1 h", lifetime=-2), "'lifetime' must be > 0"),
    (lambda run: footprint("H100 SXM", duration="1 h", budget="5 USD"), "'budget' got 5 USD"),
    (lambda run: footprint("H100 SXM", duration="1 h", grid="Atlantis"), "unknown grid 'Atlantis'"),
    (lambda run: footprint(ml.workload("Llama-2-7B"), duration="1 h"), "'system' must be a Hardware"),
    (lambda run: footprint("Apple A17 Pro", duration="1 h"), "Apple A17 Pro has no TDP"),
])
def test_bad_input_gets_a_clear_error(run, call, message):
    with pytest.raises(ml.InputError) as err:
        call(run)
    assert message in str(err.value)
