"""The command line: every command through Typer's CliRunner, answers equal to the Python API's."""
import csv
import io
import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mlsysim_lab as ml
from mlsysim_lab import scenarios
from mlsysim_lab.catalog import builtin_catalog_dir, schema
from mlsysim_lab.cli import app, parse_value

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_FILES = sorted((builtin_catalog_dir() / "scenarios").glob("*.yaml"))
RUNNER = CliRunner()


def run(*args):
    return RUNNER.invoke(app, [str(a) for a in args])


def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def fails(*args):
    result = run(*args)
    assert result.exit_code == 1, (args, result.output)
    return result.stderr


def write(tmp_path, text, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_console_script_is_declared_and_the_help_lists_every_command():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["mlsysim-lab"] == "mlsysim_lab.cli:app"
    agent = meta["project"]["optional-dependencies"]["agent"]
    assert {"typer", "rich", "mcp"} <= {d.split(">")[0].split("=")[0].split("<")[0] for d in agent}
    assert "mlsysim-lab[agent]" in meta["project"]["optional-dependencies"]["test"]
    out = ok("--help")
    for command in ("catalog", "eval", "sweep", "suggest", "schema", "validate", "mcp"):
        assert command in out
    assert ok("--version").strip() == ml.__version__


def test_importing_the_package_loads_no_cli_or_agent_stack():
    code = "import sys, mlsysim_lab; print([m for m in ('typer', 'rich', 'mcp', 'click') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -------------------------------------------------------------------------------------------- catalog
def test_catalog_list_counts_kinds_and_lists_one():
    counts = json.loads(ok("catalog", "list", "--json"))
    assert counts["hardware"] == len(ml.default_catalog().names("hardware")) and counts["scenario"] >= 5
    assert "H100 SXM" in ok("catalog", "list", "hardware") and "hardware" in ok("catalog", "list")
    rows = json.loads(ok("catalog", "list", "grid", "--json"))
    assert {r["name"] for r in rows} == set(ml.default_catalog().names("grid"))
    assert "did you mean 'hardware'" in fails("catalog", "list", "hardwar")


def test_catalog_show_finds_any_kind_and_suggests_on_typos():
    out = ok("catalog", "show", "h100-sxm")
    assert "hardware: H100 SXM" in out and "memory.capacity" in out and "80 GB" in out
    assert "node: DGX H100" in ok("catalog", "show", "DGX H100")
    (entry,) = json.loads(ok("catalog", "show", "Llama-2-70B", "--json"))
    assert entry["kind"] == "workload" and entry["fields"]["layers"] == 80
    assert "did you mean 'H100 SXM'" in fails("catalog", "show", "H100 SMX")
    assert "unknown grid" in fails("catalog", "show", "H100 SXM", "--kind", "grid")


# ---------------------------------------------------------------------------------------------- eval
@pytest.mark.parametrize("sc", [sc for f in SCENARIO_FILES for sc in scenarios.read(f)], ids=lambda sc: sc.name)
def test_eval_json_of_every_shipped_scenario_is_the_python_apis_result(sc):
    path = next(f for f in SCENARIO_FILES if sc.name in {s.name for s in scenarios.read(f)})
    from_file = json.loads(ok("eval", path, "--entry", sc.name, "--json"))
    from_name = json.loads(ok("eval", sc.name, "--json"))
    want = json.loads(json.dumps(scenarios.evaluate(sc).to_dict()))
    assert from_file == want and from_name == want


def test_eval_prints_a_table_the_binding_wall_and_the_verdict():
    out = ok("eval", "Llama-2-70B serving at batch 256 (OOM)")
    assert "memory_per_device" in out and "123 GB" in out
    assert "binding wall: memory capacity" in out and "needs 123 GB, has 80 GB" in out
    both = ok("eval", builtin_catalog_dir() / "scenarios" / "out_of_memory.yaml")
    assert both.count("binding wall: memory capacity") == 2


def test_eval_overrides_and_a_single_mapping_file(tmp_path):
    data = json.loads(ok("eval", "llama70b-2xh100", "--set", "batch=64", "--set", "tp=4", "--json"))
    assert data == json.loads(ml.serve("Llama-2-70B", "H100 SXM", tp=4, batch=64).to_json())
    mine = write(tmp_path, """\
        question: memory
        workload: Llama-2-7B
        hardware: L4
        inputs: {batch: 4, context: 2048}
        source: "a test"
    """)
    data = json.loads(ok("eval", mine, "--json"))
    assert data == json.loads(ml.memory("Llama-2-7B", "L4", batch=4, context=2048).to_json())


@pytest.mark.parametrize("args, message", [
    (("eval", "Llama-2-70B servng on 2 H100"), "did you mean 'Llama-2-70B serving on 2 H100'"),
    (("eval", "llama70b-2xh100", "--set", "batchsize=4"), "did you mean 'batch'"),
    (("eval", "llama70b-2xh100", "--set", "batch=-1"), "'batch' must be > 0"),
    (("eval", "llama70b-2xh100", "--set", "batch=nan"), "'batch' must be finite"),
    (("eval", "llama70b-2xh100", "--set", "overhead=5 GB"), "expected [time]"),
    (("eval", "llama70b-2xh100", "--set", "batch"), "--set takes NAME=VALUE"),
    (("eval", "no_such_file.yaml"), "no such scenario file"),
    (("eval", builtin_catalog_dir() / "scenarios" / "out_of_memory.yaml", "--entry", "nope"), "no scenario named"),
])
def test_eval_errors_are_one_line_on_stderr_with_status_1(args, message):
    assert message in fails(*args)


# ------------------------------------------------------------------------------------ sweep, suggest
def test_sweep_writes_csv_rows_for_the_grid(tmp_path):
    out = ok("sweep", "llama70b-2xh100", "--param", "batch=1,2,4,8", "--param", "tp=1,2")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 8 and [(r["batch"], r["tp"]) for r in rows[:3]] == [("1", "1"), ("1", "2"), ("2", "1")]
    assert {"itl [s]", "tokens_per_second [token/s]", "fits", "bottleneck", "verdict"} <= set(rows[0])
    assert {r["bottleneck"] for r in rows if r["tp"] == "1"} == {"memory capacity"}
    want = scenarios.evaluate("llama70b-2xh100", batch=8, tp=2).itl.to("s").magnitude
    assert float(rows[-1]["itl [s]"]) == pytest.approx(want, rel=1e-12)
    target = tmp_path / "sweep.csv"
    ok("sweep", "llama70b-2xh100", "-p", "batch=1,64", "-o", target)
    assert len(target.read_text().strip().splitlines()) == 3


def test_sweep_errors():
    assert "more than 10,000" in fails("sweep", "llama70b-2xh100", "-p", "batch=" + ",".join(map(str, range(1, 10002))))
    assert "--param takes NAME=VALUE" in fails("sweep", "llama70b-2xh100", "-p", "batch")
    assert "pick one with --entry" in fails("sweep", builtin_catalog_dir() / "scenarios" / "out_of_memory.yaml",
                                            "-p", "batch=1,2")


def test_suggest_prints_the_smallest_change():
    assert "smallest change: tp=4" in ok("suggest", "llama70b-batch256-oom")
    data = json.loads(ok("suggest", "llama70b-one-node-oom", "--json"))
    assert data["change"] == {"nodes": 4} and data["after"]["fits"] is True and data["before"]["fits"] is False


# -------------------------------------------------------------------------------------- schema, files
def test_schema_prints_the_json_schema():
    assert json.loads(ok("schema", "scenario")) == json.loads(json.dumps(schema("scenario")))
    assert "did you mean 'scenario'" in fails("schema", "scenari")


def test_validate_passes_shipped_files_and_names_file_line_and_field(tmp_path):
    out = ok("validate", *SCENARIO_FILES, builtin_catalog_dir() / "grids.yaml")
    assert out.count("ok: ") == len(SCENARIO_FILES) + 1
    wrong_unit = write(tmp_path, """\
        kind: hardware
        entries:
          - name: My NPU
            vendor: Me
            family: edge-accelerator
            tier: edge
            peak: {int8: "26 TOP/s"}
            memory: {capacity: "8 GB", bandwidth: "68 GB"}
            source: "my datasheet, table 2"
    """, "npu.yaml")
    err = fails("validate", wrong_unit)
    assert "npu.yaml:8: hardware 'My NPU': field 'memory.bandwidth'" in err
    typo = write(tmp_path, """\
        kind: scenario
        entries:
          - name: typo
            question: train
            workload: Llama-2-7B
            system: DGX H10
            source: "a test"
    """)
    err = fails("validate", typo)
    assert "mine.yaml:6: scenario 'typo': field 'system'" in err and "did you mean 'DGX H100'" in err
    assert "no such file" in fails("validate", tmp_path / "missing.yaml")


@pytest.mark.parametrize("text, value", [("8", 8), ("0.5", 0.5), ("2e12", 2e12), ("true", True), ("False", False),
                                         ("fp8", "fp8"), ("80 GB", "80 GB"), (" 4 ", 4)])
def test_parse_value(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)
