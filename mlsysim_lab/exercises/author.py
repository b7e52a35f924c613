"""The instructor's side: an instructor notebook (with solutions) becomes a student notebook.

``assign(instructor, output)`` (``mlsysim-lab assign``):

1. runs the instructor notebook on a fresh kernel, which must run clean, then asks it for the answer key
   of every exercise it built (every variant's expected answer, computed by the core) and checks that the
   notebook's own solutions pass;
2. writes the student notebook from the *source* (never from the executed copy): outputs cleared; cells
   tagged ``instructor``, ``solution``, ``remove-cell`` or ``assert`` dropped; solution markers stripped
   (nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` and otter-grader's ``# BEGIN SOLUTION`` blocks
   become ``...``; otter's ``x = value  # SOLUTION`` line becomes ``x = ...``; markdown between
   ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` goes); every ``exercise("id", <answer>, ...)``
   call replaced by ``exercise("id", key="mlsl1:...")``, its sealed key;
3. searches the student notebook for the answers it must not contain and reports any it finds.
"""
from __future__ import annotations

import ast
import hashlib
import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import InputError, MlsysimError
from . import key as keys
from .check import Exercise, sealed_key
from .kernel import nbformat, run

#: Cells with any of these tags are instructor-only: dropped from the student notebook.
DROP_TAGS = {"instructor", "solution", "remove-cell", "remove_cell", "assert"}
#: Seconds the instructor notebook may run (all cells together) by default.
DEFAULT_TIMEOUT = 600

_BEGIN = re.compile(r"^(?P<indent>\s*)#+\s*BEGIN\s+SOLUTION(?P<noprompt>\s+NO\s+PROMPT)?\s*$", re.I)
_END = re.compile(r"^\s*#+\s*END\s+SOLUTION\s*$", re.I)
_LINE = re.compile(r"^(?P<indent>\s*)(?P<body>\S.*?)\s*#\s*SOLUTION\s*$", re.I)
_ASSIGNMENT = re.compile(r"^(?P<target>[A-Za-z_][\w.\[\]'\", ]*?\s*(?:[-+*/%@&|^]|//|\*\*)?=)(?!=)")
_MD_BEGIN = re.compile(r"^\s*(<!--\s*BEGIN\s+SOLUTION\s*-->|#+\s*BEGIN\s+SOLUTION)\s*$", re.I)
_MD_END = re.compile(r"^\s*(<!--\s*END\s+SOLUTION\s*-->|#+\s*END\s+SOLUTION)\s*$", re.I)


class AssignError(MlsysimError):
    """An instructor notebook that cannot become a student notebook (the message says which cell and why)."""


@dataclass
class Assignment:
    """What ``assign`` made: the student notebook's path, the exercises in it, and warnings (solutions
    never checked, values that look like answers left in the text)."""

    path: Path
    exercises: list[dict]
    warnings: list[str] = field(default_factory=list)
    key: list[dict] = field(default_factory=list, repr=False)  # plaintext: the instructor's process only

    @property
    def points(self) -> float:
        return sum(e["points"] for e in self.exercises)


# ------------------------------------------------------------------------------------------ the key
def answer_key(instructor: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[list[dict], dict, list[str]]:
    """Run the instructor notebook on a fresh kernel; return its answer key (one entry per exercise, every
    variant's expected answer computed by the core), the answers its own cells checked, and the IDs it
    declared. The key never touches the disk for longer than it takes to read it back."""
    path = Path(instructor)
    nb = _read(path)
    with tempfile.TemporaryDirectory(prefix="mlsysim-key-") as tmp:
        key_path, log_path = Path(tmp) / "key.json", Path(tmp) / "answers.jsonl"
        nb.cells.append(nbformat.v4.new_code_cell(
            "import mlsysim_lab.exercises.check as _mlsysim_check\n"
            f"_mlsysim_check.write_answer_keys({str(key_path)!r})"))
        outcome = run(nb, budget=timeout, cwd=str(path.parent.resolve()), allow_errors=False,
                      env={keys.ANSWERS_ENV: str(log_path)})
        if outcome.stopped:
            raise AssignError(f"{path}: the instructor notebook must run clean: {outcome.stopped}")
        try:
            entries = json.loads(key_path.read_text(encoding="utf-8"))["exercises"]
        except (OSError, ValueError, KeyError) as err:
            raise AssignError(f"{path}: the notebook ran but wrote no answer key ({err})") from err
        answers, declared = keys.read_log(log_path)
    broken = [f"{e['id']} with inputs {_inputs(e, k)}: {v['error']}" for e in entries
              for k, v in e["expected"].items() if "error" in v]
    if broken:
        raise AssignError(f"{path}: the core could not compute these answers: " + "; ".join(broken[:10]))
    return entries, answers, declared


def _inputs(entry: dict, variant_key: str) -> str:
    if not entry.get("variant"):
        return "(none)"
    indices = [int(i) for i in variant_key.split(",")]
    return ", ".join(f"{f}={opts[i]!r}" for (f, opts), i in zip(entry["variant"]["fields"], indices))


def verify_solutions(entries: list[dict], answers: dict, declared: list[str]) -> tuple[list[str], list[str]]:
    """(failures, warnings): the answers the instructor notebook checked, judged by the key as the grader
    would. An exercise none of whose checked answers passes is a failure (the key and the solution
    disagree); one the notebook never checks is a warning. (Instructor notebooks may also check a wrong
    answer on purpose, to show it fails, so one passing answer is enough.)"""
    student = declared[-1] if declared else ""
    failures, warnings = [], []
    for entry in entries:
        given = answers.get(entry["id"], [])
        if not given:
            warnings.append(f"{entry['id']}: the instructor notebook never checks a solution")
            continue
        ex = Exercise.from_key(entry)
        expected = ex._expected_for(student)
        results = [ex.judge(answer, expected) for answer in given]
        if not any(r.correct for r in results):
            failures.append(f"{entry['id']}: the notebook's own solution does not pass: {results[-1].message}")
    return failures, warnings


# ------------------------------------------------------------------------------------------ stripping
def strip_code(source: str, where: str) -> str:
    """A code cell without its solutions (nbgrader/otter markers); AssignError on an unclosed block."""
    out, inside = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        begin = _BEGIN.match(line)
        if inside is not None:
            if _END.match(line):
                if not inside.group("noprompt"):
                    out.append(f"{inside.group('indent')}...  # your answer here")
                inside = None
            elif begin:
                raise AssignError(f"{where}, line {number}: BEGIN SOLUTION inside another solution block")
            continue
        if begin:
            inside = begin
            continue
        if _END.match(line):
            raise AssignError(f"{where}, line {number}: END SOLUTION without BEGIN SOLUTION")
        solution = _LINE.match(line)
        if solution:
            target = _ASSIGNMENT.match(solution.group("body"))
            out.append(f"{solution.group('indent')}{target.group('target').rstrip()} ..." if target
                       else f"{solution.group('indent')}...")
            continue
        out.append(line)
    if inside is not None:
        raise AssignError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return "\n".join(out)


def strip_markdown(source: str, where: str) -> str:
    """A markdown cell without its solution blocks (replaced by a prompt)."""
    out, inside = [], False
    for line in source.splitlines():
        if _MD_BEGIN.match(line):
            if inside:
                raise AssignError(f"{where}: BEGIN SOLUTION inside another solution block")
            inside = True
            continue
        if _MD_END.match(line):
            if not inside:
                raise AssignError(f"{where}: END SOLUTION without BEGIN SOLUTION")
            inside = False
            out.append("_Type your answer here._")
            continue
        if not inside:
            out.append(line)
    if inside:
        raise AssignError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return "\n".join(out)


def exercise_calls(source: str, where: str) -> list[tuple[str, int, int, str]]:
    """Every ``exercise("id", ...)`` / ``ml.exercise(...)`` call in a code cell: (id, start, end, callee),
    start and end as character offsets. AssignError for an id that is not a string literal."""
    if "exercise(" not in source:
        return []
    masked = "\n".join(_mask_magic(line) for line in source.split("\n"))
    try:
        tree = ast.parse(masked)
    except SyntaxError as err:
        raise AssignError(f"{where}: cannot parse the cell to find its exercise() calls: {err.msg} "
                          f"(line {err.lineno})") from err
    starts = [0]
    for line in masked.split("\n"):
        starts.append(starts[-1] + len(line) + 1)

    def offset(lineno: int, col: int) -> int:  # ast columns count UTF-8 bytes
        line = masked.split("\n")[lineno - 1]
        return starts[lineno - 1] + len(line.encode()[:col].decode(errors="ignore"))

    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name != "exercise":
            continue
        ident = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "id"), None)
        if not (isinstance(ident, ast.Constant) and isinstance(ident.value, str)):
            raise AssignError(f"{where}, line {node.lineno}: an exercise's id must be a string literal, "
                              "so that assign can find it")
        callee = ast.get_source_segment(masked, func)
        calls.append((ident.value, offset(node.lineno, node.col_offset), offset(node.end_lineno, node.end_col_offset),
                      callee))
    return sorted(calls, key=lambda c: c[1])


def _mask_magic(line: str) -> str:
    """IPython magics and shell escapes become comments of the same length, so ast offsets still fit."""
    stripped = line.lstrip()
    if stripped[:1] in ("%", "!"):
        i = len(line) - len(stripped)
        return line[:i] + "#" + line[i + 1:]
    return line


def student_notebook(nb: "nbformat.NotebookNode", entries: list[dict], *, salt: str,
                     source_name: str = "") -> "nbformat.NotebookNode":
    """The student version of an instructor notebook (see the module docstring), given its answer key."""
    by_id = {e["id"]: e for e in entries}
    sealed = {e["id"]: sealed_key(e, salt) for e in entries}
    found: list[str] = []
    cells = []
    for number, cell in enumerate(nb.cells, start=1):
        where = f"cell {number}"
        if DROP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        cell = nbformat.from_dict(json.loads(json.dumps(cell)))
        if cell.cell_type == "code":
            source = strip_code(cell.source, where)
            for ident, start, end, callee in reversed(exercise_calls(source, where)):
                if ident not in by_id:
                    raise AssignError(f"{where}: exercise {ident!r} was not built when the notebook ran "
                                      "(is it inside a function or a branch that never runs?)")
                source = f"{source[:start]}{callee}({ident!r}, key={sealed[ident]!r}){source[end:]}"
                found.append(ident)
            cell.source = source
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown":
            cell.source = strip_markdown(cell.source, where)
        cell.get("metadata", {}).pop("nbgrader", None)
        cells.append(cell)
    duplicates = sorted({i for i in found if found.count(i) > 1})
    if duplicates:
        raise AssignError(f"exercise ids defined twice: {', '.join(duplicates)}; each exercise needs its own id")
    missing = [i for i in by_id if i not in found]
    if missing:
        raise AssignError(f"exercises built while the notebook ran but not found as exercise('id', ...) calls in "
                          f"its cells: {', '.join(missing)}")
    header = nbformat.v4.new_markdown_cell(
        "*Student version.* Answer each exercise with its `.check(...)` cell: the last answer you check for "
        "each exercise is the one graded. Feedback is immediate; tolerances are stated with it."
        + (" Your numbers depend on your ID: run `student(\"your ID\")` where the notebook asks."
           if any(e.get("variant") for e in entries) else ""))
    out = nbformat.v4.new_notebook(cells=[header, *cells], metadata=json.loads(json.dumps(nb.metadata)))
    out.metadata["mlsysim_lab"] = {"student_version": True, "source": source_name,
                                   "exercises": [e["id"] for e in entries]}
    return out


# ------------------------------------------------------------------------------------------ leak scan
def _significant(text: str) -> int:
    mantissa = re.split(r"[eE]", text.lstrip("-+"))[0].replace(".", "").replace(",", "").lstrip("0").rstrip("0")
    return len(mantissa)


def renderings(entry: dict) -> set[str]:
    """How an exercise's expected numbers could be written (3, 4 and 6 significant figures, in the unit
    of the answer, in SI and with a compact prefix): what must not appear in a student notebook."""
    values = []
    for data in entry["expected"].values():
        items = data.get("cases", []) if entry["kind"] == "function" else [] if entry["kind"] == "choice" else [data]
        for item in items:
            value = keys.load_value(item)
            if not isinstance(value, keys.Unreadable):
                values.append(value)
    out = set()
    for q in values:
        magnitudes = {float(q.magnitude)}
        for convert in (lambda x: x.to_base_units(), lambda x: x.to_compact(),
                        lambda x: x.to_base_units().to_compact()):
            try:
                magnitudes.add(float(convert(q).magnitude))
            except Exception:  # a unit pint cannot convert to base units: the magnitude as given is enough
                pass
        for m in magnitudes:
            if not math.isfinite(m) or m == 0:
                continue
            for digits in (3, 4, 6):
                for text in (f"{m:.{digits}g}", f"{m:,.{digits}g}"):
                    if _significant(text) >= 3:
                        out.add(text)
            if _significant(repr(m)) >= 3:
                out.add(repr(m))
    return out


def leaks(nb: "nbformat.NotebookNode", entries: Iterable[dict]) -> list[str]:
    """Where a student notebook's cells contain an expected answer written out (see ``renderings``)."""
    found = []
    for entry in entries:
        for text in sorted(renderings(entry)):
            pattern = re.compile(rf"(?<![\d.]){re.escape(text)}(?![\d])")
            for number, cell in enumerate(nb.cells, start=1):
                visible = re.sub(r"key='mlsl1:[^']*'", "", cell.source)
                if pattern.search(visible):
                    found.append(f"{entry['id']}: {text!r} appears in cell {number}")
    return found


# ------------------------------------------------------------------------------------------ assign
def _read(path: Path) -> "nbformat.NotebookNode":
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError as err:
        raise InputError(f"no notebook at {path}") from err
    except Exception as err:  # nbformat raises json, validation and version errors
        raise InputError(f"{path} is not a readable notebook: {type(err).__name__}: {err}") from err


def assign(instructor: Path | str, output: Path | str, *, timeout: float = DEFAULT_TIMEOUT,
           salt: str | None = None) -> Assignment:
    """Make the student notebook of ``instructor`` at ``output`` (a file, or a folder to put it in).

    Raises ``AssignError`` if the instructor notebook fails, an answer cannot be computed, a solution does
    not pass its own key, or solution markers are unbalanced. The salt of the choice hashes defaults to a
    hash of the instructor notebook, so assigning twice gives the same student notebook.
    """
    source = Path(instructor)
    target = Path(output)
    if target.suffix != ".ipynb":
        target = target / source.name
    if target.resolve() == source.resolve():
        raise InputError(f"assign would overwrite the instructor notebook {source}; give another output")
    entries, answers, declared = answer_key(source, timeout=timeout)
    failures, warnings = verify_solutions(entries, answers, declared)
    if failures:
        raise AssignError(f"{source}: " + "; ".join(failures))
    nb = _read(source)
    salt = salt or hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    student = student_notebook(nb, entries, salt=salt, source_name=source.name)
    warnings += [f"possible answer left in the student notebook: {w}" for w in leaks(student, entries)]
    nbformat.validate(student)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(student, target)
    return Assignment(target, [{k: e[k] for k in ("id", "kind", "points")} for e in entries], warnings, entries)

