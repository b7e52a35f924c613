"""Every efficiency factor the solvers use, in one place, with where its default comes from.

An efficiency (η) is the fraction of a datasheet peak that real kernels sustain. The compute η is chosen
by the hardware *family*, the *regime* (training, or inference: prefill, decode and per-sample models)
and the precision class (8-bit tensor paths reach a smaller fraction of their doubled peak than 16-bit
ones), never per example. Solvers take an explicit override (``efficiency=0.4``) for what-if
questions; the default is looked up here and reported in every result's ``assumptions``.

Efficiency depends on the size of an operation, and the model gets that from fixed costs rather than
from per-case factors: a kernel of size x that pays a fixed cost t0 on top of x / (peak x η_max) runs at
η(x) = η_max x / (x + x_half) with x_half = η_max x peak x t0, so large GEMMs come out near η_max and
small ones far below. The fixed costs are a per-layer software overhead (kernel launches), a
per-request overhead (runtime set-up around a prefill), a per-collective latency (NCCL launch and
synchronisation, on top of the fabric's per-hop latency) and, for the decode attention kernel, a
half-bandwidth transfer size (one thread block reads one sequence's keys and values for one head; a
short context gives it too few bytes in flight to reach full bandwidth).

Derivation: the numbers in ``FITTED`` are fitted by least squares on log(predicted / published) over the
calibration half of ``catalog/validation/*.yaml`` (``split: calibration``) and checked on the held-out
half: ``python -m mlsysim_lab.validation --fit`` refits and prints them, ``--fit --write`` rewrites the
block below, and ``tests/test_validation.py`` fails if the block and the fit disagree beyond rounding.
``docs/validation.md`` has the error table. Constants outside ``FITTED`` are derived from their sources.
"""
from __future__ import annotations

import statistics
from contextlib import contextmanager
from dataclasses import dataclass

from . import memo


@dataclass(frozen=True)
class Assumption:
    """A named default with its value and the reason it has that value."""

    name: str
    value: float
    source: str

    def __str__(self) -> str:
        return f"{self.name} = {self.value:g} ({self.source})"


# ------------------------------------------------------------------------------------ fitted defaults
# BEGIN FITTED (written by `python -m mlsysim_lab.validation --fit --write`; edit by refitting, not by hand)
FITTED: dict[str, float] = {
    "compute nvidia-ampere training": 0.542,
    "compute nvidia-hopper training": 0.62,
    "compute google-tpu training": 0.677,
    "compute datacenter inference": 0.703,
    "8-bit attainment": 0.637,
    "compute nvidia-turing inference": 0.151,
    "compute mcu inference": 0.313,
    "kv transfer half size": 29800.0,
    "layer overhead": 4.94e-05,
    "request overhead": 0.00302,
}
# END FITTED

#: Which calibration measurements pin each fitted number, and what it stands for.
DERIVATION: dict[str, str] = {
    "compute nvidia-ampere training": (
        "A100 training: Megatron-LM PTD-P GPT-3 175B on 384 and 1536 A100 (Narayanan et al., SC21, Table 2: "
        "153 and 141 TFLOP/s per GPU counting recomputation); the fraction of dense FP16 peak the matrix "
        "work sustains once the pipeline bubble, tensor-parallel all-reduces and overheads are modelled apart"),
    "compute nvidia-hopper training": (
        "H100 training: Llama 3 405B on 8192 H100, 43% BF16 MFU (Dubey et al. 2024, Table 4), bubble of the "
        "interleaved pipeline and TP/DP communication modelled apart"),
    "compute google-tpu training": (
        "TPU v4 training: PaLM 540B on 6144 TPU v4, 46.2% MFU and 238.3K tokens/s (Chowdhery et al. 2022, "
        "Table 3 and Appendix B)"),
    "compute datacenter inference": (
        "16-bit inference on data-center GPUs (A100, H100 and families without their own measurement): "
        "TensorRT-LLM v0.5 Llama-2-7B FP16 first-token latency at 2048 tokens on A100, 133 ms (TensorRT-LLM "
        "docs, performance.md, 'Low Latency'); prefill GEMMs with thousands of rows. A100 and H100 share it: "
        "cuBLAS sustains a similar fraction (~70%) of the 16-bit dense peak on large GEMMs on both"),
    "8-bit attainment": (
        "8-bit tensor paths (FP8, INT8) double the peak but reach this fraction of the share of peak that "
        "16-bit paths reach (attention, norms and activations stay 16-bit; FP8 GEMMs run further below their "
        "peak), i.e. a realised FP8 speed-up of 2 x this over 16-bit: TensorRT-LLM Llama-2-7B FP8 "
        "first-token latency (2048 and 128 tokens) and static-batch throughput (batch 768; Llama-2-70B "
        "batch 480 on 4 GPUs) on H100. Not applied to devices without a 16-bit peak (microcontrollers)"),
    "compute nvidia-turing inference": (
        "T4 CNN inference: ResNet-50 v1.5 batch 256 AMP in PyTorch, 1198 img/s (NVIDIA DeepLearningExamples "
        "README); the T4's 70 W cap holds its clocks well below the boost clock behind its 65 TFLOP/s peak"),
    "compute mcu inference": (
        "Cortex-M7 int8 inference: MLPerf Tiny v1.0 keyword spotting (52.3 inf/s) and visual wake words "
        "(17.5 inf/s) on STM32F746 with the Plumerai engine (mlcommons/tiny_results_v1.0)"),
    "kv transfer half size": (
        "decode attention reads each sequence's keys and values for one KV head in one thread block; with a "
        "context of c tokens that is c x head_dim x 2 x bytes, and a short read cannot keep enough loads in "
        "flight (Little's law), so it runs at eta_bw x x / (x + x_half). Pinned by TensorRT-LLM Llama-2-7B FP8 "
        "batch 768 at 128/128 tokens (KV reads of ~50 kB per block) against the 70B batch-480 run (~300 kB)"),
    "layer overhead": (
        "fixed time per transformer layer per forward pass (kernel launches and their ramp, not hidden even "
        "with CUDA graphs): gpt-fast batch-1 decode of Llama-2-7B (32 layers) and Llama-2-70B (80 layers)"),
    "request overhead": (
        "fixed runtime cost around one prefill (input copies, engine set-up, sampling of the first token): "
        "TensorRT-LLM Llama-2-7B FP8 first-token latency at 128 tokens (7 ms) against 2048 tokens (36 ms)"),
}

#: Units of the fitted numbers that are not plain fractions.
UNITS: dict[str, str] = {"kv transfer half size": "B", "layer overhead": "s", "request overhead": "s"}

#: Families whose compute efficiency the calibration set pins, by regime class (16-bit, except the
#: microcontroller's int8). Other families use the data-center default of the regime.
FITTED_FAMILIES = {
    "training": ("nvidia-ampere", "nvidia-hopper", "google-tpu"),
    "inference": ("nvidia-turing", "mcu"),
}

#: Precisions that run on 8-bit tensor paths (their peak is twice the 16-bit one on data-center parts).
EIGHT_BIT = ("fp8", "int8")

#: Regimes the solvers name, and the class whose efficiency they use: prefill, decode and per-sample
#: inference all run the same GEMM and convolution kernels; training adds the backward pass, the
#: optimizer and the framework around them.
REGIME_CLASS = {"training": "training", "prefill": "inference", "decode": "inference", "inference": "inference"}

# -------------------------------------------------------------------------------- derived (not fitted)
#: Fraction of datasheet HBM bandwidth that large streaming reads sustain. Not fitted: on the calibration
#: set it trades off exactly against the per-layer overhead (both add time in proportion to a decode step),
#: and a free fit drifts to the unphysical 100%. The calibration source itself measured it.
MEMORY_BANDWIDTH = Assumption(
    "memory bandwidth efficiency", 0.83,
    "derived from the calibration set's own source: pytorch-labs/gpt-fast README (Dec 2023) measured the "
    "achievable bandwidth of its power-limited A100-80GB at about 1700 GB/s of the datasheet 2039 GB/s = 0.83 "
    "(STREAM-like copies on A100 and H100 reach 0.85-0.9 of datasheet); kept for every device. Measured in this "
    "repository on an H200 (docs/gpu_measurements.md): batch-1 decode GEMVs 0.77-0.80, a device copy 0.89")

#: Fraction of a link's per-direction bandwidth a large NCCL collective sustains ("bus bandwidth").
NETWORK_BANDWIDTH = Assumption(
    "collective bandwidth efficiency", 0.8,
    "NVIDIA nccl-tests all_reduce_perf on 8 GPUs: ~230-240 GB/s bus bandwidth on DGX A100 (NVLink 3, 300 GB/s "
    "per direction) and ~360-380 GB/s on DGX H100 without NVLink SHARP (NVLink 4, 450 GB/s): 0.77-0.84; "
    "InfiniBand NICs reach ~24 of 25 GB/s (NVIDIA/nccl-tests issue #119), so 0.8 is kept for every fabric")

#: Fixed cost of one collective call on top of the fabric's per-hop latency. Not fitted: the two
#: calibration cases that feel it (gpt-fast TP2, TensorRT-LLM TP4) pull it in opposite directions, and a
#: free fit drives it to zero, below what NCCL itself assumes.
COLLECTIVE_LATENCY = Assumption(
    "fixed latency per collective call (s)", 6.6e-6,
    "NCCL's cost model: base latency of a ring all-reduce with the LL protocol, 6.6 us per call (tree 6.8 us), "
    "on top of the per-hop latency of the link (NVIDIA/nccl src/graph/tuning.cc, baseLat)")

#: Fraction of an all-reduce that hides behind backward compute when overlap is on.
OVERLAP = Assumption(
    "communication overlap", 2 / 3,
    "gradient buckets all-reduce while backward runs; backward is 2/3 of a training step's FLOPs, so at "
    "most that share of the step can hide communication (PyTorch DDP bucketing, Li et al. VLDB 2020)")


def _source(key: str) -> str:
    return f"fitted on the validation calibration set: {DERIVATION[key]}"


def _defaults() -> tuple:
    """The Assumption objects built from ``FITTED``: (COMPUTE, EIGHT_BIT_ATTAINMENT, KV_TRANSFER,
    LAYER_OVERHEAD, REQUEST_OVERHEAD)."""
    table: dict[tuple[str, str], Assumption] = {}
    for regime, families in FITTED_FAMILIES.items():
        for family in families:
            key = f"compute {family} {regime}"
            table[(family, regime)] = Assumption(f"compute efficiency ({regime}, {family})", FITTED[key],
                                                 _source(key))
    # A family with no training measurement gets the median of the fitted data-center families; inference
    # has one fitted data-center value (A100 and H100 share it).
    median = statistics.median(FITTED[f"compute {f} training"] for f in FITTED_FAMILIES["training"])
    table[("default", "training")] = Assumption(
        "compute efficiency (training, family without measurements)", round(median, 4),
        f"median of the fitted data-center families ({', '.join(FITTED_FAMILIES['training'])}); see "
        "efficiency.DERIVATION")
    table[("default", "inference")] = Assumption(
        "compute efficiency (inference, data-center GPU)", FITTED["compute datacenter inference"],
        _source("compute datacenter inference"))
    eight_bit = Assumption("8-bit attainment (share of the 16-bit efficiency)", FITTED["8-bit attainment"],
                           _source("8-bit attainment"))
    kv = Assumption("KV-cache read half-bandwidth size per sequence and head (B)",
                    FITTED["kv transfer half size"], _source("kv transfer half size"))
    layer = Assumption("software overhead per layer per forward pass (s)", FITTED["layer overhead"],
                       _source("layer overhead"))
    request = Assumption("runtime overhead per prefill (s)", FITTED["request overhead"], _source("request overhead"))
    return table, eight_bit, kv, layer, request


def _build() -> None:
    """Rebuild the module's Assumption objects from ``FITTED`` (the solvers read them at call time)."""
    global COMPUTE, EIGHT_BIT_ATTAINMENT, KV_TRANSFER, LAYER_OVERHEAD, REQUEST_OVERHEAD
    COMPUTE, EIGHT_BIT_ATTAINMENT, KV_TRANSFER, LAYER_OVERHEAD, REQUEST_OVERHEAD = _defaults()
    memo.forget()  # remembered solver set-ups hold the old values


COMPUTE, EIGHT_BIT_ATTAINMENT, KV_TRANSFER, LAYER_OVERHEAD, REQUEST_OVERHEAD = _defaults()


def compute_efficiency(family: str, regime: str, precision: str | None = None,
                       has_16bit: bool = True) -> Assumption:
    """Default compute η for a hardware family in a regime ('training', 'prefill', 'decode', 'inference'),
    for the precision the arithmetic runs in. An 8-bit precision (fp8, int8) on a device that also has a
    16-bit peak (``has_16bit``) scales the 16-bit value by EIGHT_BIT_ATTAINMENT: its peak is twice as high
    but less of it is reached."""
    kind = REGIME_CLASS.get(regime)
    if kind is None:
        raise ValueError(f"unknown regime {regime!r}; use one of {', '.join(REGIME_CLASS)}")
    base = COMPUTE.get((family, kind)) or COMPUTE[("default", kind)]
    if precision in EIGHT_BIT and has_16bit:
        r8 = EIGHT_BIT_ATTAINMENT
        return Assumption(f"{base.name.removesuffix(')')}, 8-bit)", base.value * r8.value,
                          f"{base.value:g} (16-bit: {base.source}) x {r8.value:g} ({r8.name}: {r8.source})")
    return base


def kv_transfer_factor(nbytes):
    """Fraction of the large-transfer bandwidth a read of ``nbytes`` per thread block reaches:
    x / (x + x_half) (a fixed cost per transfer, written as an efficiency). Elementwise on arrays."""
    return nbytes / (nbytes + KV_TRANSFER.value)


@contextmanager
def trial(values: dict[str, float]):
    """Evaluate the solvers with other fitted numbers (the fit uses this); restores them on exit."""
    unknown = set(values) - set(FITTED)
    if unknown:
        raise KeyError(f"not fitted defaults: {sorted(unknown)}; known: {sorted(FITTED)}")
    saved = dict(FITTED)
    FITTED.update(values)
    _build()
    try:
        yield
    finally:
        FITTED.clear()
        FITTED.update(saved)
        _build()
