"""The MCP server: the catalog, ``evaluate``, ``sweep`` and ``suggest`` as tools an agent can call.

Run it with ``mlsysim-lab mcp`` (stdio transport, the official ``mcp`` SDK). Every tool is a thin shell
over ``mlsysim_lab.scenarios``, the same functions the command line and the labs call; a scenario is
validated by the same pydantic model (``specs.Scenario``) whose JSON Schema the tools advertise and the
``mlsysim-lab://schema/<kind>`` resources serve. A bad argument (unknown name, wrong unit, NaN, a negative
count) comes back as a tool error naming the field and the reason; the server keeps running.
"""
import functools
import json
import math
from typing import Annotated, Any, Callable, Literal, Optional, Union

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError, WithJsonSchema

from . import __version__, catalog, scenarios
from .errors import MlsysimError
from .specs import Scenario

INSTRUCTIONS = """\
mlsysim-lab answers quantitative ML-systems questions (serve, train, roofline, memory, fleet, ...) with an
analytical Iron-Law model and names the wall that binds (compute, memory bandwidth, memory capacity, ...).
Find names with catalog_list / catalog_show; evaluate a scenario (a catalog scenario name, or JSON with
question, workload, hardware or system, grid and inputs; quantities are strings with units such as
"2e12 token"); sweep one or two inputs; when a verdict says "does not fit", suggest finds the smallest
change (tp, pp, nodes, gpus, ZeRO, recomputation, precision, batch) that clears the wall."""

Kind = Literal["hardware", "workload", "grid", "fabric", "node", "scenario", "measurement"]


def _scenario_schema() -> dict:
    """The Scenario JSON Schema with name and source optional (an agent's what-if has neither), or a name."""
    schema = Scenario.model_json_schema()
    schema["required"] = [r for r in schema.get("required", []) if r not in ("name", "source")]
    schema["description"] = ("a scenario: question, workload, hardware (one device unless inputs give gpus or "
                             "nodes) or system (a catalog node), grid, and inputs passed to the solver")
    return {"anyOf": [{"type": "string", "description": "a catalog scenario name"}, schema]}


ScenarioArg = Annotated[Union[str, dict[str, Any]], WithJsonSchema(_scenario_schema())]
_VALUE_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
OverridesArg = Annotated[Optional[dict[str, Any]], WithJsonSchema(
    {"type": "object", "additionalProperties": _VALUE_SCHEMA,
     "description": "inputs to replace (or workload, hardware, system, grid), e.g. {\"tp\": 4}"})]
ParamsArg = Annotated[dict[str, Any], WithJsonSchema(
    {"type": "object", "additionalProperties": {"type": "array", "items": _VALUE_SCHEMA, "minItems": 1},
     "description": "input name -> values to try, e.g. {\"batch\": [1, 8, 64]}"})]


def _checked(values: Any, what: str, *, lists: bool = False) -> dict[str, Any]:
    """Overrides or sweep values: a mapping of names to strings, numbers or booleans (lists of them for a
    sweep). JSON null is refused by name: NaN and infinity reach a server as null, never as a number."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ToolError(f"{what} must be an object of name -> value, got {type(values).__name__}")
    for name, value in values.items():
        items = value if lists and isinstance(value, list) else [value]
        if lists and not isinstance(value, list):
            raise ToolError(f"{what} field '{name}': expected a list of values, got {value!r}")
        for item in items:
            if not isinstance(item, (str, int, float, bool)):
                got = "null (NaN and infinity arrive as null: they are not JSON numbers)" if item is None \
                    else repr(item)
                raise ToolError(f"{what} field '{name}': expected a string, number or boolean, got {got}")
    return values


def _tool(fn: Callable) -> Callable:
    """Turn every failure into a tool error with a message an agent can act on, never a server crash."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return _plain(fn(*args, **kwargs))
        except ToolError:
            raise
        except MlsysimError as err:
            raise ToolError(str(err)) from None
        except ValidationError as err:
            raise ToolError(scenarios._describe_errors(err, fn.__name__)) from None
        except Exception as err:  # a bug in the core must not take the server down; say what happened
            raise ToolError(f"internal error in {fn.__name__} ({type(err).__name__}): {err}") from None
    return wrapper


def _plain(x: Any) -> Any:
    """Strict JSON: infinities and NaN (an SLO never met, a margin with no runner-up) become strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _answer(result, sc: Scenario) -> dict[str, Any]:
    return {"scenario": sc.model_dump(mode="json", include={"name", "question", "workload", "hardware",
                                                            "system", "grid", "inputs"}),
            "result": result.to_dict(), "explain": result.explain()}


def build_server() -> MCPServer:
    """A fresh server with every tool and schema resource registered (tests build their own)."""
    server = MCPServer("mlsysim-lab", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")

    @server.tool()
    @_tool
    def catalog_list(kind: Optional[Kind] = None) -> dict[str, Any]:
        """List catalog entries of one kind (hardware, workload, grid, fabric, node, scenario, measurement)
        with their key figures; with no kind, the names of every kind."""
        if kind is None:
            cat = catalog.default_catalog()
            return {k: cat.names(k) for k in catalog.KINDS}
        return {"kind": kind, "entries": scenarios.entries(kind)}

    @server.tool()
    @_tool
    def catalog_show(name: str, kind: Optional[Kind] = None) -> dict[str, Any]:
        """Every field of the catalog entries called ``name`` (any kind unless ``kind`` is given), with
        units and sources. An unknown name lists the closest names."""
        return {"matches": scenarios.describe(name, kind)}

    @server.tool()
    @_tool
    def evaluate(scenario: ScenarioArg, overrides: OverridesArg = None) -> dict[str, Any]:
        """Answer a scenario: its result fields (SI units), terms, binding wall (bottleneck), margin, fits,
        verdict (e.g. "does not fit: needs 123 GB, has 80 GB") and assumptions. ``overrides`` replace
        inputs or the workload/hardware/system/grid, e.g. {"tp": 4} or {"nodes": 2}."""
        sc = scenarios.with_overrides(scenarios.load(scenario), _checked(overrides, "overrides"))
        return _answer(scenarios.evaluate(sc), sc)

    @server.tool()
    @_tool
    def sweep(scenario: ScenarioArg, params: ParamsArg, overrides: OverridesArg = None) -> dict[str, Any]:
        """Evaluate a scenario at every combination of ``params`` (input name -> values, e.g.
        {"batch": [1, 8, 64], "tp": [1, 2]}): one row per point with the scalar fields, fits, bottleneck
        and verdict (or the reason the point is invalid), plus the same rows as CSV."""
        rows = scenarios.sweep(scenarios.load(scenario), _checked(params, "params", lists=True),
                               **_checked(overrides, "overrides"))
        return {"rows": rows, "csv": scenarios.to_csv(rows)}

    @server.tool()
    @_tool
    def suggest(scenario: ScenarioArg, overrides: OverridesArg = None) -> dict[str, Any]:
        """The smallest change that makes an infeasible scenario fit (more tp/pp/nodes/gpus, a higher ZeRO
        stage, more recomputation, a smaller precision or batch), found by evaluating candidates; with
        the verdict before and after and a few alternatives."""
        return scenarios.suggest(scenarios.load(scenario), **_checked(overrides, "overrides")).to_dict()

    for kind in catalog.KINDS:
        server.resource(f"mlsysim-lab://schema/{kind}", name=f"{kind}-schema", mime_type="application/json",
                        description=f"JSON Schema of a {kind} catalog file (kind: {kind}, entries: [...])")(
            _schema_reader(kind))
    return server


def _schema_reader(kind: str) -> Callable[[], str]:
    def read() -> str:
        return json.dumps(catalog.schema(kind), indent=1)

    read.__name__ = f"{kind}_schema"
    return read


def main() -> None:
    """Serve over stdio until the client closes the pipe."""
    build_server().run("stdio")


if __name__ == "__main__":
    main()
