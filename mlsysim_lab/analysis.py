"""The analysis walls: which input binds (sensitivity), and what a machine must have (synthesis).

``sensitivity`` perturbs every numeric input of any solver call and reports the elasticity of one output,
d ln(output) / d ln(input): -1 means the output is inversely proportional to that input (the wall that
binds), 0 that it does not matter at all. ``synthesize`` runs the roofline backwards: from a latency SLO
to the minimum memory bandwidth, peak FLOP/s and capacity a device needs, then to the catalog device
that meets it most cheaply.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pint

from . import catalog
from . import efficiency as eff
from .errors import InputError, MlsysimError
from .memory import bytes_per_value, default_kv_precision, kv_cache_bytes
from .results import Result, Wall, _show
from .serving import decode_step_cost, prefill_cost, serve
from .specs import Cluster, Hardware, Transformer
from .units import Q_, check_number, count, to_si

#: Inputs that are choices, not quantities: a layout degree or a ZeRO stage has no meaningful +-10%.
#: They are perturbed only when named in ``inputs=``.
CATEGORICAL = frozenset({"tp", "pp", "dp", "ep", "zero"})

#: The hardware specs a sensitivity perturbs on a Hardware (or a Cluster's accelerator).
HARDWARE_SPECS = ("peak", "bandwidth", "capacity")


class SensitivityResult(Result):
    """Elasticities of one output to every perturbed input; ``rows`` is the tornado, largest first."""

    _title = "sensitivity"
    _units = {"elasticity": "", "rel": ""}
    _term_unit = ""


def sensitivity(fn: Callable[..., Result], base_inputs: dict[str, Any], *, output: str, rel=0.1,
                inputs=None) -> SensitivityResult:
    """A tornado of elasticities: perturb each numeric input of ``fn(**base_inputs)`` by +-``rel`` and
    recompute ``output``.

    Elasticity = ln(y_high / y_low) / ln(x_high / x_low), the log-log slope between the two perturbed
    points (exact for a power law: an output proportional to 1 / bandwidth gives -1 at any ``rel``; a
    linear difference is used where an output is not positive). Perturbed are: numbers (whole counts are
    rounded, and moved by at least one), quantities and quantity strings ("1 TFLOP"), and for a Hardware
    (or a Cluster's accelerator, or a ``hardware=`` catalog name) its ``peak`` (every precision),
    ``bandwidth`` and ``capacity``, each rebuilt as a validated spec. A side whose call is refused (an
    efficiency pushed above 1, a batch of 0) is dropped and the elasticity taken from the other side.

    Parameters
    ----------
    fn : a solver, e.g. ``ml.serve``, ``ml.train``, ``ml.iron_law``
    base_inputs : its keyword arguments (positional ones by name: ``dict(model=..., hardware=...)``)
    output : the result field to watch, e.g. 'itl', 'time_to_train', 'time'
    rel : relative perturbation, in (0, 1)
    inputs : names to perturb (default: every numeric input except layout choices tp/pp/dp/ep/zero);
        hardware specs are named 'hardware.peak', 'hardware.bandwidth', 'hardware.capacity'

    Returns
    -------
    SensitivityResult  .rows [{input, low, high, elasticity}] sorted by |elasticity|, .base (the output),
    .elasticity (the largest); bottleneck: the binding wall of the base call
    """
    where = "sensitivity()"
    if not callable(fn):
        raise InputError(f"{where}: 'fn' must be a solver such as ml.serve, got {fn!r}")
    if not isinstance(base_inputs, dict):
        raise InputError(f"{where}: 'base_inputs' must be a dict of keyword arguments, "
                         f"got {type(base_inputs).__name__}")
    r = check_number(rel, name="rel", where=where)
    if r >= 1:
        raise InputError(f"{where}: 'rel' is a relative change and must be in (0, 1), got {rel!r}")
    base = fn(**base_inputs)
    if not isinstance(base, Result):
        raise InputError(f"{where}: {getattr(fn, '__name__', fn)} did not return a result")
    if output not in base.fields:
        raise InputError(f"{where}: {type(base).__name__} has no field {output!r}; fields: {', '.join(base.fields)}")
    y0 = base._v[output]
    if np.ndim(y0):
        raise InputError(f"{where}: {output!r} is an array; run sensitivity on a single configuration")
    unit = type(base)._units[output]
    wanted = None if inputs is None else set(inputs)

    rows = []
    for label, low, high, x_low, x_high in _perturbations(base_inputs, r, wanted):
        ys = []
        for changed in (low, high):
            if changed is None:
                ys.append(None)
                continue
            try:
                ys.append(float(fn(**{**base_inputs, **changed})._v[output]))
            except MlsysimError:
                ys.append(None)
        e = _elasticity(float(y0), ys[0], ys[1], x_low, x_high)
        rows.append(dict(input=label, low=None if ys[0] is None else Q_(ys[0], unit),
                         high=None if ys[1] is None else Q_(ys[1], unit), elasticity=e))
    if wanted is not None:
        missing = wanted - {row["input"] for row in rows}
        if missing:
            raise InputError(f"{where}: cannot perturb {', '.join(sorted(missing))}: not a numeric input of this call")
    rows.sort(key=lambda row: (not np.isfinite(row["elasticity"]), -abs(np.nan_to_num(row["elasticity"]))))
    if not rows:
        raise InputError(f"{where}: no numeric input to perturb in {sorted(base_inputs)}")
    top = rows[0]["elasticity"]
    second = abs(rows[1]["elasticity"]) if len(rows) > 1 else 0.0
    margin = abs(top) / second if second > 0 else float("inf")
    y_base = Q_(y0, unit)

    def verdict():
        parts = [f"{row['input']} {row['elasticity']:+.2f}" for row in rows[:4] if np.isfinite(row["elasticity"])]
        lead = rows[0]
        return (f"{output} = {_show(y0, unit)} is most sensitive to {lead['input']} (elasticity "
                f"{lead['elasticity']:+.2f}: +{r:.0%} moves it {math.expm1(lead['elasticity'] * math.log1p(r)):+.1%}); "
                f"ranking: {', '.join(parts)}")

    wall = base.bottleneck if isinstance(base.bottleneck, Wall) else Wall.COMPUTE
    result = SensitivityResult(
        dict(elasticity=top, rel=r), terms={row["input"]: row["elasticity"] for row in rows}, bottleneck=wall,
        margin=margin, verdict=verdict, assumptions=base.assumptions,
        formula="elasticity = ln(y(x(1+rel)) / y(x(1-rel))) / ln((1+rel) / (1-rel))",
        inputs=dict(fn=getattr(fn, "__name__", str(fn)), output=output, rel=r),
        extras=dict(rows=rows, base=y_base, output=output))
    return result


def _elasticity(y0, y_low, y_high, x_low, x_high) -> float:
    """Log-log slope through the points that exist; a linear relative slope where an output is <= 0."""
    points = [(x, y) for x, y in ((x_low, y_low), (x_high, y_high)) if y is not None]
    if len(points) == 2:
        (xa, ya), (xb, yb) = points
    elif len(points) == 1:
        (xa, ya), (xb, yb) = (1.0, y0), points[0]
    else:
        return float("nan")
    if not all(np.isfinite(v) for v in (ya, yb, y0)):
        return float("nan")
    if ya == yb:
        return 0.0
    if ya > 0 and yb > 0:
        return math.log(yb / ya) / math.log(xb / xa)
    return ((yb - ya) / y0) / (xb - xa) if y0 != 0 else float("nan")


def _perturbations(base_inputs, rel, wanted):
    """(label, low changes, high changes, low factor, high factor) for every input that can be perturbed."""
    for key, value in base_inputs.items():
        hw = _as_hardware(key, value)
        if hw is not None:
            for spec in HARDWARE_SPECS:
                label = f"{key}.{spec}"
                if wanted is not None and label not in wanted:
                    continue
                if spec == "capacity" and hw._f.capacity is None:
                    continue
                sides = [{key: _rebuild(value, _scaled_hardware(hw, spec, f))} for f in (1 - rel, 1 + rel)]
                yield label, sides[0], sides[1], 1 - rel, 1 + rel
            continue
        if wanted is not None and key not in wanted:
            continue
        if wanted is None and key in CATEGORICAL:
            continue
        moved = _moved(value, rel)
        if moved is None:
            continue
        (low, x_low), (high, x_high) = moved
        yield key, (None if low is None else {key: low}), {key: high}, x_low, x_high


def _moved(value, rel):
    """((low value, low factor), (high value, high factor)) for a number or a quantity; None otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, str):
        if value.strip()[:1] not in tuple("0123456789.+-"):
            return None  # a name ('fp16', 'H100 SXM', 'selective'), not a quantity
        try:
            value = Q_(value)
        except Exception:  # pint raises several error types on text it cannot read
            return None
        if not isinstance(value, pint.Quantity):
            return None
    if isinstance(value, pint.Quantity):
        mag = value.magnitude
        if np.ndim(mag) or not np.isfinite(mag) or mag == 0:
            return None
        return (value * (1 - rel), 1 - rel), (value * (1 + rel), 1 + rel)
    if isinstance(value, (int, float, np.integer, np.floating)):
        x = float(value)
        if not np.isfinite(x) or x == 0:
            return None
        if isinstance(value, (int, np.integer)) or (x.is_integer() and abs(x) * rel >= 1):
            lo, hi = round(x * (1 - rel)), round(x * (1 + rel))
            lo, hi = (x - 1 if lo == x else lo), (x + 1 if hi == x else hi)
            kind = int if isinstance(value, (int, np.integer)) else float
            low = (kind(lo), lo / x) if lo > 0 else (None, float("nan"))
            return low, (kind(hi), hi / x)
        return (x * (1 - rel), 1 - rel), (x * (1 + rel), 1 + rel)
    return None


def _as_hardware(key, value):
    if isinstance(value, Hardware):
        return value
    if isinstance(value, Cluster):
        return value.accelerator
    if key == "hardware" and isinstance(value, str):
        return catalog.hardware(value)
    return None


def _rebuild(original, hw):
    """Put a rebuilt accelerator back where it came from (a Cluster keeps its layout and fabrics)."""
    if isinstance(original, Cluster):
        return original.model_copy(update={"accelerator": hw})
    return hw


def _scaled_hardware(hw: Hardware, spec: str, factor: float) -> Hardware:
    """A validated copy of ``hw`` with one spec scaled (specs compute their SI floats at validation)."""
    data = hw.model_dump()
    if spec == "peak":
        data["peak"] = {p: q * factor for p, q in hw.peak.items()}
    elif spec == "bandwidth":
        data["memory"] = dict(capacity=hw.memory.capacity, bandwidth=hw.memory.bandwidth * factor)
    else:
        data["memory"] = dict(capacity=hw.memory.capacity * factor, bandwidth=hw.memory.bandwidth)
    return Hardware.model_validate(data)


# ------------------------------------------------------------------------------------------ synthesis
class SynthesisResult(Result):
    """The minimum spec an SLO needs and the cheapest catalog system that meets it; ``candidates`` ranks all."""

    _title = "synthesis: the inverse roofline"
    _units = {"bandwidth": "B/s", "peak": "FLOP/s", "capacity": "B", "devices": "", "price": "USD", "itl": "s",
              "ttft": "s"}


def synthesize(model, *, itl=None, ttft=None, batch=1, prompt_tokens=1024, output_tokens=256,
               precision: str = "fp16", kv_precision=None, candidates=None, objective: str = "price",
               max_devices: int = 8) -> SynthesisResult:
    """The inverse roofline: from a latency SLO to the device it needs, and the catalog system that has it.

    A decode step must finish within ``itl``: with the fixed per-layer overhead o taken out, its bytes need
    bandwidth >= bytes / ((itl - o) x eta_bw) and its FLOPs peak >= FLOPs / ((itl - o) x eta); a prefill
    within ``ttft`` likewise. Efficiencies are the defaults of efficiency.py (family 'default'), so a
    device with exactly these specs meets the SLO exactly in ``serve()``. Capacity must hold the weights
    and every sequence's KV cache. Then every catalog device (or ``candidates``) is tried with ``serve()``
    on 1, 2, 4 or 8 tensor-parallel devices; the cheapest that meets the SLO wins (``objective='price'``;
    systems without a catalog price rank after priced ones), or the fewest devices (``'devices'``).

    Parameters
    ----------
    model : Transformer | str
    itl, ttft : Quantity[time]  the SLOs (at least one), e.g. itl="20 ms"
    batch, prompt_tokens, output_tokens, precision, kv_precision : the workload, as in ``serve()``
    candidates : list of Hardware or names (default: the whole catalog)
    objective : 'price' or 'devices'
    max_devices : largest tensor-parallel group to try

    Returns
    -------
    SynthesisResult  .bandwidth .peak .capacity (the minimum spec for one device) and the chosen system's
    .devices .price .itl .ttft; .choice, .candidates; bottleneck: the spec with the least headroom on the
    chosen system (or the wall no candidate clears)
    """
    where = "synthesize()"
    m = catalog.workload(model)
    if not isinstance(m, Transformer):
        raise InputError(f"{where}: {m.name} is a per-sample model; synthesize() covers transformer serving")
    if itl is None and ttft is None:
        raise InputError(f"{where}: give an SLO: itl= (e.g. '20 ms') and/or ttft=")
    if objective not in ("price", "devices"):
        raise InputError(f"{where}: 'objective' must be 'price' or 'devices', got {objective!r}")
    slo_itl = to_si(itl, "time", name="itl", where=where) if itl is not None else None
    slo_ttft = to_si(ttft, "time", name="ttft", where=where) if ttft is not None else None
    b = count(batch, name="batch", where=where)
    prompt = count(prompt_tokens, name="prompt_tokens", where=where, kind="tokens")
    out = count(output_tokens, name="output_tokens", where=where, kind="tokens")
    max_dev = int(count(max_devices, name="max_devices", where=where))
    bpv = bytes_per_value(precision, where)
    kv_bpv = bytes_per_value(kv_precision or default_kv_precision(precision), where)
    f = m._f
    eta_d = eff.compute_efficiency("default", "decode", precision)
    eta_p = eff.compute_efficiency("default", "prefill", precision)
    eta_bw = eff.MEMORY_BANDWIDTH
    overhead = f.layers * eff.LAYER_OVERHEAD.value
    used = (eta_d, eta_p, eta_bw, eff.LAYER_OVERHEAD, eff.REQUEST_OVERHEAD, eff.KV_TRANSFER)

    def decode_cost():
        # serve() reads the KV cache in short per-sequence, per-head transfers at a fraction of bandwidth:
        # count those bytes at their effective weight so the inverse matches serve() exactly.
        ctx = prompt + out / 2.0
        flops, nbytes = decode_step_cost(f, b, ctx, bpv, kv_bpv)
        kv = kv_cache_bytes(b * ctx, f.layers, f.kv_dim, kv_bpv)
        factor = eff.kv_transfer_factor(ctx * f.kv_dim / m.kv_heads * kv_bpv)
        return flops, nbytes - kv + kv / factor

    need_bw, need_peak = 0.0, 0.0
    for slo, cost, eta, fixed in ((slo_itl, decode_cost, eta_d, overhead),
                                  (slo_ttft, lambda: prefill_cost(f, b, prompt, bpv, kv_bpv), eta_p,
                                   overhead + eff.REQUEST_OVERHEAD.value)):
        if slo is None:
            continue
        budget = slo - fixed
        if budget <= 0:
            need_bw = need_peak = float("inf")
            break
        flops, nbytes = cost()
        need_bw = max(need_bw, nbytes / (budget * eta_bw.value))
        need_peak = max(need_peak, flops / (budget * eta.value))
    need_cap = f.params * bpv + b * kv_cache_bytes(prompt + out, f.layers, f.kv_dim, kv_bpv)

    pool = [catalog.hardware(h) for h in candidates] if candidates is not None else \
        list(catalog.default_catalog().entries("hardware"))
    if not pool:
        raise InputError(f"{where}: 'candidates' is empty")
    table = [_try_device(m, hw, b, prompt, out, precision, kv_precision, slo_itl, slo_ttft, max_dev)
             for hw in pool]
    meeting = [c for c in table if c["meets"]]
    if objective == "price":
        meeting.sort(key=lambda c: (c["price"] is None, c["price"] or 0.0, c["devices"], c["itl"]))
    else:
        meeting.sort(key=lambda c: (c["devices"], c["price"] is None, c["price"] or 0.0, c["itl"]))
    table.sort(key=lambda c: (not c["meets"], meeting.index(c) if c["meets"] else 0, c["hardware"]))
    slo_text = " and ".join(t for t in (slo_itl is not None and f"ITL <= {_show(slo_itl, 's')}",
                                        slo_ttft is not None and f"TTFT <= {_show(slo_ttft, 's')}") if t)
    spec_text = (f"needs {_show(need_bw, 'B/s')}, {_show(need_peak, 'FLOP/s')} and {_show(need_cap, 'B')} "
                 f"at the default efficiencies")

    if meeting:
        best = meeting[0]
        hw = catalog.hardware(best["hardware"])
        n = best["devices"]
        ratios = {Wall.MEMORY_BANDWIDTH: need_bw / (n * hw._f.bandwidth),
                  Wall.COMPUTE: need_peak / (n * hw.peak_for(_compute_precision(precision, hw))),
                  Wall.MEMORY_CAPACITY: need_cap / (n * hw._f.capacity)}
        wall = max(ratios, key=ratios.get)
        price = best["price"] if best["price"] is not None else float("nan")
        values = dict(bandwidth=need_bw, peak=need_peak, capacity=need_cap, devices=float(n), price=price,
                      itl=best["itl"], ttft=best["ttft"])
        cost = f" for {_show(price, 'USD')}" if best["price"] is not None else " (no catalog price)"
        verdict = (f"{n} x {hw.name} meets {slo_text}{cost} (ITL {_show(best['itl'], 's')}, TTFT "
                   f"{_show(best['ttft'], 's')}); one device {spec_text}; {wall} binds "
                   f"(uses {ratios[wall]:.0%} of it)")
        margin, fits = ratios[wall], True
        choice = hw.name
    else:
        if not np.isfinite(need_bw):
            wall, margin = Wall.OVERHEAD, float("inf")
            verdict = (f"no hardware meets {slo_text}: the software overhead alone is {_show(overhead, 's')} "
                       f"({m.layers} layers x {_show(eff.LAYER_OVERHEAD.value, 's')})")
        else:
            best_bw = max(h._f.bandwidth for h in pool) * max_dev
            best_peak = max(max(h._f.peak.values()) for h in pool) * max_dev
            best_cap = max(h._f.capacity for h in pool) * max_dev
            ratios = {Wall.MEMORY_BANDWIDTH: need_bw / best_bw, Wall.COMPUTE: need_peak / best_peak,
                      Wall.MEMORY_CAPACITY: need_cap / best_cap}
            wall = max(ratios, key=ratios.get)
            margin = ratios[wall]
            verdict = (f"no candidate of up to {max_dev} devices meets {slo_text}: one device {spec_text}; "
                       f"{wall} is short x{margin:.3g} even on {max_dev} of the best candidate")
        nan = float("nan")
        values = dict(bandwidth=need_bw, peak=need_peak, capacity=need_cap, devices=nan, price=nan, itl=nan, ttft=nan)
        fits, choice = False, None
    return SynthesisResult(values, terms={}, bottleneck=wall, margin=margin, fits=fits, verdict=verdict,
                           assumptions=used, formula=_SYNTHESIS_FORMULA,
                           inputs=dict(model=m, itl=itl, ttft=ttft, batch=b, precision=precision),
                           extras=dict(choice=choice, candidates=[_public_row(c) for c in table]))


def _public_row(row: dict) -> dict:
    """A candidate row with its numbers as quantities (None where a device was never run)."""
    def q(value, unit):
        return None if value is None or not np.isfinite(value) else Q_(value, unit)
    return dict(row, price=q(row["price"], "USD"), itl=q(row["itl"], "s"), ttft=q(row["ttft"], "s"))


_SYNTHESIS_FORMULA = ("bandwidth >= bytes / ((SLO - overhead) x eta_bw); peak >= FLOPs / ((SLO - overhead) x eta); "
                      "capacity >= weights + B x KV(prompt + output)")


def _compute_precision(precision: str, hw: Hardware) -> str:
    from .compute import compute_precision
    return compute_precision(precision, hw)


def _try_device(m, hw, b, prompt, out, precision, kv_precision, slo_itl, slo_ttft, max_dev) -> dict:
    """The smallest tensor-parallel group of ``hw`` that meets the SLOs, or why none does."""
    row = dict(hardware=hw.name, devices=None, price=None, itl=float("nan"), ttft=float("nan"), meets=False,
               reason="")
    if _compute_precision(precision, hw) not in hw._f.peak:
        row["reason"] = f"no {precision} peak"
        return row
    tried = False
    for tp in (1, 2, 4, 8):
        if tp > max_dev or m.heads % tp:
            continue
        if tp * hw._f.capacity < m._f.params * bytes_per_value(precision, ""):
            row["reason"] = f"weights do not fit {tp} device{'s' if tp > 1 else ''}"
            continue
        try:
            r = serve(m, hw, batch=b, prompt_tokens=prompt, output_tokens=out, precision=precision,
                      kv_precision=kv_precision, tp=tp)
        except MlsysimError as err:
            why = str(err).removeprefix("serve(): ")
            row["reason"] = f"{row['reason']}; {tp} devices: {why}" if row["reason"] else why
            break
        tried = True
        itl, ttft = float(r._v["itl"]), float(r._v["ttft"])
        slow = [name for name, got, slo in (("ITL", itl, slo_itl), ("TTFT", ttft, slo_ttft))
                if slo is not None and got > slo]
        row.update(devices=tp, itl=itl, ttft=ttft,
                   price=tp * hw._f.price if hw._f.price is not None else None)
        if r.fits and not slow:
            row.update(meets=True, reason="")
            return row
        row["reason"] = "memory capacity" if not r.fits else f"{' and '.join(slow)} too slow"
    if not tried and not row["reason"]:
        row["reason"] = "no tensor-parallel group fits"
    return row
