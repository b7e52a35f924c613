"""The reliability and checkpoint walls: at fleet scale a failure is a rate, not an accident.

Parts with exponential lifetimes add failure rates: n_i parts of mean time between failures MTBF_i fail
at sum(n_i / MTBF_i), so MTBF_cluster = 1 / sum(n_i / MTBF_i) and 10,000 GPUs of 10,000 h each fail once
an hour. A synchronous training job stops at the first failure anywhere and resumes from its last
checkpoint, so it pays three taxes: writing a checkpoint (delta) every interval tau, re-doing the work
since the last checkpoint (tau / 2 on average) and restarting (R) after each failure. To first order in
1/MTBF the useful fraction of wall-clock time (goodput) is

    U = 1 - delta / tau - (tau / 2 + R) / MTBF,

and dU/dtau = 0 gives Young's interval tau* = sqrt(2 delta MTBF) (J. W. Young, "A first order
approximation to the optimum checkpoint interval", CACM 17(9):530-531, 1974), where the checkpoint tax
delta / tau equals the rework tax tau / (2 MTBF). J. T. Daly ("A higher order estimate of the optimum
checkpoint interval for restart dumps", Future Generation Computer Systems 22(3):303-312, 2006) derives
the exact exponential-failure model, T_wall = MTBF e^(R/MTBF) (e^((tau+delta)/MTBF) - 1) T_work / tau. The
first-order U needs delta << tau and tau + delta + R << MTBF: at Young's interval it is within 0.005 of
Daly's exact goodput while tau + delta + R <= MTBF / 10 and within 0.03 up to MTBF / 4 (both checked in the
tests), ~0.1 off at MTBF / 2; results warn beyond MTBF / 4 or when delta > tau / 10. Every kernel works
elementwise on numpy arrays.
"""
from __future__ import annotations

import numpy as np

from . import catalog
from .efficiency import Assumption
from .errors import InputError
from .memory import TRAINING_STATE
from .results import Result, Wall, bind
from .specs import Cluster
from .training import TrainResult
from .units import check_number, count, show, to_si

#: Llama 3 405B pre-training (Dubey et al., "The Llama 3 Herd of Models", arXiv:2407.21783, 2024,
#: sec. 3.3.4 and Table 5): 419 unexpected job interruptions during a 54-day snapshot on 16,384 H100
#: GPUs (466 interruptions in all, 47 of them planned maintenance). The job saw one every
#: 54 x 24 h / 419 = 3.09 h; spread over its GPUs, each GPU accounts for one every
#: 16,384 x 54 x 24 h / 419 = 50,677 h. About 78% were confirmed or suspected hardware (GPUs and HBM3 the
#: largest share); the rest software, network, host maintenance and so on, all folded into this rate.
#: Cross-check: Kokolis et al., "Revisiting Reliability in Large-Scale Machine Learning Research Clusters"
#: (HPCA 2025, arXiv:2410.21680) project a 1.8 h mean time to failure for a 16,384-GPU job from 11 months
#: of two A100 research clusters, the same order.
LLAMA3_INTERRUPTIONS, LLAMA3_GPUS, LLAMA3_DAYS = 419, 16_384, 54
GPU_MTBF = Assumption(
    "interruption MTBF per GPU (s)", LLAMA3_GPUS * LLAMA3_DAYS * 86400.0 / LLAMA3_INTERRUPTIONS,
    "Llama 3 (Dubey et al. 2024, sec. 3.3.4, Table 5): 419 unexpected interruptions in 54 days on 16,384 "
    "H100 -> 16,384 x 54 x 24 h / 419 = 50,677 h per GPU; host, network and software causes included")

#: Bytes per parameter a training checkpoint stores: the weights and the optimizer state, not the gradients
#: (recomputed every step). Mixed-precision Adam keeps 2 B of bf16/fp16 weights + 12 B of fp32 master
#: weights, momentum and variance = 14 B/param; fp32 Adam 4 + 8 = 12 B/param (Rajbhandari et al., "ZeRO",
#: SC20, sec. 3.1; the same table as memory.TRAINING_STATE). 175B params x 14 B = 2.45 TB.
CHECKPOINT_BYTES_PER_PARAM = {
    "mixed": TRAINING_STATE["mixed"][0] + TRAINING_STATE["mixed"][2],
    "fp32": TRAINING_STATE["fp32"][0] + TRAINING_STATE["fp32"][2],
}
_PRECISION_STATE = {"bf16": "mixed", "fp16": "mixed", "fp32": "fp32", "tf32": "fp32"}

#: Restart time when none is given: reading the last checkpoint back at the bandwidth it was written with.
#: A lower bound (rescheduling, container start and communicator setup add to it: fast-recovery systems
#: report ~20 s at 1,024 GPUs, TrainMover, arXiv:2412.12636; plain checkpoint-restart takes minutes).
RESTART = Assumption(
    "restart time / checkpoint write time", 1.0,
    "a restart at least reads the last checkpoint back at the storage bandwidth it was written with; "
    "rescheduling and communicator setup add more (pass restart= to include them)")

#: Validity of the first-order goodput: beyond (tau + delta + R) / MTBF = 1/4, or delta / tau = 1/10, it is
#: off from Daly's (2006) exact exponential model by more than ~0.03 (see the module docstring).
FIRST_ORDER_LIMIT = 0.25
FIRST_ORDER_WRITE_LIMIT = 0.1


# ------------------------------------------------------------------------------------------- kernels
def young_daly(write_time, mtbf):
    """Young's optimum checkpoint interval sqrt(2 delta MTBF) (CACM 1974): checkpoint tax = rework tax."""
    return np.sqrt(2.0 * write_time * mtbf)


def waste(write_time, interval, mtbf, restart):
    """(checkpoint, rework, restart) fractions of wall-clock time lost, to first order in 1/MTBF:
    delta / tau, tau / (2 MTBF) and R / MTBF (each failure loses half an interval plus a restart)."""
    return write_time / interval, interval / (2.0 * mtbf), restart / mtbf


def goodput_fraction(write_time, interval, mtbf, restart):
    """Useful fraction of wall-clock time, 1 - delta/tau - (tau/2 + R)/MTBF (may go below zero: no progress)."""
    ck, rework, rs = waste(write_time, interval, mtbf, restart)
    return 1.0 - ck - rework - rs


# --------------------------------------------------------------------------------------------- doors
def gpus_of(system, where: str):
    """GPU count of a plain count (or array), a Cluster, or a TrainResult (its cluster)."""
    if isinstance(system, TrainResult):
        system = system.inputs["system"]
    if isinstance(system, Cluster):
        return float(system.gpus)
    if isinstance(system, Result):
        raise InputError(f"{where}: 'gpus' must be a count, a Cluster or a TrainResult, got a "
                         f"{type(system).__name__}")
    return count(system, name="gpus", where=where)


def cluster_mtbf(mtbf, gpus, where: str):
    """(cluster MTBF in s, assumptions): a given time or MtbfResult, else GPUs failing at ``GPU_MTBF`` each."""
    if isinstance(mtbf, MtbfResult):
        return mtbf._v["mtbf"], mtbf.assumptions
    if mtbf is not None:
        return to_si(mtbf, "time", name="mtbf", where=where), ()
    if gpus is None:
        raise InputError(f"{where}: give mtbf= (the cluster's mean time between failures, e.g. '3 h') or "
                         f"gpus= (each failing every {GPU_MTBF.value / 3600:,.0f} h, as in Llama 3)")
    return GPU_MTBF.value / gpus_of(gpus, where), (GPU_MTBF,)


def _fraction(value, name: str, where: str):
    p = check_number(value, name=name, where=where)
    if np.any(np.asarray(p) > 1):
        raise InputError(f"{where}: {name!r} is a probability and must be in (0, 1], got {value!r}")
    return p


def _scalar(*values) -> bool:
    return not any(np.ndim(v) for v in values)


# ------------------------------------------------------------------------------------------- MTBF
class MtbfResult(Result):
    """A cluster's mean time between failures, and what it means over a period."""

    _title = "cluster MTBF"
    _term_unit = ""  # terms: expected failures in the period, by component
    _units = {"mtbf": "s", "failures": "", "survival": "", "period": "s", "gpus": ""}


def mtbf(gpus, *, gpu_mtbf=None, hosts=0, host_mtbf=None, nics=0, nic_mtbf=None, switches=0, switch_mtbf=None,
         period="1 day") -> MtbfResult:
    """Mean time between failures of a cluster: MTBF = 1 / sum(n_i / MTBF_i) over its parts.

    Independent parts with exponential lifetimes add failure rates, so a cluster fails N times as often as
    one part: 10,000 GPUs of 10,000 h fail every hour; 16,384 GPUs at the default 50,677 h every 3.09 h.

    Parameters
    ----------
    gpus : int | array | Cluster | TrainResult  accelerators in the job
    gpu_mtbf : Quantity[time]  per-GPU MTBF (default ``GPU_MTBF``: Llama 3's measured interruption rate,
        which already includes host, network and software causes: add hosts, NICs or switches only with a
        GPU-only MTBF)
    hosts, nics, switches : int  counts of other parts (default 0), each with its ``*_mtbf`` (Quantity[time])
    period : Quantity[time]  window for the expected failures and the chance of none (default 1 day)

    Returns
    -------
    MtbfResult  .mtbf .failures (expected in the period) .survival (P no failure in the period);
    terms: expected failures in the period by part; bottleneck: reliability
    """
    where = "mtbf()"
    n_gpu = gpus_of(gpus, where)
    window = to_si(period, "time", name="period", where=where)
    used = ()
    if gpu_mtbf is None:
        gpu_each, used = GPU_MTBF.value, (GPU_MTBF,)
    else:
        gpu_each = to_si(gpu_mtbf, "time", name="gpu_mtbf", where=where)
    rates = {"gpus": n_gpu / gpu_each}
    others = (("hosts", hosts, "host_mtbf", host_mtbf), ("nics", nics, "nic_mtbf", nic_mtbf),
              ("switches", switches, "switch_mtbf", switch_mtbf))
    for part, n, mtbf_name, each in others:
        n = count(n, name=part, where=where, allow_zero=True)
        if np.ndim(n) == 0 and n == 0:
            continue
        if each is None:
            raise InputError(f"{where}: {part}={n:g} needs {mtbf_name}= (e.g. '100000 h'); note that the "
                             "default GPU MTBF already includes host, network and software causes")
        rates[part] = n / to_si(each, "time", name=mtbf_name, where=where)
    total = sum(rates.values())
    m = 1.0 / total
    failures = window * total
    survival = np.exp(-failures)
    terms = {part: window * rate for part, rate in rates.items()}
    wall, margin = bind(terms, {part: Wall.RELIABILITY for part in terms})

    def verdict():
        if not _scalar(m, failures):
            return ""
        return (f"one failure every {show(m, 's')}: {failures:,.3g} expected per {show(window, 's')}; "
                f"P(no failure in {show(window, 's')}) = {survival:.3g}")

    return MtbfResult(
        dict(mtbf=m, failures=failures, survival=survival, period=window, gpus=n_gpu),
        terms=terms, bottleneck=wall, margin=margin, verdict=verdict, assumptions=used,
        formula="MTBF = 1 / sum(n_i / MTBF_i); failures in T = T / MTBF; P(none) = exp(-T / MTBF)",
        inputs=dict(gpus=gpus, period=period, **{p: v for p, v in (("hosts", hosts), ("nics", nics),
                                                                     ("switches", switches)) if v}))


class AllUpResult(Result):
    """The chance that every one of N independent components is up at once."""

    _title = "all components up"
    _units = {"probability": "", "up": "", "components": "", "expected_down": ""}


def all_up(components, *, up=None, mtbf=None, period=None) -> AllUpResult:
    """Probability that all N independent components are up: p^N (0.999^1000 = 0.368).

    Give each component's probability of being up (``up``), or its MTBF and a ``period``, for which
    p = exp(-period / MTBF) (exponential lifetimes). The complement is the chance that something is down:
    1 - (1 - 1e-4)^10,000 = 0.632 (silent data corruption in one of 10,000 chips in an hour at 1e-4 each).

    Parameters
    ----------
    components : int | array  N
    up : probability in (0, 1]  that one component is up (works for the period's survival or for the
        steady-state availability MTBF / (MTBF + MTTR))
    mtbf, period : Quantity[time]  instead of ``up``

    Returns
    -------
    AllUpResult  .probability (p^N) .up (p) .expected_down (N (1 - p)); bottleneck: reliability
    """
    where = "all_up()"
    n = count(components, name="components", where=where)
    if (up is None) == (mtbf is None):
        raise InputError(f"{where}: give either up= (a probability such as 0.999) or mtbf= with period=")
    if up is not None:
        if period is not None:
            raise InputError(f"{where}: period= goes with mtbf=, not with up=")
        p = _fraction(up, "up", where)
    else:
        if period is None:
            raise InputError(f"{where}: mtbf= needs period= (e.g. '1 h'): the chance to stay up depends on how long")
        p = np.exp(-to_si(period, "time", name="period", where=where) / to_si(mtbf, "time", name="mtbf", where=where))
    probability = p ** n

    def verdict():
        if not _scalar(probability):
            return ""
        return (f"all {n:,.0f} up: {probability:.3g} ({p:.6g}^{n:,.0f}); expected down: {n * (1 - p):,.3g}")

    return AllUpResult(dict(probability=probability, up=p, components=n, expected_down=n * (1.0 - p)),
                       terms={}, bottleneck=Wall.RELIABILITY, margin=float("inf"), verdict=verdict,
                       formula="P(all up) = p^N; p = exp(-T / MTBF) for a period T",
                       inputs=dict(components=components, up=up, mtbf=mtbf, period=period))


# ------------------------------------------------------------------------------------------- checkpoints
class CheckpointResult(Result):
    """A checkpoint's size and write time, its Young-Daly interval, and the goodput at that interval."""

    _title = "checkpointing (Young-Daly)"
    _units = {"size": "B", "write_time": "s", "interval": "s", "mtbf": "s", "restart": "s", "goodput": "",
              "overhead": "", "bandwidth": "B/s", "bytes_per_param": "B/param"}


_LOSS_WALLS = {"checkpoint": Wall.CHECKPOINT, "reliability": Wall.RELIABILITY}


def checkpoint(model=None, *, bandwidth, params=None, size=None, precision: str = "bf16", bytes_per_param=None,
               mtbf=None, gpus=None, interval=None, restart=None) -> CheckpointResult:
    """Checkpoint size, write time = size / storage bandwidth, Young's interval sqrt(2 delta MTBF) and the
    goodput 1 - delta/tau - (tau/2 + R)/MTBF it leaves.

    175B params x 14 B/param = 2.45 TB take 40.8 min at 1 GB/s; a 2-minute checkpoint on a 5 h MTBF
    is best taken every sqrt(2 x 120 s x 18,000 s) = 2,078 s = 34.6 min.

    Parameters
    ----------
    model : Workload | str  whose parameters are saved (or give ``params`` or ``size``)
    bandwidth : Quantity[information/time]  storage write bandwidth for the whole checkpoint, e.g. '1 GB/s'
    params : int | Quantity[parameters]  parameter count, instead of ``model``
    size : Quantity[information]  checkpoint size, instead of ``model`` or ``params``
    precision : 'bf16'/'fp16' (14 B/param: weights + fp32 Adam state) or 'fp32'/'tf32' (12 B/param)
    bytes_per_param : number  override of ``CHECKPOINT_BYTES_PER_PARAM``
    mtbf : Quantity[time] | MtbfResult  the cluster's MTBF; or ``gpus`` (count, Cluster, TrainResult), each
        failing every ``GPU_MTBF``
    interval : Quantity[time]  checkpoint interval tau (default: Young's optimum; an array sweeps it)
    restart : Quantity[time]  time to restart after a failure (default: the write time, ``RESTART``)

    Returns
    -------
    CheckpointResult  .size .write_time .interval .goodput .overhead; terms: time lost per interval to
    writing (checkpoint), re-doing work (rework) and restarting (restart); bottleneck: checkpoint I/O or
    reliability, whichever loses more
    """
    where = "checkpoint()"
    bw = to_si(bandwidth, "bandwidth", name="bandwidth", where=where)
    given = [name for name, v in (("model", model), ("params", params), ("size", size)) if v is not None]
    if len(given) != 1:
        raise InputError(f"{where}: give exactly one of model=, params= or size= (got "
                         f"{', '.join(given) or 'none'})")
    per_param = float("nan")
    if size is not None:
        nbytes = to_si(size, "information", name="size", where=where)
    else:
        if precision not in _PRECISION_STATE:
            raise InputError(f"{where}: 'precision' must be one of {', '.join(map(repr, _PRECISION_STATE))}, "
                             f"got {precision!r}")
        per_param = (CHECKPOINT_BYTES_PER_PARAM[_PRECISION_STATE[precision]] if bytes_per_param is None
                     else check_number(bytes_per_param, name="bytes_per_param", where=where))
        n = catalog.workload(model)._f.params if model is not None else \
            count(params, name="params", where=where, kind="parameters", integer=False)
        nbytes = n * per_param
    delta = nbytes / bw
    m, used = cluster_mtbf(mtbf, gpus, where)
    tau, rs, more = _interval_and_restart(interval, restart, delta, m, where)
    ck, rework, rs_frac = waste(delta, tau, m, rs)
    u = 1.0 - ck - rework - rs_frac
    terms = dict(checkpoint=delta + 0.0 * tau, rework=tau * rework, restart=tau * rs_frac)
    wall, margin = bind(dict(checkpoint=ck, reliability=rework + rs_frac), _LOSS_WALLS)

    def verdict():
        if not _scalar(u, tau, delta, m):
            return ""
        how = "Young-Daly optimum" if interval is None else "given interval"
        text = (f"write {show(nbytes, 'B')} in {show(delta, 's')} at {show(bw, 'B/s')}, every {show(tau, 's')} "
                f"({how}, MTBF {show(m, 's')}): goodput {max(u, 0.0):.1%}, {_plain_wall(wall)} loses most")
        if u <= 0:
            text = "no progress: " + text
        return text + _range_warning(delta, tau, m, rs)

    return CheckpointResult(
        dict(size=nbytes, write_time=delta, interval=tau, mtbf=m, restart=rs, goodput=np.maximum(u, 0.0),
             overhead=1.0 - np.maximum(u, 0.0), bandwidth=bw, bytes_per_param=per_param),
        terms=terms, bottleneck=wall, margin=margin, fits=u > 0, verdict=verdict, assumptions=used + more,
        formula="delta = size / bandwidth; tau* = sqrt(2 delta MTBF) (Young 1974); "
                "goodput = 1 - delta/tau - (tau/2 + R)/MTBF",
        inputs=dict(model=model, params=params, size=size, bandwidth=bandwidth, precision=precision,
                    mtbf=mtbf, gpus=gpus, interval=interval, restart=restart))


def _interval_and_restart(interval, restart, delta, m, where):
    """(tau, R, assumptions used): given or Young's interval; given restart or one checkpoint read-back."""
    more = ()
    if restart is None:
        rs = RESTART.value * delta
        more = (RESTART,)
    else:
        rs = to_si(restart, "time", name="restart", where=where, allow_zero=True)
    tau = young_daly(delta, m) if interval is None else to_si(interval, "time", name="interval", where=where)
    return tau, rs, more


def _plain_wall(wall) -> str:
    return "checkpointing" if wall == Wall.CHECKPOINT else "failures (rework + restarts)"


def _range_warning(delta, tau, m, rs) -> str:
    """A note when the first-order model is used outside its range, else ''."""
    reach = (tau + delta + rs) / m
    if reach > FIRST_ORDER_LIMIT:
        return (f"; note: interval + write + restart = {reach:.2g} x MTBF, beyond the first-order model's range "
                "(off by a few % or more; Daly 2006)")
    if delta > FIRST_ORDER_WRITE_LIMIT * tau:
        return (f"; note: the write takes {delta / tau:.2g} of the interval, beyond the first-order model's "
                "range (delta << tau)")
    return ""


class GoodputResult(Result):
    """The useful fraction of a training run's wall-clock time under failures, and its real duration."""

    _title = "goodput under failures"
    _units = {"goodput": "", "time_to_train": "s", "ideal_time": "s", "interval": "s", "mtbf": "s",
              "write_time": "s", "restart": "s", "failures": "", "gpus": ""}


def goodput(run, *, write_time, mtbf=None, gpus=None, interval=None, restart=None) -> GoodputResult:
    """Effective time to train = ideal time / goodput, goodput = 1 - delta/tau - (tau/2 + R)/MTBF.

    A run of T ideal hours on a cluster that fails every MTBF writes a checkpoint (delta) every tau, loses
    tau/2 of work and a restart R at each failure: it takes T / U of wall-clock time. The first-order model
    holds while tau + delta + R is well below the MTBF (results warn beyond MTBF / 2); when U <= 0 the run
    never finishes (a verdict, fits=False).

    Parameters
    ----------
    run : TrainResult | Quantity[time]  a result of ``ml.train`` (its time_to_train and its cluster's GPUs)
        or the failure-free wall-clock time
    write_time : Quantity[time] | CheckpointResult  checkpoint write time delta (or a ``checkpoint`` result)
    mtbf : Quantity[time] | MtbfResult  the cluster's MTBF (default: the run's GPUs, or ``gpus``, each
        failing every ``GPU_MTBF``)
    gpus : int | Cluster  when ``run`` is a time and ``mtbf`` is not given
    interval : Quantity[time]  checkpoint interval (default: Young's sqrt(2 delta MTBF))
    restart : Quantity[time]  restart time per failure (default: the write time, ``RESTART``)

    Returns
    -------
    GoodputResult  .goodput .time_to_train .failures; terms: wall-clock time lost to checkpoint writes,
    rework and restarts over the run; bottleneck: checkpoint I/O or reliability, whichever costs more
    """
    where = "goodput()"
    if isinstance(run, TrainResult):
        ideal = run._v["time_to_train"]
        n = run.inputs["system"].gpus if gpus is None else gpus_of(gpus, where)
    elif isinstance(run, Result):
        raise InputError(f"{where}: 'run' must be a TrainResult (from ml.train) or a time such as '30 day', "
                         f"got a {type(run).__name__}")
    else:
        ideal = to_si(run, "time", name="run", where=where)
        n = gpus
    if isinstance(write_time, CheckpointResult):
        delta = write_time._v["write_time"]
    else:
        delta = to_si(write_time, "time", name="write_time", where=where)
    m, used = cluster_mtbf(mtbf, n, where)
    n_out = gpus_of(n, where) if n is not None else float("nan")
    tau, rs, more = _interval_and_restart(interval, restart, delta, m, where)
    ck, rework, rs_frac = waste(delta, tau, m, rs)
    u = 1.0 - ck - rework - rs_frac
    ok = u > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        wall_clock = np.where(ok, ideal / np.where(ok, u, 1.0), np.inf)
    wall_clock = float(wall_clock) if np.ndim(wall_clock) == 0 else wall_clock
    terms = dict(checkpoint=wall_clock * ck, rework=wall_clock * rework, restart=wall_clock * rs_frac)
    wall, margin = bind(dict(checkpoint=ck, reliability=rework + rs_frac), _LOSS_WALLS)

    def verdict():
        if not _scalar(u, wall_clock, tau, m):
            return ""
        if not ok:
            return (f"never finishes: checkpoints every {show(tau, 's')} ({show(delta, 's')} each) and failures "
                    f"every {show(m, 's')} leave no time for work; {_plain_wall(wall)} costs most")
        lost = wall_clock - ideal
        text = (f"goodput {u:.1%}: {show(ideal, 's')} of training take {show(wall_clock, 's')} "
                f"({show(lost, 's')} lost, {wall_clock / m:,.3g} failures); {_plain_wall(wall)} costs most "
                f"(x{margin:.3g})")
        return text + _range_warning(delta, tau, m, rs)

    return GoodputResult(
        dict(goodput=np.maximum(u, 0.0), time_to_train=wall_clock, ideal_time=ideal + 0.0 * u, interval=tau,
             mtbf=m, write_time=delta, restart=rs, failures=wall_clock / m, gpus=n_out),
        terms=terms, bottleneck=wall, margin=margin, fits=ok, verdict=verdict, assumptions=used + more,
        formula="T_wall = T_ideal / U; U = 1 - delta/tau - (tau/2 + R)/MTBF; tau* = sqrt(2 delta MTBF)",
        inputs=dict(run=run if not isinstance(run, Result) else type(run).__name__, write_time=delta,
                    mtbf=mtbf, gpus=n, interval=interval, restart=restart))
