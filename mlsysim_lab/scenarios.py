"""Questions as data: a scenario names a workload, a machine, a grid and a question; ``evaluate`` answers it.

A scenario (``specs.Scenario``; catalog files of ``kind: scenario``) is what the command line, the MCP
server, the labs and the tests share. ``evaluate(scenario, **overrides)`` looks up the solver that answers
its question in ``QUESTIONS`` (one entry per question: a new question is one line there), fills the
solver's ``model`` / ``hardware`` / ``system`` / ``grid`` parameters from the scenario's names, and passes
``inputs`` as keyword arguments, unchanged: quantity strings such as ``"100 req/s"`` stay strings, and the
solver checks them at its door. ``sweep`` evaluates a grid of inputs into rows, ``suggest`` searches a few
candidate changes for the smallest one that clears the binding wall, and ``describe`` / ``entries`` show
catalog entries to a person or an agent. Nothing here computes physics: every number comes from a solver.
"""
from __future__ import annotations

import csv
import difflib
import importlib
import inspect
import io
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from pydantic import ValidationError

from . import catalog
from .errors import CatalogError, InputError, UnknownNameError
from .results import Result
from .specs import BYTES_PER_VALUE, Cluster, Hardware, Node, Scenario, Spec

#: Which solver answers each question, as "module:function" inside the package (imported on first use,
#: so a question's module loads only when it is asked).
QUESTIONS: dict[str, str] = {
    "serve": "serving:serve",
    "train": "training:train",
    "roofline": "compute:roofline",
    "memory": "memory:memory",
    "fleet": "fleet:fleet",
    "reasoning": "fleet:reasoning",
    "cost": "economics:tco",
    "carbon": "sustainability:footprint",
}

#: Solver parameters that a scenario's own names fill (parameter -> Scenario field); the rest come from
#: ``inputs``. A solver that takes ``system`` gets a cluster built from ``system`` (a catalog node) or
#: ``hardware`` and the cluster inputs (``gpus``, ``nodes``, ...); one that takes ``hardware`` gets the
#: scenario's hardware, or the accelerator of its node.
ROLES: dict[str, str] = {"model": "workload", "workload": "workload", "hardware": "hardware",
                         "system": "system", "grid": "grid"}

#: Fields of a scenario that an override replaces (every other override is an input).
SCENARIO_FIELDS = ("question", "workload", "hardware", "system", "grid")

#: Most points one sweep evaluates: a guard against a typo such as 10,000 x 10,000 values, not physics.
MAX_SWEEP_POINTS = 10_000

#: Defaults for a scenario given inline (a dict from an agent or a test) that leaves them out.
INLINE_NAME, INLINE_SOURCE = "inline scenario", "given inline (no source named)"


# ------------------------------------------------------------------------------------------ loading
def solver(question: str) -> Callable[..., Result]:
    """The public solver that answers ``question`` (see ``QUESTIONS``)."""
    try:
        target = QUESTIONS[question]
    except (KeyError, TypeError):
        raise UnknownNameError("question", str(question), list(QUESTIONS)) from None
    module, name = target.split(":")
    try:
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)
    except (ImportError, AttributeError):
        raise InputError(f"question {question!r} is answered by mlsysim_lab.{module}.{name}(), which this "
                         f"version of mlsysim-lab does not have; questions available: "
                         f"{', '.join(available_questions())}") from None


def available_questions() -> list[str]:
    """The questions this installation can answer (their solver modules are present)."""
    here = Path(__file__).resolve().parent
    return [q for q, target in QUESTIONS.items() if (here / f"{target.split(':')[0]}.py").is_file()]


def read(path: str | os.PathLike) -> list[Scenario]:
    """The scenarios in a YAML file: a catalog file (``kind: scenario`` and ``entries:``), or, for
    convenience, a single scenario mapping (its name defaults to the file's stem). Errors name file:line."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such scenario file")
    text = path.read_text(encoding="utf-8")
    data = catalog.parse_yaml(text, path)
    if isinstance(data, dict) and "kind" in data:
        if data.get("kind") != "scenario":
            raise CatalogError(f"{path}: holds kind {data.get('kind')!r}, not scenarios")
        return [spec for _, spec in catalog.read_file(path)]
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: a scenario file is a catalog file (kind: scenario, entries: [...]) or "
                           "one scenario mapping (question:, workload:, hardware:, inputs:, source:)")
    try:
        return [Scenario.model_validate({"name": path.stem, **data})]
    except ValidationError as err:
        root = catalog.yaml_tree(text)
        problems = [f"{path}:{catalog._line_of(root, list(loc))}: scenario {data.get('name', path.stem)!r}: {msg}"
                    for loc, msg in _field_errors(err)]
        raise CatalogError("scenario file does not validate:\n  " + "\n  ".join(problems)) from None


def load(scenario: Scenario | str | os.PathLike | Mapping[str, Any]) -> Scenario:
    """One scenario from a Scenario, a catalog scenario name, a YAML file holding exactly one scenario, or
    a mapping with the Scenario fields (``name`` and ``source`` may be left out of a mapping)."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        data = {"name": INLINE_NAME, "source": INLINE_SOURCE, **scenario}
        try:
            return Scenario.model_validate(data)
        except ValidationError as err:
            raise InputError(_describe_errors(err, "scenario")) from None
    if isinstance(scenario, os.PathLike) or (isinstance(scenario, str) and scenario.endswith((".yaml", ".yml"))):
        found = read(scenario)
        if len(found) != 1:
            raise InputError(f"{scenario}: holds {len(found)} scenarios ({', '.join(s.name for s in found)}); "
                             "name one, e.g. evaluate(read(path)[0])")
        return found[0]
    if isinstance(scenario, str):
        return catalog.scenario(scenario)
    raise InputError(f"a scenario is a Scenario, a catalog name, a YAML path or a mapping, got {scenario!r}")


def with_overrides(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """``scenario`` with fields (question, workload, hardware, system, grid) replaced and inputs updated
    from ``overrides``; an override of None removes that input. Validated by the Scenario model again."""
    if not overrides:
        return scenario
    data = scenario.model_dump()
    for key, value in overrides.items():
        if key in SCENARIO_FIELDS:
            data[key] = value
        elif value is None:
            data["inputs"].pop(key, None)
        else:
            data["inputs"][key] = value
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise InputError(_describe_errors(err, f"scenario {scenario.name!r}")) from None


# --------------------------------------------------------------------------------------- evaluating
def evaluate(scenario: Scenario | str | os.PathLike | Mapping[str, Any], **overrides) -> Result:
    """Answer a scenario's question with the solver that owns it; ``overrides`` replace inputs (or the
    workload, hardware, system, grid, question), e.g. ``evaluate("...", batch=64, tp=4)``.

    Returns the solver's own result (``ServeResult``, ``TrainResult``, ...): an infeasible setup is a
    verdict (``fits`` False, the wall named); inputs without physical meaning raise ``InputError``.
    """
    fn, kwargs = _bind(with_overrides(load(scenario), overrides))
    return fn(**kwargs)


def _bind(sc: Scenario) -> tuple[Callable[..., Result], dict[str, Any]]:
    """The solver for ``sc`` and the keyword arguments to call it with."""
    fn = solver(sc.question)
    params = inspect.signature(fn).parameters
    where = f"scenario {sc.name!r} ({sc.question}: {fn.__name__}())"
    inputs = dict(sc.inputs)
    kwargs: dict[str, Any] = {}
    node = catalog.node(sc.system) if sc.system else None
    for param, role in ROLES.items():
        if param not in params:
            continue
        if param == "hardware":
            value = sc.hardware or (node.accelerator if node else None)
            if node and not sc.hardware and "fabric" in params and "fabric" not in inputs and node.intra_fabric:
                kwargs["fabric"] = node.intra_fabric
        elif param == "system":
            value = _system(sc, node, inputs, params, where)
        else:
            value = getattr(sc, role)
        if value is None:
            if params[param].default is inspect.Parameter.empty:
                raise InputError(f"{where}: needs a {role}" + (" (a catalog node) or hardware"
                                                               if role == "system" else ""))
            continue
        kwargs[param] = value
    accepted = [p for p, spec in params.items() if p not in ROLES and p not in kwargs
                and spec.kind in (spec.KEYWORD_ONLY, spec.POSITIONAL_OR_KEYWORD)]
    takes_any = any(spec.kind is spec.VAR_KEYWORD for spec in params.values())
    for key in inputs:
        if key not in accepted and not takes_any:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InputError(f"{where}: no input named {key!r}; {hint}inputs it takes: {', '.join(accepted)}")
    kwargs.update(inputs)
    return fn, kwargs


def _system(sc: Scenario, node: Node | None, inputs: dict, params, where: str):
    """What solvers that take a ``system`` get: the scenario's node or hardware, built into a cluster by the
    cluster inputs the solver does not take itself (``gpus``, ``nodes``, ``per_node``, ``network``, ...;
    taken out of ``inputs``). With none, a node stays its catalog name (one server, or the solver's own
    ``gpus=``) and a hardware is one device."""
    from .training import cluster

    options = [p for p in inspect.signature(cluster).parameters if p != "accelerator" and p not in params]
    shape = {k: inputs.pop(k) for k in options if k in inputs}
    if node is not None:
        return cluster(node.name, **shape) if shape else node.name
    if sc.hardware is None:
        return None
    hw = catalog.hardware(sc.hardware)
    return cluster(hw, **shape) if shape else hw


# ------------------------------------------------------------------------------------------- sweeps
def sweep(scenario, params: Mapping[str, Sequence[Any]], **overrides) -> list[dict[str, Any]]:
    """Evaluate ``scenario`` at every combination of ``params`` (input name -> values): one row per point
    with each parameter, the result's scalar fields in SI units (column "name [unit]"), ``fits``,
    ``bottleneck``, ``margin`` and ``verdict``; a point the solver refuses (tp that does not divide the
    heads, ...) gets its reason in ``error`` instead of stopping the sweep."""
    base = with_overrides(load(scenario), overrides)
    if not params:
        raise InputError("sweep(): give at least one parameter to vary, e.g. {'batch': [1, 8, 64]}")
    values = {}
    for name, vals in params.items():
        vals = [vals] if isinstance(vals, (str, bytes)) or not isinstance(vals, Iterable) else list(vals)
        if not vals:
            raise InputError(f"sweep(): parameter {name!r} has no values")
        values[name] = vals
    points = int(np.prod([len(v) for v in values.values()], dtype=float))
    if points > MAX_SWEEP_POINTS:
        raise InputError(f"sweep(): {points:,} points is more than {MAX_SWEEP_POINTS:,}; sweep fewer values "
                         "(a numpy array in a single evaluate() call is faster for dense sweeps)")
    rows = []
    for combo in itertools.product(*values.values()):
        point = dict(zip(values, combo))
        row: dict[str, Any] = dict(point)
        try:
            row.update(scalars(evaluate(base, **point)))
        except InputError as err:
            row["error"] = str(err)
        rows.append(row)
    return rows


def scalars(result: Result) -> dict[str, Any]:
    """A result's scalar fields as plain numbers in SI units, keyed "field [unit]", then fits, the
    binding wall, its margin and the verdict (the columns of a sweep)."""
    out: dict[str, Any] = {}
    for name, unit in type(result)._units.items():
        value = result._v.get(name)
        if np.ndim(value) == 0 and isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
            out[f"{name} [{unit}]" if unit else name] = float(value)
    out["fits"] = bool(np.all(result.fits))
    out["bottleneck"] = str(result.bottleneck)
    out["margin"] = float(result.margin) if np.ndim(result.margin) == 0 else float("nan")
    out["verdict"] = result.verdict
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows (from ``sweep``) as CSV text; the header is the union of the rows' keys, in order."""
    header = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------- suggest
#: Precisions tried when a smaller weight format might clear a capacity wall, fewest bytes last.
SMALLER_PRECISIONS = ("bf16", "fp8", "int8", "int4")
#: Multipliers tried for device counts and parallel degrees (tp, pp, gpus, nodes).
SCALE_STEPS = (2, 4, 8)
#: Largest tensor-parallel group tried for a device no catalog node holds: an 8-GPU server, the common
#: NVLink/NVSwitch domain (DGX/HGX A100, H100, B200; catalog/nodes.yaml). Tensor parallelism all-reduces
#: twice per layer, so it stays inside one scale-up domain (Shoeybi et al., "Megatron-LM", 2019, sec. 3).
DEFAULT_SCALE_UP_DOMAIN = 8
#: Rank of each kind of change when two candidates change as many knobs: a new layout on the same devices
#: costs nothing, more devices cost money, another site (grid) moves the work, a smaller number format
#: costs accuracy, a smaller batch answers a different question.
CHANGE_RANK = {"layout": 0, "devices": 1, "location": 2, "precision": 3, "demand": 4}


@dataclass(frozen=True)
class Suggestion:
    """The smallest change found that clears the binding wall, with what it was measured against."""

    scenario: Scenario
    base: Result
    change: dict[str, Any]
    result: Result | None
    goal: str
    alternatives: tuple[dict[str, Any], ...] = ()
    tried: int = 0
    rejected: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def found(self) -> bool:
        return self.result is not None

    def explain(self) -> str:
        lines = [f"{self.scenario.name}: {self.base.verdict or 'evaluated'}; binding wall: {self.base.bottleneck}",
                 f"goal: {self.goal}"]
        if self.result is None:
            lines.append(f"no change of one or two knobs among {self.tried} tried clears it")
        elif not self.change:
            lines.append("no change needed: it fits")
        else:
            lines.append(f"smallest change: {_show_change(self.change)} -> {self.result.verdict or 'ok'}; "
                         f"binding wall: {self.result.bottleneck}")
            for alt in self.alternatives[1:]:
                lines.append(f"  also: {_show_change(alt['change'])} -> {alt['verdict']}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario.name, "goal": self.goal, "found": self.found,
                "before": {"fits": bool(np.all(self.base.fits)), "bottleneck": str(self.base.bottleneck),
                           "verdict": self.base.verdict},
                "change": self.change,
                "after": None if self.result is None else self.result.to_dict(),
                "alternatives": list(self.alternatives), "tried": self.tried}


def suggest(scenario, **overrides) -> Suggestion:
    """The minimum change that clears the binding wall, found by evaluating a few candidate changes.

    The goal is ``fits``: an infeasible scenario (out of memory, an SLO missed) names its wall, and a
    feasible one needs no change. Candidates change one knob the solver takes (tp, pp, gpus or nodes
    x2/x4/x8; a higher ZeRO stage; more activation recomputation; a smaller precision; a smaller batch or
    micro-batch), then two. Ranked by knobs changed, then ``CHANGE_RANK`` (layout < devices < precision <
    batch), then devices used, then the precision and batch kept. Every candidate is one ``evaluate``.
    """
    sc = with_overrides(load(scenario), overrides)
    base = evaluate(sc)
    goal = f"fit (binding wall: {base.bottleneck})"
    if bool(np.all(base.fits)):
        return Suggestion(scenario=sc, base=base, change={}, result=base, goal=goal)
    singles = _candidates(sc)
    base_devices = _devices(sc)
    found, rejected, tried = [], [], 0
    pairs = [dict(a, **b) for (ka, a), (kb, b) in itertools.combinations(singles, 2) if ka != kb]
    for group in ([c for _, c in singles], pairs):
        for change in group:
            tried += 1
            try:
                cand = with_overrides(sc, change)
                r = evaluate(cand)
            except InputError as err:
                rejected.append({"change": change, "error": str(err)})
                continue
            if bool(np.all(r.fits)):
                narrow = -float(r.margin) if np.ndim(r.margin) == 0 and np.isfinite(r.margin) else 0.0
                found.append((_rank(sc, change, cand, base_devices) + (narrow,), change, r))
            else:
                rejected.append({"change": change, "verdict": r.verdict, "bottleneck": str(r.bottleneck)})
        if found:
            break
    found.sort(key=lambda item: item[0])
    alternatives = tuple({"change": c, "verdict": r.verdict, "bottleneck": str(r.bottleneck)}
                         for _, c, r in found[:5])
    best_change, best = (found[0][1], found[0][2]) if found else ({}, None)
    return Suggestion(scenario=sc, base=base, change=best_change, result=best, goal=goal,
                      alternatives=alternatives, tried=tried, rejected=tuple(rejected))


def _candidates(sc: Scenario) -> list[tuple[str, dict[str, Any]]]:
    """(knob, one-knob change) pairs for the knobs the scenario's solver takes, smallest change first."""
    params = inspect.signature(solver(sc.question)).parameters
    inputs = sc.inputs

    def current(name):
        value = inputs.get(name, params[name].default if name in params else None)
        return None if value is inspect.Parameter.empty else value

    out: list[tuple[str, dict[str, Any]]] = []
    for knob in ("tp", "pp"):
        if knob in params and isinstance(current(knob), (int, float)):
            steps = [int(current(knob)) * k for k in SCALE_STEPS]
            if knob == "tp" and "hardware" in params:  # no cluster to check it: keep tp inside a server
                steps = [t for t in steps if t <= _scale_up_domain(sc)]
            out += [(knob, {knob: v}) for v in steps]
    if "system" in params:
        if sc.system or "nodes" in inputs:
            nodes = int(inputs.get("nodes", 1))
            out += [("nodes", {"nodes": nodes * k}) for k in SCALE_STEPS]
        else:
            gpus = int(inputs.get("gpus", 1))
            out += [("gpus", {"gpus": gpus * k}) for k in SCALE_STEPS]
    if "zero" in params and isinstance(current("zero"), int):
        out += [("zero", {"zero": z}) for z in range(current("zero") + 1, 4)]
    if "recompute" in params and current("recompute") in ("none", "selective"):
        levels = ("none", "selective", "full")
        out += [("recompute", {"recompute": r}) for r in levels[levels.index(current("recompute")) + 1:]]
    if "grid" in params:
        here = catalog.grid(sc.grid).name if sc.grid else None
        out += [("grid", {"grid": g}) for g in catalog.default_catalog().names("grid") if g != here]
    precision = current("precision")
    if "precision" in params and precision in BYTES_PER_VALUE:
        out += [("precision", {"precision": p}) for p in SMALLER_PRECISIONS
                if BYTES_PER_VALUE[p] < BYTES_PER_VALUE[precision]]
    for knob in ("batch", "micro_batch"):
        value = current(knob)
        if knob in params and isinstance(value, (int, float)) and not isinstance(value, bool):
            out += [(knob, {knob: int(value) // 2 ** k}) for k in range(1, 9) if int(value) // 2 ** k >= 1]
    return out


def _scale_up_domain(sc: Scenario) -> int:
    """Devices in the largest catalog server built around the scenario's accelerator."""
    node = catalog.node(sc.system) if sc.system else None
    name = node.accelerator if node else sc.hardware
    if name is None:
        return DEFAULT_SCALE_UP_DOMAIN
    hw = catalog.hardware(name).name
    sizes = [n.accelerators for n in catalog.default_catalog().entries("node") if n.accelerator == hw]
    return max(sizes, default=DEFAULT_SCALE_UP_DOMAIN)


def _devices(sc: Scenario) -> float:
    """Accelerators a scenario occupies: its cluster's, else its tensor-parallel group's."""
    try:
        _, kwargs = _bind(sc)
    except InputError:
        return float("inf")
    system = kwargs.get("system")
    if isinstance(system, Cluster):
        return float(system.gpus)
    if isinstance(system, Hardware):
        return 1.0
    if isinstance(system, str):
        return float(kwargs.get("gpus", catalog.node(system).accelerators))
    return float(kwargs.get("tp", 1))


def _rank(sc: Scenario, change: dict[str, Any], cand: Scenario, base_devices: float) -> tuple:
    devices = _devices(cand)
    kinds = []
    for knob, value in change.items():
        if knob == "precision":
            kinds.append("precision")
        elif knob == "grid":
            kinds.append("location")
        elif knob == "batch" and value < sc.inputs.get("batch", 1):
            kinds.append("demand")
        elif devices > base_devices:
            kinds.append("devices")
        else:
            kinds.append("layout")
    precision_kept = BYTES_PER_VALUE.get(change.get("precision", ""), 0.0)
    batch = change.get("batch")
    return (len(change), max(CHANGE_RANK[k] for k in kinds), devices, -precision_kept,
            -(batch if batch is not None else float("inf")))


def _show_change(change: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in change.items())


# -------------------------------------------------------------------------------- catalog browsing
#: The columns ``entries`` shows for each kind of catalog entry (dotted paths into the entry).
SUMMARY: dict[str, tuple[str, ...]] = {
    "hardware": ("vendor", "tier", "memory.capacity", "memory.bandwidth", "tdp"),
    "workload": ("family", "task", "params"),
    "grid": ("region", "carbon_intensity", "pue"),
    "fabric": ("kind", "scope", "bandwidth", "latency"),
    "node": ("accelerator", "accelerators", "intra_fabric", "inter_fabric"),
    "scenario": ("aliases", "question", "workload", "hardware", "system"),
    "measurement": ("question", "workload", "hardware", "gpus"),
}


def entries(kind: str) -> list[dict[str, Any]]:
    """One row per catalog entry of ``kind``: its name and the ``SUMMARY`` columns, as JSON-ready values."""
    if kind not in catalog.KINDS:
        raise UnknownNameError("catalog kind", kind, list(catalog.KINDS))
    rows = []
    for spec in catalog.default_catalog().entries(kind):
        data = spec.model_dump(mode="json")
        row = {"name": spec.name}
        if kind == "hardware":
            row["peak"] = ", ".join(f"{p} {q}" for p, q in data["peak"].items())
        for path in SUMMARY[kind]:
            value = data
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            row[path] = value
        rows.append(row)
    return rows


def find(name: str, kind: str | None = None) -> list[tuple[str, Spec]]:
    """Every catalog entry called ``name`` (or an alias) in ``kind``, or in any kind; an unknown name
    raises ``UnknownNameError`` with the closest names of every kind."""
    cat = catalog.default_catalog()
    if kind is not None:
        return [(kind, cat.get(kind, name))]
    hits = []
    for k in catalog.KINDS:
        try:
            hits.append((k, cat.get(k, name)))
        except UnknownNameError:
            continue
    if not hits:
        known = [n for k in catalog.KINDS for s in cat.entries(k) for n in (s.name, *s.aliases)]
        raise UnknownNameError("catalog entry", name, known)
    return hits


def describe(name: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The full catalog entries called ``name``: their kind, the file each came from, and every field
    (quantities as strings with units, sources included)."""
    cat = catalog.default_catalog()
    return [{"kind": k, "name": spec.name, "origin": cat.origin(k, spec.name),
             "fields": spec.model_dump(mode="json", exclude={"name"})} for k, spec in find(name, kind)]


def validate_file(path: str | os.PathLike) -> list[tuple[str, Spec]]:
    """Lint a bring-your-own catalog or scenario file: every field (with file:line), and for scenarios,
    that the workload, hardware, node and grid they name exist (did-you-mean on a typo)."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such file")
    try:
        data = catalog.parse_yaml(path.read_text(encoding="utf-8"), path)
    except CatalogError:
        data = None  # catalog.read_file reports it with the place
    if isinstance(data, dict) and "kind" not in data and "question" in data:
        specs = [("scenario", s) for s in read(path)]
    else:
        specs = catalog.read_file(path)
    problems = []
    root = catalog.yaml_tree(path.read_text(encoding="utf-8"))
    nested = isinstance(data, dict) and "entries" in data
    for i, (kind, spec) in enumerate(specs):
        if kind != "scenario":
            continue
        for field_name, ref_kind in (("workload", "workload"), ("hardware", "hardware"), ("system", "node"),
                                     ("grid", "grid")):
            ref = getattr(spec, field_name)
            if ref is None:
                continue
            try:
                catalog.default_catalog().get(ref_kind, ref)
            except UnknownNameError as err:
                at = ["entries", i, field_name] if nested else [field_name]
                problems.append(f"{path}:{catalog._line_of(root, at)}: scenario {spec.name!r}: field "
                                f"'{field_name}': {err}")
        try:
            solver(spec.question)
        except InputError as err:
            problems.append(f"{path}: scenario {spec.name!r}: {err}")
    if problems:
        raise CatalogError("file does not validate:\n  " + "\n  ".join(problems))
    return specs


# ----------------------------------------------------------------------------------------- errors
def _field_errors(err: ValidationError) -> list[tuple[tuple, str]]:
    """(location, 'field ...: reason') per problem, one per field: a value that matches no member of a
    union (string, number or boolean) is one problem, not four."""
    tags = {"str", "float", "int", "bool"}
    merged: dict[tuple, list[dict]] = {}
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in tags)
        merged.setdefault(loc, []).append(e)
    out = []
    for loc, errs in merged.items():
        where = ".".join(str(p) for p in loc) or "(top level)"
        if len(errs) > 1:
            reason = f"expected a string, number or boolean, got {errs[0].get('input')!r}"
        else:
            reason = errs[0]["msg"].removeprefix("Value error, ")
            if errs[0]["type"] not in ("missing", "extra_forbidden"):
                reason += f" (got {errs[0].get('input')!r})"
        out.append((loc, f"field '{where}': {reason}"))
    return out


def _describe_errors(err: ValidationError, what: str) -> str:
    return f"{what}: " + "; ".join(msg for _, msg in _field_errors(err))
