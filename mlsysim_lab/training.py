"""Training a transformer on a cluster: FLOPs per token, step time, MFU, time and GPU-hours to train.

A step does 6 FLOPs per matmul parameter per token (2 forward, 4 backward; Kaplan et al. 2020,
sec. 2.1) plus the attention products, split over tensor (tp), pipeline (pp), data (dp) and expert (ep)
parallel ranks, gpus = tp x pp x dp (experts are sharded over ep ranks inside the data-parallel group).
Step time = (m + pp - 1) micro-batch slots (the pipeline bubble is the pp - 1, Huang et al. "GPipe" 2019;
Narayanan et al. SC21 eq. 1) + the exposed gradient all-reduce + software overhead. Every formula is a
closed form in the layout, so a 100,000-GPU cluster costs the same to evaluate as one node.
"""
from __future__ import annotations


import math
from types import SimpleNamespace

import numpy as np

from . import catalog, memo
from . import efficiency as eff
from .compute import efficiencies
from .errors import InputError
from .memory import activation_bytes, bytes_per_value, capacity_verdict, training_state_bytes
from .network import (ACTIVATION_BYTES, all_to_all_time, allreduce_time, hierarchical_allreduce_time,
                      inter_link, intra_link, topology_factors)
from .results import Result, Wall, bind, vmax, vmin
from .specs import Cluster, Hardware, SampleWorkload
from .units import count

#: ZeRO-3 moves 1.5x the data of an all-reduce per step (parameter all-gather in forward and backward
#: plus gradient reduce-scatter; Rajbhandari et al., "ZeRO", SC20, sec. 7.2.2); stages 0-2 move 1x.
ZERO_COMM_FACTOR = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.5}


def training_flops_per_token(f, seq):
    """Model FLOPs per trained token: 6 x matmul params + 6 x layers x d_attn x seq (causal attention,
    average context seq/2, forward 4 L d_attn ctx, backward twice the forward)."""
    return 6.0 * f.matmul_active + 6.0 * f.layers * f.d_attn * seq


def recompute_flops_per_token(f, seq, recompute: str):
    """Extra hardware FLOPs per token spent recomputing activations: a second forward pass ('full') or
    the attention products only ('selective'; Korthikanti et al. 2022)."""
    if recompute == "full":
        return 2.0 * f.matmul_active + 2.0 * f.layers * f.d_attn * seq
    if recompute == "selective":
        return 2.0 * f.layers * f.d_attn * seq
    return 0.0


class TrainResult(Result):
    _title = "training"
    _units = {"step_time": "s", "time_to_train": "s", "gpu_hours": "h", "mfu": "", "hfu": "",
              "flops_per_token": "FLOP/token", "total_flops": "FLOP", "tokens_per_second": "token/s",
              "memory_per_device": "B", "memory_capacity": "B", "steps": "", "gpus": "",
              "micro_batches": "", "bubble_fraction": ""}


def cluster(accelerator, *, gpus=None, nodes=None, per_node=None, fabric=None, network=None,
            nics_per_node=None, oversubscription: float = 1.0, topology=None) -> Cluster:
    """A cluster of ``gpus`` accelerators (or ``nodes`` servers), laid out like the catalog's server.

    ``accelerator`` is a Hardware, a hardware name, or a node name ("DGX H100"). Missing details come
    from the catalog node that holds this accelerator (GPUs per node, NVLink generation, NICs).
    """
    where = "cluster()"
    node_spec = None
    if isinstance(accelerator, str) and _is_node(accelerator):
        node_spec = catalog.node(accelerator)
        hw = catalog.hardware(node_spec.accelerator)
    else:
        hw = catalog.hardware(accelerator)
        node_spec = catalog.default_catalog().node_for(hw.name)
    if per_node is None:
        per_node = node_spec.accelerators if node_spec else 1
    per_node = int(count(per_node, name="per_node", where=where))
    if gpus is not None and nodes is not None:
        raise InputError(f"{where}: give gpus or nodes, not both")
    if gpus is not None:
        gpus = int(count(gpus, name="gpus", where=where))
        if gpus < per_node:
            per_node = gpus
        if gpus % per_node:
            raise InputError(f"{where}: {gpus} GPUs do not fill whole nodes of {per_node}; use a multiple of "
                             f"{per_node} or set per_node")
        nodes = gpus // per_node
    nodes = int(count(nodes if nodes is not None else 1, name="nodes", where=where))
    intra = catalog.fabric(fabric) if fabric else (catalog.fabric(node_spec.intra_fabric)
                                                    if node_spec and node_spec.intra_fabric else None)
    inter = catalog.fabric(network) if network else (catalog.fabric(node_spec.inter_fabric)
                                                      if node_spec and node_spec.inter_fabric else None)
    nics = nics_per_node if nics_per_node is not None else (node_spec.nics if node_spec else 0)
    if nodes > 1 and (inter is None or nics == 0):
        raise InputError(f"{where}: {nodes} nodes of {hw.name} need a scale-out network: pass network= "
                         "(e.g. 'InfiniBand NDR') and nics_per_node=")
    if topology is None:  # TPU ICI is a 3-D torus; switched fabrics are fat trees unless told otherwise
        topology = "torus" if inter is not None and inter.kind == "ici" else "fat-tree"
    return Cluster(accelerator=hw, per_node=per_node, nodes=nodes, intra_fabric=intra, inter_fabric=inter,
                   nics_per_node=nics, oversubscription=oversubscription, topology=topology,
                   name=node_spec.name if node_spec else None)


def _is_node(name: str) -> bool:
    try:
        catalog.node(name)
        return True
    except LookupError:
        return False


class LayoutResult(Result):
    """The ranked layouts of a parallelism search; fields are the best layout's."""

    _title = "parallelism search"
    _units = {"step_time": "s", "mfu": "", "tp": "", "pp": "", "dp": "", "ep": "", "memory_per_device": "B"}


def _check_choice(value, allowed, name, where):
    if value not in allowed:
        raise InputError(f"{where}: {name!r} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _resolve_system(system) -> Cluster:
    if isinstance(system, Cluster):
        return system
    if isinstance(system, Hardware) or (isinstance(system, str) and not _is_node(system)):
        return cluster(system, gpus=1)  # a device, by object or by name, is a one-GPU system
    return cluster(system)  # a server name ("DGX H100") is one whole node


def _layout(c: Cluster, model, tp, pp, dp, ep, where):
    """Check and complete a (tp, pp, dp, ep) layout against the cluster and the model."""
    n = c.gpus
    tp = int(count(tp, name="tp", where=where))
    pp = int(count(pp, name="pp", where=where))
    ep = int(count(ep, name="ep", where=where))
    if dp is None:
        if n % (tp * pp):
            raise InputError(f"{where}: tp x pp = {tp * pp} does not divide the cluster's {n} GPUs")
        dp = n // (tp * pp)
    dp = int(count(dp, name="dp", where=where))
    if tp * pp * dp != n:
        raise InputError(f"{where}: tp x pp x dp = {tp} x {pp} x {dp} = {tp * pp * dp} GPUs, but the cluster "
                         f"has {n}; layouts must use every GPU")
    scale_up_everywhere = c.inter_fabric is not None and c.inter_fabric.scope == "scale-up"
    if tp > c.per_node and not scale_up_everywhere:
        raise InputError(f"{where}: tp={tp} exceeds the {c.per_node} GPUs of one node; tensor parallelism "
                         "needs the scale-up fabric (use pp or dp across nodes)")
    if model.heads % tp:
        raise InputError(f"{where}: tp={tp} does not divide {model.name}'s {model.heads} attention heads")
    if pp > model.layers:
        raise InputError(f"{where}: pp={pp} exceeds {model.name}'s {model.layers} layers")
    if ep > 1 and (not model.is_moe or model.experts % ep):
        raise InputError(f"{where}: ep={ep} needs a mixture-of-experts model whose expert count it divides")
    if dp % ep:
        raise InputError(f"{where}: ep={ep} must divide dp={dp} (experts are sharded inside the data-parallel group)")
    return tp, pp, dp, ep


def _layout_costs(s: SimpleNamespace) -> None:
    """What one layout costs whatever the batch, added to set-up ``s``: the layers of the slowest stage,
    the weights and optimizer state per device, the links each collective uses, the data-parallel gradient
    all-reduce and the number of collective calls per micro-batch."""
    f, c, bpv, (tp, pp, dp, ep) = s.f, s.cluster, s.bpv, s.layout
    # Layers of the slowest pipeline stage: an uneven split (126 layers on 16 stages) leaves some stages
    # one layer heavier, and the pipeline runs at the pace of the heaviest.
    s.stage = math.ceil(f.layers / pp)
    s.share = s.stage / f.layers
    expert = f.experts * f.expert_params
    s.w_dev = ((f.params - expert) + expert / ep) * s.share / tp
    s.states = sum(training_state_bytes(s.w_dev, "fp32" if bpv == 4 else "mixed", s.zero, dp))
    # Collectives reach efficiency.NETWORK_BANDWIDTH of each link (s.links); each call also costs
    # efficiency.COLLECTIVE_LATENCY of software (launch and synchronisation), counted as overhead.
    bw_in, lat_in, bw_out, lat_out, steps_factor = s.links
    s.tp_link = (bw_in, lat_in) if tp <= c.per_node else (bw_out, lat_out)
    s.pp_link = (bw_out, lat_out) if tp * pp > c.per_node else (bw_in, lat_in)
    s.ep_link = (bw_out, lat_out) if tp * ep > c.per_node else (bw_in, lat_in)
    s.tp_collectives = 4.0 + (2.0 if s.recompute == "full" else 0.0)  # 2 fwd + 2 bwd per layer (+ recompute)
    calls = s.tp_collectives * s.stage if tp > 1 else 0.0
    calls += 2.0 * s.interleave if pp > 1 else 0.0
    calls += 4.0 * s.stage if ep > 1 else 0.0
    calls += 3.0 * s.stage if s.zero == 3 and dp > 1 else 0.0  # ZeRO-3: gather fwd, gather bwd, reduce-scatter
    s.call_time = calls * eff.COLLECTIVE_LATENCY.value
    # Data-parallel gradient traffic: hierarchical when part of the dp group shares a node.
    grad = s.w_dev * bpv
    dp_in = max(1, min(dp, c.per_node // (tp * pp))) if tp * pp < c.per_node else 1
    if dp == 1:
        s.t_dp = 0.0
    elif dp_in > 1:
        s.t_dp = hierarchical_allreduce_time(grad, dp_in, dp // dp_in, bw_in, lat_in, bw_out, lat_out * steps_factor)
    else:
        s.t_dp = allreduce_time(grad, dp, bw_out, lat_out * steps_factor)
    # The pipeline fills and drains over (pp - 1) / v slots with v interleaved chunks per rank (SC21 eq. 2).
    s.bubble_slots = (pp - 1.0) / s.interleave


def _step(s: SimpleNamespace, gbt, mb):
    """Float kernel: the step time terms and memory per device of the layout in set-up ``s`` (train's
    ``_setup`` with ``_layout_costs``) for ``gbt`` tokens per step in micro-batches of ``mb`` sequences
    (arrays welcome)."""
    f, seq, bpv, stage, interleave = s.f, s.seq, s.bpv, s.stage, s.interleave
    tp, pp, dp, ep = s.layout
    m = gbt / (dp * mb * seq)  # micro-batches per step through each pipeline
    t_c = mb * seq * s.hw_per_token * s.share / tp / (s.peak * s.eta)  # one micro-batch, one stage, fwd + bwd
    act_scale = 2.0 if bpv < 4 else 4.0
    act_layer = activation_bytes(mb * seq, seq, f.d_model, s.model.heads, 1.0, s.recompute, act_scale) / (
        tp if s.sp or tp == 1 else 1)
    act = act_layer * stage * vmin(m, pp)  # 1F1B: the first stage holds pp micro-batches
    t_mem = (3.0 * s.w_dev * bpv + 2.0 * act_layer * stage) / (s.bandwidth * s.eta_bw)

    act_msg = mb * seq * f.d_model * ACTIVATION_BYTES
    t_tp = s.tp_collectives * stage * allreduce_time(act_msg, tp, *s.tp_link) if tp > 1 else 0.0
    # Each micro-batch crosses every stage boundary forward and backward; interleaving v model chunks per
    # rank multiplies those sends by v (Narayanan et al., SC21, sec. 2.2.2).
    t_pp = 2.0 * interleave * (act_msg / tp / s.pp_link[0] + s.pp_link[1]) if pp > 1 else 0.0
    t_ep = 4.0 * stage * all_to_all_time(act_msg * f.top_k / tp, ep, *s.ep_link) if ep > 1 else 0.0
    slot = vmax(t_c, t_mem) + t_tp + t_pp + t_ep
    if s.zero == 3:
        # ZeRO-3 gathers weights in forward and backward of every micro-batch and reduce-scatters grads:
        # 1.5x an all-reduce per micro-batch, prefetched behind that micro-batch's compute.
        per_mb = ZERO_COMM_FACTOR[3] * s.t_dp
        slot = slot + vmax(per_mb - (eff.OVERLAP.value * t_c if s.overlap else 0.0), 0.0)
        exposed_dp = 0.0 * slot
    else:
        hidden = vmin(s.t_dp, eff.OVERLAP.value * t_c) if s.overlap else 0.0
        exposed_dp = s.t_dp - hidden
    bubble_slots, call_time = s.bubble_slots, s.call_time
    overhead = ((m + bubble_slots) * 3.0 * stage * eff.LAYER_OVERHEAD.value + m * call_time
                + (eff.COLLECTIVE_LATENCY.value if dp > 1 and s.zero != 3 else 0.0))
    step = (m + bubble_slots) * (slot + call_time) + exposed_dp + overhead - m * call_time
    terms = dict(compute=m * t_c, memory=m * t_mem, network=m * (t_tp + t_pp + t_ep) + exposed_dp
                 + (m * (slot - vmax(t_c, t_mem) - t_tp - t_pp - t_ep)),
                 bubble=bubble_slots * (slot + call_time), overhead=overhead)
    return step, terms, s.states + act, m


def _links(c: Cluster) -> tuple:
    """(bandwidth, latency) inside a node and leaving it, at the collective efficiency, and the topology's
    latency-step factor: what every layout on ``c`` shares."""
    bw_in, lat_in = intra_link(c)
    bw_out, lat_out = inter_link(c)
    _, steps_factor = topology_factors(c.topology, c.gpus, c.per_node)
    return (bw_in * eff.NETWORK_BANDWIDTH.value, lat_in, bw_out * eff.NETWORK_BANDWIDTH.value, lat_out,
            steps_factor)


_WALLS = {"compute": Wall.COMPUTE, "memory": Wall.MEMORY_BANDWIDTH, "network": Wall.NETWORK,
          "bubble": Wall.BUBBLE, "overhead": Wall.OVERHEAD}


def train(model, system, *, tokens, global_batch_tokens, seq_len=None, precision: str = "bf16",
          tp: int = 1, pp: int = 1, dp=None, ep: int = 1, micro_batch=1, zero: int = 0,
          recompute: str = "none", overlap: bool = True, sequence_parallel: bool = True, efficiency=None,
          bandwidth_efficiency=None, interleave: int = 1) -> TrainResult:
    """Train ``model`` on ``tokens`` tokens over ``system`` with a (tp, pp, dp, ep) layout.

    Parameters
    ----------
    model : Transformer | str
    system : Cluster | Hardware | str  (a device is a one-GPU cluster; a node name builds one node)
    tokens : int or Quantity[token]  training budget, e.g. 2e12
    global_batch_tokens : int or Quantity[token]  tokens per optimizer step, e.g. 2**22
    seq_len : int  tokens per sequence (default min(max_context, 4096))
    precision : 'bf16'/'fp16' (mixed-precision Adam, 16 B/param) or 'fp32'/'tf32'
    tp, pp, dp, ep : tensor, pipeline, data and expert parallel degrees; tp x pp x dp = GPUs
        (dp defaults to the rest); tp stays inside a node, ep divides dp and the expert count
    micro_batch : sequences per micro-batch (global batch / (dp x micro_batch x seq) micro-batches)
    zero : ZeRO stage 0-3 over the data-parallel ranks
    recompute : 'none', 'selective' or 'full' activation recomputation
    overlap : hide the gradient all-reduce behind the last micro-batch's backward (ZeRO-3: each
        micro-batch's gathers behind its compute)
    sequence_parallel : shard layer-norm/dropout activations over tp (Korthikanti et al. 2022)
    interleave : model chunks per pipeline rank (Megatron's interleaved 1F1B schedule): the bubble shrinks
        to (pp - 1) / interleave slots and pipeline sends grow interleave-fold (Narayanan et al., SC21,
        sec. 2.2.2); at most the layers of one stage

    Returns
    -------
    TrainResult  .step_time .mfu .time_to_train .gpu_hours .memory_per_device .fits .bottleneck; terms
    compute / memory / network / bubble / overhead
    """
    where = "train()"
    s = memo.setup(("train", model, system, seq_len, precision, tp, pp, dp, ep, zero, recompute, overlap,
                    sequence_parallel, efficiency, bandwidth_efficiency, interleave),
                   lambda: _setup(model, system, seq_len, precision, tp, pp, dp, ep, zero, recompute, overlap,
                                  sequence_parallel, efficiency, bandwidth_efficiency, interleave))
    total = count(tokens, name="tokens", where=where, kind="tokens")
    gbt = count(global_batch_tokens, name="global_batch_tokens", where=where, kind="tokens")
    mb = count(micro_batch, name="micro_batch", where=where)
    f, model, c, seq, v, n = s.f, s.model, s.cluster, s.seq, s.interleave, s.cluster.gpus
    tp, pp, dp, ep = s.layout
    if gbt < dp * seq * mb:
        raise InputError(f"{where}: global_batch_tokens={gbt:.3g} is smaller than one micro-batch of "
                         f"{mb:g} x {seq:g} tokens on each of {dp} data-parallel ranks ({dp * seq * mb:.3g} tokens)")
    step, terms, need, m = _step(s, gbt, mb)
    cap = s.capacity
    fits = need <= cap
    wall, margin = bind(terms, _WALLS)
    if not fits:
        wall, margin = Wall.MEMORY_CAPACITY, need / cap
    steps = total / gbt
    time = steps * step
    return TrainResult(
        dict(step_time=step, time_to_train=time, gpu_hours=time * n / 3600.0,
             mfu=gbt * s.per_token / n / step / s.peak, hfu=gbt * s.hw_per_token / n / step / s.peak,
             flops_per_token=s.per_token, total_flops=total * s.per_token, tokens_per_second=gbt / step,
             memory_per_device=need, memory_capacity=cap, steps=steps, gpus=float(n),
             micro_batches=m, bubble_fraction=(pp - 1.0) / v / (m + (pp - 1.0) / v)),
        terms=terms, bottleneck=wall, margin=margin, fits=fits,
        verdict=lambda: capacity_verdict(need, cap) + ("" if fits else _advice(zero, recompute, tp, pp)),
        assumptions=s.used, formula=_FORMULA,
        inputs=dict(model=model, system=c, tokens=total, global_batch_tokens=gbt, seq_len=seq,
                    precision=precision, tp=tp, pp=pp, dp=dp, ep=ep, micro_batch=mb, zero=zero,
                    recompute=recompute, overlap=overlap, interleave=v))


_FORMULA = ("step = (m + (pp - 1)/v) x [max(FLOPs/(tp pp peak eta), bytes/bw) + TP/PP/EP comm] + exposed DP "
            "all-reduce + overhead; bubble = ((pp-1)/v)/(m+(pp-1)/v); MFU = 6N+attn model FLOPs/(step x GPUs x peak)")


def _setup(model, system, seq_len, precision, tp, pp, dp, ep, zero, recompute, overlap, sequence_parallel,
           efficiency, bandwidth_efficiency, interleave) -> SimpleNamespace:
    """Everything train() derives from its fixed arguments, checked once (memo.setup remembers it)."""
    where = "train()"
    model = catalog.workload(model)
    if isinstance(model, SampleWorkload):
        raise InputError(f"{where}: {model.name} is a per-sample model; train() covers transformers")
    c = _resolve_system(system)
    hw, n = c.accelerator, c.gpus
    layout = _layout(c, model, tp, pp, dp, ep, where)
    pp = layout[1]
    seq = float(count(seq_len if seq_len is not None else min(model.max_context, 4096), name="seq_len",
                      where=where, kind="tokens"))
    _check_choice(zero, (0, 1, 2, 3), "zero", where)
    _check_choice(recompute, ("none", "selective", "full"), "recompute", where)
    _check_choice(precision, ("bf16", "fp16", "fp32", "tf32"), "precision", where)
    v = int(count(interleave, name="interleave", where=where))
    if v > 1 and (pp == 1 or v > math.ceil(model.layers / pp)):
        raise InputError(f"{where}: interleave={v} needs pp > 1 and at most one layer per chunk "
                         f"({math.ceil(model.layers / pp)} layers per stage at pp={pp})")
    eta, eta_bw, used = efficiencies(hw, "training", efficiency, bandwidth_efficiency, where, precision)
    used += ((eff.OVERLAP,) if overlap and n > 1 else ()) + (eff.LAYER_OVERHEAD,)
    used += (eff.NETWORK_BANDWIDTH, eff.COLLECTIVE_LATENCY) if n > 1 else ()
    per_token = training_flops_per_token(model._f, seq)
    s = SimpleNamespace(
        model=model, f=model._f, cluster=c, layout=layout, seq=seq, interleave=v, peak=hw.peak_for(precision),
        eta=eta, eta_bw=eta_bw, bpv=bytes_per_value(precision, where), used=used, capacity=hw._f.capacity,
        per_token=per_token, hw_per_token=per_token + recompute_flops_per_token(model._f, seq, recompute),
        zero=zero, recompute=recompute, overlap=overlap, sp=sequence_parallel, links=_links(c),
        bandwidth=hw._f.bandwidth)
    _layout_costs(s)
    return s


def _advice(zero: int, recompute: str, tp: int, pp: int) -> str:
    tips = []
    if zero < 3:
        tips.append(f"ZeRO stage {zero + 1}+ shards optimizer state")
    if recompute != "full":
        tips.append("activation recomputation shrinks activations")
    tips.append("more tensor/pipeline parallelism splits the weights")
    return "; try: " + ", ".join(tips)


def search(model, system, *, global_batch_tokens, seq_len=None, precision: str = "bf16", micro_batch=1,
           zero: int = 1, recompute: str = "selective", max_pp: int = 64, top: int = 10) -> LayoutResult:
    """Rank every feasible (tp, pp, dp, ep) layout of ``model`` on ``system`` by step time, and say why
    the others were rejected (memory capacity, a bubble over half the step, or an invalid split).

    tp runs over the divisors of the node size that divide the heads, pp over the divisors of the layer
    count up to ``max_pp``, ep over the divisors of dp that divide the expert count (MoE only).
    """
    where = "search()"
    model = catalog.workload(model)
    c = _resolve_system(system)
    n = c.gpus
    tps = [t for t in range(1, c.per_node + 1) if c.per_node % t == 0 and model.heads % t == 0]
    pps = [p for p in range(1, min(max_pp, model.layers) + 1) if model.layers % p == 0 and n % p == 0]
    feasible, rejected = [], []
    for t in tps:
        for p in pps:
            if n % (t * p):
                continue
            d = n // (t * p)
            eps = [e for e in range(1, d + 1) if d % e == 0 and model.experts % e == 0] if model.is_moe else [1]
            for e in eps:
                layout = dict(tp=t, pp=p, dp=d, ep=e)
                try:
                    r = train(model, c, tokens=global_batch_tokens, global_batch_tokens=global_batch_tokens,
                              seq_len=seq_len, precision=precision, micro_batch=micro_batch, zero=zero,
                              recompute=recompute, **layout)
                except InputError as err:
                    rejected.append(dict(layout, reason=str(err).removeprefix("train(): ")))
                    continue
                row = dict(layout, step_time=r._v["step_time"], mfu=r._v["mfu"],
                           memory_per_device=r._v["memory_per_device"], bottleneck=str(r.bottleneck),
                           bubble=r._v["bubble_fraction"])
                if not r.fits:
                    rejected.append(dict(layout, reason=f"memory capacity: {r.verdict.split(';')[0]}"))
                elif row["bubble"] > 0.5:
                    rejected.append(dict(layout, reason=f"pipeline bubble {row['bubble']:.0%} of the step"))
                else:
                    feasible.append(row)
    feasible.sort(key=lambda row: row["step_time"])
    if not feasible:
        raise InputError(f"{where}: no layout of {model.name} fits {n} x {c.accelerator.name}; first reasons: "
                         + "; ".join(f"tp{r['tp']} pp{r['pp']} dp{r['dp']}: {r['reason']}" for r in rejected[:3]))
    best = feasible[0]
    result = LayoutResult(
        {k: float(best[k]) for k in ("step_time", "mfu", "tp", "pp", "dp", "ep", "memory_per_device")},
        terms={}, bottleneck=Wall(best["bottleneck"]), margin=(feasible[1]["step_time"] / best["step_time"]
                                                               if len(feasible) > 1 else float("inf")),
        verdict=f"best of {len(feasible)} feasible layouts: tp{best['tp']} pp{best['pp']} dp{best['dp']} "
                f"ep{best['ep']}; {len(rejected)} rejected",
        formula="each layout evaluated with train(); ranked by step time",
        inputs=dict(model=model, system=c, global_batch_tokens=global_batch_tokens, zero=zero, recompute=recompute),
        extras=dict(feasible=feasible[:top], rejected=rejected))
    return result


def weak_scaling(model, hardware, *, gpus, tokens_per_gpu=2**21 / 8, seq_len=None, precision: str = "bf16",
            tp: int = 1, pp: int = 1, zero: int = 1, recompute: str = "selective"):
    """Weak scaling from one node to a fleet: throughput and efficiency vs GPU count (an array).

    Each GPU keeps ``tokens_per_gpu`` tokens per step; efficiency = throughput(N) / (N x the per-GPU
    throughput of one node). Closed form per point, so 8 and 100,000 GPUs cost the same.
    """
    where = "weak_scaling()"
    hw = catalog.hardware(hardware)
    counts = np.atleast_1d(np.asarray(gpus, dtype=float))
    rows = []
    base = None
    for n in counts:  # one closed-form evaluation per requested cluster size (not per GPU)
        c = cluster(hw, gpus=int(n))
        r = train(model, c, tokens=1e9, global_batch_tokens=tokens_per_gpu * n, seq_len=seq_len,
                  precision=precision, tp=min(tp, c.per_node), pp=pp, zero=zero, recompute=recompute)
        per_gpu = r._v["tokens_per_second"] / n
        base = per_gpu if base is None else base
        rows.append((n, r._v["tokens_per_second"], per_gpu / base, r._v["mfu"]))
    arr = np.array(rows)
    return ScalingResult(dict(gpus=arr[:, 0], tokens_per_second=arr[:, 1], efficiency=arr[:, 2], mfu=arr[:, 3]),
                         terms={}, bottleneck=Wall.NETWORK, margin=float("nan"),
                         formula="efficiency(N) = throughput(N) / (N x throughput per GPU at the smallest N)",
                         inputs=dict(model=model, hardware=hw, where=where))


class ScalingResult(Result):
    _title = "weak scaling"
    _units = {"gpus": "", "tokens_per_second": "token/s", "efficiency": "", "mfu": ""}
