"""The cost wall: total cost of ownership, rent or buy, and dollars per million tokens, checked by hand."""
import json
import math
import pickle

import numpy as np
import pint
import pytest

import mlsysim_lab as ml
from mlsysim_lab.economics import (MAINTENANCE, breakeven_time, breakeven_utilization, rent_or_buy, tco,
                                   token_cost)
from mlsysim_lab.results import Result, Wall
from mlsysim_lab.sustainability import IDLE_FRACTION

HOURS_PER_YEAR = 365.25 * 24  # the registry's year: 8,766 h
IDLE = IDLE_FRACTION.value
# Explicit inputs, so no test depends on a catalog price or grid value.
PLAIN = dict(price="30000 USD", power="700 W", pue=1.5, electricity_price="0.10 USD/kWh", maintenance=0.0)


def mag(q, unit):
    return q.to(unit).magnitude


# --------------------------------------------------------------------------------------------- tco
def test_1000_h100_electricity_by_hand():
    # 1,000 x 0.7 kW x PUE 1.12 x 0.12 USD/kWh x 8,766 h = 824,705 USD per year (8,760 h gives 824,141).
    r = tco("H100 SXM", gpus=1000, years=1, utilization=1, pue=1.12, electricity_price="0.12 USD/kWh",
            maintenance=0)
    by_hand = 1000 * 0.7 * 1.12 * 0.12 * HOURS_PER_YEAR
    assert mag(r.electricity, "USD/yr") == pytest.approx(by_hand)
    assert mag(r.electricity, "USD/yr") == pytest.approx(824e3, rel=2e-3)
    assert mag(r.power, "kW") == pytest.approx(700)  # busy all the time: full TDP
    assert mag(r.energy, "MWh") == pytest.approx(700 * 1.12 * HOURS_PER_YEAR / 1000)
    assert mag(r.capex, "USD") == pytest.approx(30e6)  # the catalog's 30,000 USD per H100
    assert mag(r.total, "USD") == pytest.approx(30e6 + by_hand)
    assert r.bottleneck is Wall.COST and r.margin == pytest.approx(30e6 / by_hand)


def test_tco_total_amortisation_and_gpu_hour_by_hand():
    # 16 GPUs, 4 years, half busy: P = 700 x (0.2 + 0.8 x 0.5) = 420 W each; maintenance 5%/yr.
    r = tco("H100 SXM", gpus=16, years=4, utilization=0.5, **{**PLAIN, "maintenance": 0.05})
    capex = 16 * 30000
    power = 700 * (IDLE + (1 - IDLE) * 0.5)
    electricity = 16 * power / 1000 * 1.5 * 0.10 * HOURS_PER_YEAR
    total = capex + 4 * (electricity + 0.05 * capex)
    assert mag(r.capex, "USD") == capex
    assert mag(r.amortization, "USD/yr") == pytest.approx(capex / 4)
    assert mag(r.electricity, "USD/yr") == pytest.approx(electricity)
    assert mag(r.maintenance, "USD/yr") == pytest.approx(0.05 * capex)
    assert mag(r.annual, "USD/yr") == pytest.approx(capex / 4 + electricity + 0.05 * capex)
    assert mag(r.total, "USD") == pytest.approx(total)
    assert mag(r.cost_per_gpu_hour, "USD/h") == pytest.approx(total / (16 * 4 * HOURS_PER_YEAR))
    assert mag(r.cost_per_busy_gpu_hour, "USD/h") == pytest.approx(2 * total / (16 * 4 * HOURS_PER_YEAR))
    terms = {k: mag(v, "USD") for k, v in r.terms.items()}
    assert terms == pytest.approx(dict(hardware=capex, electricity=4 * electricity, maintenance=0.2 * capex))
    assert sum(terms.values()) == pytest.approx(total)


def test_tco_limits():
    idle = tco("H100 SXM", gpus=10, years=1, utilization=0, **PLAIN)
    assert mag(idle.power, "W") == pytest.approx(10 * 700 * IDLE)  # zero utilisation: the idle floor only
    assert math.isinf(mag(idle.cost_per_busy_gpu_hour, "USD/h"))
    free = tco("H100 SXM", years=1, **{**PLAIN, "electricity_price": "1e-12 USD/kWh"})
    assert mag(free.total, "USD") == pytest.approx(30000, rel=1e-9)  # free power: capex only
    default = tco("H100 SXM", years=1, **{k: v for k, v in PLAIN.items() if k != "maintenance"})
    assert mag(default.maintenance, "USD/yr") == pytest.approx(MAINTENANCE.value * 30000)
    assert MAINTENANCE in default.assumptions and IDLE_FRACTION in default.assumptions


def test_tco_monotonicity_sweeps():
    u = np.linspace(0, 1, 11)
    r = tco("H100 SXM", gpus=8, utilization=u, **PLAIN)
    assert r.electricity.magnitude.shape == (11,)
    assert np.all(np.diff(r.electricity.magnitude) > 0)
    assert np.all(np.diff(r.cost_per_busy_gpu_hour.magnitude[1:]) < 0)  # busier fleets make cheaper hours
    years = np.array([1.0, 2, 4, 8])
    longer = tco("H100 SXM", gpus=8, years=years, **PLAIN)
    assert np.all(np.diff(longer.total.magnitude) > 0)
    assert np.all(np.diff(longer.cost_per_gpu_hour.magnitude) < 0)  # capex spread over more hours
    cheap, dear = (tco("H100 SXM", **{**PLAIN, "electricity_price": p}) for p in ("0.05 USD/kWh", "0.2 USD/kWh"))
    assert mag(dear.electricity, "USD/yr") == pytest.approx(4 * mag(cheap.electricity, "USD/yr"))


def test_node_price_and_power_are_used_when_the_catalog_has_them():
    nvl = tco("GB200 NVL72", years=4, pue=1.2, electricity_price="0.1 USD/kWh")
    node = ml.node("GB200 NVL72")
    assert mag(nvl.gpus, "") == 72 and mag(nvl.capex, "USD") == pytest.approx(node.price.to("USD").magnitude)
    assert mag(nvl.power, "W") == pytest.approx(node.power.to("W").magnitude)
    assert any("scale-out network" in a.source for a in nvl.assumptions)
    dgx = tco(ml.cluster("H100 SXM", gpus=16), years=1, utilization=1, pue=1.0, electricity_price="0.1 USD/kWh")
    assert mag(dgx.power, "kW") == pytest.approx(2 * 10.2)  # two DGX H100 at 10.2 kW each, host included
    assert mag(dgx.capex, "USD") == pytest.approx(16 * 30000)  # no DGX price: the GPUs' price only
    assert any("price only" in a.source for a in dgx.assumptions)


def test_tco_budget_is_a_verdict():
    r = tco("H100 SXM", gpus=8, years=1, budget="1000000 USD", **PLAIN)
    assert r.fits and "within budget" in r.verdict
    over = tco("H100 SXM", gpus=8, years=1, budget="100000 USD", **PLAIN)
    assert not over.fits and "over budget: needs" in over.verdict and "has 100,000 USD" in over.verdict
    assert over.margin == pytest.approx(mag(over.total, "USD") / 1e5)


# ------------------------------------------------------------------------------------- rent or buy
def test_rent_or_buy_breakeven_by_hand():
    # Own: 30,000 USD + 0.7 kW x 1.5 x 0.10 USD/kWh = 0.105 USD/h. Rent: 2 USD/h. t* = 30000 / 1.895 h.
    r = rent_or_buy("H100 SXM", rental="2 USD/h", years=4, utilization=1, **PLAIN)
    t_star = 30000 / (2 - 0.105)
    assert mag(r.breakeven, "h") == pytest.approx(t_star)
    assert mag(r.breakeven, "yr") == pytest.approx(1.806, abs=1e-3)
    assert mag(r.buy, "USD") == pytest.approx(30000 + 0.105 * 4 * HOURS_PER_YEAR)
    assert mag(r.rent, "USD") == pytest.approx(2 * 4 * HOURS_PER_YEAR)
    assert mag(r.savings, "USD") == pytest.approx(mag(r.rent, "USD") - mag(r.buy, "USD"))
    assert r.fits and r.verdict.startswith("buy: pays back after 1.81 yr of 4 years")
    # Break-even utilisation: 30000/T + N P_idle PUE price = u N (r - (P_max - P_idle) PUE price).
    fixed = 30000 / (4 * HOURS_PER_YEAR) + 0.7 * IDLE * 1.5 * 0.10
    u_star = fixed / (2 - 0.7 * (1 - IDLE) * 1.5 * 0.10)
    assert r.breakeven_utilization.magnitude == pytest.approx(u_star)
    even = rent_or_buy("H100 SXM", rental="2 USD/h", years=4, utilization=u_star, **PLAIN)
    assert mag(even.buy, "USD") == pytest.approx(mag(even.rent, "USD"))  # both cost the same there
    assert mag(even.breakeven, "yr") == pytest.approx(4)


def test_negative_roi_when_renting_is_cheaper():
    low = rent_or_buy("H100 SXM", rental="2 USD/h", years=4, utilization=0.2, **PLAIN)
    assert not low.fits and low.verdict.startswith("rent: negative ROI")
    assert "break-even needs 46% utilisation" in low.verdict
    never = rent_or_buy("H100 SXM", rental="0.05 USD/h", years=4, utilization=1, **PLAIN)
    assert math.isinf(mag(never.breakeven, "yr")) and math.isinf(never.breakeven_utilization.magnitude)
    assert "never pays back at any utilisation" in never.verdict


def test_rent_or_buy_monotone_in_utilization_and_kernels_by_hand():
    u = np.array([0.25, 0.5, 0.75, 1.0])
    r = rent_or_buy("H100 SXM", rental="2 USD/h", utilization=u, **PLAIN)
    assert np.all(np.diff(r.breakeven.magnitude) < 0)  # busier fleets pay back sooner
    assert breakeven_time(100.0, 3.0, 1.0) == 50.0 and math.isinf(breakeven_time(100.0, 1.0, 1.0))
    assert breakeven_utilization(10.0, 10.0, 1, 1.0, 1.0, 1.0, 0.0, 2.0, 0.0) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ tokens
def test_dollars_per_million_tokens_by_hand():
    # 8 GPUs x 2 USD/h = 16 USD/h for 10,000 token/s = 36e6 token/h -> 0.444 USD per million tokens.
    r = token_cost("10000 token/s", rate="2 USD/h", gpus=8)
    assert mag(r.cost, "USD/Mtoken") == pytest.approx(16 / 36)
    half = token_cost("10000 token/s", rate="2 USD/h", gpus=8, utilization=0.5)
    assert mag(half.cost, "USD/Mtoken") == pytest.approx(2 * 16 / 36)  # idle paid hours double the price
    assert r.bottleneck is Wall.COST and "0.444 USD per million tokens" in r.verdict
    faster = token_cost(ml.Q_(np.array([1e3, 1e4, 1e5]), "token/s"), rate="2 USD/h")
    assert np.all(np.diff(faster.cost.magnitude) < 0)


def test_token_cost_from_serve_and_tco_results():
    s = ml.serve("Llama-2-70B", "H100 SXM", batch=32, tp=4)
    r = token_cost(s, rate="2 USD/h")
    tps = mag(s.tokens_per_second, "token/s")
    assert mag(r.gpus, "") == 4 and mag(r.cost, "USD/Mtoken") == pytest.approx(2 * 4 / (3600 * tps) * 1e6)
    owned = tco("H100 SXM", gpus=8, utilization=0.6, **PLAIN)
    from_tco = token_cost(s, rate=owned)
    hourly = mag(owned.cost_per_gpu_hour, "USD/h")
    assert mag(from_tco.cost, "USD/Mtoken") == pytest.approx(hourly * 4 / (3600 * tps * 0.6) * 1e6)
    assert set(from_tco.terms) == {"hardware", "electricity", "maintenance"}
    assert sum(mag(v, "USD/Mtoken") for v in from_tco.terms.values()) == pytest.approx(mag(from_tco.cost, "USD/Mtoken"))


# --------------------------------------------------------------------------------------- contracts
SOLVERS = {
    "tco": lambda: tco("H100 SXM", gpus=8, **PLAIN),
    "rent_or_buy": lambda: rent_or_buy("H100 SXM", rental="2 USD/h", **PLAIN),
    "token_cost": lambda: token_cost("5000 token/s", rate="2 USD/h"),
}


@pytest.mark.parametrize("name", list(SOLVERS))
def test_cost_results_honour_the_common_contract(name):
    r = SOLVERS[name]()
    assert isinstance(r, Result)
    for field in r.fields:
        assert isinstance(getattr(r, field), pint.Quantity), field
    for term in r.terms.values():
        assert term.check("[currency]") or term.check("[currency] / [token]")
    assert r.bottleneck is Wall.COST and "binding wall: cost" in r.explain()
    data = json.loads(r.to_json())
    assert data["bottleneck"] == "cost" and set(data["fields"]) == set(r.fields)
    assert pickle.loads(pickle.dumps(r)).to_dict() == r.to_dict()
    assert "|" in r._repr_markdown_()


@pytest.mark.parametrize("call, message", [
    (lambda: tco("H100 SXM", years=-1, **PLAIN), "'years' must be > 0"),
    (lambda: tco("H100 SXM", years="4 GB", **PLAIN), "'years' got 4 GB"),
    (lambda: tco("H100 SXM", utilization=1.2, **PLAIN), "'utilization' is the fraction of time busy"),
    (lambda: tco("H100 SXM", utilization=-0.1, **PLAIN), "'utilization' must be >= 0"),
    (lambda: tco("H100 SXM", gpus=0, **PLAIN), "'gpus' must be > 0"),
    (lambda: tco("H100 SXM", price=30000), "'price' got 30000 (a bare number)"),
    (lambda: tco("H100 SXM", **{**PLAIN, "pue": 0.9}), "'pue' is facility energy / IT energy"),
    (lambda: tco("H100 SXM", **{**PLAIN, "maintenance": 1.5}), "'maintenance' is a fraction of capex"),
    (lambda: tco("H100 SXM", **{**PLAIN, "electricity_price": "0.1 USD"}), "'electricity_price' got 0.1 USD"),
    (lambda: tco("H100 PCIe", pue=1.2, electricity_price="0.1 USD/kWh"), "H100 PCIe has no price"),
    (lambda: tco("H100 SXM", grid="Poland"), "grid 'Poland' has no electricity price"),
    (lambda: tco(ml.cluster("H100 SXM", gpus=8), gpus=8, **PLAIN), "a Cluster already has 8 GPUs"),
    (lambda: tco("Llama-2-7B", **PLAIN), "unknown hardware 'Llama-2-7B'"),
    (lambda: tco("H100 SXM", budget="5 kWh", **PLAIN), "'budget' got 5 kWh"),
    (lambda: rent_or_buy("H100 SXM", rental="2.5 USD", **PLAIN), "'rental' got 2.5 USD ([currency])"),
    (lambda: rent_or_buy("H100 SXM", rental=2.5, **PLAIN), "'rental' got 2.5 (a bare number)"),
    (lambda: rent_or_buy("H100 SXM", rental="-2 USD/h", **PLAIN), "'rental' must be > 0"),
    (lambda: token_cost("5 GB/s", rate="2 USD/h"), "'throughput' got 5 GB/s"),
    (lambda: token_cost("5000 token/s", rate="2 USD/h", utilization=0), "'utilization' must be > 0"),
    (lambda: token_cost("5000 token/s", rate="2 USD/h", utilization=2), "'utilization' is the fraction of paid"),
    (lambda: token_cost(ml.iron_law("H100 SXM", ops="1 TFLOP", bytes="1 GB"), rate="2 USD/h"), "ServeResult"),
])
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ml.InputError) as err:
        call()
    assert message in str(err.value)
