"""The MCP server through the official SDK's client: tools, schema resources, errors that never crash it,
and the example agent loop that makes an out-of-memory setup fit through the protocol alone."""
import asyncio
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from mlsysim_lab import catalog, scenarios
from mlsysim_lab.mcp_server import build_server

ROOT = Path(__file__).resolve().parents[1]
SERVER = build_server()
SERVE_7B = {"question": "serve", "workload": "Llama-2-7B", "hardware": "H100 SXM", "inputs": {"batch": 8}}
TOOLS = {"catalog_list", "catalog_show", "evaluate", "sweep", "suggest"}


def session(work):
    """Run ``work(client)`` in one in-process MCP session (the SDK's in-memory transport)."""
    async def go():
        async with Client(SERVER) as client:
            return await work(client)
    return asyncio.run(go())


def call(tool, arguments):
    return session(lambda client: client.call_tool(tool, arguments))


def answer(tool, arguments):
    result = call(tool, arguments)
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def error(tool, arguments):
    result = call(tool, arguments)
    assert result.is_error, result.content[0].text[:300]
    return result.content[0].text


def plain(data):
    return json.loads(json.dumps(data))


# ----------------------------------------------------------------------------------- tools, resources
def test_the_server_lists_its_tools_with_descriptions_and_the_scenario_schema():
    tools = {t.name: t for t in session(lambda c: c.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40
    scenario = tools["evaluate"].input_schema["properties"]["scenario"]
    as_object = next(s for s in scenario["anyOf"] if s.get("type") == "object")
    assert set(as_object["properties"]["question"]["enum"]) == set(scenarios.QUESTIONS)
    assert "name" not in as_object.get("required", []) and "question" in as_object["required"]
    assert tools["sweep"].input_schema["required"] == ["scenario", "params"]


def test_resources_serve_the_json_schema_of_every_kind():
    listed = session(lambda c: c.list_resources()).resources
    uris = {str(r.uri) for r in listed}
    assert uris == {f"mlsysim-lab://schema/{k}" for k in catalog.KINDS}
    text = session(lambda c: c.read_resource("mlsysim-lab://schema/scenario")).contents[0].text
    assert json.loads(text) == plain(catalog.schema("scenario"))


# ------------------------------------------------------------------------------------------ good calls
def test_catalog_tools_list_and_show():
    every = answer("catalog_list", {})
    assert set(every) == set(catalog.KINDS) and "H100 SXM" in every["hardware"]
    grids = answer("catalog_list", {"kind": "grid"})
    assert grids["kind"] == "grid" and {r["name"] for r in grids["entries"]} == set(every["grid"])
    (entry,) = answer("catalog_show", {"name": "dgx-h100"})["matches"]
    assert entry["kind"] == "node" and entry["fields"]["accelerator"] == "H100 SXM"


def test_evaluate_gives_the_python_apis_result_by_name_and_as_json():
    got = answer("evaluate", {"scenario": "Llama-2-70B serving at batch 256 (OOM)"})
    want = scenarios.evaluate("Llama-2-70B serving at batch 256 (OOM)")
    assert got["result"] == plain(want.to_dict()) and got["explain"] == want.explain()
    assert got["result"]["fits"] is False and got["result"]["bottleneck"] == "memory capacity"
    inline = answer("evaluate", {"scenario": SERVE_7B, "overrides": {"tp": 2, "precision": "fp8"}})
    assert inline["scenario"]["inputs"] == {"batch": 8, "tp": 2, "precision": "fp8"}
    assert inline["result"] == plain(scenarios.evaluate(SERVE_7B, tp=2, precision="fp8").to_dict())


def test_sweep_returns_rows_and_csv():
    out = answer("sweep", {"scenario": "llama70b-2xh100", "params": {"batch": [1, 64], "tp": [2, 3]}})
    assert len(out["rows"]) == 4 and out["csv"].count("\n") == 5
    assert out["rows"][0]["bottleneck"] == "memory bandwidth" and "does not divide" in out["rows"][1]["error"]
    assert out["rows"][0] == plain(scenarios.sweep("llama70b-2xh100", {"batch": [1], "tp": [2]})[0])


def test_suggest_returns_the_smallest_change():
    out = answer("suggest", {"scenario": "Llama-2-70B training on one DGX H100 (OOM)"})
    assert out["found"] and out["change"] == {"nodes": 4} and out["after"]["fits"] is True
    assert answer("suggest", {"scenario": SERVE_7B})["change"] == {}


def test_a_huge_but_meaningful_input_is_a_verdict_not_an_error():
    out = answer("evaluate", {"scenario": SERVE_7B, "overrides": {"batch": 1e12}})
    assert out["result"]["fits"] is False and "does not fit" in out["result"]["verdict"]
    assert json.dumps(out, allow_nan=False)  # strict JSON: no NaN or Infinity tokens


# ------------------------------------------------------------------------------------------- bad calls
BAD = [
    ("nan count", "evaluate", {"scenario": dict(SERVE_7B, inputs={"batch": float("nan")})}, "batch"),
    ("nan quantity", "evaluate", {"scenario": dict(SERVE_7B, inputs={"overhead": "nan us"})},
     "'overhead' must be finite"),
    ("infinite", "evaluate", {"scenario": SERVE_7B, "overrides": {"batch": float("inf")}}, "field 'batch'"),
    ("negative", "evaluate", {"scenario": SERVE_7B, "overrides": {"batch": -4}}, "'batch' must be > 0"),
    ("zero gpus", "evaluate", {"scenario": "llama7b-dgx-h100", "overrides": {"nodes": 0}}, "'nodes' must be > 0"),
    ("fractional", "evaluate", {"scenario": SERVE_7B, "overrides": {"tp": 1.5}}, "'tp' must be a whole number"),
    ("unknown workload", "evaluate", {"scenario": dict(SERVE_7B, workload="Llama-2-70")},
     "did you mean 'Llama-2-70B'"),
    ("unknown scenario", "evaluate", {"scenario": "Llama-2-70B serving on 3 H100"}, "did you mean"),
    ("unknown input", "evaluate", {"scenario": SERVE_7B, "overrides": {"batchsize": 4}}, "did you mean 'batch'"),
    ("unknown question", "evaluate", {"scenario": dict(SERVE_7B, question="serv")}, "field 'question'"),
    ("unknown field", "evaluate", {"scenario": dict(SERVE_7B, hardwre="H100 SXM")}, "field 'hardwre'"),
    ("wrong unit", "evaluate", {"scenario": SERVE_7B, "overrides": {"overhead": "5 GB"}},
     "'overhead' got 5 GB ([information]); expected [time], e.g. '5 us'"),
    ("bare number for a unit", "evaluate", {"scenario": SERVE_7B, "overrides": {"overhead": 5}}, "a bare number"),
    ("wrong unit in training", "evaluate", {"scenario": "llama7b-dgx-h100", "overrides": {"tokens": "1e9 param"}},
     "'tokens' got"),
    ("unknown precision", "evaluate", {"scenario": SERVE_7B, "overrides": {"precision": "fp12"}},
     "unknown precision 'fp12'"),
    ("wrong type", "evaluate", {"scenario": 3}, "scenario"),
    ("null override", "evaluate", {"scenario": SERVE_7B, "overrides": {"batch": None}},
     "overrides field 'batch': expected a string, number or boolean, got null"),
    ("nested override", "suggest", {"scenario": SERVE_7B, "overrides": {"batch": [1, 2]}}, "got [1, 2]"),
    ("nan in a sweep", "sweep", {"scenario": SERVE_7B, "params": {"batch": [1, float("nan")]}},
     "params field 'batch'"),
    ("sweep value not a list", "sweep", {"scenario": SERVE_7B, "params": {"batch": 4}}, "expected a list"),
    ("too many points", "sweep", {"scenario": SERVE_7B, "params": {"batch": list(range(1, 102)),
                                                                    "tp": list(range(1, 102))}}, "more than 10,000"),
    ("no values", "sweep", {"scenario": SERVE_7B, "params": {"batch": []}}, "has no values"),
    ("params not a mapping", "sweep", {"scenario": SERVE_7B, "params": [1, 2]}, "params"),
    ("suggest unknown", "suggest", {"scenario": "no such scenario"}, "unknown scenario"),
    ("show typo", "catalog_show", {"name": "H100 SMX"}, "did you mean 'H100 SXM'"),
    ("list unknown kind", "catalog_list", {"kind": "gpus"}, "kind"),
    ("unknown tool", "run_shell", {}, "Unknown tool"),
]


@pytest.mark.parametrize("tool, arguments, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_arguments_come_back_as_tool_errors_naming_the_field(tool, arguments, message):
    assert message in error(tool, arguments)


def test_the_server_keeps_answering_after_errors():
    async def work(client):
        bad = [await client.call_tool(tool, args) for _, tool, args, _ in BAD[:6]]
        good = await client.call_tool("evaluate", {"scenario": SERVE_7B})
        return bad, good
    bad, good = session(work)
    assert all(r.is_error for r in bad) and not good.is_error


# ------------------------------------------------------------------------------- over stdio, and agents
def test_the_mlsysim_lab_mcp_command_speaks_mcp_over_stdio():
    params = StdioServerParameters(command=sys.executable, args=["-m", "mlsysim_lab.cli", "mcp"])

    async def go():
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("evaluate", {"scenario": "llama70b-batch256-oom"})
            bad = await client.call_tool("evaluate", {"scenario": SERVE_7B, "overrides": {"batch": -1}})
            return tools, json.loads(result.content[0].text), bad
    tools, result, bad = asyncio.run(go())
    assert tools == TOOLS and result["result"]["bottleneck"] == "memory capacity"
    assert bad.is_error and "'batch' must be > 0" in bad.content[0].text


def test_the_example_agent_loop_makes_both_setups_fit_through_mcp():
    spec = importlib.util.spec_from_file_location("agent_loop", ROOT / "examples" / "agent_loop.py")
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    lines = []
    episodes = asyncio.run(agent.run(log=lines.append))
    serving, training = episodes
    assert [s["fits"] for s in serving["steps"]] == [False, True] and serving["final"] == {"tp": 4}
    assert [s["fits"] for s in training["steps"]] == [False, False, True] and training["final"] == {"nodes": 4}
    assert "needs 123 GB, has 80 GB" in serving["steps"][0]["verdict"]
    assert all(ep["suggested"] == ep["final"] for ep in episodes)  # the agent and suggest agree
    text = "\n".join(lines)
    assert "connected to mlsysim-lab over MCP (in-process)" in text and "doubling nodes to 4" in text
