"""The grader: a folder of submitted notebooks in, a CSV of (student, exercise, points, feedback) out.

``grade(instructor, submissions, out)`` (``mlsysim-lab grade``):

1. runs the instructor notebook once for the answer key: every exercise's spec and every variant's
   expected answer, recomputed by the core (kept in memory; never written next to the submissions);
2. runs each submission on a fresh kernel (nbclient) in an empty folder, with the student's ID (from the
   file name: ``<id>.ipynb``, or ``<id>/<anything>.ipynb``) forced into the kernel so variants are drawn
   for that student, and one time budget for the whole notebook;
3. reads the answers its ``check(...)`` calls logged (the last one of each exercise counts) and scores
   them here, in this process, against the key for that student's inputs.

Nothing the notebook computes, prints or claims is trusted: a monkeypatched ``check`` that always says
"correct" logs nothing (or the raw wrong answer), so it scores what the raw answers deserve. A cell that
raises, a loop that never ends, megabytes of output, a dead kernel or a file that is not a notebook gets
a score and a reason; the batch always finishes.
"""
from __future__ import annotations

import csv
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from . import key as keys
from .author import answer_key, verify_solutions
from .check import Exercise
from .kernel import nbformat, run
from .variants import STUDENT_ENV, normalize

#: Seconds a submission may run, all cells together, by default.
DEFAULT_TIMEOUT = 300
#: A submission file larger than this is not executed (a notebook saved with megabytes of output is
#: still read: outputs are dropped before it runs).
MAX_NOTEBOOK_BYTES = 100_000_000


@dataclass
class Row:
    """One exercise of one student: the points earned and why."""

    student: str
    exercise: str
    points: float
    max_points: float
    feedback: str
    attempts: int = 0


@dataclass
class Submission:
    """One student's grades: a row per exercise, and what went wrong with the notebook as a whole."""

    student: str
    path: Path
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self) -> float:
        return sum(r.points for r in self.rows)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.rows)


@dataclass
class Grades:
    """Every submission's grades, and the files they were written to."""

    submissions: list[Submission]
    exercises: list[dict]
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[Row]:
        return [r for s in self.submissions for r in s.rows]

    def by_student(self) -> dict[str, float]:
        return {s.student: s.points for s in self.submissions}

    def summary(self) -> str:
        """A Markdown summary: each student's total and notes, each exercise's mean and success rate."""
        total = sum(e["points"] for e in self.exercises)
        lines = [f"# Grades: {len(self.submissions)} submissions, {len(self.exercises)} exercises, "
                 f"{total:g} points", "", "| student | points | notes | seconds |", "|---|---|---|---|"]
        for s in self.submissions:
            notes = "; ".join(s.notes).replace("|", "\\|") or ""
            lines.append(f"| {s.student} | {s.points:g} / {s.max_points:g} | {notes} | {s.seconds:.1f} |")
        lines += ["", "| exercise | max | mean | full marks |", "|---|---|---|---|"]
        for e in self.exercises:
            rows = [r for r in self.rows if r.exercise == e["id"]]
            mean = sum(r.points for r in rows) / len(rows) if rows else 0.0
            full = sum(r.points >= r.max_points for r in rows)
            lines.append(f"| {e['id']} | {e['points']:g} | {mean:.3g} | {full} of {len(rows)} |")
        if self.warnings:
            lines += ["", "Warnings:", *(f"- {w}" for w in self.warnings)]
        return "\n".join(lines) + "\n"


def submissions(folder: Path | str) -> list[tuple[str, Path]]:
    """(student ID, notebook) for every ``.ipynb`` under ``folder``: ``<id>.ipynb`` at the top, or any
    notebook in ``<id>/``; checkpoints and hidden folders are skipped. An ID claimed twice is made unique
    by its path."""
    root = Path(folder)
    if root.is_file():
        return [(normalize(root.stem), root)]
    if not root.is_dir():
        raise InputError(f"no folder of submissions at {root}")
    found = []
    for path in sorted(root.rglob("*.ipynb")):
        parts = path.relative_to(root).parts
        if any(p.startswith(".") for p in parts):
            continue
        found.append((normalize(parts[0] if len(parts) > 1 else path.stem), path))
    ids = [i for i, _ in found]
    return [(i if ids.count(i) == 1 else normalize(p.relative_to(root).with_suffix("").as_posix()), p)
            for i, p in found]


def grade_submission(student: str, path: Path, entries: list[dict], *, timeout: float = DEFAULT_TIMEOUT) -> Submission:
    """Grade one notebook against an answer key (see the module docstring). Never raises."""
    result = Submission(student, path)
    try:
        _grade(result, entries, timeout)
    except Exception as err:  # the last line of defence: a hostile notebook must not stop the batch
        result.notes.append(f"grading failed: {type(err).__name__}: {err}")
        result.rows = [Row(student, e["id"], 0.0, float(e["points"]), f"not graded: {type(err).__name__}: {err}")
                       for e in entries]
    return result


def _grade(result: Submission, entries: list[dict], timeout: float) -> None:
    answers: dict = {}
    declared: list[str] = []
    problem = ""
    try:
        if result.path.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"the file is over {MAX_NOTEBOOK_BYTES / 1e6:g} MB")
        nb = nbformat.reads(result.path.read_text(encoding="utf-8", errors="replace"), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as err:  # json, nbformat, validation, encoding: a reason for the student, not a crash
        first = str(err).splitlines()[0][:200] if str(err) else ""
        problem = f"not a readable notebook ({type(err).__name__}: {first})"
        result.notes.append(problem)
    else:
        for cell in nb.cells:
            if cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
        with tempfile.TemporaryDirectory(prefix="mlsysim-grade-", ignore_cleanup_errors=True) as tmp:
            log = Path(tmp) / ".answers.jsonl"
            work = Path(tmp) / "work"
            work.mkdir()
            outcome = run(nb, budget=timeout, cwd=str(work),
                          env={STUDENT_ENV: result.student, keys.ANSWERS_ENV: str(log)})
            result.seconds = outcome.seconds
            answers, declared = keys.read_log(log)
        problem = outcome.problems()
        if problem:
            result.notes.append(problem)
    mismatched = sorted({d for d in declared if d and d != result.student})
    if mismatched:
        result.notes.append(f"the notebook declares student {', '.join(map(repr, mismatched))} but is graded as "
                            f"{result.student!r} (its file name): its variants are drawn for {result.student!r}")
    for entry in entries:
        result.rows.append(_score(result.student, entry, answers.get(entry["id"], []), problem))


def _score(student: str, entry: dict, given: list, problem: str) -> Row:
    max_points = float(entry["points"])
    if not given:
        why = f"not answered: {problem}" if problem else "not answered (no check(...) of this exercise ran " \
                                                         "with an answer)"
        return Row(student, entry["id"], 0.0, max_points, why)
    try:
        ex = Exercise.from_key(entry)
        result = ex.judge(given[-1], ex._expected_for(student))
    except Exception as err:  # a key without this student's inputs, or an answer the judge cannot handle
        return Row(student, entry["id"], 0.0, max_points, f"could not grade: {type(err).__name__}: {err}",
                   len(given))
    return Row(student, entry["id"], round(max_points * result.score, 6), max_points, result.message, len(given))


def write(grades: Grades, out: Path | str, *, gradescope: Path | str | None = None) -> dict[str, Path]:
    """Write ``grades.csv`` (student, exercise, points, max_points, attempts, feedback) and ``summary.md``
    into ``out``; with ``gradescope``, also Gradescope's ``results.json`` for a batch of one."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"csv": folder / "grades.csv", "summary": folder / "summary.md"}
    with open(files["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "exercise", "points", "max_points", "attempts", "feedback"])
        for r in grades.rows:
            writer.writerow([r.student, r.exercise, f"{r.points:g}", f"{r.max_points:g}", r.attempts, r.feedback])
    files["summary"].write_text(grades.summary(), encoding="utf-8")
    if gradescope is not None:
        if len(grades.submissions) != 1:
            raise InputError(f"Gradescope grades one submission at a time; this batch has {len(grades.submissions)}")
        s = grades.submissions[0]
        files["gradescope"] = Path(gradescope)
        files["gradescope"].parent.mkdir(parents=True, exist_ok=True)
        files["gradescope"].write_text(json.dumps({
            "score": s.points, "output": "; ".join(s.notes),
            "tests": [{"name": r.exercise, "score": r.points, "max_score": r.max_points, "output": r.feedback,
                       "visibility": "visible"} for r in s.rows]}, indent=1), encoding="utf-8")
    grades.files = files
    return files


def grade(instructor: Path | str, folder: Path | str, out: Path | str | None = None, *,
          timeout: float = DEFAULT_TIMEOUT, jobs: int = 1, student: str | None = None,
          gradescope: Path | str | None = None, key_timeout: float = 600) -> Grades:
    """Grade every notebook under ``folder`` against the exercises of ``instructor`` (see the module
    docstring); write the files into ``out`` if given. ``jobs`` notebooks run at once; ``student`` forces
    the ID of a single submission (Gradescope, where the file name is not the student's)."""
    found = submissions(folder)
    if student is not None:
        if len(found) != 1:
            raise InputError(f"--student names one student, but {folder} holds {len(found)} notebooks")
        found = [(normalize(student), found[0][1])]
    entries, answers, declared = answer_key(instructor, timeout=key_timeout)
    failures, _ = verify_solutions(entries, answers, declared)
    with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        graded = list(pool.map(lambda sp: grade_submission(*sp, entries, timeout=timeout), found))
    grades = Grades(graded, [{k: e[k] for k in ("id", "kind", "points")} for e in entries], warnings=failures)
    if out is not None:
        write(grades, out, gradescope=gradescope)
    return grades
