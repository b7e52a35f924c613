"""Scenarios: a question as data, answered by the same solver a student calls, through one dispatch table."""
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import numpy as np
import pytest

import mlsysim_lab as ml
from mlsysim_lab import scenarios
from mlsysim_lab.catalog import builtin_catalog_dir
from mlsysim_lab.specs import Scenario

SCENARIO_DIR = builtin_catalog_dir() / "scenarios"
ALL = [sc for path in sorted(SCENARIO_DIR.glob("*.yaml")) for sc in scenarios.read(path)]
TRAIN = dict(tokens="2e12 token", global_batch_tokens="4194304 token", seq_len=4096, precision="bf16")

#: Each shipped scenario of this issue, and the Python API call it stands for.
BY_HAND = {
    "Llama-2-70B serving on 2 H100": lambda: ml.serve(
        "Llama-2-70B", "H100 SXM", tp=2, batch=16, prompt_tokens=1024, output_tokens=256, precision="fp16"),
    "Llama-2-7B training on a DGX H100": lambda: ml.train(
        "Llama-2-7B", ml.cluster("DGX H100"), tp=1, pp=1, zero=1, recompute="selective", **TRAIN),
    "ResNet-50 roofline on Jetson AGX Orin": lambda: ml.roofline(
        "ResNet-50", "Jetson AGX Orin 64GB", batch=1, phase="inference", precision="int8"),
    "Llama-2-70B serving at batch 256 (OOM)": lambda: ml.serve(
        "Llama-2-70B", "H100 SXM", tp=2, batch=256, prompt_tokens=1024, output_tokens=256, precision="fp16"),
    "Llama-2-70B training on one DGX H100 (OOM)": lambda: ml.train(
        "Llama-2-70B", ml.cluster("DGX H100", nodes=1), tp=8, pp=1, zero=1, recompute="selective", **TRAIN),
}


def write(tmp_path, text, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------------------ the shipped files
def test_the_dispatch_table_and_the_scenario_model_agree():
    questions = typing.get_args(Scenario.model_fields["question"].annotation)
    assert set(scenarios.QUESTIONS) == set(questions)
    assert {"serve", "train", "roofline", "memory"} <= set(scenarios.available_questions())


def test_shipped_scenarios_are_in_the_catalog_and_sourced():
    names = {sc.name for sc in ALL}
    assert set(BY_HAND) <= names
    assert names == set(ml.default_catalog().names("scenario"))
    for sc in ALL:
        assert len(sc.source) > 20, sc.name


@pytest.mark.parametrize("name", list(BY_HAND))
def test_a_scenario_gives_exactly_the_python_api_answer(name):
    assert scenarios.evaluate(name).to_dict() == BY_HAND[name]().to_dict()


@pytest.mark.parametrize("sc", ALL, ids=lambda sc: sc.name)
def test_every_shipped_scenario_evaluates_to_a_result_with_a_wall(sc):
    r = scenarios.evaluate(sc)
    assert isinstance(r, ml.Result) and isinstance(r.bottleneck, ml.Wall)
    assert r.to_dict()["bottleneck"] == str(r.bottleneck)


def test_the_out_of_memory_examples_are_verdicts_not_errors():
    for name in ("Llama-2-70B serving at batch 256 (OOM)", "Llama-2-70B training on one DGX H100 (OOM)"):
        r = scenarios.evaluate(name)
        assert not r.fits and r.bottleneck == ml.Wall.MEMORY_CAPACITY
        assert "needs" in r.verdict and "has 80 GB" in r.verdict


# ---------------------------------------------------------------------------------- binding and loading
def test_overrides_replace_inputs_and_names():
    a = scenarios.evaluate("Llama-2-70B serving on 2 H100", batch=64, tp=4)
    b = ml.serve("Llama-2-70B", "H100 SXM", tp=4, batch=64, prompt_tokens=1024, output_tokens=256)
    assert a.to_dict() == b.to_dict()
    c = scenarios.evaluate("Llama-2-70B serving on 2 H100", workload="Llama-2-13B", hardware="H200 SXM")
    assert c.to_dict() == ml.serve("Llama-2-13B", "H200 SXM", tp=2, batch=16).to_dict()
    d = scenarios.evaluate("Llama-2-70B serving on 2 H100", batch=None)  # None drops an input: the default
    assert d.inputs["batch"] == 1


def test_a_node_system_gives_serving_its_accelerator_and_fabric():
    sc = {"question": "serve", "workload": "Llama-2-70B", "system": "DGX H100", "inputs": {"tp": 8}}
    want = ml.serve("Llama-2-70B", "H100 SXM", tp=8, fabric="NVLink 4")
    assert scenarios.evaluate(sc).to_dict() == want.to_dict()


def test_training_systems_one_device_a_cluster_or_nodes():
    base = {"question": "train", "workload": "Llama-2-7B", "inputs": dict(TRAIN, global_batch_tokens=2**20)}
    one = scenarios.evaluate(dict(base, hardware="H100 SXM"))
    assert one.gpus.magnitude == 1
    many = scenarios.evaluate(dict(base, hardware="H100 SXM"), gpus=64, zero=1)
    assert many.to_dict() == ml.train("Llama-2-7B", ml.cluster("H100 SXM", gpus=64), zero=1,
                                      **dict(TRAIN, global_batch_tokens=2**20)).to_dict()
    nodes = scenarios.evaluate(dict(base, system="DGX H100"), nodes=4)
    assert nodes.gpus.magnitude == 32
    # more GPUs, same work per step: the step gets shorter (data parallelism)
    steps = [scenarios.evaluate(dict(base, system="DGX H100"), nodes=n).step_time.magnitude for n in (1, 2, 4)]
    assert steps[0] > steps[1] > steps[2]


def test_cost_and_carbon_questions_reach_their_solvers_with_the_grid():
    from mlsysim_lab.economics import tco
    from mlsysim_lab.sustainability import footprint

    cost = {"question": "cost", "system": "DGX H100", "grid": "Quebec", "inputs": {"years": 4, "utilization": 0.8}}
    assert scenarios.evaluate(cost).to_dict() == tco("DGX H100", years=4, utilization=0.8, grid="Quebec").to_dict()
    carbon = {"question": "carbon", "system": "DGX H100", "grid": "Quebec", "inputs": {"duration": "30 day"}}
    want = footprint(ml.cluster("DGX H100", nodes=4), duration="30 day", grid="Quebec")
    assert scenarios.evaluate(carbon, nodes=4).to_dict() == want.to_dict()
    assert scenarios.evaluate(carbon, gpus=16).to_dict() == footprint("DGX H100", gpus=16, duration="30 day",
                                                                       grid="Quebec").to_dict()


def test_suggest_moves_a_run_over_its_carbon_budget_to_a_cleaner_grid():
    over = {"question": "carbon", "hardware": "H100 SXM", "grid": "US average",
            "inputs": {"duration": "30 day", "gpus": 64, "budget": "10 tCO2e"}}
    s = scenarios.suggest(over)
    assert not s.base.fits and s.base.bottleneck == ml.Wall.CARBON
    assert list(s.change) == ["grid"] and s.result.fits
    dirtier_first = [ml.grid(a["change"]["grid"]).carbon_intensity for a in s.alternatives]
    assert dirtier_first == sorted(dirtier_first, reverse=True)  # the narrowest clearance is the least move


def test_load_from_a_dict_a_single_mapping_file_and_a_catalog_file(tmp_path):
    sc = scenarios.load({"question": "memory", "workload": "Llama-2-7B", "hardware": "H100 SXM"})
    assert sc.name == scenarios.INLINE_NAME and sc.source == scenarios.INLINE_SOURCE
    single = write(tmp_path, """\
        question: roofline
        workload: Llama-2-7B
        hardware: H100 SXM
        inputs: {batch: 8, phase: decode}
        source: "a test"
    """, "decode.yaml")
    assert scenarios.load(single).name == "decode"
    assert scenarios.evaluate(single).to_dict() == ml.roofline("Llama-2-7B", "H100 SXM", batch=8).to_dict()
    assert scenarios.evaluate(str(single)).to_dict() == scenarios.evaluate(single).to_dict()
    with pytest.raises(ml.InputError, match="holds 2 scenarios"):
        scenarios.load(SCENARIO_DIR / "out_of_memory.yaml")


def test_a_bad_single_mapping_file_names_the_line_and_the_field(tmp_path):
    bad = write(tmp_path, """\
        question: serve
        workload: Llama-2-7B
        hardware: H100 SXM
        inputs:
          batch: [1, 2]
        source: "a test"
    """)
    with pytest.raises(ml.CatalogError, match=r"mine.yaml:5: scenario 'mine': field 'inputs.batch': expected a"):
        scenarios.read(bad)
    with pytest.raises(ml.CatalogError, match="no such scenario file"):
        scenarios.read(tmp_path / "missing.yaml")
    with pytest.raises(ml.CatalogError, match="holds kind 'grid'"):
        scenarios.read(builtin_catalog_dir() / "grids.yaml")


@pytest.mark.parametrize("scenario, overrides, message", [
    ({"question": "serve", "hardware": "H100 SXM"}, {}, "needs a workload"),
    ({"question": "train", "workload": "Llama-2-7B"}, {}, "needs a system (a catalog node) or hardware"),
    ({"question": "serve", "workload": "Llama-2-7B", "hardware": "H100 SXM"}, {"batchsize": 4},
     "no input named 'batchsize'; did you mean 'batch'?"),
    ({"question": "serve", "workload": "Llama-2-7B", "hardware": "H100 SMX"}, {}, "did you mean 'H100 SXM'"),
    ({"question": "serve", "workload": "Llama-2-7B", "hardware": "H100 SXM"}, {"batch": -4}, "'batch' must be > 0"),
    ({"question": "serve", "workload": "Llama-2-7B", "hardware": "H100 SXM"}, {"batch": float("nan")},
     "'batch' must be finite"),
    ({"question": "serve", "workload": "Llama-2-7B", "hardware": "H100 SXM"}, {"overhead": "5 GB"},
     "'overhead' got 5 GB ([information]); expected [time]"),
    ({"question": "serv", "workload": "Llama-2-7B"}, {}, "field 'question': Input should be"),
    ({"question": "serve", "workload": "Llama-2-7B", "hardwre": "H100 SXM"}, {}, "field 'hardwre': Extra inputs"),
    ({"question": "serve", "workload": "Llama-2-7B", "hardware": "H100 SXM"}, {"batch": [1, 2]},
     "field 'inputs.batch': expected a string, number or boolean"),
])
def test_bad_scenarios_get_errors_naming_the_field_and_the_reason(scenario, overrides, message):
    with pytest.raises(ml.InputError) as err:
        scenarios.evaluate(scenario, **overrides)
    assert message in str(err.value)


def test_a_question_whose_module_is_missing_says_so(monkeypatch):
    monkeypatch.setitem(scenarios.QUESTIONS, "cost", "no_such_module:cost")
    with pytest.raises(ml.InputError, match=r"mlsysim_lab.no_such_module.cost\(\), which this version"):
        scenarios.evaluate({"question": "cost", "workload": "Llama-2-7B", "hardware": "H100 SXM"})
    with pytest.raises(ml.UnknownNameError, match="unknown question"):
        scenarios.solver("sevre")


# --------------------------------------------------------------------------------------------- sweeps
def test_sweep_rows_are_the_grid_with_fields_walls_and_refusals():
    rows = scenarios.sweep("Llama-2-70B serving on 2 H100", {"batch": [1, 8, 64, 256], "tp": [2, 3]})
    assert len(rows) == 8 and [(r["batch"], r["tp"]) for r in rows[:2]] == [(1, 2), (1, 3)]
    ok = [r for r in rows if r["tp"] == 2]
    assert all("error" not in r for r in ok) and all("tp=3 does not divide" in r["error"] for r in rows if r["tp"] == 3)
    assert ok[0]["bottleneck"] == "memory bandwidth" and ok[-1]["bottleneck"] == "memory capacity"
    assert [r["fits"] for r in ok] == [True, True, False, False]
    tps = [r["tokens_per_second [token/s]"] for r in ok]
    assert np.all(np.diff(tps) > 0)  # more sequences per step, more tokens per second
    one = scenarios.evaluate("Llama-2-70B serving on 2 H100", batch=8)
    assert ok[1]["itl [s]"] == one.itl.to("s").magnitude


def test_sweep_csv_has_one_header_and_a_row_per_point():
    rows = scenarios.sweep("Llama-2-70B serving on 2 H100", {"batch": [1, 2]})
    text = scenarios.to_csv(rows)
    lines = text.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("batch,ttft [s],itl [s]") and "bottleneck" in lines[0]


@pytest.mark.parametrize("params, message", [
    ({}, "at least one parameter"),
    ({"batch": []}, "has no values"),
    ({"batch": list(range(1, 200)), "tp": list(range(1, 200))}, "more than 10,000"),
])
def test_bad_sweeps_are_refused(params, message):
    with pytest.raises(ml.InputError, match=message):
        scenarios.sweep("Llama-2-70B serving on 2 H100", params)


def test_scalars_keep_units_in_the_names():
    out = scenarios.scalars(ml.roofline("Llama-2-7B", "H100 SXM"))
    assert out["intensity [FLOP/B]"] > 0 and out["bottleneck"] == "memory bandwidth" and out["fits"] is True


# -------------------------------------------------------------------------------------------- suggest
def test_suggest_finds_the_smallest_change_that_fits():
    s = scenarios.suggest("Llama-2-70B serving at batch 256 (OOM)")
    assert s.change == {"tp": 4} and s.result.fits and s.result.bottleneck != ml.Wall.MEMORY_CAPACITY
    assert {"tp": 8} in [a["change"] for a in s.alternatives]  # bigger changes rank behind
    assert "smallest change: tp=4" in s.explain()
    t = scenarios.suggest("Llama-2-70B training on one DGX H100 (OOM)")
    assert t.change == {"nodes": 4} and t.result.fits
    assert not scenarios.evaluate("Llama-2-70B training on one DGX H100 (OOM)", nodes=2).fits  # 4 is the least


def test_suggest_prefers_no_change_and_reports_when_nothing_fits():
    fine = scenarios.suggest("Llama-2-7B training on a DGX H100")
    assert fine.found and fine.change == {} and "no change needed" in fine.explain()
    hopeless = scenarios.suggest({"question": "serve", "workload": "Llama-3.1-405B",
                                  "hardware": "Jetson Orin Nano 8GB"})
    assert not hopeless.found and hopeless.to_dict()["after"] is None and hopeless.tried > 0


def test_suggest_ranks_more_devices_before_lower_precision_and_a_smaller_batch():
    s = scenarios.suggest({"question": "serve", "workload": "Llama-2-13B", "hardware": "L4",
                           "inputs": {"batch": 8, "precision": "fp16"}})
    kinds = [next(iter(a["change"])) for a in s.alternatives]
    assert kinds[0] == "tp" and kinds.index("tp") < kinds.index("precision")
    with_devices_off = scenarios.suggest({"question": "memory", "workload": "Llama-2-13B", "hardware": "L4"},
                                         tp=1, batch=1)
    assert with_devices_off.change in ({"tp": 2}, {"precision": "fp8"})


# ------------------------------------------------------------------------------------ catalog browsing
@pytest.mark.parametrize("kind", list(scenarios.SUMMARY))
def test_entries_list_every_kind_with_its_summary_columns(kind):
    rows = scenarios.entries(kind)
    assert len(rows) == len(ml.default_catalog().names(kind))
    assert all(set(scenarios.SUMMARY[kind]) <= set(row) for row in rows)


def test_find_and_describe_work_across_kinds_with_aliases_and_typos():
    (entry,) = scenarios.describe("h100-sxm")
    assert entry["kind"] == "hardware" and entry["name"] == "H100 SXM"
    assert entry["fields"]["memory"]["capacity"] == "80 GB" and entry["origin"].endswith(".yaml")
    assert scenarios.find("DGX H100")[0][0] == "node"
    with pytest.raises(ml.UnknownNameError, match="did you mean 'H100 SXM'"):
        scenarios.describe("H100 SMX")
    with pytest.raises(ml.UnknownNameError, match="unknown catalog kind"):
        scenarios.entries("hardwares")


def test_validate_file_checks_fields_and_references(tmp_path):
    assert len(scenarios.validate_file(SCENARIO_DIR / "out_of_memory.yaml")) == 2
    bad = write(tmp_path, """\
        kind: scenario
        entries:
          - name: typo
            question: serve
            workload: Llama-2-7B
            hardware: H100 SMX
            source: "a test"
    """)
    with pytest.raises(ml.CatalogError, match=r"mine.yaml:6: scenario 'typo': field 'hardware': .*did you mean"):
        scenarios.validate_file(bad)


def test_the_core_of_the_agent_layer_imports_no_cli_or_agent_stack():
    code = ("import sys, mlsysim_lab, mlsysim_lab.scenarios; "
            "print([m for m in ('typer', 'rich', 'mcp', 'click') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert Path(scenarios.__file__).name == "scenarios.py"
