"""The cost wall: what owning or renting accelerators costs, per year, per GPU-hour and per token.

Total cost of ownership over a horizon of Y years = capex + Y x (electricity + maintenance), with capex
spread straight-line (capex / Y per year). Electricity = N x P(u) x PUE x hours x price, with P(u) = P_idle +
(P_max - P_idle) u the power drawn at utilisation u (sustainability.draw; Fan et al., ISCA 2007). Cooling and
power delivery are inside PUE (facility / IT energy, The Green Grid White Paper 49, 2012), not a separate line.
Capex is the accelerators' price, or a catalog node's price (host, NVLink switches and NICs included) when
it has one; scale-out network, storage, the building, staff and financing are not counted, and the result
says so. A GPU-hour costs the total over every owned GPU-hour; a busy one costs that over the utilisation.
Renting pays only for busy hours, so buying pays back after capex / (rent - running cost) (break-even).
"""
from __future__ import annotations

import numpy as np

from .efficiency import Assumption
from .errors import InputError
from .results import Result, Wall, _show, bind
from .serving import ServeResult
from .sustainability import IDLE_FRACTION, YEAR, check_utilization, draw, fleet_of, site, years_of
from .units import check_number, count, to_si

#: Default horizon: a 4-year straight-line life, the server depreciation period hyperscalers used until
#: 2022 (Microsoft FY2022 Form 10-K: servers extended from 4 to 6 years); accelerator generations arrive
#: every ~2 years, so a shorter economic life than a CPU server's is the prudent default.
HORIZON_YEARS = 4.0

#: Annual hardware maintenance as a fraction of capex. CTWatch Quarterly 2(2), May 2006, "Designing and
#: Supporting High-end Computational Facilities" (p. 2): after the first year, annual maintenance contracts
#: "range between 4-8% of the purchase price of the machine"; the midpoint is used.
MAINTENANCE = Assumption(
    "maintenance (fraction of capex per year)", 0.06,
    "CTWatch Quarterly 2(2), May 2006, 'Designing and Supporting High-end Computational Facilities', p. 2: "
    "annual maintenance 4-8% of the purchase price; midpoint")


# ------------------------------------------------------------------------------------------- kernels
def ownership_rates(capex, gpus, power, utilization, pue, price, maintenance, idle_fraction):
    """(electricity USD/s, maintenance USD/s) of owning ``gpus`` accelerators drawing ``power`` W each at
    full load, busy a fraction ``utilization``: N x P(u) x PUE x price, and maintenance x capex / year."""
    return gpus * draw(power, utilization, idle_fraction) * pue * price, maintenance * capex / YEAR


def breakeven_time(capex, rent_rate, running_rate):
    """Time after which buying has cost less than renting: capex / (rent - running), never if rent <= running."""
    gap = np.asarray(rent_rate - running_rate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(gap > 0, capex / np.where(gap > 0, gap, 1.0), np.inf)
    return t if t.ndim else float(t)


def breakeven_utilization(capex, horizon, gpus, power, pue, price, maintenance, rental, idle_fraction):
    """Utilisation at which buying and renting cost the same over ``horizon``: solve
    capex + T (N (a + b u) PUE price + m capex / yr) = r N u T for u, with a = P_idle and b = P_max - P_idle.
    Above 1 (or infinite) means buying never pays back within the horizon at any utilisation."""
    idle = idle_fraction * power
    fixed = capex / horizon + gpus * idle * pue * price + maintenance * capex / YEAR
    slope = gpus * (rental - (power - idle) * pue * price)
    slope = np.asarray(slope, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(slope > 0, fixed / np.where(slope > 0, slope, 1.0), np.inf)
    return u if u.ndim else float(u)


# --------------------------------------------------------------------------------------------- doors
def _capex(f, price, where: str):
    """(capex USD, Assumption saying what it includes): given price, else node price share, else device price."""
    if price is not None:
        each = to_si(price, "currency", name="price", where=where, allow_zero=True)
        note = "given price per accelerator"
    elif f.node is not None and f.node.price is not None:
        each = f.node.price.to("USD").magnitude / f.node.accelerators
        note = (f"{f.node.name} price {f.node.price.to('USD').magnitude:,.0f} USD / {f.node.accelerators}: "
                "accelerators, host CPUs and memory, scale-up switches and NICs; scale-out network, storage, "
                "building, staff and financing not counted")
    elif f.hardware._f.price is not None:
        each = f.hardware._f.price
        note = (f"{f.hardware.name} price only: host server, network, storage, building, staff and financing "
                "not counted")
    else:
        raise InputError(f"{where}: {f.hardware.name} has no price in the catalog; pass price= "
                         "(per accelerator, e.g. '25000 USD')")
    return f.gpus * each, Assumption("capex per accelerator (USD)", float(np.max(each)), note)


def money(usd) -> str:
    """Dollars as a student reads them: 38.5M USD, 824,706 USD, 2.49 USD."""
    if abs(usd) >= 1e6:
        return f"{usd / 1e6:,.3g}M USD" if abs(usd) < 1e9 else f"{usd / 1e9:,.3g}B USD"
    return _show(usd, "USD")


# ------------------------------------------------------------------------------------------- results
class TcoResult(Result):
    """Capex, yearly running costs, total over the horizon and the cost of a GPU-hour."""

    _title = "total cost of ownership"
    _term_unit = "USD"
    _units = {"total": "USD", "capex": "USD", "amortization": "USD/yr", "electricity": "USD/yr",
              "maintenance": "USD/yr", "annual": "USD/yr", "cost_per_gpu_hour": "USD/h",
              "cost_per_busy_gpu_hour": "USD/h", "power": "W", "energy": "Wh", "gpus": "", "years": "yr",
              "utilization": ""}


_COST_WALLS = {"hardware": Wall.COST, "electricity": Wall.COST, "maintenance": Wall.COST}


def _ownership(system, years, utilization, grid, gpus, price, power, electricity_price, pue, maintenance, where):
    """What owning a system costs per second, shared by tco() and rent_or_buy(): the checked horizon and
    utilisation, the fleet, the site, capex (with what it includes) and the power and maintenance rates."""
    span = years_of(years, name="years", where=where)
    u = check_utilization(utilization, where)
    f = fleet_of(system, gpus=gpus, power=power, where=where)
    s = site(grid, pue=pue, electricity_price=electricity_price, where=where, need_price=True)
    capex, capex_note = _capex(f, price, where)
    m, m_used = _maintenance(maintenance, where)
    power_rate, maint_rate = ownership_rates(capex, f.gpus, f.power, u, s.pue, s.price, m, IDLE_FRACTION.value)
    return span, u, f, s, capex, capex_note, m, m_used, power_rate, maint_rate


def tco(system, *, years=HORIZON_YEARS, utilization=1.0, grid=None, gpus=None, price=None, power=None,
        electricity_price=None, pue=None, maintenance=None, budget=None) -> TcoResult:
    """Total cost of owning ``system`` for ``years``: capex, electricity, maintenance, cost per GPU-hour.

    total = capex + Y x (N x P(u) x PUE x 8,766 h x price + m x capex), with P(u) = P_idle + (P_max -
    P_idle) u; amortisation = capex / Y per year (straight line, no residual value, no interest).
    Example: 1,000 H100 at 700 W, PUE 1.12, 0.12 USD/kWh, busy all year: 824,705 USD of electricity a year.

    Parameters
    ----------
    system : Cluster | Hardware | Node | str  (a node name such as "DGX H100" prices and powers the server)
    years : number of years or Quantity[time]  the horizon and straight-line life (default 4)
    utilization : fraction of the time busy, in [0, 1] (default 1); sets the power drawn
    grid : Grid | str  electricity price and PUE (default "US average"); ``electricity_price``
        (Quantity[currency/energy]) and ``pue`` override them
    gpus : int  accelerators, for a Hardware or Node name (default 1, or the node's count)
    price : Quantity[currency]  capex per accelerator (default: node price share, else the catalog price)
    power : Quantity[power]  full power per accelerator (default: node power share, else TDP)
    maintenance : fraction of capex per year (default 0.06, ``MAINTENANCE``)
    budget : Quantity[currency]  ``fits`` says whether the total stays within it

    Returns
    -------
    TcoResult  .total .capex .electricity .maintenance .annual .cost_per_gpu_hour; terms hardware /
    electricity / maintenance (USD over the horizon); bottleneck: cost
    """
    where = "tco()"
    span, u, f, s, capex, capex_note, m, m_used, power_rate, maint_rate = _ownership(
        system, years, utilization, grid, gpus, price, power, electricity_price, pue, maintenance, where)
    terms = dict(hardware=capex + 0.0 * span, electricity=power_rate * span, maintenance=maint_rate * span)
    total = terms["hardware"] + terms["electricity"] + terms["maintenance"]
    gpu_hours = f.gpus * span / 3600.0
    per_hour = total / gpu_hours
    with np.errstate(divide="ignore"):
        per_busy = np.divide(per_hour, u) if np.ndim(u) or np.ndim(per_hour) else \
            (per_hour / u if u > 0 else float("inf"))
    wall, margin = bind(terms, _COST_WALLS)
    fits, limit = True, None
    if budget is not None:
        limit = to_si(budget, "currency", name="budget", where=where)
        fits, margin = total <= limit, total / limit
    it_power = f.gpus * draw(f.power, u, IDLE_FRACTION.value)
    used = (capex_note,) + f.assumptions[:1] + s.assumptions + (IDLE_FRACTION,) + m_used

    def verdict():
        if any(np.ndim(x) for x in (total, per_busy)):
            return ""
        busy = f"{per_busy:.3g} per busy GPU-hour at {u:.0%} utilisation" if u > 0 else "never busy"
        head = f"{span / YEAR:.3g}-year TCO {money(total)}: hardware {money(capex)}, electricity " \
               f"{money(terms['electricity'])}, maintenance {money(terms['maintenance'])}; " \
               f"{per_hour:.3g} USD per GPU-hour ({busy})"
        if limit is None:
            return head
        return (f"within budget: needs {money(total)} of {money(limit)}; " if fits else
                f"over budget: needs {money(total)}, has {money(limit)} (x{total / limit:.2f}); ") + head

    return TcoResult(
        dict(total=total, capex=capex, amortization=capex / span * YEAR, electricity=power_rate * YEAR,
             maintenance=maint_rate * YEAR, annual=total / span * YEAR, cost_per_gpu_hour=per_hour,
             cost_per_busy_gpu_hour=per_busy, power=it_power, energy=it_power * s.pue * span / 3600.0,
             gpus=f.gpus, years=span / YEAR, utilization=u),
        terms=terms, bottleneck=wall, margin=margin, fits=fits, verdict=verdict, assumptions=used,
        formula=("total = capex + Y x (N x (P_idle + (P_max - P_idle) u) x PUE x 8,766 h x price + m x capex); "
                 "cost per GPU-hour = total / (N x Y x 8,766 h)"),
        inputs=dict(system=system, grid=s.name, years=years, utilization=utilization, gpus=f.gpus))


def _maintenance(value, where: str):
    if value is None:
        return MAINTENANCE.value, (MAINTENANCE,)
    m = check_number(value, name="maintenance", where=where, allow_zero=True)
    if np.any(np.asarray(m) >= 1):
        raise InputError(f"{where}: 'maintenance' is a fraction of capex per year (e.g. 0.06), got {value!r}")
    return m, (Assumption("maintenance (fraction of capex per year)", float(np.max(m)), "given"),)


class RentOrBuyResult(Result):
    """Buying against renting the same accelerators for the same busy hours."""

    _title = "rent or buy"
    _term_unit = "USD"
    _units = {"breakeven": "yr", "breakeven_utilization": "", "buy": "USD", "rent": "USD", "savings": "USD",
              "buy_per_busy_gpu_hour": "USD/h", "rental": "USD/h", "years": "yr", "utilization": ""}


def rent_or_buy(system, *, rental, years=HORIZON_YEARS, utilization=1.0, grid=None, gpus=None, price=None,
                power=None, electricity_price=None, pue=None, maintenance=None) -> RentOrBuyResult:
    """Does buying ``system`` pay back within ``years`` against renting it at ``rental`` per GPU-hour?

    Renting pays r x N x u per hour (busy hours only); owning pays capex once plus electricity and
    maintenance every hour. Buying breaks even after t* = capex / (r N u - running cost per hour); if t*
    exceeds the horizon, or renting costs less per hour than running what you own, buying has negative ROI.
    The break-even utilisation is where both cost the same over the horizon.

    Parameters
    ----------
    system : Cluster | Hardware | Node | str
    rental : Quantity[currency/time]  rental price per GPU-hour, e.g. "2.5 USD/h"
    years, utilization, grid, gpus, price, power, electricity_price, pue, maintenance : as in ``tco``

    Returns
    -------
    RentOrBuyResult  .breakeven .breakeven_utilization .buy .rent .savings; fits: buying pays back within
    the horizon; terms buy / rent (USD over the horizon); bottleneck: cost
    """
    where = "rent_or_buy()"
    r = to_si(rental, "price_rate", name="rental", where=where)
    span, u, f, s, capex, capex_note, m, m_used, power_rate, maint_rate = _ownership(
        system, years, utilization, grid, gpus, price, power, electricity_price, pue, maintenance, where)
    running = power_rate + maint_rate
    rent_rate = r * f.gpus * u
    t_even = breakeven_time(capex, rent_rate, running)
    u_even = breakeven_utilization(capex, span, f.gpus, f.power, s.pue, s.price, m, r, IDLE_FRACTION.value)
    buy, rent = capex + running * span, rent_rate * span
    fits = t_even <= span
    with np.errstate(divide="ignore", invalid="ignore"):
        busy_hours = f.gpus * u * span / 3600.0
        per_busy = np.divide(buy, busy_hours) if np.ndim(busy_hours) or np.ndim(buy) else \
            (buy / busy_hours if busy_hours > 0 else float("inf"))
        margin = np.divide(rent, buy) if np.ndim(rent) or np.ndim(buy) else rent / buy
    used = (capex_note,) + f.assumptions[:1] + s.assumptions + (IDLE_FRACTION,) + m_used

    def verdict():
        if any(np.ndim(x) for x in (t_even, buy, rent, u_even)):
            return ""
        horizon = f"{span / YEAR:.3g} years"
        if fits:
            return (f"buy: pays back after {_show(t_even / YEAR, 'yr')} of {horizon} at {u:.0%} utilisation; "
                    f"buying {money(buy)} vs renting {money(rent)} (saves {money(rent - buy)})")
        need = ("buying never pays back at any utilisation" if not u_even <= 1 else
                f"break-even needs {u_even:.0%} utilisation")
        return (f"rent: negative ROI: buying does not pay back within {horizon} at {u:.0%} utilisation "
                f"(buying {money(buy)} vs renting {money(rent)}); {need}")

    return RentOrBuyResult(
        dict(breakeven=t_even / YEAR, breakeven_utilization=u_even, buy=buy, rent=rent, savings=rent - buy,
             buy_per_busy_gpu_hour=per_busy, rental=r * 3600.0, years=span / YEAR, utilization=u),
        terms=dict(buy=buy, rent=rent), bottleneck=Wall.COST, margin=margin, fits=fits, verdict=verdict,
        assumptions=used,
        formula=("break-even t* = capex / (r N u - N P(u) PUE price - m capex / yr); buy = capex + running x Y, "
                 "rent = r N u Y"),
        inputs=dict(system=system, grid=s.name, years=years, utilization=utilization, gpus=f.gpus))


class TokenCostResult(Result):
    """Dollars per million tokens from a cost per GPU-hour and a token rate."""

    _title = "cost per token"
    _term_unit = "USD/Mtoken"
    _units = {"cost": "USD/Mtoken", "tokens_per_second": "token/s", "rate": "USD/h", "gpus": "",
              "utilization": ""}


def token_cost(throughput, *, rate, gpus=None, utilization=None) -> TokenCostResult:
    """Dollars per million tokens: cost = rate x GPUs / (tokens/s x utilisation) x 10^6.

    A GPU-hour costs the same whether it produces tokens or waits; at utilisation u only u of the paid
    hours produce ``throughput``, so each token costs 1/u more. Example: 8 GPUs at 2 USD/h producing
    10,000 token/s all the time cost 16 / 36e6 x 1e6 = 0.444 USD per million tokens.

    Parameters
    ----------
    throughput : ServeResult | Quantity[token/time]  tokens per second of the whole group (a ServeResult
        from ``ml.serve`` gives its tokens_per_second and its ``tp`` GPUs)
    rate : Quantity[currency/time] | TcoResult  cost per GPU-hour: a rental price ("2.5 USD/h"), or a
        ``tco`` result (its cost per owned GPU-hour; terms then split into hardware, electricity, maintenance)
    gpus : int  GPUs producing ``throughput`` (default: the ServeResult's tp, else 1)
    utilization : fraction of paid hours spent producing at ``throughput``, in (0, 1] (default: the TCO's
        utilisation, else 1)

    Returns
    -------
    TokenCostResult  .cost (USD per million tokens); bottleneck: cost
    """
    where = "token_cost()"
    if isinstance(throughput, ServeResult):
        tps = throughput.tokens_per_second.to("token/s").magnitude
        group = throughput.inputs.get("tp", 1)
    elif isinstance(throughput, Result):
        raise InputError(f"{where}: 'throughput' must be a ServeResult (LLM serving) or a token rate such as "
                         f"'5000 token/s', got a {type(throughput).__name__}")
    else:
        tps = to_si(throughput, "token_rate", name="throughput", where=where)
        group = 1
    n = count(gpus if gpus is not None else group, name="gpus", where=where)
    if isinstance(rate, TcoResult):
        per_hour = rate.cost_per_gpu_hour.to("USD/h").magnitude
        default_u = rate.utilization.magnitude
        shares = {k: v / (rate._terms["hardware"] + rate._terms["electricity"] + rate._terms["maintenance"])
                  for k, v in rate._terms.items()}
    elif isinstance(rate, Result):
        raise InputError(f"{where}: 'rate' must be a cost per GPU-hour ('2.5 USD/h') or a TcoResult from "
                         f"ml.tco, got a {type(rate).__name__}")
    else:
        per_hour = to_si(rate, "price_rate", name="rate", where=where, allow_zero=True) * 3600.0
        default_u, shares = 1.0, {"rental": 1.0}
    if utilization is None:
        u = default_u
        if np.any(np.asarray(u) == 0):
            raise InputError(f"{where}: the TCO's utilization is 0; an idle fleet produces no tokens")
    else:
        u = check_number(utilization, name="utilization", where=where)
        if np.any(np.asarray(u) > 1):
            raise InputError(f"{where}: 'utilization' is the fraction of paid hours producing tokens and must "
                             f"be in (0, 1], got {utilization!r}")
    cost = per_hour * n / 3600.0 / (tps * u) * 1e6
    terms = {k: share * cost for k, share in shares.items()}
    wall, margin = bind(terms, {k: Wall.COST for k in terms})

    def verdict():
        if any(np.ndim(x) for x in (cost, tps, per_hour)):
            return ""
        return (f"{cost:.3g} USD per million tokens: {n:g} GPU(s) at {per_hour:.3g} USD/h producing "
                f"{tps:,.0f} token/s, busy {u:.0%} of the time")

    return TokenCostResult(
        dict(cost=cost, tokens_per_second=tps, rate=per_hour, gpus=n, utilization=u),
        terms=terms, bottleneck=wall, margin=margin, verdict=verdict, assumptions=(),
        formula="USD per 1M tokens = rate per GPU-hour x GPUs / (3600 x tokens/s x utilisation) x 1e6",
        inputs=dict(throughput=throughput if not isinstance(throughput, Result) else "ServeResult",
                    rate=rate if not isinstance(rate, Result) else "TcoResult", gpus=n, utilization=u))
