"""Every speed figure of issue 9 in one command: cold imports, one evaluation of each kind, a 1,000,000-point
sweep, instrument updates, nbval time of every lab, and, when MLSys·im is at hand, the same calls timed in
it with the ratios.

Run:  python benchmarks/run.py                      everything (~5 min: the labs run under nbval)
      python benchmarks/run.py --quick              no nbval, fewer repeats (~1 min)
      python benchmarks/run.py --peer-python PATH   time MLSys·im with that interpreter (a throwaway venv:
                                                    python -m venv /tmp/peer && /tmp/peer/bin/pip install
                                                    mlsysim==0.3.0); default: this interpreter if it has
                                                    mlsysim (pip install 'mlsysim-lab[peer]')
      python benchmarks/run.py --json out.json      also save the figures

A benchmark, not a test: shared machines are noisy, so each per-call figure is the best and the median of
many repeats, and cold imports are the median of separate processes. tests/test_speed.py checks that the
fast paths give the same numbers as the general ones.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = {  # issue 9
    "import": "<= import pint + 0.2 s", "eval": "<= 20 us", "sweep": "<= 1 s", "instrument": "<= 50 ms",
    "peer": ">= 30x faster",
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}"


def cold(code: str, runs: int, python: str = sys.executable) -> float:
    """Median wall time of ``code`` in fresh interpreters (the figure a student waits for on a new kernel)."""
    timed = f"import time; _t = time.perf_counter()\n{code}\nprint(time.perf_counter() - _t)"
    times = []
    for _ in range(runs):
        out = subprocess.run([python, "-c", timed], capture_output=True, text=True, check=True, cwd=ROOT)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def per_call(fn, number: int, repeat: int) -> dict:
    fn()  # warm: the catalog loads, set-ups are remembered
    runs = [t / number for t in timeit.repeat(fn, number=number, repeat=repeat)]
    return {"best": min(runs), "median": statistics.median(runs)}


def core(repeat: int) -> dict:
    import numpy as np

    import mlsysim_lab as ml

    h100, llama = ml.hardware("H100 SXM"), ml.workload("Llama-2-70B")
    c8, c100k = ml.cluster(h100, gpus=8), ml.cluster(h100, gpus=100_000)
    batches = np.arange(1, 1_000_001)
    return {
        "serve": per_call(lambda: ml.serve(llama, h100, batch=8, prompt_tokens=1024, output_tokens=256), 500, repeat),
        "serve_tp2": per_call(lambda: ml.serve(llama, h100, batch=8, tp=2), 500, repeat),
        "roofline": per_call(lambda: ml.roofline(llama, h100, batch=8, phase="prefill", context=1280), 500, repeat),
        "train_8": per_call(lambda: ml.train(llama, c8, tokens=2e12, global_batch_tokens=2**22, zero=3), 500, repeat),
        "train_100k": per_call(lambda: ml.train(llama, c100k, tokens=2e12, global_batch_tokens=100_000 * 4096,
                                                zero=3), 500, repeat),
        "serve_by_name": per_call(lambda: ml.serve("Llama-2-70B", "H100", batch=8), 500, repeat),
        "sweep_1m": per_call(lambda: ml.serve(llama, h100, batch=batches, tp=8), 1, max(3, repeat // 20)),
        "field_read": per_call(lambda r=ml.serve(llama, h100, tp=2): r.itl, 2000, repeat),
    }


def instruments(in_process: bool) -> list[dict]:
    """One slider move of each built-in instrument, in a fresh IPython kernel (widget messages really go
    out, as in JupyterLab) unless ``in_process``."""
    sys.path.insert(0, str(HERE))
    import bench_widgets

    return bench_widgets.measure() if in_process else bench_widgets.in_kernel()


def labs() -> list[dict]:
    """Wall time of each lab under nbval, as CI runs them (a fresh kernel per notebook), and one move of every
    lever of every instrument the lab displays, timed kernel-side after the lab has run."""
    sys.path.insert(0, str(HERE))
    import bench_widgets

    rows = []
    for nb in sorted((ROOT / "labs").glob("*.ipynb")):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(nb)],
                             capture_output=True, text=True, cwd=ROOT)
        rows.append({"lab": nb.stem, "seconds": time.perf_counter() - t, "passed": out.returncode == 0,
                     "instruments": bench_widgets.lab_instruments(nb)})
    return rows


def peer_python(arg: str | None) -> str | None:
    if arg:
        return arg
    return sys.executable if importlib.util.find_spec("mlsysim") else None


def peer(python: str, repeat: int, runs: int) -> dict:
    out = subprocess.run([python, str(HERE / "peer_mlsysim.py"), str(repeat)], capture_output=True, text=True,
                         check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["import"] = cold("import mlsysim", runs, python)
    return figures


def fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale or unit == "us":
            return f"{seconds / scale:.3g} {unit}" if unit != "us" else f"{seconds / scale:.1f} us"
    return f"{seconds:g} s"


def report(fig: dict) -> str:
    c, p = fig["core"], fig.get("peer")
    imp = fig["imports"]
    lines = [f"Machine: {fig['machine']}; {fig['date']}.", "",
             "| what | mlsysim-lab | target | " + (f"MLSys·im {p['version']} | ratio |" if p else ""),
             "|---|---|---|" + ("---|---|" if p else "")]

    def row(what, ours, target, theirs=None):
        cells = f"| {what} | {ours} | {target} |"
        if p:
            cells += f" {fmt(theirs)} | {theirs / ours_s:.0f}x |" if theirs is not None else " | |"
        lines.append(cells)

    ours_s = imp["core"]
    row("cold `import mlsysim_lab` (median of separate processes)",
        f"{fmt(imp['core'])} (pint alone {fmt(imp['pint'])}: +{fmt(imp['core'] - imp['pint'])})",
        TARGETS["import"], p["import"] if p else None)
    row("cold `import mlsysim_lab.widgets` (the lab layer: altair, ipywidgets)", fmt(imp["widgets"]), "")
    row("cold first answer: import + first `serve` (loads the catalog)", fmt(imp["first_answer"]), "")
    pairs = [("one `serve` (Llama-2-70B, H100, batch 8)", "serve", "serve"),
             ("one `roofline` (one device, one forward pass)", "roofline", "roofline"),
             ("one `train` on 8 GPUs (one DGX H100)", "train_8", "train_8"),
             ("one `train` on 100,000 GPUs", "train_100k", "train_100k"),
             ("one `serve` with tp=2 (all-reduces)", "serve_tp2", None),
             ("one `serve` by catalog name", "serve_by_name", None)]
    for what, key, peer_key in pairs:
        ours_s = c[key]["best"]
        row(what + f" (best; median {fmt(c[key]['median'])})", fmt(ours_s), TARGETS["eval"],
            p[peer_key]["best"] if p and peer_key else None)
    ours_s = c["sweep_1m"]["best"]
    row("a 1,000,000-point `serve` sweep (numpy arrays)", fmt(ours_s), TARGETS["sweep"])
    ours_s = c["field_read"]["best"]
    row("reading one result field as a quantity", fmt(ours_s), "")
    if fig.get("instruments"):
        ours_s = fig["instruments"][0]["offline"]
        row("widgets: `enable_offline()` once per kernel (Vega bundle cached on disk after the first)",
            fmt(ours_s), "")
    for r in fig.get("instruments", []):
        ours_s = r["move_median"]
        row(f"{r['instrument']}: one slider move, kernel side (median; worst {fmt(r['move_worst'])})",
            fmt(ours_s), TARGETS["instrument"])
    if fig.get("labs"):
        total = sum(r["seconds"] for r in fig["labs"])
        ok = all(r["passed"] for r in fig["labs"])
        slowest = max(fig["labs"], key=lambda r: r["seconds"])
        ours_s = total
        row(f"nbval, all {len(fig['labs'])} labs, one process each ({'all pass' if ok else 'FAILURES'}; slowest "
            f"{slowest['lab']} {fmt(slowest['seconds'])})", fmt(total), "")
        for lab in fig["labs"]:
            inst = lab.get("instruments") or []
            if inst:
                worst = max(inst, key=lambda r: r["move_worst"])
                ours_s = max(r["move_median"] for r in inst)
                row(f"{lab['lab']}: {len(inst)} instruments, {sum(r['moves'] for r in inst)} lever moves; slowest "
                    f"instrument's median (worst move {fmt(worst['move_worst'])}, {worst['instrument']})",
                    fmt(ours_s), TARGETS["instrument"])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="no nbval, fewer repeats")
    ap.add_argument("--no-nbval", action="store_true", help="skip timing the labs under nbval")
    ap.add_argument("--peer-python", help="an interpreter with mlsysim installed")
    ap.add_argument("--in-process", action="store_true", help="time the instruments here, not in a kernel")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    runs, repeat = (3, 20) if args.quick else (7, 100)
    fig = {"machine": machine(), "date": datetime.date.today().isoformat()}
    fig["imports"] = {
        "pint": cold("import pint", runs), "core": cold("import mlsysim_lab", runs),
        "widgets": cold("import mlsysim_lab.widgets", runs),
        "first_answer": cold("import mlsysim_lab as ml\nml.serve('Llama-2-70B', 'H100 SXM', batch=8)", runs),
    }
    fig["core"] = core(repeat)
    fig["instruments"] = instruments(args.in_process)
    if not (args.quick or args.no_nbval):
        fig["labs"] = labs()
    python = peer_python(args.peer_python)
    if python:
        fig["peer"] = peer(python, max(3, repeat // 10), runs)
    print(report(fig))
    if not python:
        print("\n(MLSys·im not found: pip install 'mlsysim-lab[peer]' or pass --peer-python for the ratios)")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=1))


if __name__ == "__main__":
    main()
