"""The algorithm walls: compute-optimal scaling, fidelity (what compression buys and costs), attention.

Training compute is C = 6 N D FLOPs (2 forward + 4 backward per parameter per token; Kaplan et al. 2020,
sec. 2.1), and for a fixed C the loss is lowest near D = 20 N (Hoffmann et al. 2022, "Chinchilla").
Compression trades bits per weight for memory and decode speed (decode is memory-bound, so fewer bytes is
a faster step) against accuracy, which no formula gives: the accuracy side here is published measurements.
Attention adds 2 L d_attn x context FLOPs per token on top of the 2 N of the matmuls, and materialised
attention scores grow with context squared, which FlashAttention never writes to memory.
"""
from __future__ import annotations

import numpy as np

from . import catalog
from .errors import InputError, UnitError
from .memory import bytes_per_value, memory
from .results import Result, Wall, _show, bind
from .serving import serve
from .specs import Hardware, SampleWorkload, Transformer
from .units import Q_, check_number, count, to_si

# ------------------------------------------------------------------------------------------ scaling
#: Training FLOPs per parameter per token: 2 for the forward pass, 4 for the backward pass (Kaplan et al.,
#: "Scaling Laws for Neural Language Models", 2020, sec. 2.1; Hoffmann et al. 2022, sec. 3, C ~ 6ND).
TRAINING_FLOPS_PER_PARAM_TOKEN = 6.0

#: Compute-optimal tokens per parameter. Hoffmann et al., "Training Compute-Optimal Large Language Models"
#: (NeurIPS 2022), Table 3 (approach 1): 1B params -> 20.2B tokens, 10B -> 205.1B, 67B -> 1.5T; i.e. ~20
#: tokens per parameter, with N and D both growing as C^0.5. The "20" is the derived rule of thumb.
CHINCHILLA_TOKENS_PER_PARAM = 20.0

#: Parametric loss L(N, D) = E + A / N^alpha + B / D^beta fitted by Hoffmann et al. 2022 (approach 3,
#: sec. 3.3, eq. 10; Appendix D.2). Its own optimum is ~40B params at the Gopher budget (fig. 4), fewer
#: tokens per parameter than approach 1, and Besiroglu et al., "Chinchilla Scaling: A replication attempt"
#: (2024) found the published fit inconsistent with the paper's data: treat it as a rough ranking of nearby
#: (N, D), not a prediction of absolute loss.
CHINCHILLA_LOSS_FIT = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)

#: Within this factor of 20 tokens/param a run is called compute-optimal in the verdict (a presentation
#: threshold: the loss surface is flat near the optimum, Hoffmann et al. 2022, fig. 3 isoFLOP curves).
COMPUTE_OPTIMAL_BAND = 1.25


def training_compute(params, tokens):
    """C = 6 N D FLOPs; elementwise on arrays."""
    return TRAINING_FLOPS_PER_PARAM_TOKEN * params * tokens


def compute_optimal(compute):
    """(N*, D*) for a budget C: C = 6 N (20 N) = 120 N^2, so N* = sqrt(C / 120) and D* = 20 N*."""
    params = np.sqrt(compute / (TRAINING_FLOPS_PER_PARAM_TOKEN * CHINCHILLA_TOKENS_PER_PARAM))
    return params, CHINCHILLA_TOKENS_PER_PARAM * params


def chinchilla_loss(params, tokens):
    """Hoffmann et al.'s fitted loss E + A/N^alpha + B/D^beta (nats per token on their data)."""
    k = CHINCHILLA_LOSS_FIT
    return k["E"] + k["A"] / params ** k["alpha"] + k["B"] / tokens ** k["beta"]


class ChinchillaResult(Result):
    """A training run (N, D, C) against the compute-optimal run of the same compute."""

    _title = "compute-optimal scaling"
    _units = {"params": "param", "tokens": "token", "compute": "FLOP", "tokens_per_param": "token/param",
              "optimal_params": "param", "optimal_tokens": "token", "overtraining": "", "loss": "",
              "optimal_loss": ""}


def chinchilla(model=None, *, compute=None, params=None, tokens=None) -> ChinchillaResult:
    """Compute-optimal model size and data (C = 6ND, D = 20N), or how far a given (N, D) is from it.

    Give any one or two of ``compute``, ``params``, ``tokens`` (or a ``model``, whose parameters and
    training tokens are used): one value is completed with the 20:1 rule (``compute`` alone gives the
    optimal N and D; ``params`` alone the optimal D and C); two values fix the run and the third follows
    from C = 6ND. Every answer also carries the compute-optimal (N*, D*) for the same compute and the
    over-training factor (tokens per parameter / 20).

    Parameters
    ----------
    model : Transformer | str, optional  its (active) parameters and training tokens
    compute : Quantity[compute]  e.g. "5.76e23 FLOP"
    params : int or Quantity[parameters]  e.g. 7e9
    tokens : int or Quantity[token]  e.g. 2e12

    Returns
    -------
    ChinchillaResult  .params .tokens .compute .tokens_per_param .optimal_params .optimal_tokens
    .overtraining .loss (Hoffmann et al.'s fit; a ranking aid only)

    References
    ----------
    Hoffmann et al., "Training Compute-Optimal Large Language Models", NeurIPS 2022, Table 3 and eq. 10.
    """
    where = "chinchilla()"
    if model is not None:
        m = catalog.workload(model)
        if isinstance(m, SampleWorkload):
            raise InputError(f"{where}: {m.name} is a per-sample model; Chinchilla scaling is for transformers")
        if params is None:
            params = m._f.active  # a mixture of experts spends compute on its active parameters
        if tokens is None and compute is None:
            if m.training_tokens is None:
                raise InputError(f"{where}: {m.name} has no training_tokens in the catalog; pass tokens=")
            tokens = m.training_tokens
    given = [name for name, v in (("compute", compute), ("params", params), ("tokens", tokens)) if v is not None]
    if not given:
        raise InputError(f"{where}: give compute=, params= or tokens= (or a model)")
    if len(given) == 3:
        raise InputError(f"{where}: compute, params and tokens over-determine the run (C = 6ND); give two")
    c = to_si(compute, "compute", name="compute", where=where) if compute is not None else None
    n = count(params, name="params", where=where, kind="parameters", integer=False) if params is not None else None
    d = count(tokens, name="tokens", where=where, kind="tokens", integer=False) if tokens is not None else None
    k = CHINCHILLA_TOKENS_PER_PARAM
    if given == ["compute"]:
        n, d = compute_optimal(c)
    elif given == ["params"]:
        d = k * n
    elif given == ["tokens"]:
        n = d / k
    elif c is None:
        pass
    elif n is None:
        n = c / (TRAINING_FLOPS_PER_PARAM_TOKEN * d)
    else:
        d = c / (TRAINING_FLOPS_PER_PARAM_TOKEN * n)
    c = training_compute(n, d)
    n_opt, d_opt = compute_optimal(c)
    ratio = d / n
    over = ratio / k
    loss, opt_loss = chinchilla_loss(n, d), chinchilla_loss(n_opt, d_opt)
    margin = np.maximum(over, 1.0 / over)

    def verdict():
        if np.ndim(over):
            return ""
        if over > COMPUTE_OPTIMAL_BAND:
            state = f"over-trained x{over:.1f}"
        elif over < 1.0 / COMPUTE_OPTIMAL_BAND:
            state = f"under-trained x{1.0 / over:.1f}"
        else:
            return (f"compute-optimal: {_show(n, 'param')} on {_show(d, 'token')} "
                    f"({ratio:.3g} tokens/param) for {c:.3g} FLOP")
        return (f"{state}: {ratio:.3g} tokens/param vs the compute-optimal {k:g}; the same {c:.3g} FLOP "
                f"would train {_show(n_opt, 'param')} on {_show(d_opt, 'token')}")

    return ChinchillaResult(
        dict(params=n, tokens=d, compute=c, tokens_per_param=ratio, optimal_params=n_opt, optimal_tokens=d_opt,
             overtraining=over, loss=loss, optimal_loss=opt_loss),
        terms={}, bottleneck=Wall.SCALING, margin=margin, verdict=verdict,
        formula="C = 6 N D; compute-optimal D = 20 N, so N* = sqrt(C / 120); overtraining = (D / N) / 20",
        inputs=dict(model=model, compute=compute, params=params, tokens=tokens))


# ------------------------------------------------------------------------------------------ fidelity
#: Published measurements, not model output. WikiText-2 perplexity (lower is better) of Llama-2 after
#: weight-only quantisation with groups of 128 weights, from Lin et al., "AWQ: Activation-aware Weight
#: Quantization for LLM Compression and Acceleration" (MLSys 2024), Table 4 (Llama-2 columns).
#: RTN = round-to-nearest; GPTQ-R = GPTQ with act-order reordering (Frantar et al., ICLR 2023).
#: Rows: (model, bits per weight, method, perplexity).
PUBLISHED_PERPLEXITY: tuple[tuple[str, int, str, float], ...] = (
    ("Llama-2-7B", 16, "fp16", 5.47), ("Llama-2-13B", 16, "fp16", 4.88), ("Llama-2-70B", 16, "fp16", 3.32),
    ("Llama-2-7B", 4, "RTN", 5.73), ("Llama-2-13B", 4, "RTN", 4.98), ("Llama-2-70B", 4, "RTN", 3.46),
    ("Llama-2-7B", 4, "GPTQ", 5.69), ("Llama-2-13B", 4, "GPTQ", 4.98), ("Llama-2-70B", 4, "GPTQ", 3.42),
    ("Llama-2-7B", 4, "GPTQ-R", 5.63), ("Llama-2-13B", 4, "GPTQ-R", 4.99), ("Llama-2-70B", 4, "GPTQ-R", 3.43),
    ("Llama-2-7B", 4, "AWQ", 5.60), ("Llama-2-13B", 4, "AWQ", 4.97), ("Llama-2-70B", 4, "AWQ", 3.41),
    ("Llama-2-7B", 3, "RTN", 6.66), ("Llama-2-13B", 3, "RTN", 5.52), ("Llama-2-70B", 3, "RTN", 3.98),
    ("Llama-2-7B", 3, "GPTQ", 6.43), ("Llama-2-13B", 3, "GPTQ", 5.48), ("Llama-2-70B", 3, "GPTQ", 3.88),
    ("Llama-2-7B", 3, "GPTQ-R", 6.42), ("Llama-2-13B", 3, "GPTQ-R", 5.41), ("Llama-2-70B", 3, "GPTQ-R", 3.86),
    ("Llama-2-7B", 3, "AWQ", 6.24), ("Llama-2-13B", 3, "AWQ", 5.32), ("Llama-2-70B", 3, "AWQ", 3.74),
)
PUBLISHED_PERPLEXITY_SOURCE = ("Lin et al., 'AWQ', MLSys 2024, Table 4: WikiText-2 perplexity of Llama-2 7B/13B/70B, "
                               "FP16 and INT3/INT4 weight-only, group size 128")


class FidelityResult(Result):
    """The best published point under a memory budget; ``points`` holds every point with its Pareto flag."""

    _title = "fidelity: accuracy vs size (published)"
    _units = {"perplexity": "", "baseline_perplexity": "", "increase": "", "bits": "", "weights": "B",
              "budget": "B"}


def pareto_front(size, error):
    """Boolean mask of the points no other point beats on both size and error (lower is better)."""
    size, error = np.asarray(size, dtype=float), np.asarray(error, dtype=float)
    no_worse = (size[None, :] <= size[:, None]) & (error[None, :] <= error[:, None])
    better = (size[None, :] < size[:, None]) | (error[None, :] < error[:, None])
    return ~np.any(no_worse & better, axis=1)


def fidelity(model=None, *, budget=None) -> FidelityResult:
    """Accuracy against weight memory from published quantisation results, and the Pareto frontier.

    Each point's weight memory is params x bits / 8 with the catalog's parameter count (the convention of
    ``memory()``: every weight at the stored width; per-group scales add ~0.16 bit/weight at group 128 and
    are ignored). ``points`` lists every point with ``pareto`` True where no other point is both smaller
    and more accurate: across models, a larger model at 3-4 bits beats a smaller one at 16 bits.

    Parameters
    ----------
    model : str | Transformer, optional  restrict to one model (default: every model in the table)
    budget : Quantity[information] | Hardware | str, optional  weight-memory budget (a device: its capacity);
        the answer is the most accurate point whose weights fit it

    Returns
    -------
    FidelityResult  .perplexity .baseline_perplexity (fp16 of the same model) .increase .bits .weights
    .budget; .points (all points)

    References
    ----------
    Lin et al., "AWQ", MLSys 2024, Table 4 (see ``PUBLISHED_PERPLEXITY``).
    """
    where = "fidelity()"
    rows = PUBLISHED_PERPLEXITY
    if model is not None:
        name = catalog.workload(model).name
        rows = tuple(r for r in rows if r[0] == name)
        if not rows:
            have = sorted({r[0] for r in PUBLISHED_PERPLEXITY})
            raise InputError(f"{where}: no published quantisation results for {name}; the table covers "
                             f"{', '.join(have)}")
    cap = float("inf") if budget is None else _capacity(budget, where)
    params = {n: catalog.workload(n)._f.params for n in {r[0] for r in rows}}
    base = {r[0]: r[3] for r in PUBLISHED_PERPLEXITY if r[1] == 16}
    sizes = np.array([params[r[0]] * r[1] / 8.0 for r in rows])
    ppl = np.array([r[3] for r in rows])
    front = pareto_front(sizes, ppl)
    points = [dict(model=r[0], bits=r[1], method=r[2], perplexity=r[3], weights=float(s),
                   increase=r[3] / base[r[0]] - 1.0, pareto=bool(p)) for r, s, p in zip(rows, sizes, front)]
    points.sort(key=lambda p: (p["weights"], p["perplexity"]))
    fitting = [p for p in points if p["weights"] <= cap]
    fits = bool(fitting)
    best = min(fitting, key=lambda p: p["perplexity"]) if fits else min(points, key=lambda p: p["weights"])
    values = dict(perplexity=best["perplexity"], baseline_perplexity=base[best["model"]],
                  increase=best["increase"], bits=float(best["bits"]), weights=best["weights"], budget=cap)
    if fits:
        verdict = (f"{best['model']} at {best['bits']} bits ({best['method']}): perplexity {best['perplexity']:.2f} "
                   f"vs {base[best['model']]:.2f} at fp16 (+{best['increase']:.1%}), weights "
                   f"{_show(best['weights'], 'B')}" + (f" of {_show(cap, 'B')}" if np.isfinite(cap) else ""))
    else:
        verdict = (f"nothing published fits: the smallest point ({best['model']} at {best['bits']} bits) needs "
                   f"{_show(best['weights'], 'B')}, has {_show(cap, 'B')}")
    result = FidelityResult(
        values, terms={}, bottleneck=Wall.FIDELITY if fits else Wall.MEMORY_CAPACITY,
        margin=best["weights"] / cap if np.isfinite(cap) else float("nan"), fits=fits, verdict=verdict,
        formula="weights = params x bits / 8; perplexity: published (" + PUBLISHED_PERPLEXITY_SOURCE + ")",
        inputs=dict(model=model, budget=budget),
        extras=dict(points=[dict(p, weights=Q_(p["weights"], "B")) for p in points]))
    return result


def _capacity(budget, where: str) -> float:
    """A memory budget in bytes: a quantity ("16 GB"), or a device (its capacity) by spec or catalog name."""
    if isinstance(budget, Hardware):
        return budget._f.capacity
    try:
        return to_si(budget, "information", name="budget", where=where)
    except UnitError as err:
        if isinstance(budget, str) and err.dim1 == "unparseable":
            return catalog.hardware(budget)._f.capacity
        raise


class QuantizeResult(Result):
    """Weight memory, bytes per decode step and decode speed at a precision, against a baseline precision."""

    _title = "quantisation and sparsity"
    _units = {"bits": "", "weights": "B", "baseline_weights": "B", "step_bytes": "B", "baseline_step_bytes": "B",
              "itl": "s", "baseline_itl": "s", "speedup": "", "memory_saving": "", "sparsity_speedup": "",
              "ideal_sparsity_speedup": ""}


def quantize(model, hardware, *, precision: str = "int4", baseline: str = "fp16", sparsity=0.0, batch=1,
             prompt_tokens=1024, output_tokens=256, **serve_options) -> QuantizeResult:
    """What storing weights in fewer bits buys on ``hardware``: weight memory, bytes streamed per decode
    step and the decode speedup over ``baseline``, all from ``memory()`` and ``serve()``.

    Decode at small batch is memory-bound, so the step time follows the bytes read: int4 weights read a
    quarter of fp16's (W4A16: arithmetic still runs in fp16, so prefill does not speed up). Unstructured
    ``sparsity`` (a fraction of weights set to zero) gives no speedup on dense hardware: the zeros are
    stored and multiplied like any other value, so ``sparsity_speedup`` is 1; ``ideal_sparsity_speedup``
    = 1 / (1 - sparsity) is the bound if zeros cost nothing, which needs sparse kernels or structured
    (2:4) sparsity support (Mishra et al., "Accelerating Sparse Deep Neural Networks", 2021).

    Parameters
    ----------
    model : Transformer | str
    hardware : Hardware | str
    precision, baseline : weight precisions to compare (e.g. 'int4' against 'fp16')
    sparsity : fraction of weights that are zero, in [0, 1)
    batch, prompt_tokens, output_tokens, **serve_options : passed to ``serve()`` for both precisions

    Returns
    -------
    QuantizeResult  .weights (all weights) .step_bytes (read per device per decode step) .itl .speedup
    .memory_saving .sparsity_speedup; terms, bottleneck and fits of the quantised configuration's decode
    """
    where = "quantize()"
    m = catalog.workload(model)
    if not isinstance(m, Transformer):
        raise InputError(f"{where}: {m.name} is a per-sample model; quantize() covers transformers (use serve() "
                         "with precision= for per-sample models)")
    s = check_number(sparsity, name="sparsity", where=where, allow_zero=True)
    if np.any(np.asarray(s) >= 1):
        raise InputError(f"{where}: 'sparsity' is the fraction of zero weights and must be in [0, 1), got {sparsity!r}")
    bits = 8.0 * bytes_per_value(precision, where)
    hw = catalog.hardware(hardware)
    runs = {}
    for label, p in (("new", precision), ("base", baseline)):
        r = serve(m, hw, batch=batch, prompt_tokens=prompt_tokens, output_tokens=output_tokens, precision=p,
                  **serve_options)
        w = memory(m, hw, context=1, precision=p).weights.to("B").magnitude
        step = r._v["mbu"] * r._v["itl"] * hw._f.bandwidth  # mbu = bytes per device per step / (ITL x bandwidth)
        runs[label] = (r, w, step)
    (r, w, step), (r0, w0, step0) = runs["new"], runs["base"]
    speedup = r0._v["itl"] / r._v["itl"]
    ideal = 1.0 / (1.0 - s)

    def verdict():
        if np.ndim(speedup) or np.ndim(s):
            return ""
        text = (f"{precision} weights: {_show(w, 'B')} vs {_show(w0, 'B')} at {baseline} (x{w0 / w:.2f} smaller); "
                f"decode reads {_show(step, 'B')} per step vs {_show(step0, 'B')}: x{speedup:.2f} faster")
        if s > 0:
            text += (f"; {s:.0%} unstructured sparsity: x1.00 on dense hardware (zeros still stored and "
                     f"multiplied; x{ideal:.1f} only if zeros cost nothing)")
        return text + ("" if r.fits else f"; {r.verdict}")

    return QuantizeResult(
        dict(bits=bits, weights=w, baseline_weights=w0, step_bytes=step, baseline_step_bytes=step0,
             itl=r._v["itl"], baseline_itl=r0._v["itl"], speedup=speedup, memory_saving=w0 / w,
             sparsity_speedup=1.0 + 0.0 * s, ideal_sparsity_speedup=ideal),
        terms=r._terms, bottleneck=r.bottleneck, margin=r.margin, fits=r.fits, verdict=verdict,
        assumptions=r.assumptions,
        formula="speedup = ITL(baseline) / ITL(precision) from serve(); unstructured sparsity on dense hardware: x1",
        inputs=dict(model=m, hardware=hw, precision=precision, baseline=baseline,
                    sparsity=sparsity, batch=batch))


# ------------------------------------------------------------------------------------------ attention
class AttentionResult(Result):
    """Attention's share of FLOPs and its score memory, with and without FlashAttention."""

    _title = "attention's quadratic term"
    _units = {"context": "token", "attention_flops": "FLOP", "matmul_flops": "FLOP", "share": "",
              "crossover": "token", "score_memory": "B", "flash_memory": "B", "flash_saving": ""}
    _term_unit = "FLOP"


_ATTENTION_WALLS = {"attention": Wall.ATTENTION, "matmul": Wall.COMPUTE}


def attention(model, *, context, batch=1, phase: str = "prefill", precision: str = "fp16",
              hardware=None) -> AttentionResult:
    """How much of a transformer's work and memory goes to attention at ``context`` tokens.

    FLOPs, counted as ``serve()`` and ``train()`` do: per token the matmuls cost 2 N (N = matmul
    parameters) and causal attention 2 L d_attn x context in prefill and training (QK^T and AV, each
    2 d_attn FLOPs per query-key pair, over context/2 keys on average; Hoffmann et al. 2022, App. F), or
    4 L d_attn x context for one decode step over a full cache. Attention's share therefore grows linearly
    with context and equals the matmuls at ``crossover`` = N / (L d_attn) tokens (prefill) or half that
    (decode). Memory: standard attention writes the scores S = QK^T and probabilities P = softmax(S),
    each context^2 per head, to device memory (Dao et al., "FlashAttention", NeurIPS 2022, sec. 2.2):
    2 x context^2 x heads x bytes per layer per sequence. FlashAttention tiles them through on-chip SRAM
    and keeps only Q, K, V and O, O(context): ``flash_saving`` = context / (2 head_dim) for MHA.

    Parameters
    ----------
    model : Transformer | str
    context : int or Quantity[token]  (arrays sweep)
    batch : sequences
    phase : 'prefill', 'training' (same share as prefill) or 'decode'
    precision : activation precision of the scores (bytes per value)
    hardware : Hardware | str, optional  compare one layer's scores with its memory capacity

    Returns
    -------
    AttentionResult  .share .crossover .attention_flops .matmul_flops .score_memory (per layer)
    .flash_memory (per layer) .flash_saving; fits: one layer's scores fit ``hardware``
    """
    where = "attention()"
    m = catalog.workload(model)
    if not isinstance(m, Transformer):
        raise InputError(f"{where}: {m.name} is a per-sample model; attention() needs a transformer")
    ctx = count(context, name="context", where=where, kind="tokens", integer=False)  # a sweep may be fractional
    b = count(batch, name="batch", where=where)
    bpv = bytes_per_value(precision, where)
    f = m._f
    per_ctx = f.layers * f.d_attn  # FLOPs per token per context token, over 2 (see docstring)
    if phase in ("prefill", "training"):
        matmul = b * ctx * 2.0 * f.matmul_active
        attn = b * ctx * 2.0 * per_ctx * ctx
        crossover = f.matmul_active / per_ctx
    elif phase == "decode":
        matmul = b * 2.0 * f.matmul_active + 0.0 * ctx
        attn = b * 4.0 * per_ctx * ctx
        crossover = f.matmul_active / (2.0 * per_ctx)
    else:
        raise InputError(f"{where}: 'phase' must be 'prefill', 'training' or 'decode', got {phase!r}")
    share = attn / (attn + matmul)
    queries = 1.0 if phase == "decode" else ctx
    score = b * 2.0 * queries * ctx * m.heads * bpv
    flash = b * (queries * 2.0 * f.d_attn + ctx * f.kv_dim) * bpv  # Q and O per query; K and V per key
    terms = dict(attention=attn, matmul=matmul)
    wall, margin = bind(terms, _ATTENTION_WALLS)
    fits = True
    hw = None
    if hardware is not None:
        hw = catalog.hardware(hardware)
        fits = score <= hw._f.capacity
        if np.ndim(fits) == 0 and not fits:
            wall, margin = Wall.ATTENTION, score / hw._f.capacity

    def verdict():
        if np.ndim(share):
            return ""
        text = (f"attention is {share:.0%} of {phase} FLOPs at {ctx:,.0f} tokens (equals the matmuls at "
                f"{crossover:,.0f}); scores need {_show(score, 'B')} per layer without FlashAttention, "
                f"{_show(flash, 'B')} with it")
        if hw is not None:
            text += (f"; fits {hw.name}'s {_show(hw._f.capacity, 'B')}" if fits else
                     f"; does not fit: needs {_show(score, 'B')}, has {_show(hw._f.capacity, 'B')}")
        return text

    return AttentionResult(
        dict(context=ctx, attention_flops=attn, matmul_flops=matmul, share=share, crossover=crossover + 0.0 * ctx,
             score_memory=score, flash_memory=flash, flash_saving=score / flash),
        terms=terms, bottleneck=wall, margin=margin, fits=fits, verdict=verdict,
        formula=(("share = 4 L d_attn ctx / (2 N + 4 L d_attn ctx) per decoded token; " if phase == "decode" else
                  "share = 2 L d_attn ctx / (2 N + 2 L d_attn ctx) per token; ")
                 + "scores = 2 x queries x ctx x heads x bytes per layer; FlashAttention keeps Q, K, V, O: O(ctx)"),
        inputs=dict(model=m, context=ctx, batch=b, phase=phase, precision=precision, hardware=hw))
