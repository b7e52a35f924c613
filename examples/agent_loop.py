"""A scripted agent that makes an infeasible setup fit, talking to mlsysim-lab only through MCP.

It stands in for an LLM agent (no network, no API key): it reads scenarios from a YAML file, sends each
one as JSON to the MCP server's ``evaluate`` tool, reads the verdict ("does not fit: needs 123 GB, has
80 GB"), changes one knob (tensor parallelism for serving, the node count for training) and asks again,
until the verdict says it fits. Then it asks the ``suggest`` tool for the server's own minimum change and
compares. Every step is printed.

    python examples/agent_loop.py                      # the server in-process (the SDK's in-memory client)
    python examples/agent_loop.py --stdio              # the server as a subprocess: `mlsysim-lab mcp`
    python examples/agent_loop.py my_scenarios.yaml    # your own infeasible scenarios
"""
import argparse
import asyncio
import json
import re
import sys
from pathlib import Path

import yaml
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "catalog" / "scenarios" / "out_of_memory.yaml"
#: The knob the agent turns for each question, and the most times it will turn it.
KNOB = {"serve": "tp", "train": "nodes", "memory": "tp", "fleet": "tp"}
MAX_STEPS = 6
VERDICT = re.compile(r"needs (?P<need>[\d.,]+ \w+), has (?P<have>[\d.,]+ \w+).*?x(?P<ratio>[\d.]+)")


async def call(client: Client, tool: str, arguments: dict) -> dict:
    """One tool call; a tool error stops the agent with the server's message."""
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text
    if result.is_error:
        raise RuntimeError(f"{tool} refused: {text}")
    return json.loads(text)


async def episode(client: Client, scenario: dict, log=print) -> dict:
    """Turn one knob until the scenario fits; return the steps taken and the server's suggestion."""
    knob = KNOB[scenario["question"]]
    value = int(scenario.get("inputs", {}).get(knob, 1))
    log(f"== {scenario['name']} ({scenario['question']}; the agent turns '{knob}')")
    steps, overrides = [], {}
    for step in range(MAX_STEPS + 1):
        answer = (await call(client, "evaluate", {"scenario": scenario, "overrides": overrides}))["result"]
        steps.append({knob: value, "fits": answer["fits"], "verdict": answer["verdict"],
                      "bottleneck": answer["bottleneck"]})
        log(f"step {step}: {knob}={value:<3} -> {answer['verdict']}  [binding wall: {answer['bottleneck']}]")
        if answer["fits"]:
            break
        if step == MAX_STEPS:
            raise RuntimeError(f"still infeasible after {MAX_STEPS} changes of {knob}")
        over = VERDICT.search(answer["verdict"])
        reason = f"needs {over['need']} but has {over['have']} (x{over['ratio']})" if over else answer["bottleneck"]
        value *= 2
        overrides[knob] = value
        log(f"        agent: {reason}; doubling {knob} to {value}")
    suggestion = await call(client, "suggest", {"scenario": scenario})
    log(f"        server's suggest tool, from the start: {suggestion['change']} "
        f"-> {(suggestion['after'] or {}).get('verdict')}")
    return {"scenario": scenario["name"], "knob": knob, "steps": steps, "final": {knob: value},
            "suggested": suggestion["change"]}


async def run(path: Path = DEFAULT_FILE, stdio: bool = False, log=print) -> list[dict]:
    """Every infeasible scenario in ``path``, one episode each, over one MCP session."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = data["entries"] if isinstance(data, dict) and "entries" in data else [data]
    if stdio:
        server = StdioServerParameters(command=sys.executable, args=["-m", "mlsysim_lab.cli", "mcp"])
    else:
        from mlsysim_lab.mcp_server import build_server

        server = build_server()
    async with Client(server) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        log(f"connected to mlsysim-lab over MCP ({'stdio' if stdio else 'in-process'}); tools: {', '.join(tools)}")
        return [await episode(client, {k: v for k, v in entry.items() if k in SCENARIO_KEYS}, log)
                for entry in entries]


#: What the agent sends: the scenario itself (notes and per-field sources stay in the file).
SCENARIO_KEYS = ("name", "question", "workload", "hardware", "system", "grid", "inputs", "source")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE, help="scenario YAML")
    parser.add_argument("--stdio", action="store_true", help="run the server as `mlsysim-lab mcp` over stdio")
    args = parser.parse_args(argv)
    episodes = asyncio.run(run(args.file, stdio=args.stdio))
    for ep in episodes:
        print(f"{ep['scenario']}: fits with {ep['final']} after {len(ep['steps']) - 1} change(s); "
              f"suggest: {ep['suggested']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
