"""The carbon and water walls: what a run costs the planet, not just the budget.

A fleet draws power between an idle floor and its rating, P(u) = P_idle + (P_max - P_idle) x u, the linear
model of Fan, Weber & Barroso ("Power provisioning for a warehouse-sized computer", ISCA 2007, sec. 4),
with P_idle a fixed fraction of P_max. The building adds cooling and power delivery on top of the IT load:
facility energy = IT energy x PUE (The Green Grid, "PUE: a comprehensive examination of the metric", White
Paper 49, 2012). Operational carbon is facility energy x the grid's carbon intensity (location-based, as
catalog/grids.yaml gives it); water is IT energy x WUE (site water per IT kWh, The Green Grid White Paper 35,
2011); embodied carbon is what making the hardware emitted (cradle-to-gate), amortised over its service
life: embodied x duration / lifetime. Every kernel works elementwise on numpy arrays.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np
import pint

from . import catalog
from .efficiency import Assumption
from .errors import InputError, UnitError
from .results import Result, Wall, _show, bind
from .specs import Cluster, Hardware, Node
from .training import TrainResult
from .units import Q_, check_number, count, to_si

#: Seconds in a year: the registry's year (365.25 days, 8,766 h), used for every per-year figure.
YEAR = float(Q_(1.0, "yr").to("s").magnitude)

#: Grid used when none is named: the catalog's US average (it has a carbon intensity, PUE, WUE and a price).
DEFAULT_GRID = "US average"

#: Idle draw as a fraction of full power. Documented assumption: an idle data-center GPU with clocks and HBM
#: powered reads roughly 10-15% of its TDP in nvidia-smi (an H100 SXM ~60-100 W of 700 W); 20% also covers
#: host CPUs, fans and NICs when the power is a whole node's. The linear idle-to-peak model is Fan, Weber &
#: Barroso, ISCA 2007, sec. 4. Provisional: pass your own measured draw through ``power`` and ``utilization``.
IDLE_FRACTION = Assumption(
    "idle power (fraction of full power)", 0.20,
    "documented assumption: idle data-center GPUs read ~10-15% of TDP, a host adds more; linear idle-to-peak "
    "model P = P_idle + (P_max - P_idle) u of Fan, Weber & Barroso, ISCA 2007, sec. 4")

#: Embodied carbon of a data-center accelerator with no published figure: Luccioni, Viguier & Ligozat,
#: "Estimating the Carbon Footprint of BLOOM", JMLR 24(253), 2023, embodied-emissions estimate of ~150 kgCO2e
#: per A100 80GB (cradle-to-gate, GPU only). NVIDIA's HGX H100 PCF gives 164 kgCO2e per GPU, so the figure is
#: the right order for an HBM accelerator; larger packages (B200: 284 kgCO2e) are underestimated by it.
DEFAULT_EMBODIED = Assumption(
    "embodied carbon of an accelerator with no published figure (gCO2e)", 150e3,
    "generic default: Luccioni et al., 'Estimating the Carbon Footprint of BLOOM', JMLR 24(253) 2023, "
    "~150 kgCO2e per A100 80GB, cradle-to-gate; applied to data-center accelerators only")

#: Service life over which embodied carbon is amortised: the 6-year replacement cycle used for BLOOM's
#: hardware (Luccioni et al. 2023, embodied emissions) and the 6-year server life Microsoft (FY2022 Form 10-K)
#: and Alphabet (2022 Form 10-K) adopted in 2022-23, up from 4 years.
LIFETIME_YEARS = Assumption(
    "hardware service life for embodied carbon (years)", 6.0,
    "Luccioni et al., JMLR 2023 (BLOOM: 6-year replacement); Microsoft FY2022 and Alphabet 2022 Form 10-K: "
    "servers depreciated over 6 years")


# ------------------------------------------------------------------------------------------- kernels
def draw(power, utilization, idle_fraction):
    """Average power of a device rated ``power`` (W) busy a fraction ``utilization`` of the time:
    P_idle + (P_max - P_idle) u with P_idle = idle_fraction x P_max. Elementwise on arrays."""
    return power * (idle_fraction + (1.0 - idle_fraction) * utilization)


def footprint_kernel(it_power, duration, pue, intensity, wue, price, embodied, lifetime):
    """(facility energy J, IT energy J, operational gCO2e, embodied gCO2e, water L, electricity USD).

    Facility energy = IT power x t x PUE; operational carbon = facility energy x grid intensity; water =
    IT energy x WUE (WUE is defined per IT kWh); embodied carbon amortised as embodied x t / lifetime.
    """
    it_energy = it_power * duration
    energy = it_energy * pue
    return energy, it_energy, energy * intensity, embodied * duration / lifetime, it_energy * wue, energy * price


# --------------------------------------------------------------------------------------------- doors
class Fleet(NamedTuple):
    """What a system is for energy and money: the accelerator, how many, per-accelerator full power and
    embodied carbon, the catalog node it sits in (if any), and the assumptions behind those numbers."""

    hardware: Hardware
    gpus: Any
    node: Optional[Node]
    power: Any
    embodied: float
    assumptions: tuple


def fleet_of(system, *, gpus=None, power=None, embodied=None, where: str) -> Fleet:
    """Resolve a Hardware, a Node, a Cluster or a catalog name into a Fleet.

    Power per accelerator: ``power`` if given, else the catalog node's power / its accelerators (the whole
    server: GPUs, CPUs, NICs, fans), else the accelerator's TDP (GPU only). Embodied carbon per accelerator:
    ``embodied`` if given, else the catalog's figure, else ``DEFAULT_EMBODIED`` for a data-center part,
    else zero (said so in the assumptions).
    """
    node = None
    if isinstance(system, Cluster):
        if gpus is not None:
            raise InputError(f"{where}: a Cluster already has {system.gpus} GPUs; do not pass gpus=")
        hw, n = system.accelerator, float(system.gpus)
        node = _node_named(system.name) if system.name else None
    else:
        if isinstance(system, str):
            node = _node_named(system)
        elif isinstance(system, Node):
            node = system
        elif not isinstance(system, Hardware):
            raise InputError(f"{where}: 'system' must be a Hardware, a Node, a Cluster or a catalog name, "
                             f"got {type(system).__name__}")
        hw = catalog.hardware(node.accelerator) if node is not None else catalog.hardware(system)
        default = node.accelerators if node is not None else 1
        n = count(gpus if gpus is not None else default, name="gpus", where=where)
    used = []
    if power is not None:
        p = to_si(power, "power", name="power", where=where)
        used.append(Assumption("full power per accelerator (W)", float(np.max(p)), "given"))
    elif node is not None and node.power is not None:
        p = node.power.to("W").magnitude / node.accelerators
        used.append(Assumption("full power per accelerator (W)", p,
                               f"{node.name} node power {node.power:~P} / {node.accelerators} accelerators: "
                               "GPUs plus their share of host CPUs, memory, NICs and fans"))
    elif hw._f.tdp is not None:
        p = hw._f.tdp
        used.append(Assumption("full power per accelerator (W)", p,
                               f"{hw.name} TDP; accelerator only, the host server is not counted"))
    else:
        raise InputError(f"{where}: {hw.name} has no TDP in the catalog; pass power= (e.g. '700 W')")
    if embodied is not None:
        e = to_si(embodied, "carbon", name="embodied", where=where, allow_zero=True)
        used.append(Assumption("embodied carbon per accelerator (gCO2e)", float(np.max(e)), "given"))
    elif hw._f.embodied_carbon is not None:
        e = hw._f.embodied_carbon
        used.append(Assumption("embodied carbon per accelerator (gCO2e)", e,
                               hw.sources.get("embodied_carbon", hw.source)))
    elif hw.tier == "datacenter":
        e = DEFAULT_EMBODIED.value
        used.append(DEFAULT_EMBODIED)
    else:
        e = 0.0
        used.append(Assumption("embodied carbon per accelerator (gCO2e)", 0.0,
                               f"no published figure for {hw.name} ({hw.tier}); not counted, pass embodied="))
    return Fleet(hw, n, node, p, e, tuple(used))


def _node_named(name: str) -> Optional[Node]:
    try:
        return catalog.node(name)
    except LookupError:
        return None


class Site(NamedTuple):
    """Where the energy is drawn: carbon intensity (gCO2e/J), PUE, WUE (L/J), price (USD/J), and sources."""

    name: str
    intensity: Any
    pue: Any
    wue: Any
    price: Any
    assumptions: tuple


def site(grid, *, pue=None, carbon_intensity=None, wue=None, electricity_price=None, where: str,
         need_price: bool = False) -> Site:
    """The grid's numbers with any explicit overrides; a missing price is NaN unless ``need_price``."""
    g = catalog.grid(grid if grid is not None else DEFAULT_GRID)
    used = []
    if pue is None:
        u = g._f.pue
        used.append(Assumption("PUE (facility / IT energy; cooling and power delivery inside)", u,
                               f"grid {g.name}: " + g.sources.get("pue", g.source)))
    else:
        u = check_number(pue, name="pue", where=where)
        if np.any(np.asarray(u) < 1):
            raise InputError(f"{where}: 'pue' is facility energy / IT energy and cannot be below 1, got {pue!r}")
        used.append(Assumption("PUE (facility / IT energy; cooling and power delivery inside)",
                               float(np.max(u)), "given"))
    ci = g._f.carbon if carbon_intensity is None else to_si(
        carbon_intensity, "carbon_intensity", name="carbon_intensity", where=where, allow_zero=True)
    w = g._f.wue if wue is None else to_si(wue, "water_intensity", name="wue", where=where, allow_zero=True)
    if electricity_price is not None:
        price = to_si(electricity_price, "energy_price", name="electricity_price", where=where)
    elif g._f.price is not None:
        price = g._f.price
    elif need_price:
        raise InputError(f"{where}: grid {g.name!r} has no electricity price in the catalog; pass "
                         "electricity_price= (e.g. '0.12 USD/kWh')")
    else:
        price = float("nan")
    return Site(g.name, ci, u, float("nan") if w is None else w, price, tuple(used))


def check_utilization(value, where: str):
    """Fraction of the time the hardware is busy, in [0, 1] (0 = idle the whole time)."""
    u = check_number(value, name="utilization", where=where, allow_zero=True)
    if np.any(np.asarray(u) > 1):
        raise InputError(f"{where}: 'utilization' is the fraction of time busy and must be in [0, 1], "
                         f"got {value!r}")
    return u


def years_of(value, *, name: str, where: str):
    """A span given in years (a plain number such as 4) or as a time quantity ('1.5 yr', '500 day'), in s."""
    if isinstance(value, (str, pint.Quantity)):
        return to_si(value, "time", name=name, where=where)
    return check_number(value, name=name, where=where) * YEAR


# ------------------------------------------------------------------------------------------- results
class FootprintResult(Result):
    """Energy, carbon (operational and embodied), water and electricity cost of running a fleet."""

    _title = "carbon and water footprint"
    _term_unit = "gCO2e"
    _units = {"carbon": "gCO2e", "operational": "gCO2e", "embodied": "gCO2e", "embodied_share": "",
              "energy": "Wh", "it_energy": "Wh", "power": "W", "duration": "s", "water": "L", "cost": "USD",
              "gpus": ""}


def footprint(system=None, *, duration=None, gpus=None, utilization=1.0, grid=None, pue=None,
              carbon_intensity=None, wue=None, electricity_price=None, power=None, embodied=None,
              lifetime=None, budget=None) -> FootprintResult:
    """Energy, carbon, water and electricity cost of running ``system`` for ``duration``.

    energy = N x P(u) x t x PUE with P(u) = P_idle + (P_max - P_idle) u (Fan, Weber & Barroso, ISCA 2007);
    operational = energy x carbon intensity; water = IT energy x WUE (The Green Grid WP 35);
    embodied = N x embodied per accelerator x t / lifetime. Limiting cases: u = 0 draws the idle floor only;
    a zero-carbon grid leaves the embodied term alone. Measured LLM training on DGX H100 averages ~76% of the
    10.2 kW node rating (Brookhaven measurements, arXiv:2506.14551, 2025): pass ``utilization`` to model less than TDP.

    Parameters
    ----------
    system : TrainResult | Cluster | Hardware | Node | str
        A ``ml.train`` result supplies both the cluster and the duration (its time to train).
    duration : Quantity[time]  how long the fleet runs, e.g. "30 day" (not with a TrainResult)
    gpus : int  accelerators, for a Hardware or a Node name (default 1, or the node's count)
    utilization : fraction of the time busy, in [0, 1] (default 1: full power the whole time, an upper bound)
    grid : Grid | str  where the energy is drawn (default "US average"); ``pue``, ``carbon_intensity``
        (Quantity[carbon/energy]), ``wue`` (Quantity[volume/energy]) and ``electricity_price``
        (Quantity[currency/energy]) override its numbers
    power : Quantity[power]  full power per accelerator (default: node power share, else TDP)
    embodied : Quantity[carbon]  embodied carbon per accelerator (default: catalog, else DEFAULT_EMBODIED)
    lifetime : years or Quantity[time]  service life over which embodied carbon is amortised (default 6)
    budget : Quantity[carbon] or Quantity[volume]  a carbon ("10 tCO2e") or water ("500 kL") budget; its
        dimension picks the wall (carbon or water) and ``fits`` says whether the run stays within it

    Returns
    -------
    FootprintResult  .carbon .operational .embodied .energy .water .cost; terms operational / embodied
    """
    where = "footprint()"
    if isinstance(system, TrainResult):
        if duration is not None:
            raise InputError(f"{where}: a TrainResult already gives the duration (its time to train); "
                             "do not pass duration=")
        t = system.time_to_train.to("s").magnitude
        system = system.inputs["system"]
    elif system is None:
        raise InputError(f"{where}: give a system (a TrainResult, Cluster, Hardware or name) and a duration")
    elif duration is None:
        raise InputError(f"{where}: give duration= (e.g. '30 day'), or pass a TrainResult from ml.train")
    else:
        t = to_si(duration, "time", name="duration", where=where, allow_zero=True)
    u = check_utilization(utilization, where)
    f = fleet_of(system, gpus=gpus, power=power, embodied=embodied, where=where)
    s = site(grid, pue=pue, carbon_intensity=carbon_intensity, wue=wue, electricity_price=electricity_price,
             where=where)
    life = LIFETIME_YEARS.value * YEAR if lifetime is None else years_of(lifetime, name="lifetime", where=where)
    used = f.assumptions + s.assumptions + (IDLE_FRACTION,) + ((LIFETIME_YEARS,) if lifetime is None else ())
    it_power = f.gpus * draw(f.power, u, IDLE_FRACTION.value)
    energy, it_energy, operational, embodied_c, water, cost = footprint_kernel(
        it_power, t, s.pue, s.intensity, s.wue, s.price, f.gpus * f.embodied, life)
    total = operational + embodied_c
    terms = dict(operational=operational, embodied=embodied_c)
    wall, margin = bind(terms, {"operational": Wall.CARBON, "embodied": Wall.CARBON})
    fits, limit = True, None
    if budget is not None:
        limit, wall = _budget(budget, where)
        spent = total if wall is Wall.CARBON else water
        fits, margin = spent <= limit, spent / limit
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.divide(embodied_c, total) if np.ndim(total) else (embodied_c / total if total > 0 else 0.0)

    def verdict():
        if any(np.ndim(x) for x in (total, water, energy)):
            return ""
        text = (f"{carbon_text(total)} ({carbon_text(operational)} operational + {carbon_text(embodied_c)} "
                f"embodied) from {_show(energy / 3600.0, 'Wh')} on {s.name} "
                f"({s.intensity * 3.6e6:.4g} gCO2e/kWh, PUE {s.pue:.3g})")
        if np.isfinite(water):
            text += f"; water {_show(water, 'L')}"
        if np.isfinite(cost):
            text += f"; electricity {_show(cost, 'USD')}"
        if limit is not None:
            spent, show = (total, carbon_text) if wall is Wall.CARBON else (water, lambda v: _show(v, "L"))
            text = (f"within the {wall} budget: needs {show(spent)} of {show(limit)}; " if fits else
                    f"over the {wall} budget: needs {show(spent)}, has {show(limit)} (x{spent / limit:.2f}); ") + text
        return text

    return FootprintResult(
        dict(carbon=total, operational=operational, embodied=embodied_c, embodied_share=share,
             energy=energy / 3600.0, it_energy=it_energy / 3600.0, power=it_power, duration=t, water=water,
             cost=cost, gpus=f.gpus),
        terms=terms, bottleneck=wall, margin=margin, fits=fits, verdict=verdict, assumptions=used,
        formula=("energy = N x (P_idle + (P_max - P_idle) u) x t x PUE; operational = energy x gCO2e/kWh; "
                 "water = IT energy x WUE; embodied = N x embodied x t / lifetime"),
        inputs=dict(system=system, grid=s.name, utilization=utilization, duration=t))


def _budget(value, where: str):
    """A carbon budget (gCO2e) or a water budget (L), and the wall it names."""
    q = value
    if isinstance(value, str):
        try:
            q = Q_(value)
        except Exception:  # unparseable: to_si below says so, naming the argument
            pass
    if isinstance(q, pint.Quantity) and q.dimensionality == Q_("1 L").dimensionality:
        return check_number(q.to("L").magnitude, name="budget", where=where), Wall.WATER
    try:
        return to_si(value, "carbon", name="budget", where=where), Wall.CARBON
    except UnitError as err:
        raise UnitError(where, "budget", str(value), err.dim1, "[carbon] or [length] ** 3 (water)",
                        "10 tCO2e") from None


def carbon_text(grams) -> str:
    """Carbon as a student reads it: t, kg or g CO2e."""
    if abs(grams) >= 1e6:
        return f"{grams / 1e6:,.3g} tCO2e" if abs(grams) < 1e9 else f"{grams / 1e6:,.0f} tCO2e"
    if abs(grams) >= 1e3:
        return f"{grams / 1e3:.3g} kgCO2e"
    return f"{grams:.3g} gCO2e"
