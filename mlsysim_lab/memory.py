"""Memory capacity: what must sit in device memory (weights, KV cache, activations, optimizer state).

Float kernels take SI numbers (bytes, parameters, tokens) and numpy arrays alike; ``memory()`` is the
public solver that checks units at the door and returns a ledger with a ``fits`` verdict.
"""
from __future__ import annotations

import numpy as np

from . import catalog
from .errors import InputError
from .results import Result, Wall
from .specs import BYTES_PER_VALUE, SampleWorkload, Transformer
from .units import count

#: Bytes per parameter of training state, from Rajbhandari et al., "ZeRO" (SC20), sec. 3.1: mixed
#: precision Adam keeps 2 (fp16/bf16 weights) + 2 (gradients) + 12 (fp32 master weights, momentum and
#: variance) = 16 bytes per parameter; pure fp32 Adam keeps 4 + 4 + 8.
TRAINING_STATE = {"mixed": (2.0, 2.0, 12.0), "fp32": (4.0, 4.0, 8.0)}


def kv_cache_bytes(tokens, layers, kv_dim, bytes_per_value):
    """KV cache: every cached token stores ``kv_dim`` values per layer (2 x kv_heads x head_dim for
    grouped-query attention, so Llama-2-70B keeps 2 x 8 x 128 = 2048 values, not 2 x 64 x 128)."""
    return tokens * layers * kv_dim * bytes_per_value


def activation_bytes(tokens, seq, d_model, heads, layers, recompute: str, bytes_per_value=2.0):
    """Stored activations for backward, from Korthikanti et al., "Reducing Activation Recomputation in
    Large Transformer Models" (2022), eq. 1: per layer s*b*h*(34 + 5*a*s/h) bytes at 16-bit. Selective
    recomputation (or FlashAttention) drops the 5as/h attention-score term; full recomputation keeps only
    each layer's 2sbh-byte input. ``tokens`` = s*b."""
    scale = bytes_per_value / 2.0
    if recompute == "none":
        per_layer = tokens * d_model * (34.0 + 5.0 * heads * seq / d_model)
    elif recompute == "selective":
        per_layer = tokens * d_model * 34.0
    elif recompute == "full":
        per_layer = tokens * d_model * 2.0
    else:
        raise InputError(f"recompute must be 'none', 'selective' or 'full', got {recompute!r}")
    return per_layer * layers * scale


def training_state_bytes(params, precision: str, zero: int, dp):
    """(weights, gradients, optimizer) bytes per device for Adam, with ZeRO stage ``zero`` over ``dp``
    data-parallel ranks: stage 1 shards optimizer state, 2 also gradients, 3 also weights."""
    w, g, o = TRAINING_STATE["fp32" if precision in ("fp32", "tf32") else "mixed"]
    return (params * w / (dp if zero >= 3 else 1), params * g / (dp if zero >= 2 else 1),
            params * o / (dp if zero >= 1 else 1))


class MemoryResult(Result):
    _title = "memory footprint per device"
    _units = {"weights": "B", "kv_cache": "B", "activations": "B", "gradients": "B", "optimizer": "B",
              "total": "B", "capacity": "B", "headroom": "B"}


def ledger(parts: dict[str, float], capacity: float, where: str, *, assumptions=(), formula="",
           inputs=None) -> MemoryResult:
    """Wrap a dict of byte counts into a MemoryResult with its fits verdict."""
    total = sum(parts.values())
    fits = total <= capacity
    values = dict(parts, total=total, capacity=capacity, headroom=capacity - total)
    return MemoryResult(values, terms={}, bottleneck=Wall.MEMORY_CAPACITY, margin=total / capacity,
                        fits=fits, verdict=lambda: capacity_verdict(total, capacity),
                        assumptions=assumptions, formula=formula, inputs=inputs)


def executes_in_place(hw) -> bool:
    """A microcontroller with flash: its weights stay in flash and execute in place."""
    return hw.tier == "tiny" and hw._f.storage is not None


def tiny_fit(weights: float, working: float, hw):
    """(fits, wall, margin, verdict) on a microcontroller: the weights execute in place from flash and the
    activations and input must fit the on-chip SRAM (TensorFlow Lite Micro's arena; David et al.,
    "TensorFlow Lite Micro", MLSys 2021). memory() and serve() both decide with this rule."""
    flash, sram = hw._f.storage, hw._f.sram or hw._f.capacity
    if weights > flash:
        return False, Wall.MEMORY_CAPACITY, weights / flash, \
            "does not fit flash: " + capacity_verdict(weights, flash).removeprefix("does not fit: ")
    if working > sram:
        return False, Wall.SRAM, working / sram, \
            "activations do not fit SRAM: " + capacity_verdict(working, sram).removeprefix("does not fit: ")
    return True, Wall.SRAM, working / sram, \
        f"fits: weights in flash ({capacity_verdict(weights, flash)}), activations in SRAM"


def _tiny_ledger(parts, hw, inputs) -> MemoryResult:
    flash, sram = hw._f.storage, hw._f.sram or hw._f.capacity
    weights, working = parts["weights"], parts["activations"]
    fits, wall, margin, verdict = tiny_fit(weights, working, hw)
    values = dict(parts, total=weights + working, capacity=flash + sram, headroom=min(flash - weights, sram - working))
    return MemoryResult(values, terms={}, bottleneck=wall, margin=margin, fits=fits, verdict=verdict,
                        formula="weights <= flash (execute in place); activations + input <= SRAM", inputs=inputs)


def capacity_verdict(need, capacity) -> str:
    from .results import _show
    if np.ndim(need) or np.ndim(capacity):
        return ""
    if need <= capacity:
        return f"fits: needs {_show(need, 'B')} of {_show(capacity, 'B')} ({_show(capacity - need, 'B')} free)"
    return (f"does not fit: needs {_show(need, 'B')}, has {_show(capacity, 'B')} "
            f"(over by {_show(need - capacity, 'B')}, x{need / capacity:.2f})")


def memory(model, hardware, *, batch=1, context=None, precision: str = "fp16", kv_precision=None,
           mode: str = "inference", tp: int = 1, zero: int = 0, dp: int = 1, recompute: str = "none",
           micro_batch=None) -> MemoryResult:
    """Memory needed per device for serving (weights + KV cache) or training (weights, gradients, Adam
    state, activations), against ``hardware``'s capacity.

    Parameters
    ----------
    model : Transformer | SampleWorkload | str
    hardware : Hardware | str
    batch : int
        Sequences (inference) held at once; for training the micro-batch per device.
    context : int
        Tokens per sequence (default: the model's max_context for inference, 4096 capped for training).
    mode : {'inference', 'training'}
    tp : int  tensor-parallel degree (weights and KV split across ``tp`` devices).
    zero, dp : ZeRO stage (0-3) and data-parallel degree over which it shards.
    """
    where = "memory()"
    model, hw = catalog.workload(model), catalog.hardware(hardware)
    batch = count(batch, name="batch", where=where)
    tp = int(count(tp, name="tp", where=where))
    dp = int(count(dp, name="dp", where=where))
    if zero not in (0, 1, 2, 3):
        raise InputError(f"{where}: 'zero' must be 0, 1, 2 or 3, got {zero!r}")
    if mode not in ("inference", "training"):
        raise InputError(f"{where}: 'mode' must be 'inference' or 'training', got {mode!r}")
    f, bpv = model._f, bytes_per_value(precision, where)
    parts = dict(weights=0.0, kv_cache=0.0, activations=0.0, gradients=0.0, optimizer=0.0)
    if isinstance(model, SampleWorkload):
        parts["weights"] = f.params * bpv
        parts["activations"] = batch * (f.activation_bytes + f.input_bytes) * (bpv / 2 if mode == "training" else 1)
        if mode == "training":
            _, parts["gradients"], parts["optimizer"] = training_state_bytes(f.params, precision, zero, dp)
        inputs = dict(model=model, hardware=hw, batch=batch, precision=precision)
        if executes_in_place(hw) and mode == "inference":
            return _tiny_ledger(parts, hw, inputs)
        return ledger(parts, hw._f.capacity, where, inputs=inputs)
    check_tp(model, tp, where)
    ctx = count(context if context is not None else (model.max_context if mode == "inference"
                                                       else min(model.max_context, 4096)),
                name="context", where=where, kind="tokens")
    if mode == "inference":
        kv_bpv = bytes_per_value(kv_precision or default_kv_precision(precision), where)
        parts["weights"] = f.params * bpv / tp
        parts["kv_cache"] = kv_cache_bytes(batch * ctx, f.layers, f.kv_dim, kv_bpv) / min(tp, model.kv_heads)
        formula = "weights = params x bytes/param / tp; KV = batch x context x layers x kv_dim x bytes / tp"
    else:
        w, g, o = training_state_bytes(f.params / tp, precision, zero, dp)
        parts.update(weights=w, gradients=g, optimizer=o)
        parts["activations"] = activation_bytes(batch * ctx, ctx, f.d_model, model.heads, f.layers,
                                                recompute, 2.0 if precision != "fp32" else 4.0) / tp
        formula = ("Adam: 16 B/param mixed precision (ZeRO paper), sharded by ZeRO stage; activations "
                   "s*b*h*(34 + 5as/h) per layer (Korthikanti et al. 2022)")
    return ledger(parts, hw._f.capacity, where, formula=formula,
                  inputs=dict(model=model, hardware=hw, batch=batch, context=ctx, precision=precision,
                              mode=mode, tp=tp, zero=zero, dp=dp))


def bytes_per_value(precision: str, where: str) -> float:
    try:
        return BYTES_PER_VALUE[precision]
    except (KeyError, TypeError):
        raise InputError(f"{where}: unknown precision {precision!r}; use one of "
                         f"{', '.join(BYTES_PER_VALUE)}") from None


def default_kv_precision(precision: str) -> str:
    """KV cache precision when not given: fp16 for weight-only quantised models (int8/int4), else the
    weights' precision."""
    return "fp16" if precision in ("int8", "int4") else precision


def check_tp(model: Transformer, tp: int, where: str) -> None:
    if model.heads % tp:
        raise InputError(f"{where}: tp={tp} does not divide {model.name}'s {model.heads} attention heads; "
                         f"use a divisor such as {', '.join(str(d) for d in (1, 2, 4, 8) if model.heads % d == 0)}")


