"""Inference on one device or a tensor-parallel group: prefill (TTFT), decode (ITL), throughput, fit.

A transformer request runs one prefill over the prompt, then one decode step per output token. Prefill
does 2 x N FLOPs per prompt token at once and is compute-bound; a decode step re-reads every weight and
the whole KV cache to produce one token per sequence, so at small batch it is memory-bound and its time
is bytes / bandwidth. The batch at which decode turns compute-bound is where the two terms meet.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import catalog, memo
from . import efficiency as eff
from .compute import compute_precision, efficiencies, iron_law_time
from .memory import (bytes_per_value, capacity_verdict, check_tp, default_kv_precision, executes_in_place,
                     kv_cache_bytes, tiny_fit)
from .network import ACTIVATION_BYTES, allreduce_time, scale_up_link
from .results import Result, Wall, bind, choose_wall, vceil, vfloor, vmax
from .specs import SampleWorkload
from .units import count, to_si

#: Megatron tensor parallelism all-reduces activations twice per layer in the forward pass (after
#: attention and after the MLP; Shoeybi et al., "Megatron-LM", 2019, sec. 3).
TP_ALLREDUCES_PER_LAYER = 2


def weights_read(f, tokens):
    """Matmul parameters a forward pass over ``tokens`` tokens touches: every dense weight, and for a
    mixture of experts the expected distinct experts, E x (1 - (1 - k/E)^tokens) per layer."""
    if not f.experts:
        return f.matmul_total + 0.0 * tokens if isinstance(tokens, np.ndarray) else f.matmul_total
    untouched = f.experts * f.expert_params * (1.0 - f.top_k / f.experts) ** tokens
    return f.matmul_total - untouched


def decode_step_cost(f, batch, context, bpv, kv_bpv):
    """(FLOPs, bytes) of one decode step for ``batch`` sequences at ``context`` cached tokens.

    FLOPs: 2 per active matmul parameter per token, plus 4 x layers x d_attn x context for the QK^T
    and AV products (Chinchilla appendix F counting). Bytes: the touched weights once, plus the KV cache
    of every sequence.
    """
    flops = batch * (2.0 * f.matmul_active + 4.0 * f.layers * f.d_attn * context)
    nbytes = weights_read(f, batch) * bpv + kv_cache_bytes(batch * context, f.layers, f.kv_dim, kv_bpv)
    return flops, nbytes


def prefill_cost(f, batch, prompt, bpv, kv_bpv):
    """(FLOPs, bytes) of the prefill of ``batch`` prompts of ``prompt`` tokens: causal attention costs
    4 x layers x d_attn x prompt^2 / 2 per sequence (each token attends to those before it)."""
    tokens = batch * prompt
    flops = tokens * 2.0 * f.matmul_active + batch * 2.0 * f.layers * f.d_attn * prompt * prompt
    nbytes = weights_read(f, tokens) * bpv + kv_cache_bytes(tokens, f.layers, f.kv_dim, kv_bpv)
    return flops, nbytes


class ServeResult(Result):
    _title = "LLM serving"
    _units = {"ttft": "s", "itl": "s", "latency": "s", "tokens_per_second": "token/s",
              "memory_per_device": "B", "memory_capacity": "B", "compute_bound_batch": "",
              "max_batch": "", "decode_intensity": "FLOP/B", "ridge": "FLOP/B", "mbu": "", "mfu": ""}


class BatchInferenceResult(Result):
    _title = "batch inference"
    _units = {"latency": "s", "throughput": "sample/s", "memory_per_device": "B", "memory_capacity": "B",
              "intensity": "FLOP/B", "ridge": "FLOP/B", "mfu": ""}


def serve(model, hardware, *, batch=1, prompt_tokens=1024, output_tokens=256, precision: str = "fp16",
          kv_precision=None, tp: int = 1, fabric=None, efficiency=None, prefill_efficiency=None,
          bandwidth_efficiency=None, overhead=None, grouped_kv_reads: bool = True):
    """Serve ``batch`` requests of ``prompt_tokens`` in and ``output_tokens`` out on ``tp`` devices.

    Parameters
    ----------
    model : Transformer | SampleWorkload | str
        A transformer gives TTFT/ITL; a per-sample model (CNN) gives batch latency and throughput.
    hardware : Hardware | str
    batch : int or array  sequences decoded together (continuous batching keeps this many in flight)
    prompt_tokens, output_tokens : int
    precision : weight precision ('fp16', 'bf16', 'fp8', 'int8', 'int4'); int4 computes in fp16
    kv_precision : KV-cache precision (default: fp16 for int8/int4 weights, else the weights')
    tp : tensor-parallel degree (must divide the attention heads); devices joined by ``fabric``
    efficiency, prefill_efficiency, bandwidth_efficiency : overrides of the efficiency.py defaults (an
        explicit bandwidth_efficiency applies to every read, short KV reads included)
    overhead : Quantity[time]  software overhead per forward pass (default: efficiency.LAYER_OVERHEAD per
        layer and efficiency.COLLECTIVE_LATENCY per tensor-parallel all-reduce, plus
        efficiency.REQUEST_OVERHEAD once per prefill); an explicit value replaces them all
    grouped_kv_reads : the decode attention kernel reads each KV head once for its whole group of query
        heads (FlashDecoding, TensorRT-LLM's XQA); False models kernels that read it once per query head
        (TensorRT-LLM's masked MHA before v0.7), which multiplies KV traffic by heads / kv_heads under GQA

    Returns
    -------
    ServeResult  .ttft .itl .latency .tokens_per_second .memory_per_device .fits .bottleneck ...
    """
    where = "serve()"
    s = memo.setup(("serve", model, hardware, precision, kv_precision, tp, fabric, efficiency, prefill_efficiency,
                    bandwidth_efficiency, overhead, grouped_kv_reads),
                   lambda: _setup(model, hardware, precision, kv_precision, tp, fabric, efficiency,
                                  prefill_efficiency, bandwidth_efficiency, overhead, grouped_kv_reads))
    b = count(batch, name="batch", where=where)
    if s.samples:
        return _serve_samples(s, b)
    prompt = count(prompt_tokens, name="prompt_tokens", where=where, kind="tokens")
    out = count(output_tokens, name="output_tokens", where=where, kind="tokens")
    f, model, hw, tp, kv_split = s.f, s.model, s.hw, s.tp, s.kv_split
    bpv, kv_bpv, peak, bw = s.bpv, s.kv_bpv, s.peak, s.bandwidth

    def tp_time(tokens):
        if tp == 1:
            return 0.0 * tokens
        one = allreduce_time(tokens * f.d_model * ACTIVATION_BYTES, tp, s.link_bw, s.link_lat)
        return TP_ALLREDUCES_PER_LAYER * f.layers * one

    # Prefill: the whole prompt in one pass.
    p_flops, p_bytes = prefill_cost(f, b, prompt, bpv, kv_bpv)
    ttft, _, _ = iron_law_time(p_flops / tp, _per_device_bytes(f, b * prompt, bpv, p_bytes, tp, kv_split),
                               peak, s.eta_p, bw, s.eta_bw,
                               s.step_overhead + s.request_overhead + tp_time(b * prompt))
    # Decode: one step per output token, at the average context of the generation. Weights stream in
    # large reads; each sequence's KV cache is read per head in short ones (efficiency.kv_transfer_factor).
    ctx = prompt + out / 2.0
    d_flops, d_bytes = decode_step_cost(f, b, ctx, bpv, kv_bpv)
    kv_read = kv_cache_bytes(b * ctx, f.layers, f.kv_dim, kv_bpv)
    kv_seq_dev = kv_cache_bytes(ctx, f.layers, f.kv_dim, kv_bpv) * s.kv_share
    kv_dev = b * kv_seq_dev
    d_bytes_dev = (d_bytes - kv_read) / tp + kv_dev
    kv_eta = s.eta_bw
    if s.kv_short_reads:
        kv_eta = s.eta_bw * eff.kv_transfer_factor(ctx * f.kv_dim / model.kv_heads * kv_bpv)
    t_c = d_flops / tp / (peak * s.eta_d)
    t_m = (d_bytes - kv_read) / tp / (bw * s.eta_bw) + kv_dev / (bw * kv_eta)
    t_net = tp_time(b)
    terms = dict(compute=t_c, memory=t_m, network=t_net, overhead=s.step_overhead + 0.0 * t_c)
    itl = vmax(t_c, t_m) + t_net + s.step_overhead
    latency = ttft + (out - 1.0) * itl

    # Capacity: weights split over tp, KV of every sequence at its final length split over KV heads.
    kv_seq = kv_cache_bytes(prompt + out, f.layers, f.kv_dim, kv_bpv) / kv_split
    need = s.weights_dev + b * kv_seq
    cap = hw._f.capacity
    fits = need <= cap
    max_batch = vmax(vfloor((cap - s.weights_dev) / kv_seq), 0.0)
    # Batch where decode turns compute-bound: B x a = W + B x k  =>  B* = W / (a - k).
    a = (2.0 * f.matmul_active + 4.0 * f.layers * f.d_attn * ctx) / tp / (peak * s.eta_d)
    k = kv_seq_dev / (bw * kv_eta)
    w = f.matmul_total * bpv / tp / (bw * s.eta_bw)
    if isinstance(a, np.ndarray) or isinstance(k, np.ndarray):  # a sweep of efficiencies or contexts
        with np.errstate(divide="ignore"):
            crossover = np.where(a > k, np.ceil(w / np.where(a > k, a - k, 1.0)), np.inf)
    else:
        crossover = vceil(w / (a - k)) if a > k else float("inf")

    wall, margin = bind(terms)
    if not isinstance(fits, np.ndarray) and not fits:
        wall, margin = Wall.MEMORY_CAPACITY, need / cap
    elif isinstance(fits, np.ndarray):
        wall = choose_wall(fits, wall, Wall.MEMORY_CAPACITY)
        margin = np.where(fits, margin, need / cap)
    return ServeResult(
        dict(ttft=ttft, itl=itl, latency=latency, tokens_per_second=b / itl, memory_per_device=need,
             memory_capacity=cap, compute_bound_batch=crossover, max_batch=max_batch,
             decode_intensity=d_flops / d_bytes, ridge=peak / bw, mbu=d_bytes_dev / itl / bw,
             mfu=d_flops / tp / itl / peak),
        terms=terms, bottleneck=wall, margin=margin, fits=fits, verdict=lambda: capacity_verdict(need, cap),
        assumptions=s.used, formula=_FORMULA,
        inputs=dict(model=model, hardware=hw, batch=b, prompt_tokens=prompt, output_tokens=out,
                    precision=precision, tp=tp))


_FORMULA = ("ITL = max(FLOPs/(peak x eta), weights/(bandwidth x eta_bw) + KV/(bandwidth x eta_bw x x/(x + x_half))) "
            "+ TP all-reduce + overhead; decode FLOPs = B(2N + 4 L d_attn ctx), KV = B ctx L kv_dim b_kv; TTFT adds "
            "the per-request overhead")


def _setup(model, hardware, precision, kv_precision, tp, fabric, efficiency, prefill_efficiency,
           bandwidth_efficiency, overhead, grouped_kv_reads) -> SimpleNamespace:
    """Everything serve() derives from its fixed arguments, checked once (memo.setup remembers it)."""
    where = "serve()"
    model, hw = catalog.workload(model), catalog.hardware(hardware)
    bpv = bytes_per_value(precision, where)
    cp = compute_precision(precision, hw)
    peak = hw.peak_for(cp)
    if isinstance(model, SampleWorkload):
        return _samples_setup(model, hw, bpv, peak, precision, cp, efficiency, bandwidth_efficiency, overhead)
    tp = int(count(tp, name="tp", where=where))
    check_tp(model, tp, where)
    kv_bpv = bytes_per_value(kv_precision or default_kv_precision(precision), where)
    eta_d, eta_bw, used = efficiencies(hw, "decode", efficiency, bandwidth_efficiency, where, cp)
    eta_p, _, used_p = efficiencies(hw, "prefill", prefill_efficiency, eta_bw, where, cp)
    used = used + used_p
    f = model._f
    if overhead is None:
        step_overhead = f.layers * eff.LAYER_OVERHEAD.value
        request_overhead = eff.REQUEST_OVERHEAD.value
        used += (eff.LAYER_OVERHEAD, eff.REQUEST_OVERHEAD)
    else:
        step_overhead = to_si(overhead, "time", name="overhead", where=where, allow_zero=True)
        request_overhead = 0.0
    link_bw, link_lat = float("inf"), 0.0
    if tp > 1:
        link_bw, link_lat, extra = scale_up_link(hw, fabric)
        link_bw *= eff.NETWORK_BANDWIDTH.value
        used += extra + (eff.NETWORK_BANDWIDTH, eff.COLLECTIVE_LATENCY)
        if overhead is None:  # each all-reduce call also costs efficiency.COLLECTIVE_LATENCY of software
            step_overhead += TP_ALLREDUCES_PER_LAYER * f.layers * eff.COLLECTIVE_LATENCY.value
    kv_split = min(tp, model.kv_heads)  # KV heads are split across the group; beyond that, replicated
    if bandwidth_efficiency is None:
        used += (eff.KV_TRANSFER,)
    return SimpleNamespace(
        samples=False, model=model, hw=hw, f=f, tp=tp, bpv=bpv, kv_bpv=kv_bpv, peak=peak,
        bandwidth=hw._f.bandwidth, eta_d=eta_d, eta_p=eta_p, eta_bw=eta_bw, used=used,
        step_overhead=step_overhead, request_overhead=request_overhead, link_bw=link_bw, link_lat=link_lat,
        kv_split=kv_split, weights_dev=f.params * bpv / tp, kv_short_reads=bandwidth_efficiency is None,
        # Share of one sequence's KV cache each device reads per step.
        kv_share=1.0 / kv_split if grouped_kv_reads else model.heads / (model.kv_heads * tp))


def _per_device_bytes(f, tokens, bpv, total_bytes, tp, kv_split):
    """Split a pass's bytes across a tensor-parallel group: weights by tp, KV by the KV-head split."""
    weights = weights_read(f, tokens) * bpv
    return weights / tp + (total_bytes - weights) / kv_split


def _samples_setup(model, hw, bpv, peak, precision, cp, efficiency, bandwidth_efficiency, overhead):
    where = "serve()"
    eta, eta_bw, used = efficiencies(hw, "inference", efficiency, bandwidth_efficiency, where, cp)
    f = model._f
    if overhead is None:
        over = f.layers * eff.LAYER_OVERHEAD.value
        used += (eff.LAYER_OVERHEAD,) if f.layers else ()
    else:
        over = to_si(overhead, "time", name="overhead", where=where, allow_zero=True)
    return SimpleNamespace(samples=True, model=model, hw=hw, f=f, bpv=bpv, peak=peak, eta=eta, eta_bw=eta_bw,
                           used=used, overhead=over, precision=precision)


def _serve_samples(s, b):
    f, hw, bpv, peak = s.f, s.hw, s.bpv, s.peak
    flops = b * f.flops
    act = b * (f.input_bytes + f.activation_bytes * bpv / 2.0)
    nbytes = f.params * bpv + act
    t, t_c, t_m = iron_law_time(flops, nbytes, peak, s.eta, hw._f.bandwidth, s.eta_bw, s.overhead)
    terms = dict(compute=t_c, memory=t_m, overhead=s.overhead + 0.0 * t_c)
    wall, margin = bind(terms)
    weights = f.params * bpv
    need = weights + act
    if executes_in_place(hw):  # weights in flash, activations in SRAM: memory()'s rule
        if isinstance(act, np.ndarray):  # a sweep of batches: the same rule, elementwise
            flash, sram = hw._f.storage, hw._f.sram or hw._f.capacity
            fits, verdict = (weights <= flash) & (act <= sram), ""
            over, by = (Wall.MEMORY_CAPACITY, weights / flash) if weights > flash else (Wall.SRAM, act / sram)
            wall, margin = choose_wall(fits, wall, over), np.where(fits, margin, by)
        else:
            fits, tiny_wall, tiny_margin, verdict = tiny_fit(weights, act, hw)
            if not fits:
                wall, margin = tiny_wall, tiny_margin
    else:
        fits = need <= hw._f.capacity
        verdict = lambda: capacity_verdict(need, hw._f.capacity)  # noqa: E731
        if np.ndim(fits) == 0 and not fits:
            wall, margin = Wall.MEMORY_CAPACITY, need / hw._f.capacity
    return BatchInferenceResult(
        dict(latency=t, throughput=b / t, memory_per_device=need, memory_capacity=hw._f.capacity,
             intensity=flops / nbytes, ridge=peak / hw._f.bandwidth, mfu=flops / t / peak),
        terms=terms, bottleneck=wall, margin=margin, fits=fits, verdict=verdict, assumptions=s.used,
        formula="T = max(B x FLOPs/sample / (peak x eta), (weights + B x activations) / (bandwidth x eta_bw))",
        inputs=dict(model=s.model, hardware=hw, batch=b, precision=s.precision))
