"""The ``mlsysim-lab`` command: the catalog, scenarios, sweeps and the MCP server from a shell.

Every command is a thin shell over ``mlsysim_lab.scenarios`` (the same calls the MCP server and the labs
make): ``catalog list|show``, ``eval`` (a table and the binding wall, or ``--json``), ``sweep`` (CSV),
``suggest``, ``schema``, ``validate`` and ``mcp``; for instructors ``assign``, ``grade`` and ``answers``
(``mlsysim_lab.exercises``, with the grade extra). Bad input is one line on stderr and exit status 1; an
infeasible setup is an answer (its verdict), not an error.
"""
import json
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__, catalog, scenarios
from .errors import MlsysimError, _fold
from .results import Result, _num, _plain, _show

app = typer.Typer(name="mlsysim-lab", no_args_is_help=True, add_completion=False,
                  help="The Iron Law of ML systems from the command line: evaluate scenarios, sweep them, "
                       "browse the catalog, and serve it all to agents over MCP.")
catalog_app = typer.Typer(no_args_is_help=True, help="Browse the catalog (hardware, workloads, grids, ...).")
app.add_typer(catalog_app, name="catalog")

SCENARIO_HELP = "a scenario YAML file (kind: scenario, or one mapping) or a catalog scenario name"
SET_HELP = "override an input (or workload/hardware/system/grid): NAME=VALUE, repeatable, e.g. --set tp=4"
JSON_HELP = "print JSON (the result's to_dict()) instead of a table"


def _out() -> Console:
    """Tables fit the terminal; lines of prose (verdicts, errors) are never broken, so they stay greppable."""
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str) -> None:
    _err().print(Text(f"error: {message}", style="red"))
    raise typer.Exit(1)


def parse_value(text: str) -> Any:
    """A command-line value as the solvers expect it: true/false, an integer, a float, else the string
    (quantities such as '80 GB' stay strings; 'nan' becomes a float the solver refuses)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text.strip()


def _assignments(items: List[str], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            _fail(f"{option} takes NAME=VALUE, got {item!r}")
        out[name.strip()] = value
    return out


def _load(scenario: str, entry: Optional[str] = None) -> list:
    """The scenarios an argument names: every entry of a file (or the one called ``entry``), or one
    catalog scenario."""
    path = Path(scenario)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        found = scenarios.read(path)
        if entry is not None:
            found = [s for s in found if _fold(entry) in {_fold(n) for n in (s.name, *s.aliases)}]
            if not found:
                _fail(f"{path}: no scenario named {entry!r}")
        return found
    return [catalog.scenario(scenario)]


# -------------------------------------------------------------------------------------------- catalog
@catalog_app.command("list")
def catalog_list(kind: Optional[str] = typer.Argument(None, help=f"one of: {', '.join(catalog.KINDS)}"),
                 as_json: bool = typer.Option(False, "--json", help="print JSON rows")) -> None:
    """List catalog entries of one kind, or count every kind."""
    try:
        if kind is None:
            cat = catalog.default_catalog()
            counts = {k: len(cat.names(k)) for k in catalog.KINDS}
            if as_json:
                print(json.dumps(counts, indent=1))
                return
            table = Table("kind", "entries", title="catalog")
            for k, n in counts.items():
                table.add_row(k, str(n))
            _out().print(table)
            return
        rows = scenarios.entries(kind)
    except MlsysimError as err:
        _fail(str(err))
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(*rows[0].keys() if rows else ["name"], title=f"{kind} ({len(rows)})")
    for row in rows:
        table.add_row(*(Text(", ".join(v) if isinstance(v, list) else "" if v is None else str(v))
                        for v in row.values()))
    _out().print(table)


@catalog_app.command("show")
def catalog_show(name: str = typer.Argument(..., help="an entry's name or alias (any kind)"),
                 kind: Optional[str] = typer.Option(None, "--kind", help="look only in this kind"),
                 as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Every field of a catalog entry, with units and sources (did-you-mean on a typo)."""
    try:
        found = scenarios.describe(name, kind)
    except MlsysimError as err:
        _fail(str(err))
    if as_json:
        print(json.dumps(found, indent=1))
        return
    out = _out()
    for entry in found:
        table = Table("field", "value", title=f"{entry['kind']}: {entry['name']}", show_lines=False)
        table.add_row(Text("origin"), Text(entry["origin"]))
        for key, value in _flatten(entry["fields"]):
            table.add_row(Text(key), Text(value))
        out.print(table)


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        return [row for k, v in data.items() for row in _flatten(v, f"{prefix}{k}.")]
    text = ", ".join(map(str, data)) if isinstance(data, list) else ("" if data is None else str(data))
    return [(prefix.rstrip("."), text)] if text else []


# ---------------------------------------------------------------------------------------- scenarios
@app.command("eval")
def eval_(scenario: str = typer.Argument(..., help=SCENARIO_HELP),
          set_: List[str] = typer.Option([], "--set", help=SET_HELP),
          entry: Optional[str] = typer.Option(None, "--entry", help="in a file of several, evaluate this one"),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Evaluate a scenario: a table of the answer, the binding wall and the verdict."""
    overrides = {k: parse_value(v) for k, v in _assignments(set_, "--set").items()}
    try:
        found = _load(scenario, entry)
        results = [(sc, scenarios.evaluate(sc, **overrides)) for sc in found]
    except MlsysimError as err:
        _fail(str(err))
    if as_json:
        dicts = [r.to_dict() for _, r in results]
        print(json.dumps(dicts[0] if len(dicts) == 1 else dicts, indent=1))
        return
    for sc, result in results:
        _print_result(sc.name, result)


def _print_result(name: str, result: Result) -> None:
    out = _out()
    table = Table("quantity", "value", title=f"{name}: {result._title}")
    units = type(result)._units
    for field, unit in units.items():
        table.add_row(Text(field), Text(_show(result._v[field], unit)))
    for term, value in result._terms.items():
        table.add_row(Text(f"term: {term}", style="dim"), Text(_show(value, result._term_unit)))
    out.print(table)
    margin = f" (x{_num(result.margin)} ahead of the next)" if isinstance(result.margin, float) else ""
    out.print(Text.assemble(("binding wall: ", "bold"), (_plain(result.bottleneck), "bold cyan"), margin))
    if result.verdict:
        out.print(Text(result.verdict, style="green" if bool(result.fits) else "red"))


@app.command()
def sweep(scenario: str = typer.Argument(..., help=SCENARIO_HELP),
          param: List[str] = typer.Option(..., "--param", "-p",
                                          help="NAME=V1,V2,... to vary; repeat for a grid, e.g. -p batch=1,8,64"),
          set_: List[str] = typer.Option([], "--set", help=SET_HELP),
          entry: Optional[str] = typer.Option(None, "--entry", help="in a file of several, sweep this one"),
          output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the CSV here (default stdout)"),
          ) -> None:
    """Evaluate a scenario over one or two parameters, as CSV.

    One row per point: each parameter, the result's scalar fields (SI units in the header), fits, the
    binding wall, its margin and the verdict (or the reason a point is invalid).
    """
    grid = {k: [parse_value(v) for v in values.split(",")] for k, values in _assignments(param, "--param").items()}
    overrides = {k: parse_value(v) for k, v in _assignments(set_, "--set").items()}
    try:
        found = _load(scenario, entry)
        if len(found) != 1:
            _fail(f"{scenario} holds {len(found)} scenarios; pick one with --entry")
        rows = scenarios.sweep(found[0], grid, **overrides)
    except MlsysimError as err:
        _fail(str(err))
    text = scenarios.to_csv(rows)
    if output is None:
        print(text, end="")
    else:
        output.write_text(text, encoding="utf-8")
        _err().print(Text(f"wrote {len(rows)} rows to {output}"))


@app.command()
def suggest(scenario: str = typer.Argument(..., help=SCENARIO_HELP),
            set_: List[str] = typer.Option([], "--set", help=SET_HELP),
            entry: Optional[str] = typer.Option(None, "--entry", help="in a file of several, this one"),
            as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The smallest change that makes an infeasible scenario fit.

    Candidates: tp, pp, nodes or gpus, ZeRO stage, recomputation, precision, batch; one knob, then two.
    """
    overrides = {k: parse_value(v) for k, v in _assignments(set_, "--set").items()}
    try:
        found = [scenarios.suggest(sc, **overrides) for sc in _load(scenario, entry)]
    except MlsysimError as err:
        _fail(str(err))
    if as_json:
        dicts = [s.to_dict() for s in found]
        print(json.dumps(dicts[0] if len(dicts) == 1 else dicts, indent=1))
        return
    for s in found:
        _out().print(Text(s.explain()))


# ------------------------------------------------------------------------------------------- files
@app.command()
def schema(kind: str = typer.Argument(..., help=f"one of: {', '.join(catalog.KINDS)}")) -> None:
    """The JSON Schema of a catalog file of KIND (for editors and agents)."""
    try:
        print(json.dumps(catalog.schema(kind), indent=1))
    except MlsysimError as err:
        _fail(str(err))


@app.command()
def validate(files: List[Path] = typer.Argument(..., help="catalog or scenario YAML files")) -> None:
    """Lint bring-your-own YAML: every problem with its file:line, entry and field."""
    failed = False
    for file in files:
        try:
            specs = scenarios.validate_file(file)
        except MlsysimError as err:
            _err().print(Text(str(err), style="red"))
            failed = True
            continue
        kinds = sorted({kind for kind, _ in specs})
        _out().print(Text(f"ok: {file}: {len(specs)} {'/'.join(kinds) or 'no'} entries"))
    if failed:
        raise typer.Exit(1)


@app.command()
def mcp() -> None:
    """Serve the catalog and the solvers to agents over MCP (stdio)."""
    from .mcp_server import main

    main()


# ---------------------------------------------------------------------------------------- instructors
def _grading(module: str):
    """author or grade from mlsysim_lab.exercises; without the grade extra, the pip line to get it."""
    try:
        from importlib import import_module

        return import_module(f"mlsysim_lab.exercises.{module}")
    except ImportError as err:
        _fail(str(err))


@app.command()
def assign(instructor: Path = typer.Argument(..., help="the instructor notebook, with solutions"),
           output: Path = typer.Option(Path("student"), "--output", "-o",
                                       help="a folder for the student notebook, or its .ipynb path"),
           timeout: float = typer.Option(600, help="seconds the instructor notebook may run (all cells)")) -> None:
    """Make the student notebook: solutions stripped, answers sealed, outputs cleared.

    Runs the instructor notebook once (it must run clean and its own solutions must pass), then writes the
    student version: cells tagged instructor/solution/assert dropped, nbgrader or otter solution markers
    stripped, every exercise's answer replaced by a sealed key.
    """
    author = _grading("author")
    try:
        made = author.assign(instructor, output, timeout=timeout)
    except MlsysimError as err:
        _fail(str(err))
    for warning in made.warnings:
        _err().print(Text(f"warning: {warning}", style="yellow"))
    _out().print(Text(f"wrote {made.path}: {len(made.exercises)} exercises, {made.points:g} points"))


@app.command()
def grade(instructor: Path = typer.Argument(..., help="the instructor notebook the assignment was made from"),
          submissions: Path = typer.Argument(..., help="a folder of <student>.ipynb or <student>/*.ipynb"),
          output: Path = typer.Option(Path("grades"), "--output", "-o", help="folder for grades.csv and summary.md"),
          timeout: float = typer.Option(300, help="seconds each submission may run (all cells together)"),
          jobs: int = typer.Option(1, help="submissions run at once"),
          student: Optional[str] = typer.Option(None, help="the ID of a single submission (else its file name)"),
          gradescope: Optional[Path] = typer.Option(None, help="also write Gradescope's results.json here "
                                                               "(a batch of one)")) -> None:
    """Grade a folder of submitted notebooks: grades.csv (student, exercise, points, feedback), summary.md.

    Each notebook runs on a fresh kernel with its student's ID (variants drawn for them) and a time budget;
    the answers its checks logged are scored here against answers recomputed from the core.
    """
    grading = _grading("grade")
    try:
        grades = grading.grade(instructor, submissions, output, timeout=timeout, jobs=jobs, student=student,
                               gradescope=gradescope)
    except MlsysimError as err:
        _fail(str(err))
    total = sum(e["points"] for e in grades.exercises)
    table = Table("student", "points", "notes", title=f"{len(grades.submissions)} submissions, {total:g} points")
    for s in grades.submissions:
        table.add_row(Text(s.student), Text(f"{s.points:g} / {s.max_points:g}"), Text("; ".join(s.notes)))
    _out().print(table)
    for warning in grades.warnings:
        _err().print(Text(f"warning: {warning}", style="yellow"))
    _out().print(Text(f"wrote {', '.join(str(p) for p in grades.files.values())}"))


@app.command()
def answers(instructor: Path = typer.Argument(..., help="the instructor notebook"),
            student: List[str] = typer.Option(..., "--student", "-s", help="a student ID; repeatable"),
            timeout: float = typer.Option(600, help="seconds the instructor notebook may run")) -> None:
    """Each student's inputs and expected answers, recomputed by the core (for regrades and office hours)."""
    author = _grading("author")
    from .exercises.check import Exercise
    from .units import fmt

    try:
        entries, _, _ = author.answer_key(instructor, timeout=timeout)
    except MlsysimError as err:
        _fail(str(err))
    table = Table("student", "exercise", "inputs", "expected", title=str(instructor))
    for who in student:
        for entry in entries:
            ex = Exercise.from_key(entry)
            expected = ex._expected_for(who)
            if ex.kind == "choice":
                shown = f"{expected} ({ex.choices[expected]})" if ex.choices else expected
            elif ex.kind == "function":
                shown = ", ".join(fmt(q.to_base_units(), digits=4) for q in expected)
            else:
                shown = fmt(expected.to_base_units(), digits=4)
            inputs = ex.variant.draw(who) if ex.variant is not None else {}
            table.add_row(Text(who), Text(ex.id), Text(", ".join(f"{k}={v}" for k, v in inputs.items())),
                          Text(shown))
    _out().print(table)


def _version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """mlsysim-lab: the Iron Law of ML systems, from the command line."""


if __name__ == "__main__":
    app()
