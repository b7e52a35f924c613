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


#: Run in a lab's kernel after its last cell: move every displayed lever of every instrument the lab built
#: (up to six values each, the way a student drags a slider) and time each update kernel-side.
PROBE = """
import gc as _gc, json as _json, statistics as _st, time as _time
from mlsysim_lab.widgets import Instrument as _Instrument

def _values(control):
    if getattr(control, "options", None):
        return [o[1] if isinstance(o, tuple) else o for o in control.options][:6]
    if hasattr(control, "min") and hasattr(control, "max"):
        step = (control.max - control.min) / 5
        return [type(control.value)(control.min + i * step) for i in range(6)]
    return []

_rows = []
for _inst in [o for o in _gc.get_objects() if isinstance(o, _Instrument) and o._jchart is not None]:
    _moves = []
    for _name in _inst.levers:
        _start = _inst.controls[_name].value
        for _v in _values(_inst.controls[_name]) + [_start]:
            _t = _time.perf_counter()
            try:
                _inst.set(**{_name: _v})
            except Exception:
                continue
            _moves.append(_time.perf_counter() - _t)
    if _moves:
        _rows.append(dict(instrument=_inst.title or type(_inst).__name__, moves=len(_moves),
                          move_median=_st.median(_moves), move_worst=max(_moves)))
print("RESULT" + _json.dumps(_rows))
"""


def lab_instruments(notebook) -> list[dict]:
    """Run a lab top to bottom in a fresh kernel (nbclient, as the graders do), then time one move of each
    lever of every instrument it displayed."""
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
                   ).execute()
    for output in nb.cells[-1].outputs:
        if output.get("output_type") == "stream" and "RESULT" in output.get("text", ""):
            return json.loads(output["text"].split("RESULT", 1)[1])
    raise RuntimeError(f"{notebook.name}: the probe printed no result")


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
