"""The data walls: feeding the accelerator, moving the dataset, and the speed of light.

Ingest and preprocessing. An input pipeline is a chain of stages that run concurrently: storage reads
samples at bandwidth / bytes per sample, W CPU workers decode and augment at W / (CPU time per sample),
and the accelerator consumes at its own rate. Like any pipeline it delivers the rate of its slowest stage,
so the accelerator is busy min(1, supply / demand) of the time, and the binding wall is the stage with the
longest time per sample (storage: ingest; CPU: preprocessing; accelerator: compute).

Data gravity. Moving D bytes over a wide-area link of bandwidth B takes D / B and costs D x the egress
price; moving the computation to the data costs C instead, so above D* = C / price moving compute wins.
Bits and bytes, decimal and binary prefixes are kept apart by the unit registry: 50 TB at 10 Gbit/s is
4e14 bit / 1e10 bit/s = 40,000 s = 11.1 h; 50 TiB is 10% more.

The speed of light. Light in silica fiber travels at c / n_g with group index n_g = 1.468 (about 2/3 c,
204,190 km/s), so every 1,000 km of fiber adds 4.9 ms one way and 9.8 ms round trip, a floor that no
hardware removes: a 10 ms round-trip budget cannot reach 1,500 km (14.7 ms) at any processing speed.
"""
from __future__ import annotations

import numpy as np

from .efficiency import Assumption
from .errors import InputError, UnknownNameError, _fold
from .results import Result, Wall, bind, choose_wall
from .specs import SampleWorkload
from .units import Q_, check_number, count, show, to_si, to_si_any

#: Storage tiers: sequential read bandwidth of one device, from its datasheet (B/s). Random reads of small
#: files are slower, much slower on a disk; pass a measured bandwidth as a quantity to model them.
STORAGE: dict[str, Assumption] = {
    "HDD": Assumption(
        "HDD sequential read (B/s)", 270e6,
        "Seagate Exos X18 product manual (pub. 100865853): maximum sustained transfer rate 270 MB/s at the "
        "outer tracks of a 7,200 rpm enterprise disk; inner tracks and random reads are slower"),
    "SATA SSD": Assumption(
        "SATA SSD sequential read (B/s)", 560e6,
        "Samsung 870 EVO data sheet: sequential read up to 560 MB/s; the SATA 6 Gbit/s link with 8b/10b "
        "coding carries at most 600 MB/s"),
    "NVMe Gen3": Assumption(
        "NVMe PCIe 3.0 x4 SSD sequential read (B/s)", 3.5e9,
        "Samsung 970 EVO Plus data sheet: sequential read up to 3,500 MB/s"),
    "NVMe Gen4": Assumption(
        "NVMe PCIe 4.0 x4 SSD sequential read (B/s)", 7.45e9,
        "Samsung 990 PRO data sheet: sequential read up to 7,450 MB/s"),
    "RAM": Assumption(
        "DDR4-3200 DRAM, one channel (B/s)", 25.6e9,
        "JEDEC JESD79-4 DDR4: 3,200 MT/s x 8 B per 64-bit channel = 25.6 GB/s (page cache in memory)"),
}

#: Egress price when none is given: AWS EC2 on-demand pricing, "Data Transfer OUT From Amazon EC2 To
#: Internet", first 10 TB per month, US East (N. Virginia): 0.09 USD/GB (listed 2023-2024). Larger monthly
#: volumes are cheaper (0.085, 0.07, 0.05 USD/GB tiers) and transfer between AWS regions costs 0.02 USD/GB.
EGRESS_PRICE = Assumption(
    "egress price (USD/GB)", 0.09,
    "AWS EC2 on-demand pricing, data transfer out to the internet, first 10 TB/month, us-east-1 (2023-2024); "
    "higher tiers 0.05-0.085 USD/GB, inter-region 0.02 USD/GB")

#: Speed of light in vacuum, exact by the definition of the metre (BIPM, The SI Brochure, 9th ed., 2019).
SPEED_OF_LIGHT = 299_792_458.0

#: Group index of standard single-mode fiber (ITU-T G.652) at 1550 nm: Corning SMF-28 Ultra product
#: information sheet, "effective group index of refraction" 1.4682 (1.4676 at 1310 nm). Pulses travel at
#: c / 1.4682 = 204,190 km/s, about 2/3 of c.
FIBER_GROUP_INDEX = Assumption(
    "fiber group index", 1.4682,
    "Corning SMF-28 Ultra product information sheet: effective group index 1.4682 at 1550 nm "
    "(ITU-T G.652 single-mode fiber); light in the glass at c / 1.4682 = 204,190 km/s")


# ------------------------------------------------------------------------------------------- kernels
def stage_times(demand, sample_bytes, bandwidth, preprocess, workers):
    """(compute, storage, preprocessing) seconds per sample: 1 / demand, bytes / bandwidth, CPU time / W."""
    return 1.0 / demand, sample_bytes / bandwidth, preprocess / workers


def crossover_size(compute_cost, price):
    """Dataset size above which moving the computation (cost C) is cheaper than paying egress: C / price
    (infinite when egress is free)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.divide(compute_cost, price)
    return float(size) if np.ndim(size) == 0 else size


def round_trip(distance, refractive_index):
    """Round-trip propagation time over ``distance`` of a medium of group index n: 2 d n / c."""
    return 2.0 * distance * refractive_index / SPEED_OF_LIGHT


# --------------------------------------------------------------------------------------------- doors
def storage_bandwidth(storage, where: str):
    """(B/s, assumptions): a tier name from ``STORAGE`` (any case, spaces or dashes) or a bandwidth quantity."""
    if isinstance(storage, str):
        by_fold = {_fold(k): k for k in STORAGE}
        if _fold(storage) in by_fold:
            tier = STORAGE[by_fold[_fold(storage)]]
            return tier.value, (tier,)
        try:
            Q_(storage)
        except Exception:
            raise UnknownNameError("storage tier", storage, list(STORAGE)) from None
    return to_si(storage, "bandwidth", name="storage", where=where), ()


# ---------------------------------------------------------------------------------------- pipeline
class PipelineResult(Result):
    """How busy the accelerator is when storage and CPU workers feed it, and which stage binds."""

    _title = "input pipeline"
    _units = {"utilization": "", "throughput": "sample/s", "demand": "sample/s", "supply": "sample/s",
              "bandwidth_needed": "B/s", "bandwidth": "B/s", "workers_needed": "", "workers": "",
              "sample_bytes": "B"}


_STAGE_WALLS = {"compute": Wall.COMPUTE, "storage": Wall.INGEST, "preprocessing": Wall.PREPROCESSING}


def pipeline(demand, *, storage, sample_bytes=None, workers=1, preprocess="0 s", accelerators=1) -> PipelineResult:
    """Feed an accelerator from storage through CPU workers: utilisation = min(1, supply / demand).

    supply = min(bandwidth / bytes per sample, workers / CPU time per sample); the stage with the longest
    time per sample binds. Example: ResNet-50 inference on an A100 consumes ~19,000 images/s of 150,528 B
    (2.9 GB/s); a 250 MB/s SSD supplies 1,660/s, so the GPU is busy 8.7% of the time: ingest binds.

    Parameters
    ----------
    demand : Result | Quantity[1/time]  samples per second the accelerator(s) consume: a result of
        ``ml.serve`` for a per-sample model (its throughput; the model's input size is the default
        ``sample_bytes``), of ``ml.train`` or an LLM ``ml.serve`` (tokens per second: a sample is a token),
        or a rate such as '2500 sample/s', '2500 /s' or '1e6 token/s'
    storage : str | Quantity[information/time]  a tier of ``STORAGE`` ('HDD', 'SATA SSD', 'NVMe Gen3',
        'NVMe Gen4', 'RAM') or a measured read bandwidth such as '250 MB/s'
    sample_bytes : Quantity[information]  bytes read from storage per sample (per token for token rates)
    workers : int  CPU worker processes decoding and augmenting in parallel
    preprocess : Quantity[time]  CPU time one worker spends per sample (decode + augment); '0 s' = none
    accelerators : int  accelerators sharing this storage and these workers, each consuming ``demand``

    Returns
    -------
    PipelineResult  .utilization .throughput .supply .bandwidth_needed .workers_needed; terms: seconds per
    sample of compute, storage and preprocessing; bottleneck: compute, storage ingest or preprocessing
    """
    where = "pipeline()"
    rate, default_bytes, used = _demand(demand, where)
    n_acc = count(accelerators, name="accelerators", where=where)
    if sample_bytes is None:
        if default_bytes is None:
            raise InputError(f"{where}: pass sample_bytes= (bytes read per sample, or per token for a token "
                             "rate, e.g. '110 kB' for an ImageNet JPEG or '4 B' for an int32 token id)")
        nbytes = default_bytes
    else:
        nbytes = to_si(sample_bytes, "information", name="sample_bytes", where=where)
    bw, tier = storage_bandwidth(storage, where)
    n_workers = count(workers, name="workers", where=where)
    cpu = to_si(preprocess, "time", name="preprocess", where=where, allow_zero=True)
    total = rate * n_acc
    t_compute, t_storage, t_cpu = stage_times(total, nbytes, bw, cpu, n_workers)
    terms = dict(compute=t_compute, storage=t_storage, preprocessing=t_cpu + 0.0 * t_storage)
    wall, margin = bind(terms, _STAGE_WALLS)
    supply = 1.0 / np.maximum(t_storage, t_cpu)
    utilization = np.minimum(1.0, supply / total)
    throughput = np.minimum(supply, total)
    need_bw = total * nbytes
    need_workers = np.ceil(total * cpu)
    fits = supply >= total

    def verdict():
        if any(np.ndim(x) for x in (utilization, supply, total, need_bw, need_workers)):
            return ""
        if fits:
            return (f"fed: storage and {n_workers:g} worker(s) supply {show(supply, 'sample/s')}, the accelerator(s) "
                    f"consume {show(total, 'sample/s')}; compute binds (x{margin:.3g})")
        head = f"starved: the accelerator is busy {utilization:.1%} of the time; "
        if wall == Wall.INGEST:
            return head + (f"storage ingest binds: needs {show(need_bw, 'B/s')}, has {show(bw, 'B/s')} "
                           f"(x{need_bw / bw:.3g})")
        return head + (f"preprocessing binds: needs {need_workers:,.0f} workers, has {n_workers:g} "
                       f"(x{total * cpu / n_workers:.3g})")

    return PipelineResult(
        dict(utilization=utilization, throughput=throughput, demand=total, supply=supply, bandwidth_needed=need_bw,
             bandwidth=bw, workers_needed=need_workers, workers=n_workers, sample_bytes=nbytes),
        terms=terms, bottleneck=wall, margin=margin, fits=fits, verdict=verdict, assumptions=used + tier,
        formula="supply = min(bandwidth / sample bytes, workers / CPU time per sample); "
                "utilization = min(1, supply / demand)",
        inputs=dict(demand=demand if not isinstance(demand, Result) else type(demand).__name__, storage=storage,
                    sample_bytes=sample_bytes, workers=workers, preprocess=preprocess, accelerators=accelerators))


def _demand(demand, where: str):
    """(samples/s, default bytes per sample or None, assumptions) from a result or a rate quantity."""
    if isinstance(demand, Result):
        units = type(demand)._units
        if units.get("throughput") == "sample/s":
            model = demand.inputs.get("model")
            default, used = None, ()
            if isinstance(model, SampleWorkload) and model._f.input_bytes > 0:
                default = model._f.input_bytes
                used = (Assumption("bytes read per sample (B)", default,
                                   f"{model.name}'s input as fed ({model.input_shape}); an encoded file can be "
                                   "smaller (an ImageNet JPEG averages ~110 kB: 138 GB / 1.28 M images)"),)
            return demand._v["throughput"], default, used
        if "tokens_per_second" in units:
            return demand._v["tokens_per_second"], None, ()
        raise InputError(f"{where}: 'demand' must be a rate or a result with a throughput (ml.serve, ml.train), "
                         f"got a {type(demand).__name__}")
    rate, _ = to_si_any(demand, ("request_rate", "token_rate"), name="demand", where=where)
    return rate, None, ()


# ------------------------------------------------------------------------------------- data gravity
class TransferResult(Result):
    """Moving a dataset over a wide-area link: time, egress cost, and when to move the compute instead."""

    _title = "data gravity"
    _term_unit = "USD"
    _units = {"time": "s", "egress": "USD", "compute_cost": "USD", "crossover": "B", "size": "B",
              "bandwidth": "B/s"}


_GRAVITY_WALLS = {"egress": Wall.DATA_GRAVITY, "compute": Wall.COST}


def transfer(size, *, bandwidth, egress_price=None, compute_cost=None, deadline=None) -> TransferResult:
    """Move ``size`` bytes over a WAN: time = size / bandwidth, cost = size x egress price; compared with
    moving the computation to the data for ``compute_cost`` (crossover size = compute cost / price).

    50 TB at 10 Gbit/s take 11.1 h and, at 0.08 USD/GB, 4,000 USD of egress: 20x a 200 USD job, whose
    crossover is 2.5 TB (below it move the data, above it move the compute).

    Parameters
    ----------
    size : Quantity[information]  dataset size ('50 TB' = 50e12 B; '50 TiB' = 50 x 2^40 B)
    bandwidth : Quantity[information/time]  sustained link rate ('10 Gbit/s' = 1.25 GB/s)
    egress_price : Quantity[currency/information]  per byte moved out (default ``EGRESS_PRICE``, 0.09 USD/GB)
    compute_cost : Quantity[currency]  what moving the computation to the data costs instead
    deadline : Quantity[time]  ``fits`` says whether the transfer finishes within it

    Returns
    -------
    TransferResult  .time .egress .crossover; terms (USD): egress vs compute; bottleneck: data gravity when
    egress costs more than moving compute (or the deadline is missed), else cost; ``.move`` says which
    """
    where = "transfer()"
    nbytes = to_si(size, "information", name="size", where=where)
    bw = to_si(bandwidth, "bandwidth", name="bandwidth", where=where)
    if egress_price is None:
        price, used = EGRESS_PRICE.value / 1e9, (EGRESS_PRICE,)
    else:
        price = to_si(egress_price, "data_price", name="egress_price", where=where, allow_zero=True)
        used = ()
    time = nbytes / bw
    egress = nbytes * price
    terms = {"egress": egress}
    if compute_cost is not None:
        terms["compute"] = to_si(compute_cost, "currency", name="compute_cost", where=where,
                                 allow_zero=True) + 0.0 * egress
    wall, margin = bind(terms, _GRAVITY_WALLS)
    c = terms.get("compute", float("nan"))
    crossover = crossover_size(c, price) + 0.0 * egress
    move = None
    if compute_cost is not None:
        move = np.where(egress > c, "compute", "data")
        move = str(move) if np.ndim(move) == 0 else move
    fits = True
    limit = None
    if deadline is not None:
        limit = to_si(deadline, "time", name="deadline", where=where)
        fits = time <= limit
        late = ~np.asarray(fits)
        if np.any(late):
            wall = choose_wall(late, Wall.DATA_GRAVITY, wall) if np.ndim(late) else Wall.DATA_GRAVITY
            margin = np.where(late, time / limit, margin) if np.ndim(late) else time / limit

    def verdict():
        if any(np.ndim(x) for x in (time, egress, c, crossover)):
            return ""
        text = f"{show(nbytes, 'B')} at {show(bw, 'B/s')}: {show(time, 's')} and {show(egress, 'USD')} of egress"
        if limit is not None:
            text += (f"; within the {show(limit, 's')} deadline" if fits else
                     f"; misses the deadline: needs {show(time, 's')}, has {show(limit, 's')} (x{time / limit:.3g})")
        if compute_cost is not None:
            ratio = egress / c if c > 0 else float("inf")
            text += (f"; moving the compute costs {show(c, 'USD')} (egress is x{ratio:.3g} that): move the "
                     f"{move}; above {show(crossover, 'B')} moving the compute is cheaper")
        return text

    return TransferResult(
        dict(time=time, egress=egress, compute_cost=c + 0.0 * egress, crossover=crossover, size=nbytes, bandwidth=bw),
        terms=terms, bottleneck=wall, margin=margin, fits=fits, verdict=verdict, assumptions=used,
        formula="time = size / bandwidth; egress = size x price; move compute above size* = compute cost / price",
        inputs=dict(size=size, bandwidth=bandwidth, egress_price=egress_price, compute_cost=compute_cost,
                    deadline=deadline), extras=dict(move=move))


# ------------------------------------------------------------------------------------- speed of light
class PropagationResult(Result):
    """Propagation delay over a distance, and how far a latency budget can reach."""

    _title = "speed of light"
    _units = {"one_way": "s", "round_trip": "s", "latency": "s", "max_distance": "m", "distance": "m",
              "speed": "m/s", "sla": "s"}


_LIGHT_WALLS = {"propagation": Wall.LIGHT, "processing": Wall.COMPUTE}


def propagation(distance, *, sla=None, processing="0 s", refractive_index=None) -> PropagationResult:
    """Round trip over ``distance`` of fiber, 2 d n / c, plus processing; the farthest an SLA reaches,
    (SLA - processing) c / (2 n).

    3,000 km of fiber: 29.4 ms round trip (about 30 ms); a 10 ms SLA reaches 1,021 km, so 1,500 km
    (14.7 ms) is infeasible at any processing speed.

    Parameters
    ----------
    distance : Quantity[length]  fiber path length (longer than the great-circle distance)
    sla : Quantity[time]  round-trip latency budget; ``fits`` and ``max_distance`` need it
    processing : Quantity[time]  server time added to the round trip (default 0 s)
    refractive_index : number >= 1  group index of the medium (default ``FIBER_GROUP_INDEX``, 1.4682;
        1.0 for vacuum, ~1.0003 for microwave links through air)

    Returns
    -------
    PropagationResult  .one_way .round_trip .latency .max_distance; terms: propagation and processing;
    bottleneck: the speed of light when propagation is the larger part; margin latency / SLA when an SLA
    is given
    """
    where = "propagation()"
    d = to_si(distance, "length", name="distance", where=where, allow_zero=True)
    proc = to_si(processing, "time", name="processing", where=where, allow_zero=True)
    if refractive_index is None:
        n, used = FIBER_GROUP_INDEX.value, (FIBER_GROUP_INDEX,)
    else:
        n, used = check_number(refractive_index, name="refractive_index", where=where), ()
        if np.any(np.asarray(n) < 1):
            raise InputError(f"{where}: 'refractive_index' must be >= 1 (light is slowest in glass, fastest "
                             f"in vacuum at n = 1), got {refractive_index!r}")
    rtt = round_trip(d, n)
    latency = rtt + proc
    speed = SPEED_OF_LIGHT / n
    terms = dict(propagation=rtt, processing=proc + 0.0 * rtt)
    wall, margin = bind(terms, _LIGHT_WALLS)
    fits, budget = True, None
    reach = float("nan")
    if sla is not None:
        budget = to_si(sla, "time", name="sla", where=where)
        fits = latency <= budget
        margin = latency / budget
        reach = np.maximum(budget - proc, 0.0) * speed / 2.0
        light_alone = rtt > budget  # infeasible whatever the processing: the speed of light binds
        if np.ndim(light_alone):
            wall = choose_wall(light_alone, Wall.LIGHT, wall)
        elif light_alone:
            wall = Wall.LIGHT

    def verdict():
        if any(np.ndim(x) for x in (latency, rtt, reach, proc)):
            return ""
        km = f"{d / 1e3:,.0f} km"
        text = f"{km} of fiber: {show(rtt / 2, 's')} one way, {show(rtt, 's')} round trip at {speed / 1e3:,.0f} km/s"
        if budget is None:
            return text
        if fits:
            return (f"fits: {show(latency, 's')} of the {show(budget, 's')} SLA ({text}); "
                    f"the SLA reaches {reach / 1e3:,.0f} km")
        if rtt > budget:
            return (f"infeasible at any processing speed: {text}, SLA {show(budget, 's')}; "
                    f"it reaches at most {budget * speed / 2e3:,.0f} km")
        return (f"does not fit: needs {show(latency, 's')} ({show(rtt, 's')} propagation + {show(proc, 's')} "
                f"processing), has {show(budget, 's')}; at this processing time the SLA reaches {reach / 1e3:,.0f} km")

    return PropagationResult(
        dict(one_way=rtt / 2.0, round_trip=rtt, latency=latency, max_distance=reach + 0.0 * latency, distance=d,
             speed=speed, sla=(budget if budget is not None else float("nan")) + 0.0 * latency),
        terms=terms, bottleneck=wall, margin=margin, fits=fits, verdict=verdict, assumptions=used,
        formula="round trip = 2 d n / c + processing; max distance = (SLA - processing) c / (2 n)",
        inputs=dict(distance=distance, sla=sla, processing=processing, refractive_index=n))
