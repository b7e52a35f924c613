"""Queueing: why a server that is 80% busy answers in 5x its service time, and its p99 in 23x.

Requests arrive at random (Poisson, rate lambda) and each takes a service time S on one of c servers.
Utilisation rho = lambda S / c. Below rho = 1 the queue is stable and the wait grows like rho / (1 - rho);
at rho >= 1 it grows without bound, which is a verdict ("unstable"), never a number. Three models:

- M/M/1 (exponential service, one server): the response time is exponential with rate mu - lambda, so
  every percentile is exact: T_p = -ln(1 - p) / (mu - lambda) (Kleinrock, "Queueing Systems" vol. 1, 1975,
  sec. 3.2).
- M/M/c (Erlang C): P(wait) = C(c, a) with a = lambda S Erlangs, and P(W > t) = C exp(-(c mu - lambda) t)
  (Erlang 1917; Kleinrock sec. 3.5; Harchol-Balter, "Performance Modeling and Design of Computer
  Systems", 2013, ch. 14). Response-time percentiles invert the exact distribution of W + S.
- M/G/1 and M/G/c (service-time coefficient of variation C_s): the mean wait is the M/M/c wait times
  (1 + C_s^2) / 2, Pollaczek-Khinchine's formula at c = 1 (Kleinrock ch. 5) and the Allen-Cunneen
  approximation for c > 1 (Allen, "Probability, Statistics and Queueing Theory", 2nd ed., 1990). Its tail
  is taken as exponential with the same P(wait) and mean, P(W > t) = C exp(-t C / W): exact for M/M/c, and
  the heavy-traffic limit for M/G/1 (Kingman, "On queues in heavy traffic", JRSS B 24, 1962). A response
  percentile is then the service time plus that wait percentile.

Every kernel takes floats or numpy arrays in SI (requests/s, s) and is vectorised over arrival rates.
"""
from __future__ import annotations

import numpy as np

from .efficiency import Assumption
from .errors import InputError
from .results import Result, Wall
from .units import check_number, count, show, to_si

#: Exact log(n!) for small n, from a table; Stirling's series beyond (error < 1e-16 for n >= 64).
_LOG_FACTORIAL = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, 64, dtype=float)))])

#: Poisson terms more than this many standard deviations (plus a constant) below the mean are dropped from
#: Erlang sums (their share is below 1e-17, under float precision); candidate server counts are searched up
#: to this many standard deviations above it (Erlang C there is below 1e-11, so every percentile short of
#: p99.999999999 is met).
_TAIL_SIGMAS, _TAIL_PAD = 9.0, 30.0
_STAFF_SIGMAS, _STAFF_PAD = 7.0, 20.0

#: Elements per block of the (rows x Poisson terms) arrays, to bound memory on large sweeps.
_BLOCK = 1 << 20

#: The approximation used whenever the service time is not exponential (C_s != 1).
MG_APPROXIMATION = Assumption(
    "non-exponential service (C_s != 1)", 1.0,
    "mean wait = M/M/c wait x (1 + C_s^2)/2: Pollaczek-Khinchine (exact, c = 1), Allen-Cunneen (c > 1); "
    "wait tail exponential with the same P(wait) and mean (Kingman 1962, heavy traffic); response "
    "percentile = service time + wait percentile")


# ------------------------------------------------------------------------------------------- doors
def request_rate(value, *, name: str, where: str):
    """An arrival rate ('160 req/s', '160 /s', '9.6e3 req/min') in requests per second."""
    return to_si(value, "request_rate", name=name, where=where)


def check_percentile(value, where: str) -> float:
    p = check_number(value, name="percentile", where=where)
    if np.any(np.asarray(p) >= 1):
        raise InputError(f"{where}: 'percentile' is a fraction such as 0.99 (p99), got {value!r}")
    return p


# ------------------------------------------------------------------------------------------ kernels
def log_factorial(n):
    """log(n!) for non-negative integers (floats or arrays): a table below 64, Stirling's series above."""
    n = np.asarray(n, dtype=float)
    small = n < 64
    big = np.where(small, 64.0, n)
    stirling = (big * np.log(big) - big + 0.5 * np.log(2 * np.pi * big) + 1 / (12 * big) - 1 / (360 * big ** 3)
                + 1 / (1260 * big ** 5))
    out = np.where(small, _LOG_FACTORIAL[np.where(small, n, 0).astype(int)], stirling)
    return float(out) if out.ndim == 0 else out


def _log_terms(a, lo, width):
    """log(a^k / k!) for k = lo .. lo + width - 1, one row per element of ``a``: the unnormalised Poisson
    pmf from which Erlang's formulas are ratios. Built by cumulative sums of log(a / k) from the first
    term, so one logarithm per term."""
    k = lo[:, None] + np.arange(width)[None, :]
    steps = np.log(a)[:, None] - np.log(np.maximum(k, 1.0))
    steps[:, 0] = lo * np.log(a) - log_factorial(lo)
    return k, np.cumsum(steps, axis=1)


def _blocks(widths):
    """(row indices, width) blocks over rows that need ``widths`` terms each. Rows are sorted by width and
    a block spans at most a factor of two in width, so a sweep from 10 to 1,000 req/s does not pad every
    row to the widest; each (rows x width) array stays under ``_BLOCK`` elements."""
    order = np.argsort(widths, kind="stable")
    sorted_widths = widths[order]
    start = 0
    while start < len(order):
        stop = max(int(np.searchsorted(sorted_widths, 2 * sorted_widths[start], side="right")), start + 1)
        stop = min(stop, start + max(1, _BLOCK // int(sorted_widths[stop - 1])))
        yield order[start:stop], int(sorted_widths[stop - 1])
        start = stop


def erlang_c(servers, load):
    """Probability that an arrival waits in M/M/c with ``servers`` = c and offered ``load`` a = lambda S
    (Erlangs); 1 where a >= c. Computed as Erlang B = pmf(c) / cdf(c) of a Poisson(a) variable in log space
    (no overflow at any c), then C = c B / (c - a (1 - B)) (Kleinrock 1975, sec. 3.5)."""
    c, a = np.broadcast_arrays(np.asarray(servers, dtype=float), np.asarray(load, dtype=float))
    shape, c, a = c.shape, c.ravel(), a.ravel()
    stable = a < c
    a_ok = np.where(stable, a, 0.5)
    c_ok = np.where(stable, c, 1.0)
    sd = np.sqrt(a_ok)
    lo = np.maximum(np.floor(a_ok - _TAIL_SIGMAS * sd - _TAIL_PAD), 0.0)
    hi = np.minimum(c_ok, np.ceil(a_ok + _TAIL_SIGMAS * sd + _TAIL_PAD))
    log_cdf = np.empty(len(a_ok))
    for rows, width in _blocks(hi - lo + 1):
        k, log_t = _log_terms(a_ok[rows], lo[rows], width)
        log_t = np.where(k <= hi[rows, None], log_t, -np.inf)
        top = np.max(log_t, axis=1)
        log_cdf[rows] = top + np.log(np.sum(np.exp(log_t - top[:, None]), axis=1))
    b = np.exp(c_ok * np.log(a_ok) - log_factorial(c_ok) - log_cdf)
    out = np.where(stable, c_ok * b / (c_ok - a_ok * (1.0 - b)), 1.0).reshape(shape)
    return float(out) if out.ndim == 0 else out


def wait_percentile(p, wait_probability, drain, service_cv=1.0):
    """p-quantile of the wait when P(W > t) = C exp(-t drain 2 / (1 + C_s^2)), drain = c mu - lambda:
    zero when fewer than a share 1 - p of arrivals wait at all."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log(wait_probability / (1.0 - p)) * (1.0 + service_cv ** 2) / (2.0 * drain)
    return np.maximum(np.nan_to_num(t, nan=0.0, neginf=0.0), 0.0)


def min_servers(load, service, budget, p, service_cv=1.0):
    """Fewest servers c for which the p-quantile wait is within ``budget`` seconds (inf: just stable), for
    arrays of load a = lambda S. One pass: the Poisson terms near a are summed cumulatively, which gives
    Erlang B, hence C and the wait percentile, for every candidate c from floor(a) + 1 to a + 7 sqrt(a) + 20
    at once (square-root staffing puts the answer within a few sqrt(a) of a; Halfin & Whitt, Operations
    Research 29, 1981). Where even that many miss the budget, the largest candidate is returned."""
    a, s, budget = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (load, service, budget)))
    shape = a.shape
    a, s, budget = a.ravel(), s.ravel(), budget.ravel()
    sd = np.sqrt(a)
    lo = np.maximum(np.floor(a - _TAIL_SIGMAS * sd - _TAIL_PAD), 0.0)
    first = np.floor(a) + 1.0
    hi = np.ceil(a + _STAFF_SIGMAS * sd + _STAFF_PAD)
    c = np.empty(len(a))
    for rows, width in _blocks(hi - lo + 1):
        k, log_t = _log_terms(a[rows], lo[rows], width)
        t = np.exp(log_t - np.max(log_t, axis=1, keepdims=True))
        b = t / np.cumsum(t, axis=1)
        ar = a[rows, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            c_wait = np.where(k > ar, k * b / (k - ar * (1.0 - b)), 1.0)
            wait = wait_percentile(p, c_wait, (k - ar) / s[rows, None], service_cv)
        ok = (wait <= budget[rows, None]) & (k >= first[rows, None]) & (k <= hi[rows, None])
        c[rows] = np.where(np.any(ok, axis=1), k[np.arange(len(k)), np.argmax(ok, axis=1)], hi[rows])
    return c.reshape(shape) if shape else float(c[0])


def _response_tail(t, mu, theta, wait_probability):
    """P(T > t) for M/M/c: no wait with probability 1 - C, else an Exp(theta) wait plus an Exp(mu) service
    (a hypoexponential; its mu = theta limit is (1 + mu t) e^(-mu t))."""
    close = np.abs(mu - theta) <= 1e-9 * mu
    denom = np.where(close, 1.0, mu - theta)
    hypo = np.where(close, (1 + mu * t) * np.exp(-mu * t),
                    (mu * np.exp(-theta * t) - theta * np.exp(-mu * t)) / denom)
    return (1 - wait_probability) * np.exp(-mu * t) + wait_probability * hypo


def response_percentile_mmc(p, mu, theta, wait_probability):
    """p-quantile of the M/M/c response time by bisection on its exact tail (monotone in t). The tail is
    at most 2 exp(-min(mu, theta) t / 2), which bounds the search."""
    mu, theta, cw = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (mu, theta, wait_probability)))
    lo = np.zeros(mu.shape)
    hi = 2.0 * np.log(2.0 / (1.0 - p)) / np.minimum(mu, theta)
    for _ in range(64):  # bisection steps halve the bracket; 64 reach float precision
        mid = 0.5 * (lo + hi)
        above = _response_tail(mid, mu, theta, cw) > 1.0 - p
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    out = 0.5 * (lo + hi)
    return float(out) if out.ndim == 0 else out


def queue_kernel(arrival, service, servers, service_cv, p):
    """Every queue metric as floats/arrays: (utilisation, C, mean wait, wait_p, response_p, stable)."""
    a = arrival * service
    rho = a / servers
    stable = rho < 1.0
    c_wait = erlang_c(servers, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        drain = np.where(stable, (servers - a) / service, np.nan)  # c mu - lambda
        mean_wait = np.where(stable, c_wait / drain * (1.0 + service_cv ** 2) / 2.0, np.inf)
    wait_p = np.where(stable, wait_percentile(p, c_wait, np.where(stable, drain, 1.0), service_cv), np.inf)
    if np.all(np.asarray(service_cv) == 1.0):
        mu = 1.0 / service
        if np.all(np.asarray(servers) == 1):  # M/M/1: T ~ Exp(mu - lambda) exactly
            with np.errstate(divide="ignore"):
                resp_p = np.where(stable, -np.log(1.0 - p) / np.where(stable, mu - arrival, 1.0), np.inf)
        else:
            resp_p = np.where(stable, response_percentile_mmc(p, mu + 0 * a, np.where(stable, drain, mu),
                                                              c_wait), np.inf)
    else:
        resp_p = service + wait_p
    return rho, c_wait, mean_wait, wait_p, resp_p, stable


# ------------------------------------------------------------------------------------------ results
def label(value, unit: str) -> str:
    """An input as ``inputs`` records it: the value with its unit, or 'array' for a sweep."""
    return show(value, unit) if np.ndim(value) == 0 else f"array[{np.size(value)}]"


def scalars(**values):
    """Zero-dimensional arrays (what numpy returns for scalar inputs) as plain floats, arrays unchanged."""
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=float)) for k, v in values.items()}


class QueueResult(Result):
    _title = "queueing"
    _units = {"response": "s", "response_percentile": "s", "wait": "s", "wait_percentile": "s",
              "utilisation": "", "wait_probability": "", "offered_load": "", "capacity": "req/s",
              "arrival": "req/s", "service": "s", "servers": ""}


def _model_name(servers, cv) -> str:
    many = np.any(np.asarray(servers) > 1)
    if np.all(np.asarray(cv) == 1.0):
        return "M/M/c" if many else "M/M/1"
    return "M/G/c" if many else "M/G/1"


def _pct(p) -> str:
    return f"p{100 * p:g}" if np.ndim(p) == 0 else "percentile"


def _unstable_verdict(a, servers, arrival, service) -> str:
    if np.ndim(a) == 0 and np.ndim(servers) == 0:
        excess = "equal capacity" if a == servers else f"exceed capacity by x{a / servers:.3g}"
        return (f"unstable: arrivals {excess} ({show(arrival, 'req/s')} offered, "
                f"{show(servers / service, 'req/s')} of service); the queue grows without bound")
    bad = np.broadcast_to(a >= servers, np.broadcast(a, servers).shape)
    return (f"unstable at {int(np.sum(bad))} of {bad.size} points: arrivals exceed capacity there "
            f"(by up to x{np.max(a / servers):.3g}); the queue grows without bound")


def queue(arrival, service, *, servers=1, service_cv=1.0, percentile=0.99, slo=None) -> QueueResult:
    """Mean and tail latency of a queue of Poisson arrivals in front of ``servers`` identical servers.

    M/M/1 and M/M/c (``service_cv=1``) are exact; other ``service_cv`` use Pollaczek-Khinchine (c = 1) or
    Allen-Cunneen (c > 1) for the mean and an exponential tail for percentiles (see the module docstring).
    Seed check: S = 5 ms at rho = 0.8 (160 req/s) gives a 25 ms mean and a 115 ms p99.

    Parameters
    ----------
    arrival : Quantity[count/time] or Quantity[1/time]  e.g. "160 req/s"; an array quantity sweeps
    service : Quantity[time]  mean service time per request, e.g. "5 ms"
    servers : int  identical servers sharing one queue (c)
    service_cv : float  coefficient of variation of the service time (1 exponential, 0 deterministic)
    percentile : float in (0, 1)  which tail to report (0.99 = p99)
    slo : Quantity[time], optional  a target for that percentile of the response time

    Returns
    -------
    QueueResult  .response .response_percentile .wait .wait_percentile .utilisation .wait_probability ...
    An unstable queue (rho >= 1) is a verdict: fits=False, infinite waits, "unstable: arrivals exceed
    capacity by x1.25".
    """
    where = "queue()"
    lam = request_rate(arrival, name="arrival", where=where)
    s = to_si(service, "time", name="service", where=where)
    c = count(servers, name="servers", where=where)
    cv = check_number(service_cv, name="service_cv", where=where, allow_zero=True)
    p = check_percentile(percentile, where)
    target = None if slo is None else to_si(slo, "time", name="slo", where=where)
    rho, c_wait, mean_wait, wait_p, resp_p, stable = queue_kernel(lam, s, c, cv, p)
    model = _model_name(c, cv)
    values = scalars(response=mean_wait + s, response_percentile=resp_p, wait=mean_wait, wait_percentile=wait_p,
                     utilisation=rho, wait_probability=c_wait, offered_load=lam * s, capacity=c / s + 0 * rho,
                     arrival=lam + 0 * rho, service=s + 0 * rho, servers=c + 0 * rho)
    # Margin as elsewhere in the package: what is needed over what there is (offered load over capacity,
    # or the tail over its SLO).
    if target is None:
        fits, wall, margin = stable, Wall.MULTI_TENANT, values["utilisation"]
    else:
        fits, wall = stable & (resp_p <= target), Wall.LATENCY_SLO
        margin = values["response_percentile"] / target
    fits = fits if np.ndim(fits) else bool(fits)
    resp_p, mean_wait = values["response_percentile"], values["wait"]

    def verdict() -> str:
        if not np.all(stable):
            return _unstable_verdict(lam * s, c, lam, s)
        if np.ndim(rho):
            return f"{model}: stable at every point (utilisation up to {np.max(rho):.0%})"
        head = (f"{model} at {rho:.0%} utilisation: mean response {show(mean_wait + s, 's')}, "
                f"{_pct(p)} {show(resp_p, 's')} ({resp_p / s:.3g}x the service time)")
        if target is None:
            return head
        state = "meets" if resp_p <= target else "misses"
        return f"{state} the {_pct(p)} SLO of {show(target, 's')}: " + head

    terms = dict(service=values["service"], queueing=mean_wait)
    return QueueResult(values, terms=terms, bottleneck=wall, margin=margin, fits=fits, verdict=verdict,
                       assumptions=() if np.all(np.asarray(cv) == 1.0) else (MG_APPROXIMATION,),
                       formula=("rho = lambda S / c; P(wait) = Erlang C(c, lambda S); mean wait = P(wait) / "
                                "(c/S - lambda) x (1 + C_s^2)/2; P(W > t) = P(wait) exp(-(c/S - lambda) t)"),
                       inputs=dict(model=model, arrival=label(lam, "req/s"), service=label(s, "s"),
                                   servers=label(c, ""), service_cv=label(cv, ""), percentile=p))


class PoolingResult(Result):
    _title = "multi-tenant pooling"
    _units = {"dedicated": "s", "shared": "s", "speedup": "", "servers": "", "shared_servers_needed": "",
              "servers_saved": "", "utilisation": ""}


def pooling(arrival, service, *, servers, tenants, percentile=0.99, service_cv=1.0) -> PoolingResult:
    """Dedicated servers per tenant versus one shared pool: the multi-tenant queueing wall, and Erlang's
    economy of scale. Each of ``tenants`` tenants sends ``arrival`` to ``servers`` servers of its own, or
    all share tenants x servers servers behind one queue (same utilisation). The shared pool's tail is
    shorter, and it needs fewer servers to match the dedicated tail wait (square-root staffing: spare
    capacity grows like sqrt(load), not like load; Halfin & Whitt 1981).

    Parameters
    ----------
    arrival : Quantity[count/time]  per tenant, e.g. "40 req/s"
    service : Quantity[time]
    servers : int  servers dedicated to each tenant
    tenants : int  tenants that could share
    percentile, service_cv : as in ``queue``
    """
    where = "pooling()"
    lam = request_rate(arrival, name="arrival", where=where)
    s = to_si(service, "time", name="service", where=where)
    c = count(servers, name="servers", where=where)
    n = count(tenants, name="tenants", where=where)
    cv = check_number(service_cv, name="service_cv", where=where, allow_zero=True)
    p = check_percentile(percentile, where)
    rho, _, _, wait_d, resp_d, stable = queue_kernel(lam, s, c, cv, p)
    _, _, _, _, resp_s, _ = queue_kernel(n * lam, s, n * c, cv, p)
    need = np.where(stable, min_servers(n * lam * s, s, np.where(stable, wait_d, np.inf), p, cv), np.inf)
    need = np.maximum(need, 1.0)
    values = scalars(dedicated=resp_d, shared=resp_s, speedup=resp_d / resp_s, servers=n * c + 0 * rho,
                     shared_servers_needed=need, servers_saved=n * c - need, utilisation=rho)
    resp_d, resp_s, need = values["dedicated"], values["shared"], values["shared_servers_needed"]
    stable = stable if np.ndim(stable) else bool(stable)

    def verdict() -> str:
        if not np.all(stable):
            return _unstable_verdict(lam * s, c, lam, s)
        if np.ndim(resp_d):
            return f"sharing shortens the {_pct(p)} at every point (up to x{np.max(resp_d / resp_s):.3g})"
        return (f"{int(n)} tenants at {rho:.0%} utilisation: {_pct(p)} {show(resp_d, 's')} on dedicated servers, "
                f"{show(resp_s, 's')} shared (x{resp_d / resp_s:.3g}); a shared pool matches the dedicated "
                f"tail wait with {need:.0f} of {n * c:.0f} servers")

    return PoolingResult(values, terms=dict(dedicated=resp_d, shared=resp_s), bottleneck=Wall.MULTI_TENANT,
                         margin=values["speedup"], fits=stable, verdict=verdict,
                         assumptions=() if cv == 1.0 else (MG_APPROXIMATION,),
                         formula="dedicated: M/M/c with lambda, c; shared: M/M/(n c) with n lambda (Erlang C)",
                         inputs=dict(arrival=label(lam, "req/s"), service=label(s, "s"), servers=label(c, ""),
                                     tenants=label(n, ""), percentile=p, service_cv=label(cv, "")))


class FormationResult(Result):
    _title = "static batch formation"
    _units = {"mean_delay": "s", "max_delay": "s", "fill_time": "s", "slo_share": "", "batch": "",
              "arrival": "req/s"}


def batch_formation(arrival, batch, *, slo=None) -> FormationResult:
    """How long requests wait for a static batch of ``batch`` to fill at Poisson rate ``arrival``.

    The i-th of B arrivals waits for the B - i after it, each 1/lambda apart on average, so the first waits
    (B - 1)/lambda and the mean over the batch is (B - 1)/(2 lambda) (the batching half of the
    throughput-latency trade; continuous batching removes it by admitting requests every iteration, Yu et
    al., "Orca", OSDI 2022). Seed check: batch 32 at 500 req/s waits 31 ms on average, 62% of a 50 ms SLO.

    Parameters
    ----------
    arrival : Quantity[count/time]  e.g. "500 req/s"
    batch : int  requests per static batch
    slo : Quantity[time], optional  latency budget the mean formation delay is compared with
    """
    where = "batch_formation()"
    lam = request_rate(arrival, name="arrival", where=where)
    b = count(batch, name="batch", where=where)
    target = None if slo is None else to_si(slo, "time", name="slo", where=where)
    mean, worst = (b - 1.0) / (2.0 * lam), (b - 1.0) / lam
    share = mean / target if target is not None else np.nan + 0 * mean
    values = scalars(mean_delay=mean, max_delay=worst, fill_time=b / lam, slo_share=share, batch=b + 0 * mean,
                     arrival=lam + 0 * mean)
    fits = True if target is None else (values["mean_delay"] <= target if np.ndim(mean) else bool(mean <= target))

    def verdict() -> str:
        if np.ndim(mean):
            return f"mean formation delay {show(np.min(mean), 's')} to {show(np.max(mean), 's')}"
        head = (f"a batch of {b:g} at {show(lam, 'req/s')} fills in {show(b / lam, 's')}; requests wait "
                f"{show(mean, 's')} on average for it to fill (the first {show(worst, 's')})")
        return head + (f", {share:.0%} of the {show(target, 's')} SLO" if target is not None else "")

    return FormationResult(values, terms=dict(formation=values["mean_delay"]), bottleneck=Wall.BATCHING,
                           margin=values["slo_share"] if target is not None else np.inf, fits=fits,
                           verdict=verdict, formula="mean wait = (B - 1) / (2 lambda); first = (B - 1) / lambda",
                           inputs=dict(arrival=label(lam, "req/s"), batch=label(b, ""),
                                       slo=show(target, "s") if target is not None else "none"))
