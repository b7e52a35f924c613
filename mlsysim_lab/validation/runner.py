"""From a published measurement to the core call, and from the core's answer to the published metric.

Each ``measurement`` entry of ``catalog/validation/*.yaml`` names a question (train, serve, inference,
carbon), the workload, the hardware, the GPU count and the keyword arguments of the solver. ``evaluate``
runs the solver with the default efficiencies (nothing measured is fed back in) and converts its answer
into each published metric under the source's own convention: which FLOPs an MFU counts, which peak it
divides by, per user or per GPU, prefill inside the timed region or not.

One metric per case is scored: the first one the entry publishes (its primary measurement). The others
re-express the same measurement under another convention (time to train from the same throughput, HFU
from the same tokens/s, achieved bandwidth = bytes x tokens/s) and are shown, not scored, so that no
measurement counts twice. Carbon entries take the source's own run time or GPU-hours as input, so they
check the energy and carbon accounting, not the performance model: they are reported apart.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .. import catalog
from ..serving import serve
from ..specs import Measurement
from ..sustainability import footprint
from ..training import cluster, train
from ..units import Q_, to_si

#: Display unit of each published metric (the table and the plot use these).
METRIC_UNITS = {
    "hardware_tflops_per_gpu": "TFLOP/s", "model_tflops_per_gpu": "TFLOP/s", "mfu": "", "hfu": "",
    "tokens_per_second": "token/s", "time_to_train": "day", "gpu_hours": "h", "ttft": "ms", "itl": "ms",
    "latency": "ms", "achieved_bandwidth": "GB/s", "throughput": "sample/s", "energy": "MWh",
    "carbon": "tCO2e",
}

#: Cases outside the model's scope, with the reason (shown in the table and the report; counted by the
#: tests). The thresholds apply to the rest.
EXCLUDED: dict[str, str] = {
    "ResNet-50 fp16 batch 1 inference on T4": (
        "framework-overhead regime: PyTorch eager launches each of ResNet-50's ~160 kernels from Python "
        "(plus AMP casts), ~13 ms against ~0.8 ms of tensor-core time; the catalog's ResNet-50 has no "
        "kernel-launching layer count and the core has no per-operator dispatch cost of an eager framework"),
    "gpt-fast Llama-2-7B int4 weight-only decode on A100": (
        "weight-only int4 with group-32 scales and zeros stores ~5 bits per weight (the core counts 4) and "
        "its dequantising GEMV kernel runs far below HBM bandwidth (862 GB/s by gpt-fast's own count); the "
        "core has no dequantisation cost, so it predicts the 4-bit memory-bound ideal"),
    "Megatron-LM ZeRO-3 GPT-3 175B on 768 A100": (
        "ZeRO-3 implementation-bound: the measured step (~67 s) is the same at 768 and 1536 GPUs, i.e. set by "
        "a per-step cost that does not shrink with more ranks; the alpha-beta cost of gathering 350 GB of "
        "weights and reduce-scattering the gradients at NCCL bandwidth over 8 x HDR per node is ~8 s and "
        "hides behind compute. The 2021 DeepSpeed ZeRO-3 implementation inside Megatron-LM (per-parameter "
        "gathers, little prefetch overlap) is outside an alpha-beta model"),
    "Megatron-LM ZeRO-3 GPT-3 175B on 1536 A100": (
        "ZeRO-3 implementation-bound, as the 768-GPU row: step ~67 s at one sequence per GPU, 8x the "
        "alpha-beta communication time"),
}


@dataclass(frozen=True)
class Row:
    """One published metric of one case: the prediction, the published value (same unit) and the error."""

    case: str
    metric: str
    predicted: float
    published: float
    unit: str
    split: str
    regime: str
    status: str  # 'scored', 'accounting', 'secondary' or 'excluded'
    note: str = ""

    @property
    def error(self) -> float:
        """Signed relative error, predicted / published - 1 (NaN when nothing was predicted)."""
        return self.predicted / self.published - 1.0 if np.isfinite(self.predicted) else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return dict(asdict(self), error=self.error)


def measurements() -> list[Measurement]:
    """Every measurement in the default catalog, in file order."""
    return list(catalog.default_catalog().entries("measurement"))


def find(name: str) -> Measurement:
    """A measurement by exact name, by a unique case-insensitive fragment of it, or by its 1-based index."""
    cases = measurements()
    if name.isdigit() and 1 <= int(name) <= len(cases):
        return cases[int(name) - 1]
    exact = [m for m in cases if m.name.lower() == name.lower()]
    hits = exact or [m for m in cases if name.lower() in m.name.lower()]
    if len(hits) == 1:
        return hits[0]
    listing = "\n  ".join(f"{i + 1:2d}. {m.name}" for i, m in enumerate(cases))
    why = "no case matches" if not hits else f"{len(hits)} cases match"
    raise LookupError(f"{why} {name!r}; name one of:\n  {listing}")


# ------------------------------------------------------------------------------------- conventions
def megatron_flops_per_token(model, seq: float) -> float:
    """Megatron-LM's analytical count with activation recomputation (Narayanan et al., SC21, eq. 3):
    F = 96 B s l h^2 (1 + s / 6h + V / 16 l h) per iteration of B sequences of s tokens, i.e. ~8N per
    token (forward, backward and the recomputed forward), non-causal attention and the logit layer."""
    h, layers = model._f.d_model, model._f.layers
    return 96.0 * layers * h * h * (1.0 + seq / (6.0 * h) + model.vocab / (16.0 * layers * h))


def palm_flops_per_token(model, seq: float) -> float:
    """PaLM's model FLOPs per token (Chowdhery et al. 2022, Appendix B): 6N + 12 L H Q T with N all
    parameters, H Q the attention width and T the sequence length (attention counted, recomputation not)."""
    f = model._f
    return 6.0 * f.params + 12.0 * f.layers * f.d_attn * seq


def throughput_convention(m: Measurement) -> str:
    """'per user' (gpt-fast: output tokens / wall time of one generation) or 'per GPU' (TensorRT-LLM:
    batch x output tokens / latency of the batch / tensor-parallel GPUs), read from the entry's convention."""
    text = (m.convention or "").lower()
    if "per user" in text:
        return "per user"
    if "per gpu" in text:
        return "per GPU"
    raise ValueError(f"{m.name}: its convention says neither 'per user' nor 'per GPU' for tokens_per_second")


def regime(m: Measurement) -> str:
    """Which regime a case exercises: training, prefill, decode (generation throughput), inference, carbon."""
    if m.question == "serve":
        return "prefill" if "ttft" in m.published else "decode"
    return {"train": "training", "inference": "inference", "carbon": "carbon"}[m.question]


# ---------------------------------------------------------------------------------------- running
_CLUSTERS: dict[tuple[str, int], Any] = {}


def solve(m: Measurement):
    """Run the core for one measurement with the default efficiencies; returns its Result."""
    hw, model = catalog.hardware(m.hardware), catalog.workload(m.workload)
    if m.question == "train":
        key = (hw.name, m.gpus)
        if key not in _CLUSTERS:
            _CLUSTERS[key] = cluster(hw, gpus=m.gpus)
        return train(model, _CLUSTERS[key], **m.inputs)
    if m.question in ("serve", "inference"):
        return serve(model, hw, **m.inputs)
    if m.question == "carbon":
        return footprint(hw, **carbon_inputs(m))
    raise ValueError(f"{m.name}: unknown question {m.question!r}")


def carbon_inputs(m: Measurement) -> dict[str, Any]:
    """footprint() arguments of a carbon entry: the source's power per accelerator, PUE and grid intensity,
    busy the whole time (utilization 1: the sources multiply by a fixed power) and operational carbon only
    (the sources count no embodied carbon). Duration = run time, or GPU-hours / GPUs."""
    a = m.inputs
    if "time" in a:
        duration = a["time"]
    elif "gpu_hours" in a:
        duration = Q_(to_si(a["gpu_hours"], "time", name="gpu_hours", where=m.name) / m.gpus, "s")
    else:
        raise ValueError(f"{m.name}: a carbon entry needs inputs 'time' or 'gpu_hours'")
    return dict(gpus=m.gpus, duration=duration, power=a["power"], pue=a["pue"],
                carbon_intensity=a["carbon_intensity"], embodied="0 gCO2e", utilization=1.0)


def predict(m: Measurement, result, metric: str) -> float:
    """The core's value of ``metric`` in its display unit (METRIC_UNITS), under the source's convention;
    NaN where the case gives the core nothing to compute it from."""
    v, unit = result._v, METRIC_UNITS[metric]
    if m.question == "train":
        model, seq = catalog.workload(m.workload), v_seq(result)
        per_gpu = v["tokens_per_second"] / m.gpus
        peak = catalog.hardware(m.hardware).peak_for(result.inputs["precision"])
        si = {"hardware_tflops_per_gpu": per_gpu * megatron_flops_per_token(model, seq),
              "model_tflops_per_gpu": per_gpu * palm_flops_per_token(model, seq),
              "mfu": per_gpu * palm_flops_per_token(model, seq) / peak,
              # PaLM's HFU: the same throughput with the rematerialised FLOPs counted (the core's ratio)
              "hfu": per_gpu * palm_flops_per_token(model, seq) / peak * v["hfu"] / v["mfu"],
              "tokens_per_second": v["tokens_per_second"], "time_to_train": v["time_to_train"],
              "gpu_hours": v["gpu_hours"] * 3600.0}[metric]
        si_unit = {"hardware_tflops_per_gpu": "FLOP/s", "model_tflops_per_gpu": "FLOP/s", "mfu": "", "hfu": "",
                   "tokens_per_second": "token/s", "time_to_train": "s", "gpu_hours": "s"}[metric]
    elif m.question == "serve":
        a = m.inputs
        per_user = a["output_tokens"] / v["latency"]
        if metric == "tokens_per_second":
            si = per_user if throughput_convention(m) == "per user" else per_user * a["batch"] / a.get("tp", 1)
            si_unit = "token/s"
        elif metric == "achieved_bandwidth":  # gpt-fast: the checkpoint bytes one GPU holds x tokens/s
            from ..memory import bytes_per_value
            weights = catalog.workload(m.workload)._f.params * bytes_per_value(a["precision"], m.name)
            si, si_unit = weights / a.get("tp", 1) * per_user, "B/s"
        else:
            si, si_unit = v[metric], "s"
    elif m.question == "inference":
        si, si_unit = v[metric], {"throughput": "sample/s", "latency": "s"}[metric]
    else:  # carbon
        if metric not in ("energy", "carbon"):
            return float("nan")
        si, si_unit = (v["energy"], "Wh") if metric == "energy" else (v["operational"], "gCO2e")
    return float(si) * _factor(si_unit, unit) if unit else float(si)


def v_seq(result) -> float:
    return float(result.inputs["seq_len"])


def published(m: Measurement, metric: str) -> float:
    """The published value of ``metric`` in its display unit."""
    value, unit = m.published[metric], METRIC_UNITS[metric]
    if isinstance(value, (int, float)):
        return float(value)
    return _parsed(value, unit)


@lru_cache(maxsize=None)
def _parsed(text: str, unit: str) -> float:
    return float(Q_(text).m_as(unit))


@lru_cache(maxsize=None)
def _factor(si_unit: str, unit: str) -> float:
    """Multiplier from an SI unit to a display unit (parsed once; the fit calls predict thousands of times)."""
    return float(Q_(1.0, si_unit).m_as(unit))


def evaluate(m: Measurement) -> tuple[Any, list[Row]]:
    """Run one case: the core's result and one Row per published metric."""
    result = solve(m)
    rows = []
    for i, metric in enumerate(m.published):
        if m.name in EXCLUDED:
            status, note = "excluded", EXCLUDED[m.name]
        elif m.question == "carbon":
            status = "accounting" if i == 0 else "secondary"
            note = "run time or GPU-hours are inputs: checks the energy and carbon arithmetic"
        else:
            status, note = ("scored", "") if i == 0 else ("secondary", "the same measurement, another convention")
        pred = predict(m, result, metric)
        if not np.isfinite(pred) and status != "excluded":
            status, note = "excluded", ("not predicted: the source publishes no layout and the catalog has "
                                        "no V100 server, so train() cannot re-run this job")
        rows.append(Row(m.name, metric, pred, published(m, metric), METRIC_UNITS[metric], m.split, regime(m),
                        status, note))
    return result, rows


def run_all(cases: list[Measurement] | None = None) -> list[Row]:
    """Rows of every case (or of ``cases``), in catalog order."""
    rows: list[Row] = []
    for m in cases if cases is not None else measurements():
        rows.extend(evaluate(m)[1])
    return rows


def summary(rows: list[Row]) -> dict[str, Any]:
    """Median and largest absolute error of the scored rows per split, the worst case, exclusions, and the
    largest accounting error."""
    out: dict[str, Any] = {}
    for split in ("calibration", "holdout"):
        scored = [r for r in rows if r.split == split and r.status == "scored"]
        errs = np.abs([r.error for r in scored])
        worst = scored[int(np.argmax(errs))] if scored else None
        out[split] = dict(cases=len(scored), median=float(np.median(errs)) if scored else float("nan"),
                          max=float(errs.max()) if scored else float("nan"),
                          worst=worst.case if worst else "",
                          excluded=len({r.case for r in rows if r.split == split and r.status == "excluded"
                                        and r.case in EXCLUDED}))
    acc = [abs(r.error) for r in rows if r.status == "accounting"]
    out["accounting"] = dict(cases=len(acc), max=float(max(acc)) if acc else float("nan"))
    return out
