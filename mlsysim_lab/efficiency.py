"""Every efficiency factor the solvers use, in one place, with where its default comes from.

An efficiency (η) is the fraction of a datasheet peak that real kernels sustain. It is chosen by the
hardware *family* and the *regime* (training, prefill, decode), never per example. Solvers take an
explicit override (``efficiency=0.4``) for what-if questions; the default is looked up here and
reported in every result's ``assumptions``.

Status: these are provisional defaults derived from the published large-scale figures cited below. The
validation suite (issue 5) fits them on a calibration set and reports held-out error; when it lands,
the numbers here change in this file only.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Assumption:
    """A named default with its value and the reason it has that value."""

    name: str
    value: float
    source: str

    def __str__(self) -> str:
        return f"{self.name} = {self.value:g} ({self.source})"


_TRAIN_EVIDENCE = ("published large-scale training MFU: Megatron-LM 1T on 3072 A100 52% "
                   "(Narayanan et al., SC21, Table 1); OPT-175B 147 TFLOP/s/A100 = 47% (Zhang et al. 2022, "
                   "sec. 2.3); PaLM 540B 46.2% on TPU v4 (Chowdhery et al. 2022, Table 3); Llama 3 405B "
                   "38-43% on H100 (Dubey et al. 2024, Table 4); MFU includes communication and pipeline "
                   "bubbles (~10-15% of a step in those runs), so the compute-only η is set a little above")

#: Fraction of dense peak sustained by the matrix work, by family and regime.
COMPUTE: dict[tuple[str, str], Assumption] = {
    ("default", "training"): Assumption("compute efficiency (training)", 0.50, _TRAIN_EVIDENCE),
    ("nvidia-ampere", "training"): Assumption("compute efficiency (training, Ampere)", 0.55, _TRAIN_EVIDENCE),
    ("google-tpu", "training"): Assumption("compute efficiency (training, TPU)", 0.55, _TRAIN_EVIDENCE),
    ("nvidia-hopper", "training"): Assumption(
        "compute efficiency (training, Hopper)", 0.48,
        "Llama 3 405B reached 38-43% BF16 MFU on 16K H100 (Dubey et al. 2024, Table 4); Hopper's higher "
        "peak is harder to feed than Ampere's"),
    ("default", "prefill"): Assumption(
        "compute efficiency (prefill)", 0.60,
        "prefill is large GEMMs (tokens x d_model by d_model x d_ff); cuBLAS sustains roughly 60-75% of "
        "dense peak on such shapes, minus attention and norm kernels; provisional until fitted (issue 5)"),
    ("default", "decode"): Assumption(
        "compute efficiency (decode)", 0.50,
        "decode GEMMs have M = batch rows and rarely bind; provisional"),
    ("default", "inference"): Assumption(
        "compute efficiency (inference)", 0.50,
        "batched CNN/MLP inference; MLPerf Inference ResNet-50 offline on H100 runs at roughly half of "
        "dense INT8/FP16 peak; provisional"),
    ("mcu", "inference"): Assumption(
        "compute efficiency (MCU inference)", 0.50,
        "CMSIS-NN int8 kernels keep the SIMD MAC units about half busy on convolutions; provisional"),
}

#: Fraction of peak memory bandwidth sustained by streaming kernels (weights, KV cache, activations).
MEMORY_BANDWIDTH = Assumption(
    "memory bandwidth efficiency", 0.80,
    "decode streams weights and KV cache once per step; large sequential HBM reads sustain ~80-90% of "
    "datasheet bandwidth, decode kernels somewhat less; provisional until fitted on published decode "
    "throughput (issue 5)")

#: Software overhead per transformer layer per forward pass (kernel launches, framework dispatch).
LAYER_OVERHEAD = Assumption(
    "software overhead per layer per forward pass (s)", 20e-6,
    "about 8-10 kernels per transformer layer at ~2-3 us launch/dispatch each when not hidden by CUDA "
    "graphs; the seed's 'software wall'; provisional")

#: Fraction of an all-reduce that hides behind backward compute when overlap is on.
OVERLAP = Assumption(
    "communication overlap", 2 / 3,
    "gradient buckets all-reduce while backward runs; backward is 2/3 of a training step's FLOPs, so at "
    "most that share of the step can hide communication (PyTorch DDP bucketing, Li et al. VLDB 2020)")


def compute_efficiency(family: str, regime: str) -> Assumption:
    """Default compute η for a hardware family in a regime ('training', 'prefill', 'decode', 'inference')."""
    return COMPUTE.get((family, regime)) or COMPUTE[("default", regime)]
