"""The fast paths of issue 9 give the general paths' answers: a 1,000,000-point sweep equals scalar calls,
remembered set-ups are forgotten when what they read changes, the import stays lean, and the benchmark's
report and the GPU comparison page render. Timings live in benchmarks/run.py, never in a test."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlsysim_lab as ml
from mlsysim_lab import catalog, memo
from mlsysim_lab import efficiency as eff
from mlsysim_lab.results import Wall

ROOT = Path(__file__).resolve().parent.parent
H100, LLAMA70 = ml.hardware("H100 SXM"), ml.workload("Llama-2-70B")


def si(result, field):
    return np.asarray(getattr(result, field).to(result._units[field] or "").magnitude, dtype=float)


# ------------------------------------------------------------------------------------- sweep = scalars
@pytest.mark.parametrize("tp, precision", [(8, "fp16"), (2, "fp8"), (1, "int4")])
def test_a_million_point_sweep_equals_scalar_calls(tp, precision):
    batches = np.arange(1, 1_000_001)
    sweep = ml.serve(LLAMA70, H100, batch=batches, tp=tp, precision=precision)
    assert si(sweep, "itl").shape == (1_000_000,)
    assert {w for w in sweep.bottleneck[::997]} >= {Wall.MEMORY_CAPACITY}  # the sweep crosses a wall
    for i in [0, 1, 7, 63, 511, 4095, 65535, 999_999]:
        one = ml.serve(LLAMA70, H100, batch=int(batches[i]), tp=tp, precision=precision)
        for field in one.fields:
            swept = np.broadcast_to(si(sweep, field), batches.shape)  # fields free of the batch stay scalars
            assert swept[i] == pytest.approx(float(si(one, field)), rel=1e-12), field
        assert sweep.bottleneck[i] == one.bottleneck
        assert bool(sweep.fits[i]) == bool(one.fits)
        assert sweep.margin[i] == pytest.approx(one.margin, rel=1e-12)


def test_per_sample_and_roofline_sweeps_equal_scalar_calls():
    batches = np.array([1, 3, 32, 256, 4096])
    sweep = ml.serve("ResNet-50", "T4", batch=batches, precision="int8")
    roof = ml.roofline(LLAMA70, H100, batch=batches, phase="decode", context=2048)
    for i, b in enumerate(batches):
        one = ml.serve("ResNet-50", "T4", batch=int(b), precision="int8")
        assert si(sweep, "latency")[i] == pytest.approx(float(si(one, "latency")), rel=1e-12)
        r = ml.roofline(LLAMA70, H100, batch=int(b), phase="decode", context=2048)
        assert si(roof, "attainable")[i] == pytest.approx(float(si(r, "attainable")), rel=1e-12)
        assert roof.bottleneck[i] == r.bottleneck and sweep.bottleneck[i] == one.bottleneck


# ---------------------------------------------------------------------------------------- remembered set-ups
def test_set_ups_are_kept_apart_by_every_fixed_argument():
    base = ml.serve(LLAMA70, H100, batch=8, tp=2)
    for kwargs in (dict(tp=4), dict(precision="fp8"), dict(efficiency=0.5), dict(bandwidth_efficiency=0.5),
                   dict(overhead="1 ms"), dict(grouped_kv_reads=False), dict(kv_precision="fp8"),
                   dict(fabric="PCIe 5.0 x16")):
        other = ml.serve(LLAMA70, H100, **{"batch": 8, "tp": 2, **kwargs})
        numbers = lambda r: (r.to_dict()["fields"], r.to_dict()["terms"])  # noqa: E731
        assert numbers(other) != numbers(base), kwargs
    assert si(ml.serve(LLAMA70, H100, batch=8, tp=2), "itl") == si(base, "itl")
    assert si(ml.serve("Llama-2-70B", "H100", batch=8, tp=2), "itl") == si(base, "itl")  # by name, same spec


def test_an_array_of_efficiencies_is_not_remembered_and_still_right():
    etas = np.array([0.3, 0.6])
    r = ml.serve(LLAMA70, H100, batch=4096, tp=8, efficiency=etas)
    for i, eta in enumerate(etas):
        assert si(r, "itl")[i] == pytest.approx(float(si(ml.serve(LLAMA70, H100, batch=4096, tp=8,
                                                                   efficiency=float(eta)), "itl")))


def test_set_ups_are_forgotten_when_the_fitted_defaults_change():
    before = float(si(ml.serve(LLAMA70, H100, batch=1, tp=2), "itl"))
    with eff.trial({"layer overhead": 1e-3}):
        during = float(si(ml.serve(LLAMA70, H100, batch=1, tp=2), "itl"))
        during_train = ml.train(LLAMA70, ml.cluster(H100, gpus=8), tokens=1e9, global_batch_tokens=2**20, zero=3)
    after = float(si(ml.serve(LLAMA70, H100, batch=1, tp=2), "itl"))
    assert during == pytest.approx(before + 80 * (1e-3 - eff.LAYER_OVERHEAD.value))  # 80 layers
    assert after == before
    assert during_train.step_time > ml.train(LLAMA70, ml.cluster(H100, gpus=8), tokens=1e9,
                                             global_batch_tokens=2**20, zero=3).step_time


@pytest.fixture
def private_catalog(monkeypatch):
    monkeypatch.setattr(catalog, "_DEFAULT", catalog.Catalog.load(catalog.builtin_catalog_dir()))
    memo.forget()
    yield
    memo.forget()  # nothing remembered from the private catalog outlives the test


def test_set_ups_are_forgotten_when_the_catalog_changes(private_catalog, tmp_path):
    before = ml.serve("Llama-2-7B", "H100", batch=1)
    faster = tmp_path / "faster.yaml"
    spec = H100.model_dump(mode="json")
    spec["memory"]["bandwidth"] = "6.7 TB/s"  # twice the bandwidth, same name
    import yaml
    faster.write_text(yaml.safe_dump({"kind": "hardware", "entries": [spec]}))
    catalog.add_catalog(faster, override=True)
    after = ml.serve("Llama-2-7B", "H100", batch=1)
    assert after.terms["memory"].to("s").magnitude == pytest.approx(before.terms["memory"].to("s").magnitude / 2)


def test_specs_and_clusters_hash_by_identity():
    twin = ml.Hardware.model_validate(H100.model_dump())
    assert twin == H100 and hash(twin) != hash(H100) and hash(H100) == hash(ml.hardware("H100"))
    c = ml.cluster(H100, gpus=8)
    assert {c: 1}[c] == 1


# ------------------------------------------------------------------------------------------- lean imports
def test_import_mlsysim_lab_loads_no_lab_stack_and_no_yaml():
    code = ("import sys, mlsysim_lab; "
            "print(sorted(m for m in ('yaml', 'altair', 'ipywidgets', 'anywidget', 'jsonschema') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(importlib.util.find_spec("rfc3987_syntax") is None or importlib.util.find_spec("altair") is None,
                    reason="rfc3987_syntax or the lab extra is not installed")
def test_the_widgets_put_off_rfc3987_syntax_and_iri_checks_still_work():
    code = ("import sys, mlsysim_lab.widgets, jsonschema\n"
            "print(type(sys.modules['rfc3987_syntax']).__name__)\n"
            "fc = jsonschema.Draft202012Validator.FORMAT_CHECKER\n"
            "print(fc.conforms('https://example.org/ü', 'iri'), fc.conforms('no iri ::', 'iri'))\n"
            "print(type(sys.modules['rfc3987_syntax']).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["_StandIn", "True", "False", "module"]


# ---------------------------------------------------------------------------------------- the benchmark
def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_report_shows_every_figure_and_the_ratios():
    run = load("run")
    timing = {"best": 15e-6, "median": 18e-6}
    fig = {"machine": "test", "date": "2026-11-26",
           "imports": {"pint": 0.35, "core": 0.5, "widgets": 1.1, "first_answer": 0.8},
           "core": {k: timing for k in ("serve", "serve_tp2", "roofline", "train_8", "train_100k", "serve_by_name",
                                        "field_read")} | {"sweep_1m": {"best": 0.2, "median": 0.25}},
           "instruments": [{"instrument": "RooflineInstrument", "move_median": 3e-3, "move_worst": 5e-3,
                            "offline": 2.0}],
           "labs": [{"lab": "v1_01", "seconds": 12.0, "passed": True,
                     "instruments": [{"instrument": "Roofline", "moves": 12, "move_median": 4e-3, "move_worst": 0.2}]}],
           "peer": {"version": "0.3.0", "import": 7.0} | {k: {"best": 1.5e-3, "median": 2e-3}
                                                          for k in ("serve", "roofline", "train_8", "train_100k")}}
    text = run.report(fig)
    assert "| one `serve` (Llama-2-70B, H100, batch 8) (best; median 18.0 us) | 15.0 us | <= 20 us | 1.5 ms | 100x |" \
        in text
    assert "14x" in text and "+150 ms" in text and "nbval, all 1 labs" in text and "RooflineInstrument" in text
    assert "| v1_01: 1 instruments, 12 lever moves; slowest instrument's median (worst move 200 ms, Roofline) | " \
        "4 ms | <= 50 ms |" in text


def test_the_gpu_page_and_the_measured_cases_are_current():
    compare = load("gpu_compare")
    stored = sorted((ROOT / "benchmarks" / "results").glob("h200_2026-11-26*.json"))
    results = [str(p.relative_to(ROOT)) for p in stored]
    assert compare.page(results) == (ROOT / "docs" / "gpu_measurements.md").read_text(), \
        "regenerate with python benchmarks/gpu_compare.py (see its docstring)"
    assert compare.validation(results) == (ROOT / "catalog" / "validation" / "measured_h200.yaml").read_text(), \
        "regenerate with python benchmarks/gpu_compare.py --validation (see its docstring)"


@pytest.mark.skipif(importlib.util.find_spec("vl_convert") is None, reason="the lab extra is not installed")
def test_the_offline_chart_bundle_is_built_once_per_machine(tmp_path):
    code = ("import hashlib, altair as alt\n"
            "from mlsysim_lab import widgets\n"
            "widgets.enable_offline()\n"
            "print(alt.JupyterChart._is_offline, hashlib.sha256(alt.JupyterChart._esm.encode()).hexdigest())")
    env = {**__import__("os").environ, "MLSYSIM_LAB_CACHE": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    [bundle] = tmp_path.glob("vega-bundle-*.js")
    written = bundle.stat().st_mtime_ns
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert first.stdout == second.stdout and first.stdout.startswith("True ")
    assert bundle.stat().st_mtime_ns == written  # read, not rebuilt
