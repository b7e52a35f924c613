"""Serving fleets: how many GPUs a request rate needs under a latency SLO, and what sets that number.

A replica is ``tp`` devices holding one copy of the weights. Under continuous (iteration-level) batching
(Yu et al., "Orca", OSDI 2022) it keeps up to B requests in flight, B limited by the KV cache that fits
beside the weights (``serve(...).max_batch``). Each request occupies one of those slots for its service time

    S(B) = B x T_prefill + (output - 1) x ITL(B)

its own prefill, the prefills of the B - 1 requests that join while it decodes (each pauses the batch:
prefill and decode share the replica, no chunked-prefill overlap), and its decode steps at the batch-B
inter-token latency. So a fleet of R replicas is R x B slots behind one router queue: M/M/c with c = R x B
(queueing.py), whose Erlang-C tail plus S gives the p99 latency. ``fleet()`` picks the B and R that meet the
SLO with the fewest GPUs and names the wall that kept the fleet from shrinking: the SLO, the KV capacity
(batching), compute (past the compute-bound batch more concurrency buys no throughput), or memory
capacity (one replica, the smallest unit that holds the weights, already carries the load).

Also here: paged versus static KV reservation (Kwon et al., "PagedAttention", SOSP 2023), speculative
decoding (Leviathan, Kalman & Matias, ICML 2023) and the seed's "$9 million question": what a
chain-of-thought mode does to the fleet (``reasoning``).
"""
from __future__ import annotations

import numpy as np

from . import catalog
from .efficiency import Assumption
from .errors import InputError
from .memory import bytes_per_value, check_tp, default_kv_precision, kv_cache_bytes
from .queueing import (check_percentile, erlang_c, label, min_servers, request_rate, scalars,
                       wait_percentile)
from .results import Result, Wall
from .serving import serve
from .specs import Transformer
from .units import check_number, count, show, to_si

#: vLLM's default KV block: 16 tokens per page (Kwon et al., SOSP 2023, sec. 7.2 studies 1-256 and
#: chooses 16; vLLM's ``--block-size`` default is 16).
PAGE_TOKENS = 16

#: Batches tried: every batch up to this, then ``_GRID_POINTS`` log-spaced ones up to the KV limit; the
#: SLO boundary is then found exactly by bisection.
_DENSE_BATCHES = 16
_GRID_POINTS = 40
#: Batches tried by the queueing search: a log-spaced pass, then an evenly spaced one around its pick.
_COARSE, _FINE = 20, 24

#: Modelling choices of ``fleet()`` that are not efficiencies, listed in every FleetResult.
ROUTER_QUEUE = Assumption(
    "one router queue over all slots (M/M/c, c = replicas x batch)", 1.0,
    "a request goes to any replica with a free slot (join-idle-queue routing); service time exponential "
    "(service_cv = 1) unless given, which over-states waits for fixed-length outputs (M/D/c waits are about "
    "half: Allen-Cunneen); Erlang 1917, Kleinrock 1975 sec. 3.5")
PREFILL_STALLS = Assumption(
    "prefill pauses decoding (no chunked prefill)", 1.0,
    "each admitted prompt is prefilled in its own iteration and the running batch waits (Orca-style "
    "iteration scheduling, Yu et al. OSDI 2022); chunked prefill hides part of this (Agrawal et al., "
    "Sarathi-Serve, OSDI 2024); slots are costed at full batch, so lightly loaded replicas are faster")


def _batch_grid(top: int) -> np.ndarray:
    """Integer batches 1.._DENSE_BATCHES, then log-spaced up to ``top`` (included)."""
    dense = np.arange(1, min(top, _DENSE_BATCHES) + 1, dtype=float)
    if top <= _DENSE_BATCHES:
        return dense
    sparse = np.round(np.geomspace(_DENSE_BATCHES, top, _GRID_POINTS))
    return np.unique(np.concatenate([dense, sparse, [top]]))


class FleetResult(Result):
    _title = "serving fleet"
    _units = {"gpus": "", "replicas": "", "batch": "", "latency": "s", "median_latency": "s", "ttft": "s",
              "itl": "s", "service": "s", "utilisation": "", "tokens_per_gpu": "token/s", "max_batch": "",
              "compute_bound_batch": "", "capex": "USD", "token_cost": "USD/Mtoken", "qps": "req/s",
              "in_flight": "req"}
    # in_flight: requests being served at once across the fleet, by Little's law L = QPS x S (the
    # offered load in busy batch slots; utilisation = in_flight / (replicas x batch)).


class _Design:
    """The per-request physics of one replica shape (model, hardware, tp, request), as floats."""

    def __init__(self, model, hw, out, kw):
        self.model, self.hw, self.out, self.kw = model, hw, out, kw
        one = serve(model, hw, batch=1, output_tokens=out, **kw)
        self.one = one
        self.prefill = one._v["ttft"]
        self.kv_limit = float(one._v["max_batch"])
        self.crossover = float(one._v["compute_bound_batch"])
        self.fits = bool(one.fits)

    def at(self, batch):
        """(S, effective ITL, ITL, serve result) at ``batch`` (array) concurrent requests per replica."""
        r = serve(self.model, self.hw, batch=batch, output_tokens=self.out, **self.kw)
        itl = r._v["itl"]
        stalls = (batch - 1.0) * self.prefill
        decode = (self.out - 1.0) * itl
        service = self.prefill + stalls + decode
        effective = itl + stalls / max(self.out - 1.0, 1.0)
        return service, effective, itl, r


def _slo_ok(service, effective, prefill, slo):
    """Per-request feasibility (ITL and the room left for queueing) and the wait budget it leaves."""
    budget = np.full(np.shape(service), np.inf)
    ok = np.ones(np.shape(service), dtype=bool)
    if "itl" in slo:
        ok &= effective <= slo["itl"]
    if "ttft" in slo:
        budget = np.minimum(budget, slo["ttft"] - prefill)
    if "latency" in slo:
        budget = np.minimum(budget, slo["latency"] - service)
    return ok & (budget >= 0), budget


def fleet(model, hardware, *, qps, prompt_tokens=1024, output_tokens=256, tp: int = 1, latency=None, ttft=None,
          itl=None, percentile=0.99, max_batch=None, service_cv=1.0, gpu_price=None, gpu_hour=None,
          precision: str = "fp16", kv_precision=None, fabric=None, efficiency=None, prefill_efficiency=None,
          bandwidth_efficiency=None, overhead=None) -> FleetResult:
    """Size a serving fleet: the batch per replica and the replicas that meet an SLO with the fewest GPUs.

    For every batch B up to the KV-capacity limit the service time S(B) (module docstring) gives the
    offered load a = QPS x S(B) in slot-seconds per second; the fewest slots c whose Erlang-C
    ``percentile`` wait fits the SLO's room gives R = ceil(c / B) replicas. Little's law is the skeleton
    (requests in flight = QPS x S); the queue adds the tail.

    Parameters
    ----------
    model : Transformer | str
    hardware : Hardware | str
    qps : Quantity[count/time]  request rate, e.g. "100 req/s" (an array quantity sweeps)
    prompt_tokens, output_tokens : int  tokens in and generated per request
    tp : int  devices per replica (tensor parallel)
    latency : Quantity[time], optional  SLO on the ``percentile`` end-to-end latency
    ttft : Quantity[time], optional  SLO on the ``percentile`` time to first token (queueing + prefill)
    itl : Quantity[time], optional  SLO on the mean inter-token latency (decode step + prefill stalls)
    percentile : float in (0, 1)  0.99 for p99
    max_batch : int, optional  the serving engine's concurrency cap (default: the KV-capacity limit)
    service_cv : float  service-time coefficient of variation for the queue (1: M/M/c)
    gpu_price : Quantity[currency], optional  per device (default: the hardware's catalog price)
    gpu_hour : Quantity[currency/time], optional  e.g. "2.5 USD/h", for the cost per million tokens
    precision, kv_precision, fabric, efficiency, prefill_efficiency, bandwidth_efficiency, overhead : as in
        ``serve``

    Returns
    -------
    FleetResult  .gpus .replicas .batch .latency (p99) .median_latency .ttft .itl .utilisation
    .tokens_per_gpu .capex .token_cost, and .bottleneck: latency SLO, batching (KV capacity), compute, or
    memory capacity (the weights do not fit ``tp`` devices, or one replica already serves the load)
    """
    where = "fleet()"
    model, hw = catalog.workload(model), catalog.hardware(hardware)
    if not isinstance(model, Transformer):
        raise InputError(f"{where}: {model.name} is not a transformer; fleet() sizes LLM serving "
                         "(use serve() and queue() for per-sample models)")
    lam = request_rate(qps, name="qps", where=where)
    prompt = count(prompt_tokens, name="prompt_tokens", where=where, kind="tokens")
    out = count(output_tokens, name="output_tokens", where=where, kind="tokens")
    if np.any(np.asarray(prompt + out) > model.max_context):
        raise InputError(f"{where}: prompt_tokens + output_tokens = {np.max(prompt + out):,.0f} exceeds "
                         f"{model.name}'s context of {model.max_context:,} tokens")
    tp = int(count(tp, name="tp", where=where))
    check_tp(model, tp, where)
    slo = {k: to_si(v, "time", name=k, where=where) for k, v in (("latency", latency), ("ttft", ttft),
                                                                 ("itl", itl)) if v is not None}
    if not slo:
        raise InputError(f"{where}: give at least one SLO: latency= (end to end), ttft= (time to first "
                         "token) or itl= (inter-token latency), e.g. ttft='2 s', itl='200 ms'")
    p = check_percentile(percentile, where)
    cv = check_number(service_cv, name="service_cv", where=where, allow_zero=True)
    cap = None if max_batch is None else count(max_batch, name="max_batch", where=where)
    price = (to_si(gpu_price, "currency", name="gpu_price", where=where) if gpu_price is not None
             else hw._f.price)
    hourly = None if gpu_hour is None else to_si(gpu_hour, "price_rate", name="gpu_hour", where=where)
    kw = dict(prompt_tokens=prompt, precision=precision, kv_precision=kv_precision, tp=tp, fabric=fabric,
              efficiency=efficiency, prefill_efficiency=prefill_efficiency,
              bandwidth_efficiency=bandwidth_efficiency, overhead=overhead)
    design = _Design(model, hw, out, kw)
    inputs = dict(model=model, hardware=hw, qps=label(lam, "req/s"),
                  prompt_tokens=prompt, output_tokens=out, tp=tp, percentile=p,
                  **{k: show(v, "s") for k, v in slo.items()})
    assumptions = design.one.assumptions + (ROUTER_QUEUE, PREFILL_STALLS)
    top = design.kv_limit if cap is None else min(design.kv_limit, cap)
    if not design.fits or top < 1:
        return _infeasible(design, lam, Wall.MEMORY_CAPACITY, design.one.verdict, assumptions, inputs)

    # The largest batch the per-request SLO allows (feasibility falls monotonically with B).
    grid = _batch_grid(int(top))
    s_grid, eff_grid, _, _ = design.at(grid)
    ok_grid, _ = _slo_ok(s_grid, eff_grid, design.prefill, slo)
    if not ok_grid[0]:
        return _infeasible(design, lam, Wall.LATENCY_SLO, _slo_miss(design, slo, s_grid[0], eff_grid[0]),
                           assumptions, inputs)
    best = _largest_ok(design, slo, grid, ok_grid)
    beyond = _slo_ok(*design.at(np.array([top + 1.0]))[:2], design.prefill, slo)[0][0]

    # Queueing: fewest GPUs, then the shortest tail; a coarse pass over B, then a fine one around its pick.
    lam_rows = np.atleast_1d(lam)
    coarse = np.unique(np.concatenate([np.round(np.geomspace(1, best, _COARSE)),
                                       np.arange(max(best - 2, 1), best + 1)]))
    sized = _size(design, lam_rows, np.broadcast_to(coarse, (len(lam_rows), len(coarse))), slo, p, cv)
    i = _pick(sized)
    coarse_reps = sized["replicas"][:, -1]  # at the largest allowed batch
    low, high = coarse[np.maximum(i - 1, 0)], coarse[np.minimum(i + 1, len(coarse) - 1)]
    fine = np.round(low[:, None] + (high - low)[:, None] * np.linspace(0.0, 1.0, _FINE)[None, :])
    fine = np.concatenate([coarse[i][:, None], fine], axis=1)  # the coarse pick stays a candidate
    sized = _size(design, lam_rows, fine, slo, p, cv)
    j = _pick(sized)
    rows = np.arange(len(j))

    def chosen(name):
        x = sized[name][rows, j]
        return x if np.ndim(lam) else x[0]

    b, reps, s, w = chosen("batch"), chosen("replicas"), chosen("service"), chosen("wait")
    cw, dr, ld = chosen("wait_probability"), chosen("drain"), chosen("load")
    gpus = reps * tp
    median = wait_percentile(0.5, cw, dr, cv) + s
    tokens_per_gpu = lam * out / gpus
    values = scalars(
        gpus=gpus, replicas=reps, batch=b, latency=w + s, median_latency=median, ttft=w + design.prefill,
        itl=chosen("effective"), service=s, utilisation=ld / (reps * b), tokens_per_gpu=tokens_per_gpu,
        max_batch=design.kv_limit + 0 * gpus, compute_bound_batch=design.crossover + 0 * gpus,
        capex=gpus * (price if price is not None else np.nan),
        token_cost=(gpus * hourly / (lam * out) * 1e6 if hourly is not None else np.nan + 0 * gpus),
        qps=lam + 0 * gpus, in_flight=ld)
    limit_reps = coarse_reps if np.ndim(lam) else coarse_reps[0]
    wall, margin = _binding(design, values, bool(beyond), slo, limit_reps)
    terms = dict(queueing=values["latency"] - values["service"], prefill=design.prefill + 0 * values["batch"],
                 stalls=(values["batch"] - 1) * design.prefill,
                 decode=values["service"] - values["batch"] * design.prefill)
    return FleetResult(
        values, terms=terms, bottleneck=wall, margin=margin,
        fits=True if np.ndim(lam) == 0 else np.ones(len(j), bool),
        verdict=lambda: _fleet_verdict(values, wall, hw, tp, p, slo), assumptions=assumptions,
        formula=("S(B) = B T_prefill + (out - 1) ITL(B); slots c = fewest with Erlang-C p-wait <= SLO room at "
                 "load QPS x S(B); replicas = ceil(c / B); GPUs = replicas x tp; minimise over B <= KV limit"),
        inputs=inputs)


def _size(design, lam, batch, slo, p, cv) -> dict:
    """For request rates ``lam`` (Q,) and candidate batches (Q, m): fewest replicas meeting the SLO, and the
    queue at that size (Erlang C over replicas x batch slots)."""
    service, effective, _, _ = design.at(batch.ravel())
    service, effective = service.reshape(batch.shape), effective.reshape(batch.shape)
    _, budget = _slo_ok(service, effective, design.prefill, slo)
    load = lam[:, None] * service
    replicas = np.ceil(min_servers(load, service, budget, p, cv) / batch - 1e-9)
    c = replicas * batch
    c_wait = erlang_c(c, load)
    drain = (c - load) / service
    return dict(batch=batch, service=service, effective=effective, replicas=replicas, load=load,
                wait_probability=c_wait, drain=drain, wait=wait_percentile(p, c_wait, drain, cv))


def _pick(sized) -> np.ndarray:
    """Per row, the candidate with the fewest replicas, then the shortest tail latency."""
    return np.lexsort((sized["wait"] + sized["service"], sized["replicas"]), axis=1)[:, 0]


def _largest_ok(design, slo, grid, ok_grid) -> float:
    """The largest batch meeting the per-request SLO: the last feasible grid point, refined by bisection."""
    last = int(np.nonzero(ok_grid)[0][-1])
    if last == len(grid) - 1:
        return float(grid[-1])
    lo, hi = float(grid[last]), float(grid[last + 1])
    while hi - lo > 1:  # bisection over the gap between two grid points (a few steps)
        mid = float(np.floor((lo + hi) / 2))
        ok, _ = _slo_ok(*design.at(np.array([mid]))[:2], design.prefill, slo)
        lo, hi = (mid, hi) if ok[0] else (lo, mid)
    return lo


def _binding(design, v, slo_allows_more, slo, replicas_at_limit):
    """Which wall stopped the fleet from shrinking, and its margin as need over limit.

    One replica: nothing smaller exists (the weights need ``tp`` devices). Past the compute-bound batch:
    compute. Otherwise, if batching up to the largest allowed batch saves no replica, that limit binds:
    the KV capacity (batching) when the SLO would allow more, else the SLO; if a smaller batch was
    better, the SLO's room for queueing binds."""
    b, reps = v["batch"], v["replicas"]
    at_limit = replicas_at_limit <= reps
    kv_bound = at_limit & slo_allows_more
    walls = np.select([reps <= 1, b >= design.crossover, kv_bound],
                      [np.array(Wall.MEMORY_CAPACITY, dtype=object), np.array(Wall.COMPUTE, dtype=object),
                       np.array(Wall.BATCHING, dtype=object)],
                      default=np.array(Wall.LATENCY_SLO, dtype=object))
    margin = np.select([walls == Wall.MEMORY_CAPACITY, walls == Wall.COMPUTE, walls == Wall.BATCHING],
                       [v["utilisation"], b / design.crossover, _kv_fill(design, b)], default=_slo_ratio(v, slo))
    if np.ndim(walls) == 0:
        return walls.item(), float(margin)
    return walls, margin


def _kv_fill(design, batch):
    """Share of device memory in use with ``batch`` requests at their final length (weights + KV)."""
    one = design.one._v
    per_seq = _kv_per_sequence(design)
    weights = one["memory_per_device"] - per_seq  # serve() at batch 1 holds the weights and one sequence
    return (weights + batch * per_seq) / one["memory_capacity"]


def _kv_per_sequence(design):
    m, kw = design.model, design.kw
    kv_bpv = bytes_per_value(kw["kv_precision"] or default_kv_precision(kw["precision"]), "fleet()")
    per_sequence = kv_cache_bytes(kw["prompt_tokens"] + design.out, m._f.layers, m._f.kv_dim, kv_bpv)
    return per_sequence / min(kw["tp"], m.kv_heads)  # KV heads split across the group, as in serve()


def _slo_ratio(v, slo):
    """The tightest SLO's measured / target (<= 1 when met)."""
    ratios = [v[k] / t for k, t in slo.items()]
    return np.max(np.stack(np.broadcast_arrays(*ratios)), axis=0) if len(ratios) > 1 else ratios[0]


def _slo_miss(design, slo, service, effective) -> str:
    if "itl" in slo and effective > slo["itl"]:
        return (f"no batch meets the ITL SLO of {show(slo['itl'], 's')}: batch 1 already takes "
                f"{show(effective, 's')} per token")
    if "ttft" in slo and design.prefill > slo["ttft"]:
        return (f"no batch meets the TTFT SLO of {show(slo['ttft'], 's')}: the prefill alone takes "
                f"{show(design.prefill, 's')}")
    return (f"no batch meets the latency SLO of {show(slo['latency'], 's')}: one request alone takes "
            f"{show(service, 's')}")


def _infeasible(design, lam, wall, verdict, assumptions, inputs) -> FleetResult:
    inf, zero = np.full(np.shape(lam), np.inf), np.zeros(np.shape(lam))
    values = scalars(gpus=inf, replicas=inf, batch=zero, latency=inf, median_latency=inf, ttft=inf, itl=inf,
                     service=inf, utilisation=zero, tokens_per_gpu=zero, max_batch=design.kv_limit + zero,
                     compute_bound_batch=design.crossover + zero, capex=inf, token_cost=inf, qps=lam + zero,
                     in_flight=inf)
    fits = False if np.ndim(lam) == 0 else np.zeros(np.shape(lam), bool)
    return FleetResult(values, terms={}, bottleneck=wall, margin=np.inf, fits=fits, verdict=verdict,
                       assumptions=assumptions, formula="", inputs=inputs)


_WHY = {Wall.COMPUTE: "compute binds: past the compute-bound batch more concurrency buys no throughput",
        Wall.BATCHING: "batching binds: the SLO would allow a larger batch than the KV cache (or max_batch) holds",
        Wall.LATENCY_SLO: "the latency SLO binds",
        Wall.MEMORY_CAPACITY: "one replica (the weights' home) already carries the load"}


def _fleet_verdict(v, wall, hw, tp, p, slo) -> str:
    if np.ndim(v["gpus"]):
        return f"{int(np.min(v['gpus']))} to {int(np.max(v['gpus']))} GPUs over the swept request rates"
    pct = f"p{100 * p:g}"
    target = ", ".join(f"{k} {show(t, 's')}" for k, t in slo.items())
    replicas = f"{int(v['replicas'])} replica{'s' if v['replicas'] > 1 else ''}"
    return (f"{int(v['gpus'])} GPUs: {replicas} x {tp} {hw.name} at batch {int(v['batch'])} "
            f"for {show(v['qps'], 'req/s')}; {pct} latency {show(v['latency'], 's')}, {pct} TTFT "
            f"{show(v['ttft'], 's')}, ITL {show(v['itl'], 's')} (SLO {target}); {_WHY[wall]}")


# --------------------------------------------------------------------------------- paged KV cache
class PagedKVResult(Result):
    _title = "KV reservation: static vs paged"
    _units = {"static_batch": "", "paged_batch": "", "gain": "", "static_waste": "", "paged_waste": "",
              "free_memory": "B", "kv_per_token": "B"}


def paged_kv(model, hardware, *, tokens, max_context=None, block=PAGE_TOKENS, tp: int = 1,
             precision: str = "fp16", kv_precision=None) -> PagedKVResult:
    """How many sequences fit when each reserves ``max_context`` tokens of KV (static) versus only its
    ``tokens`` rounded up to whole ``block``-token pages (PagedAttention; Kwon et al., SOSP 2023, sec. 4:
    waste only in each sequence's last block). Seed check: 128 of a 512-token reservation wastes 75%.

    Parameters
    ----------
    model : Transformer | str
    hardware : Hardware | str
    tokens : int or array  tokens each sequence actually holds (prompt + generated)
    max_context : int  the static reservation per sequence (default: the model's max_context)
    block : int  tokens per KV page (default 16, vLLM's)
    tp, precision, kv_precision : as in ``serve``
    """
    where = "paged_kv()"
    model, hw = catalog.workload(model), catalog.hardware(hardware)
    if not isinstance(model, Transformer):
        raise InputError(f"{where}: {model.name} has no KV cache; give a transformer")
    n = count(tokens, name="tokens", where=where, kind="tokens")
    reserve = count(model.max_context if max_context is None else max_context, name="max_context",
                    where=where, kind="tokens")
    page = count(block, name="block", where=where, kind="tokens")
    tp = int(count(tp, name="tp", where=where))
    check_tp(model, tp, where)
    if np.any(np.asarray(n) > reserve):
        raise InputError(f"{where}: 'tokens' ({np.max(n):g}) exceeds the static reservation max_context "
                         f"({reserve:g}); a sequence cannot outgrow its reservation")
    bpv = bytes_per_value(precision, where)
    kv_bpv = bytes_per_value(kv_precision or default_kv_precision(precision), where)
    f = model._f
    per_token = kv_cache_bytes(1.0, f.layers, f.kv_dim, kv_bpv) / min(tp, model.kv_heads)
    free = hw._f.capacity - f.params * bpv / tp
    paged_tokens = np.ceil(n / page) * page
    static = np.maximum(np.floor(free / (reserve * per_token)), 0.0)
    paged = np.maximum(np.floor(free / (paged_tokens * per_token)), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(static > 0, paged / np.where(static > 0, static, 1.0), np.inf)
    values = scalars(static_batch=static + 0 * paged, paged_batch=paged, gain=gain,
                     static_waste=1.0 - n / reserve, paged_waste=1.0 - n / paged_tokens,
                     free_memory=free + 0 * paged, kv_per_token=per_token + 0 * paged)
    fits = free > 0

    def verdict() -> str:
        if not fits:
            return (f"the weights alone ({show(f.params * bpv / tp, 'B')} per device) overflow "
                    f"{show(hw._f.capacity, 'B')}: no KV room at all")
        if np.ndim(values["paged_batch"]):
            return f"paged reservation fits x{np.min(gain):.3g} to x{np.max(gain):.3g} more sequences"
        return (f"static reservation of {reserve:,.0f} tokens wastes {values['static_waste']:.0%} of the KV cache "
                f"({static:,.0f} sequences); {page:g}-token pages waste {values['paged_waste']:.1%} "
                f"({paged:,.0f} sequences, x{values['gain']:.3g})")

    return PagedKVResult(
        values, terms={}, bottleneck=Wall.BATCHING if fits else Wall.MEMORY_CAPACITY,
        margin=values["gain"] if fits else (f.params * bpv / tp) / hw._f.capacity, fits=fits, verdict=verdict,
        formula=("static: floor(free / (max_context x KV/token)); paged: floor(free / (ceil(tokens / block) x "
                 "block x KV/token)); waste = 1 - tokens / reserved"),
        inputs=dict(model=model, hardware=hw, tokens=n if np.ndim(n) == 0 else "array", max_context=reserve,
                    block=page, tp=tp, precision=precision))


# --------------------------------------------------------------------------------- speculative decoding
class SpeculativeResult(Result):
    _title = "speculative decoding"
    _units = {"tokens_per_step": "", "speedup": "", "best_draft_tokens": "", "best_speedup": ""}


#: Draft lengths searched for the best gamma (Leviathan et al. 2023, fig. 3, plot gamma up to ~10).
_MAX_DRAFT = 32


def speculative(*, acceptance, draft_tokens=4, cost_ratio=0.05) -> SpeculativeResult:
    """Expected speed-up of speculative decoding (Leviathan, Kalman & Matias, "Fast Inference from
    Transformers via Speculative Decoding", ICML 2023). A draft model proposes gamma tokens, the target
    verifies them in one step; with per-token acceptance rate alpha the expected tokens per target step
    are (1 - alpha^(gamma+1)) / (1 - alpha) (eq. 1), and with a draft step costing c target steps the
    walltime improvement is (1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1)) (sec. 3.5, Theorem 3.8).
    Verifying gamma + 1 tokens is assumed to cost one target step, as in a memory-bound decode.

    Parameters
    ----------
    acceptance : float in [0, 1]  alpha, the expected acceptance rate (array sweeps)
    draft_tokens : int  gamma, tokens drafted per target step
    cost_ratio : float >= 0  c, time of one draft step over one target step
    """
    where = "speculative()"
    alpha = check_number(acceptance, name="acceptance", where=where, allow_zero=True)
    if np.any(np.asarray(alpha) > 1):
        raise InputError(f"{where}: 'acceptance' is a probability in [0, 1], got {acceptance!r}")
    gamma = count(draft_tokens, name="draft_tokens", where=where)
    c = check_number(cost_ratio, name="cost_ratio", where=where, allow_zero=True)
    tokens = _expected_tokens(alpha, gamma)
    speedup = tokens / (gamma * c + 1.0)
    g = np.arange(1, _MAX_DRAFT + 1, dtype=float).reshape((-1,) + (1,) * np.ndim(speedup))
    sweep = _expected_tokens(alpha, g) / (g * c + 1.0)
    i = np.argmax(sweep, axis=0)
    best_g = g.ravel()[i]
    best = np.max(sweep, axis=0)
    values = scalars(tokens_per_step=tokens, speedup=speedup, best_draft_tokens=best_g, best_speedup=best)

    def verdict() -> str:
        if np.ndim(values["speedup"]):
            return f"speed-up x{np.min(speedup):.3g} to x{np.max(speedup):.3g} over the sweep"
        state = "faster" if speedup > 1 else "slower than plain decoding"
        return (f"x{speedup:.3g} ({state}): {tokens:.3g} tokens per target step at alpha = {alpha:g}, "
                f"gamma = {gamma:g}, c = {c:g}; best gamma = {best_g:g} gives x{best:.3g}")

    return SpeculativeResult(values, terms={}, bottleneck=Wall.MEMORY_BANDWIDTH, margin=values["speedup"],
                             fits=speedup > 1 if np.ndim(speedup) else bool(speedup > 1), verdict=verdict,
                             formula="E[tokens/step] = (1 - a^(g+1)) / (1 - a); speed-up = E / (g c + 1)",
                             inputs=dict(acceptance=alpha if np.ndim(alpha) == 0 else "array", draft_tokens=gamma,
                                         cost_ratio=c))


def _expected_tokens(alpha, gamma):
    """(1 - alpha^(gamma+1)) / (1 - alpha), whose alpha -> 1 limit is gamma + 1."""
    alpha = np.asarray(alpha, dtype=float)
    one = alpha >= 1.0
    safe = np.where(one, 0.5, alpha)
    return np.where(one, gamma + 1.0, (1.0 - safe ** (gamma + 1.0)) / (1.0 - safe))


# --------------------------------------------------------------------------------- the $9M question
class ReasoningResult(Result):
    """Two fleets for the same request rate, without and with K reasoning steps, and their bills."""

    _title = "reasoning (chain of thought) at fleet scale"
    _term_unit = "USD"
    _units = {"latency": "s", "reasoning_latency": "s", "latency_ratio": "", "same_batch_latency": "s",
              "gpus": "", "reasoning_gpus": "",
              "gpu_ratio": "", "capex": "USD", "reasoning_capex": "USD", "capex_ratio": "",
              "tokens": "token", "reasoning_tokens": "token"}
    __slots__ = ("baseline", "with_reasoning")

    def __init__(self, values, *, baseline: FleetResult, with_reasoning: FleetResult, **kw):
        super().__init__(values, **kw)
        object.__setattr__(self, "baseline", baseline)
        object.__setattr__(self, "with_reasoning", with_reasoning)

    def __reduce__(self):
        return _rebuild_reasoning, (self._v, self.baseline, self.with_reasoning, self._terms, self.bottleneck,
                                    self.margin, self.fits, self.verdict, self.assumptions, self.formula,
                                    self.inputs)

    def explain(self) -> str:
        """The chain of arithmetic: per-request latency -> requests in flight -> GPUs -> capital."""
        return "\n".join([_chain(self), super().explain()])

    def to_dict(self):
        d = super().to_dict()
        d["baseline"], d["with_reasoning"] = self.baseline.to_dict(), self.with_reasoning.to_dict()
        return d


def _rebuild_reasoning(v, baseline, with_reasoning, terms, bottleneck, margin, fits, verdict, assumptions,
                       formula, inputs):
    return ReasoningResult(v, baseline=baseline, with_reasoning=with_reasoning, terms=terms,
                           bottleneck=bottleneck, margin=margin, fits=fits, verdict=verdict,
                           assumptions=assumptions, formula=formula, inputs=inputs)


def reasoning(model, hardware, *, qps, prompt_tokens=1024, step_tokens=256, steps=8, tp: int = 1, ttft=None,
              itl=None, latency=None, percentile=0.99, gpu_price=None, max_batch=None, service_cv=1.0,
              precision: str = "fp16", kv_precision=None, fabric=None, efficiency=None,
              prefill_efficiency=None, bandwidth_efficiency=None, overhead=None) -> ReasoningResult:
    """What a chain-of-thought mode costs a fleet: the seed's "$9 million question", computed.

    Without reasoning a request generates ``step_tokens``; with ``steps`` = K reasoning steps it generates
    K x ``step_tokens`` before it is done. Generation runs at the memory-bound decode rate (ITL), so the
    per-request latency grows almost K-fold (the prefill does not grow), requests stay in flight that much
    longer (Little's law: in flight = QPS x latency), and the same QPS needs that many more slots, hence
    replicas, GPUs and capital. Both fleets are sized by ``fleet()`` under the same SLO (give TTFT/ITL SLOs:
    an end-to-end latency SLO that the short answer meets, the long one cannot).

    Parameters
    ----------
    model, hardware, qps, prompt_tokens, tp, ttft, itl, latency, percentile, max_batch, service_cv,
    precision, ... : as in ``fleet``
    step_tokens : int  tokens generated per reasoning step (and by the direct answer)
    steps : int  K, reasoning steps per request (K = 1: no reasoning, ratio 1)
    gpu_price : Quantity[currency], optional  per device (default: the hardware's catalog price)
    """
    where = "reasoning()"
    k = count(steps, name="steps", where=where)
    step = count(step_tokens, name="step_tokens", where=where, kind="tokens")
    if np.ndim(k) or np.ndim(step):
        raise InputError(f"{where}: 'steps' and 'step_tokens' take one value each; sweep qps instead")
    kw = dict(qps=qps, prompt_tokens=prompt_tokens, tp=tp, ttft=ttft, itl=itl, latency=latency,
              percentile=percentile, gpu_price=gpu_price, max_batch=max_batch, service_cv=service_cv,
              precision=precision, kv_precision=kv_precision, fabric=fabric, efficiency=efficiency,
              prefill_efficiency=prefill_efficiency, bandwidth_efficiency=bandwidth_efficiency,
              overhead=overhead)
    try:
        base = fleet(model, hardware, output_tokens=step, **kw)
        cot = fleet(model, hardware, output_tokens=k * step, **kw)
    except InputError as err:
        raise InputError(str(err).replace("fleet()", where, 1)) from None
    b, r = base._v, cot._v
    # The reasoning request at the baseline's batch: K times the tokens, each a little slower at the
    # longer context, with the batch (and so the prefill stalls) held fixed.
    same = np.full(np.shape(b["batch"]), np.nan)
    ok = np.isfinite(b["gpus"]) & np.isfinite(r["gpus"])
    if np.any(ok):
        held = np.where(ok, b["batch"], 1.0)
        itl_held = serve(model, hardware, batch=held, prompt_tokens=base.inputs["prompt_tokens"],
                         output_tokens=k * step, tp=base.inputs["tp"], **{n: kw[n] for n in _SERVE_KW})._v["itl"]
        same = np.where(ok, held * base._terms["prefill"] + (k * step - 1.0) * itl_held, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = scalars(latency=b["service"], reasoning_latency=r["service"], same_batch_latency=same,
                         latency_ratio=r["service"] / b["service"], gpus=b["gpus"], reasoning_gpus=r["gpus"],
                         gpu_ratio=r["gpus"] / b["gpus"], capex=b["capex"], reasoning_capex=r["capex"],
                         capex_ratio=r["capex"] / b["capex"], tokens=step + 0 * b["gpus"],
                         reasoning_tokens=k * step + 0 * b["gpus"])
    fits = np.logical_and(base.fits, cot.fits)
    fits = fits if np.ndim(fits) else bool(fits)

    def verdict() -> str:
        if not np.all(fits):
            why = cot.verdict if not np.all(cot.fits) else base.verdict
            return f"infeasible: {why}"
        if np.ndim(values["gpus"]):
            ratio = values["gpu_ratio"]
            return f"reasoning multiplies the fleet x{np.min(ratio):.3g} to x{np.max(ratio):.3g}"
        bill = (f": {_usd(values['capex'])} -> {_usd(values['reasoning_capex'])} of GPUs"
                if np.isfinite(values["capex"]) else "")
        return (f"K = {k:g} reasoning steps multiply per-request latency x{values['latency_ratio']:.3g} and the "
                f"fleet x{values['gpu_ratio']:.3g}{bill}")

    terms = dict(baseline=values["capex"], reasoning=values["reasoning_capex"] - values["capex"])
    return ReasoningResult(
        values, baseline=base, with_reasoning=cot, terms=terms, bottleneck=Wall.REASONING,
        margin=values["gpu_ratio"], fits=fits, verdict=verdict, assumptions=base.assumptions,
        formula=("latency = B T_prefill + (K x step - 1) ITL(B); in flight = QPS x latency; replicas = "
                 "Erlang-C slots / B; capex = GPUs x price"),
        inputs=dict(base.inputs, step_tokens=step, steps=k))


_SERVE_KW = ("precision", "kv_precision", "fabric", "efficiency", "prefill_efficiency", "bandwidth_efficiency",
             "overhead")


def _usd(x) -> str:
    return f"${x / 1e6:,.2f}M" if abs(x) >= 1e6 else f"${x:,.0f}"


def _chain(r: ReasoningResult) -> str:
    """Latency per request -> GPUs -> capital, as a student would write it out."""
    v = r._v
    if np.ndim(v["gpus"]) or not np.isfinite(v["gpus"]) or not np.isfinite(v["reasoning_gpus"]):
        return f"{ReasoningResult._title}: {r.verdict}"
    lines = [f"{ReasoningResult._title}: {r.verdict}"]
    tp = r.inputs["tp"]
    for heading, f in (("without reasoning", r.baseline),
                       (f"with K = {r.inputs['steps']:g} steps", r.with_reasoning)):
        x = f._v
        batch, out = x["batch"], f.inputs["output_tokens"]
        prefill = f._terms["prefill"]
        itl_step = (x["service"] - batch * prefill) / max(out - 1, 1)
        in_flight = x["qps"] * x["service"]
        lines.append(
            f"  {heading}: {out:,.0f} generated tokens at batch {batch:,.0f} per replica\n"
            f"    latency per request = prefill {show(prefill, 's')} + {batch - 1:,.0f} prefill stalls x "
            f"{show(prefill, 's')} + {out - 1:,.0f} tokens x ITL {show(itl_step, 's')} = {show(x['service'], 's')}\n"
            f"    in flight (Little) = {show(x['qps'], 'req/s')} x {show(x['service'], 's')} = {in_flight:,.0f} "
            f"requests -> {in_flight / batch:,.1f} replicas busy; with the queue's tail: {x['replicas']:,.0f} "
            f"replicas x {tp} = {x['gpus']:,.0f} GPUs\n"
            + (f"    capital = {x['gpus']:,.0f} GPUs x {_usd(x['capex'] / x['gpus'])} = {_usd(x['capex'])}"
               if np.isfinite(x["capex"]) else "    capital: no price known (pass gpu_price=)"))
    base = r.baseline._v
    lines.append(f"  at the same batch ({base['batch']:,.0f}) the reasoning request would take "
                 f"{show(v['same_batch_latency'], 's')}, x{v['same_batch_latency'] / v['latency']:.3g}: K times the "
                 "tokens, each a little slower at the longer context; the reasoning fleet then re-picks its batch")
    bill = (f" -> capital x{v['capex_ratio']:.3g} ({_usd(v['capex'])} -> {_usd(v['reasoning_capex'])})"
            if np.isfinite(v["capex"]) else "")
    lines.append(f"  ratio: latency x{v['latency_ratio']:.3g} -> GPUs x{v['gpu_ratio']:.3g}{bill}")
    return "\n".join(lines)

