"""Time the core: cold import (separate processes), one serve and one train evaluation, a sweep.

Run: python benchmarks/bench_core.py   (a benchmark, not a test: CI machines are noisy)
"""
from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import timeit


def cold_import(module: str, runs: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout) for _ in range(runs)]
    return statistics.median(times)


def per_call(fn, number: int) -> float:
    fn()  # warm the catalog and caches
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def main() -> None:
    import numpy as np

    import mlsysim_lab as ml

    h100, llama = ml.hardware("H100 SXM"), ml.workload("Llama-2-70B")
    c8, c100k = ml.cluster(h100, gpus=8), ml.cluster(h100, gpus=100_000)
    batches = np.arange(1, 1_000_001)
    rows = [
        ("import pint (cold, median of 5)", cold_import("pint")),
        ("import mlsysim_lab (cold, median of 5)", cold_import("mlsysim_lab")),
        ("ml.serve(Llama-2-70B, H100, tp=2)",
         per_call(lambda: ml.serve(llama, h100, batch=8, tp=2), 2000)),
        ("ml.train(Llama-2-70B, 8 x H100)",
         per_call(lambda: ml.train(llama, c8, tokens=2e12, global_batch_tokens=2**22, zero=3), 2000)),
        ("ml.train(Llama-2-70B, 100,000 x H100)",
         per_call(lambda: ml.train(llama, c100k, tokens=2e12, global_batch_tokens=100_000 * 4096, zero=3), 2000)),
        ("ml.serve(..., batch=1,000,000-point array)",
         per_call(lambda: ml.serve(llama, h100, batch=batches, tp=8), 3)),
        ("serve result .itl read (one quantity)",
         per_call(lambda r=ml.serve(llama, h100, tp=2): r.itl, 20000)),
    ]
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    for name, seconds in rows:
        unit, scale = ("ms", 1e3) if seconds >= 1e-3 else ("us", 1e6)
        print(f"{name:<48} {seconds * scale:10.2f} {unit}")


if __name__ == "__main__":
    main()
