"""Time an instrument update kernel-side: a control moves -> core call -> rows -> chart updated in place.

Run: python benchmarks/bench_widgets.py            (inside a real IPython kernel, so widget messages are
     python benchmarks/bench_widgets.py --in-process   serialised and sent as in JupyterLab; or here)

For each instrument it prints the median and worst time of a slider move (the fast path: the chart's
named dataset swapped in place), a device switch that changes the chart's units (the spec is rebuilt,
or reused from the instrument's cache), and, for comparison, replacing the whole chart
(``jchart.chart = ...``), the way Altair documents. Goal: a slider move under 50 ms.
A benchmark, not a test: shared CI machines are noisy.
"""
from __future__ import annotations

import json
import sys
import time


def measure(repeats: int = 3) -> list[dict]:
    import statistics

    import numpy as np

    import mlsysim_lab as ml
    from mlsysim_lab import widgets as mw

    t0 = time.perf_counter()
    mw.enable_offline()
    offline = time.perf_counter() - t0
    cases = [
        ("RooflineInstrument", lambda: mw.RooflineInstrument(compare=["A100 SXM 80GB"]), "batch",
         [2 ** k for k in range(11)], dict(hardware="STM32F746", model="DS-CNN", precision="int8", batch=1)),
        ("LatencyWaterfallInstrument", lambda: mw.LatencyWaterfallInstrument(model="Llama-2-70B", tp=4), "batch",
         [2 ** k for k in range(9)], dict(model="GPT-2 Small", tp=1, batch=1)),
        ("MemoryLedgerInstrument", lambda: mw.MemoryLedgerInstrument(model="Llama-2-70B", mode="training", dp=64,
                                                                      zero=3, recompute="selective"),
         "batch", [2 ** k for k in range(9)], dict(hardware="STM32F746", model="DS-CNN", precision="int8",
                                                   mode="inference")),
        ("SweepInstrument", lambda: mw.SweepInstrument(
            lambda hardware, precision, batch: ml.serve("Llama-2-13B", hardware, batch=batch, precision=precision),
            x="batch", xs=np.arange(1, 513), y="tokens_per_second",
            controls=dict(hardware=mw.hardware_picker(), precision=mw.precision_picker())),
         "precision", ["fp16", "fp8", "int8", "int4"], dict(hardware="RTX 4090")),
    ]
    rows = []
    for name, make, control, values, switch in cases:
        inst = make()
        inst.jchart  # the chart widget exists, as after display()
        moves = []
        for _ in range(repeats):
            for value in values:
                t = time.perf_counter()
                inst.set(**{control: value})
                moves.append(time.perf_counter() - t)
        t = time.perf_counter()
        inst.set(**switch)
        first_switch = time.perf_counter() - t
        inst.set(**{k: make().controls[k].value for k in switch})  # back (layout cached)
        t = time.perf_counter()
        inst.set(**switch)
        cached_switch = time.perf_counter() - t
        replace = []
        charts = [inst.set(**{control: v}).chart() for v in values[:2]]  # two different charts
        for i in range(2 * repeats):
            t = time.perf_counter()
            inst.jchart.chart = charts[i % 2]
            replace.append(time.perf_counter() - t)
        build = []
        for _ in range(repeats):
            t = time.perf_counter()
            inst.chart()
            build.append(time.perf_counter() - t)
        rows.append(dict(instrument=name, moves=len(moves), move_median=statistics.median(moves),
                         move_worst=max(moves), first_switch=first_switch, cached_switch=cached_switch,
                         chart_build=statistics.median(build), chart_replace=statistics.median(replace),
                         offline=offline))
    return rows


def in_kernel() -> list[dict]:
    """Run ``measure`` inside a fresh IPython kernel (jupyter_client), so widget messages really go out."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        with open(__file__, encoding="utf-8") as f:
            source = f.read().replace('if __name__ == "__main__":', "if False:")
        code = f"{source}\nimport json as _j\nprint('RESULT' + _j.dumps(measure()))"
        output = []
        client.execute_interactive(code, timeout=900, output_hook=lambda msg: output.append(msg))
        for msg in output:
            if msg["msg_type"] == "stream" and "RESULT" in msg["content"]["text"]:
                return json.loads(msg["content"]["text"].split("RESULT", 1)[1])
            if msg["msg_type"] == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))
        raise RuntimeError("the kernel printed no result")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> None:
    where = "in-process (no kernel; widget messages not sent)" if "--in-process" in sys.argv else "IPython kernel"
    rows = measure() if "--in-process" in sys.argv else in_kernel()
    print(f"where: {where}; enable_offline() once: {rows[0]['offline']:.2f} s")
    head = ("instrument", "slider move median", "worst", "unit switch 1st", "again", "build chart",
            "jchart.chart=")
    print(f"{head[0]:<28}" + "".join(f"{h:>19}" for h in head[1:]))
    for r in rows:
        cells = [r["move_median"], r["move_worst"], r["first_switch"], r["cached_switch"], r["chart_build"],
                 r["chart_replace"]]
        print(f"{r['instrument']:<28}" + "".join(f"{c * 1e3:>16.2f} ms" for c in cells))


if __name__ == "__main__":
    main()
