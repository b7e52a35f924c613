"""The Iron Law on one device, and the roofline it draws.

``T = max(ops / (peak x eta), bytes / (bandwidth x eta_bw)) + overhead``: a kernel takes as long as the
slower of doing its arithmetic and moving its bytes (Williams, Waterman & Patterson, "Roofline",
CACM 2009), plus fixed software overhead. Arithmetic intensity I = ops / bytes; the ridge point
peak / bandwidth is the intensity above which the compute wall binds.
"""
from __future__ import annotations

import numpy as np

from . import catalog
from . import efficiency as eff
from .errors import InputError
from .memory import bytes_per_value, default_kv_precision
from .results import Result, Wall, bind, choose_wall, vmax, vmin
from .specs import SampleWorkload
from .units import check_number, count, to_si


def iron_law_time(ops, nbytes, peak, eta, bandwidth, eta_bw, overhead=0.0):
    """(total, compute, memory) seconds; works elementwise on numpy arrays."""
    t_c = ops / (peak * eta)
    t_m = nbytes / (bandwidth * eta_bw)
    return vmax(t_c, t_m) + overhead, t_c, t_m


def compute_precision(precision: str, hw) -> str:
    """Precision the arithmetic runs in: 4-bit weights are unpacked to a wider type unless the device
    publishes a 4-bit peak: fp16 where it has one (W4A16 on GPUs), else int8 (W4A8: Arm CMSIS-NN's int4
    kernels unpack packed 4-bit weights to int8 for the MAC units, and phone NPUs publish int8 peaks
    only); everything else computes in its storage precision."""
    if precision in ("int4", "fp4") and precision not in hw._f.peak:
        peaks = hw._f.peak
        return "fp16" if "fp16" in peaks or "int8" not in peaks else "int8"
    return precision


class IronLawResult(Result):
    _title = "Iron Law"
    _units = {"time": "s", "ops": "FLOP", "bytes": "B", "intensity": "FLOP/B", "ridge": "FLOP/B",
              "attainable": "FLOP/s", "peak": "FLOP/s", "bandwidth": "B/s"}


def iron_law(hardware, *, ops, bytes, precision: str = "fp16", efficiency=None, bandwidth_efficiency=None,
             overhead="0 s", regime: str = "inference") -> IronLawResult:
    """Time of one kernel (or any step) on ``hardware``: the Iron Law with its terms and binding wall.

    Parameters
    ----------
    hardware : Hardware | str
    ops : Quantity[compute]  e.g. "8.2 GFLOP" (or "4.1 GMAC": one MAC is two FLOPs)
    bytes : Quantity[information]  bytes moved to and from memory, e.g. "51 MB"
    precision : which dense peak to use
    efficiency, bandwidth_efficiency : overrides of the family/regime defaults (efficiency.py)
    overhead : Quantity[time]  fixed software overhead added to the max()
    """
    where = "iron_law()"
    hw = catalog.hardware(hardware)
    ops_f = to_si(ops, "compute", name="ops", where=where, allow_zero=True)
    bytes_f = to_si(bytes, "information", name="bytes", where=where, allow_zero=True)
    over = to_si(overhead, "time", name="overhead", where=where, allow_zero=True)
    return _iron_law(hw, ops_f, bytes_f, compute_precision(precision, hw), efficiency, bandwidth_efficiency, over,
                     regime, where)


def _iron_law(hw, ops_f, bytes_f, precision, efficiency, bandwidth_efficiency, over, regime, where, **inputs):
    peak = hw.peak_for(precision)
    eta, eta_bw, used = efficiencies(hw, regime, efficiency, bandwidth_efficiency, where, precision)
    t, t_c, t_m = iron_law_time(ops_f, bytes_f, peak, eta, hw._f.bandwidth, eta_bw, over)
    overhead = over + 0.0 * t_c
    wall, margin = bind(dict(compute=t_c, memory=t_m, overhead=overhead))
    with np.errstate(divide="ignore", invalid="ignore"):
        intensity = np.divide(ops_f, bytes_f)
    ridge = peak / hw._f.bandwidth
    return IronLawResult(
        dict(time=t, ops=ops_f, bytes=bytes_f, intensity=intensity, ridge=ridge,
             attainable=np.minimum(peak, intensity * hw._f.bandwidth), peak=peak, bandwidth=hw._f.bandwidth),
        terms=dict(compute=t_c, memory=t_m, overhead=overhead), bottleneck=wall, margin=margin,
        assumptions=used, formula="T = max(ops / (peak x eta), bytes / (bandwidth x eta_bw)) + overhead",
        inputs=dict(hardware=hw, precision=precision, **inputs))


#: Operators whose FLOPs and bytes ``operator()`` knows, with the shape arguments each needs.
OPERATORS = {
    "dense": ("m", "n", "k"),
    "conv2d": ("batch", "height", "width", "channels_in", "channels_out", "kernel"),
    "attention": ("batch", "seq", "heads", "head_dim"),
    "embedding": ("tokens", "dim"),
    "elementwise": ("elements",),
}


def operator_cost(kind: str, shape: dict, bpv: float, flash: bool = True):
    """(FLOPs, bytes) of one operator with every operand read and every result written once.

    dense: (m x k) @ (k x n): 2mnk FLOPs; (mk + kn + mn) values moved.
    conv2d (stride 1, same padding, as an implicit GEMM): 2 B H W Cin Cout K^2 FLOPs; input, filter and
    output moved once. attention: QK^T and AV, 4 B heads seq^2 head_dim FLOPs; Q, K, V, O moved, plus the
    seq^2 score matrix written and read twice (softmax) unless fused (FlashAttention, Dao et al. 2022).
    embedding: a table lookup moves tokens x dim values and does no arithmetic. elementwise: one FLOP per
    element, read and written once.
    """
    g = shape.get
    if kind == "dense":
        m, n, k = g("m"), g("n"), g("k")
        return 2.0 * m * n * k, (m * k + k * n + m * n) * bpv
    if kind == "conv2d":
        b, h, w, ci, co, kk = (g(x) for x in OPERATORS["conv2d"])
        return 2.0 * b * h * w * ci * co * kk * kk, (b * h * w * (ci + co) + kk * kk * ci * co) * bpv
    if kind == "attention":
        b, s, a, d = (g(x) for x in OPERATORS["attention"])
        qkvo = 4.0 * b * s * a * d * bpv
        scores = 0.0 if flash else 4.0 * b * a * s * s * bpv  # written, read, softmax written, read
        return 4.0 * b * a * s * s * d, qkvo + scores
    if kind == "embedding":
        return 0.0, g("tokens") * g("dim") * bpv
    if kind == "elementwise":
        return g("elements") * 1.0, 2.0 * g("elements") * bpv
    raise InputError(f"operator(): unknown kind {kind!r}; use one of {', '.join(OPERATORS)}")


def operator(kind: str, hardware, *, precision: str = "fp16", flash: bool = True, efficiency=None,
             bandwidth_efficiency=None, **shape) -> IronLawResult:
    """One layer's operator on ``hardware``: its FLOPs, bytes, arithmetic intensity and Iron-Law time.

    The workload signatures of a network's building blocks: a large dense GEMM sits right of the ridge,
    attention without fusion and embedding lookups far left of it.

    Parameters
    ----------
    kind : 'dense' (m, n, k), 'conv2d' (batch, height, width, channels_in, channels_out, kernel),
        'attention' (batch, seq, heads, head_dim), 'embedding' (tokens, dim), 'elementwise' (elements)
    hardware : Hardware | str
    precision : storage and compute precision
    flash : fused attention (scores never leave the chip)
    **shape : positive counts (numpy arrays sweep)
    """
    where = "operator()"
    if kind not in OPERATORS:
        raise InputError(f"{where}: unknown kind {kind!r}; use one of {', '.join(OPERATORS)}")
    missing = [k for k in OPERATORS[kind] if k not in shape]
    extra = [k for k in shape if k not in OPERATORS[kind]]
    if missing or extra:
        raise InputError(f"{where}: a {kind} operator takes {', '.join(OPERATORS[kind])}"
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unexpected {', '.join(extra)}" if extra else ""))
    dims = {k: count(v, name=k, where=where) for k, v in shape.items()}
    hw = catalog.hardware(hardware)
    bpv = bytes_per_value(precision, where)
    ops, nbytes = operator_cost(kind, dims, bpv, flash)
    return _iron_law(hw, ops, nbytes, compute_precision(precision, hw), efficiency, bandwidth_efficiency, 0.0,
                     "inference", where, kind=kind, **shape)


def efficiencies(hw, regime, efficiency, bandwidth_efficiency, where, precision=None):
    """(eta, eta_bw, assumptions used): overrides checked to lie in (0, 1], else the documented defaults
    (by family, regime and the precision the arithmetic runs in; efficiency.compute_efficiency)."""
    used = []
    if efficiency is None:
        has_16bit = "fp16" in hw._f.peak or "bf16" in hw._f.peak
        default = eff.compute_efficiency(hw.family, regime, precision, has_16bit)
        eta = default.value
        used.append(default)
    else:
        eta = check_fraction(efficiency, "efficiency", where)
    if bandwidth_efficiency is None:
        eta_bw = eff.MEMORY_BANDWIDTH.value
        used.append(eff.MEMORY_BANDWIDTH)
    else:
        eta_bw = check_fraction(bandwidth_efficiency, "bandwidth_efficiency", where)
    return eta, eta_bw, tuple(used)


def check_fraction(value, name, where) -> float:
    if type(value) is float and 0.0 < value <= 1.0:  # fast path: an efficiency passed on by a solver
        return value
    v = check_number(value, name=name, where=where)
    if np.any(np.asarray(v) > 1):
        raise InputError(f"{where}: {name!r} is a fraction of peak and must be in (0, 1], got {value!r}")
    return v


class RooflineResult(Result):
    _title = "roofline"
    _units = {"intensity": "FLOP/B", "ridge": "FLOP/B", "attainable": "FLOP/s", "peak": "FLOP/s",
              "bandwidth": "B/s", "ops": "FLOP", "bytes": "B"}

    @property
    def bound(self) -> Wall:
        """The wall under which the workload sits: compute right of the ridge, memory bandwidth left."""
        return self.bottleneck


def roofline(model, hardware, *, batch=1, phase: str = "decode", precision: str = "fp16", context=None,
             kv_precision=None) -> RooflineResult:
    """Where a workload sits on a device's roofline: intensity vs ridge, attainable FLOP/s, bound.

    ``phase`` is 'decode' (one new token per sequence at ``context`` tokens), 'prefill' (``context``
    prompt tokens per sequence) for transformers, or 'inference' for per-sample models. Uses datasheet
    peaks (no efficiency): the roofline is the device's ceiling, the Iron Law the time under it.
    """
    where = "roofline()"
    model, hw = catalog.workload(model), catalog.hardware(hardware)
    b = count(batch, name="batch", where=where)
    bpv = bytes_per_value(precision, where)
    peak = hw.peak_for(compute_precision(precision, hw))
    if isinstance(model, SampleWorkload):
        if phase not in ("inference",):
            raise InputError(f"{where}: {model.name} is a per-sample model; phase must be 'inference'")
        f = model._f
        ops = b * f.flops
        nbytes = f.params * bpv + b * (f.input_bytes + f.activation_bytes * bpv / 2)
    else:
        from .serving import decode_step_cost, prefill_cost
        ctx = count(context if context is not None else 1024, name="context", where=where, kind="tokens")
        kv = bytes_per_value(kv_precision or default_kv_precision(precision), where)
        if phase == "decode":
            ops, nbytes = decode_step_cost(model._f, b, ctx, bpv, kv)
        elif phase == "prefill":
            ops, nbytes = prefill_cost(model._f, b, ctx, bpv, kv)
        else:
            raise InputError(f"{where}: phase must be 'decode' or 'prefill' for a transformer, got {phase!r}")
    intensity = ops / nbytes
    ridge = peak / hw._f.bandwidth
    attainable = vmin(peak, intensity * hw._f.bandwidth)
    if isinstance(intensity, np.ndarray):
        bound = choose_wall(intensity >= ridge, Wall.COMPUTE, Wall.MEMORY_BANDWIDTH)
    else:
        bound = Wall.COMPUTE if intensity >= ridge else Wall.MEMORY_BANDWIDTH
    return RooflineResult(
        dict(intensity=intensity, ridge=ridge, attainable=attainable, peak=peak, bandwidth=hw._f.bandwidth,
             ops=ops, bytes=nbytes),
        terms={}, bottleneck=bound, margin=vmax(intensity / ridge, ridge / intensity),
        formula="I = ops / bytes; ridge = peak / bandwidth; attainable = min(peak, I x bandwidth)",
        inputs=dict(model=model, hardware=hw, batch=b, phase=phase, precision=precision))


class StreamingResult(Result):
    _title = "weight streaming"
    _units = {"time": "s", "throughput": "sample/s", "hiding_batch": ""}


def weight_streaming(model, hardware, *, injection, batch=1, precision: str = "fp16", efficiency=None):
    """A layer-at-a-time machine that keeps activations on chip and streams weights in (wafer-scale
    weight streaming, Cerebras MemoryX/SwarmX): each pass takes max(FLOPs / (peak x eta), weights /
    injection bandwidth); the batch at which the stream hides behind compute is weights x peak x eta /
    (injection x FLOPs per sample).

    Parameters
    ----------
    model : Transformer | SampleWorkload | str  (a transformer counts 2 x matmul params FLOPs per token)
    hardware : Hardware | str
    injection : Quantity[information/time]  weight injection bandwidth into the chip
    batch : int  samples (tokens for a transformer) per pass
    """
    where = "weight_streaming()"
    model, hw = catalog.workload(model), catalog.hardware(hardware)
    inj = to_si(injection, "bandwidth", name="injection", where=where)
    b = count(batch, name="batch", where=where)
    bpv = bytes_per_value(precision, where)
    peak = hw.peak_for(compute_precision(precision, hw))
    eta, _, used = efficiencies(hw, "training", efficiency, 1.0, where, compute_precision(precision, hw))
    f = model._f
    per_sample = f.flops if isinstance(model, SampleWorkload) else 2.0 * f.matmul_active
    weights = f.params * bpv
    t_c = b * per_sample / (peak * eta)
    t_s = weights / inj
    wall, margin = bind(dict(compute=t_c, stream=t_s), {"compute": Wall.COMPUTE, "stream": Wall.STREAMING})
    t = np.maximum(t_c, t_s)
    return StreamingResult(dict(time=t, throughput=b / t, hiding_batch=np.ceil(weights * peak * eta / (inj * per_sample))),
                           terms=dict(compute=t_c, stream=t_s), bottleneck=wall, margin=margin, assumptions=used,
                           formula="T = max(B x FLOPs/sample / (peak x eta), weights / injection bandwidth)",
                           inputs=dict(model=model, hardware=hw, batch=b, precision=precision))
