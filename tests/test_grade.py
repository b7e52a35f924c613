"""The grader: a folder of submissions, one kernel each, a CSV; hostile notebooks score what they deserve.

One batch (the instructor's key, then five kernels three at a time, a 20 s budget each) grades six
submissions of the fixture lab (6 points: q1 2, q2 1, q3 1, q4 2):

- aaron (2): answers q1, then loops forever (a sleeping loop: it holds its kernel for the whole budget
  without starving the others of CPU; named to start first);
- alice (6): solved, with unit-equivalent answers (µs where ms is natural, an option's text, an order of
  magnitude);
- bob (0): blank, the student notebook as assigned;
- carol (5): prints megabytes; the q2 answer cell raises;
- dave (2): answers q1, then monkeypatches check (always "correct"), forges the answers log, makes the
  comparison lie, claims another student's ID, deletes the check function, kills its kernel;
- frank (0): not JSON.
"""
import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mlsysim_lab as ml
from mlsysim_lab.cli import app
from mlsysim_lab.exercises import Exercise, variant

grade = pytest.importorskip("mlsysim_lab.exercises.grade")
nbformat = pytest.importorskip("nbformat")

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"

SOLVED = {"itl = ...": 'itl = ml.serve("Llama-2-7B", v.hardware, batch=v.batch).itl.to("us")',
          "wall = ...": 'wall = "memory bandwidth"', "weights = ...": 'weights = "100 GB"',
          "...  # your answer here": "return (peak / bandwidth).to('FLOP/B')"}
FLOOD = 'print("x" * 1_000_000)\nfor i in range(1000):\n    print(i, "y" * 1000)'
TAMPER = '''import json, os
import mlsysim_lab.exercises.check as C
real_check = C.Exercise.check
C.Exercise.check = lambda self, answer: C.CheckResult(self.id, True, "correct")  # always "correct"
with open(os.environ["MLSYSIM_LAB_ANSWERS"], "a") as log:                         # forge the log
    log.write(json.dumps({"id": "fx.q2", "answer": {"s": "A"}, "correct": True, "points": 99}) + "\\n")
    log.write("not json at all\\n")'''
LIE = '''C.Exercise.check = real_check
C.Exercise._judge_number = lambda self, given, expected: (True, "correct")        # the comparison lies
student("alice")                                                                  # claim another ID'''
DELETE = "del C.Exercise.check"
DIE = "import os\nos._exit(3)  # the kernel dies"


def _submission(student_nb, answers, before=()):
    """The student notebook with answers filled in and extra cells inserted before the cells naming a marker."""
    nb = nbformat.from_dict(json.loads(json.dumps(student_nb)))
    for cell in nb.cells:
        for placeholder, answer in answers.items():
            cell.source = cell.source.replace(placeholder, answer)
    for marker, source in before:
        at = next(i for i, c in enumerate(nb.cells) if marker in c.source)
        nb.cells.insert(at, nbformat.v4.new_code_cell(source))
    return nb


@pytest.fixture(scope="module")
def batch(assigned, tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    student_nb = nbformat.read(assigned.path, as_version=4)
    notebooks = {
        "alice": _submission(student_nb, SOLVED),
        "bob": student_nb,
        "carol": _submission(student_nb, {**SOLVED, "wall = ...": "wall = 1 / 0"}, [("**Q1.**", FLOOD)]),
        "dave": _submission(student_nb, {**SOLVED, "wall = ...": 'wall = "compute"',
                                         "weights = ...": 'weights = "1 kB"'},
                            [("**Q2.**", TAMPER), ("**Q3.**", LIE), ("**Q4.**", DELETE)]),
        "aaron": _submission(student_nb, {**SOLVED, "wall = ...": "while True:\n    __import__('time').sleep(0.01)"}),
    }
    notebooks["dave"].cells.append(nbformat.v4.new_code_cell(DIE))
    for name, nb in notebooks.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    shutil.copy(FIXTURES / "malformed.ipynb", folder / "frank.ipynb")
    out = tmp_path_factory.mktemp("grades")
    result = CliRunner().invoke(app, ["grade", str(FIXTURES / "lab_instructor.ipynb"), str(folder), "-o", str(out),
                                      "--timeout", "20", "--jobs", "3"])
    assert result.exit_code == 0, result.output
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {"rows": rows, "out": out, "stdout": result.stdout,
            "points": {s: sum(float(r["points"]) for r in rows if r["student"] == s)
                       for s in {r["student"] for r in rows}},
            "feedback": {(r["student"], r["exercise"]): r["feedback"] for r in rows}}


def test_the_batch_finishes_and_every_submission_gets_what_it_deserves(batch):
    assert batch["points"] == {"alice": 6, "bob": 0, "carol": 5, "dave": 2, "aaron": 2, "frank": 0}
    assert len(batch["rows"]) == 6 * 4 and list(batch["rows"][0]) == ["student", "exercise", "points", "max_points",
                                                                      "attempts", "feedback"]
    assert "6 / 6" in batch["stdout"] and "grades.csv" in batch["stdout"]


def test_a_solved_notebook_scores_full_marks_with_unit_equivalent_answers(batch):
    fb = batch["feedback"]
    assert fb["alice", "fx.q1"].startswith("correct: ") and "µs" in fb["alice", "fx.q1"]  # asked in ms or s
    assert fb["alice", "fx.q2"] == "correct: B (memory bandwidth)"
    assert fb["alice", "fx.q3"] == "correct: 100 GB" and fb["alice", "fx.q4"] == "correct on all 2 cases"


def test_a_blank_notebook_scores_zero_and_runs_clean(batch):
    assert all(batch["feedback"]["bob", q].startswith("not answered (no check(...)") for q in
               ("fx.q1", "fx.q2", "fx.q3", "fx.q4"))
    assert "| bob | 0 / 6 |  | " in (batch["out"] / "summary.md").read_text()  # no notes: no cell raised


def test_a_cell_that_raises_costs_its_exercise_and_printed_megabytes_cost_nothing(batch):
    fb = batch["feedback"]
    assert fb["carol", "fx.q2"] == "not answered: cell 9 raised ZeroDivisionError: division by zero"
    assert fb["carol", "fx.q1"].startswith("correct") and fb["carol", "fx.q4"].startswith("correct")


def test_tampering_earns_nothing_beyond_the_honest_answers(batch):
    fb = batch["feedback"]
    assert fb["dave", "fx.q1"].startswith("correct")                         # answered before tampering
    assert fb["dave", "fx.q2"] == "incorrect: you chose A (compute)"         # the forged line, claims ignored
    assert fb["dave", "fx.q3"].startswith("too low by x") and "you gave 1 kB" in fb["dave", "fx.q3"]  # raw answer
    assert fb["dave", "fx.q4"].startswith("not answered: the kernel died") and \
        "cell 16 raised AttributeError" in fb["dave", "fx.q4"]                # check was deleted
    summary = (batch["out"] / "summary.md").read_text()
    assert "declares student 'alice' but is graded as 'dave'" in summary
    assert "| dave | 2 / 6 | the kernel died in cell 17 (`import os`); cell 16 raised AttributeError" in summary


def test_a_notebook_that_never_ends_keeps_what_it_checked_before(batch):
    fb = batch["feedback"]
    assert fb["aaron", "fx.q1"].startswith("correct")
    assert fb["aaron", "fx.q2"].startswith("not answered: ran out of time (20 s for the whole notebook) in cell 8 "
                                          "(`while True:`)")


def test_a_file_that_is_not_a_notebook_gets_a_reason(batch):
    assert batch["feedback"]["frank", "fx.q1"].startswith("not answered: not a readable notebook (NotJSONError")


def test_the_summary_gives_totals_and_exercise_statistics(batch):
    summary = (batch["out"] / "summary.md").read_text()
    assert summary.startswith("# Grades: 6 submissions, 4 exercises, 6 points")
    assert "| alice | 6 / 6 |  | " in summary and "| fx.q1 | 2 | 1.33 | 4 of 6 |" in summary


# ------------------------------------------------------------------------------------------ without kernels
def test_submissions_are_named_by_file_or_folder(tmp_path):
    for path in ("s1.ipynb", "S2/lab02.ipynb", "s3/a/deep.ipynb", ".hidden/x.ipynb", "s4/.ipynb_checkpoints/x.ipynb",
                 "dup.ipynb", "dup/lab.ipynb", "notes.txt"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    found = {sid: p.relative_to(tmp_path).as_posix() for sid, p in grade.submissions(tmp_path)}
    assert found == {"s1": "s1.ipynb", "s2": "S2/lab02.ipynb", "s3": "s3/a/deep.ipynb", "dup": "dup.ipynb",
                     "dup/lab": "dup/lab.ipynb"}
    with pytest.raises(ml.InputError, match="no folder of submissions"):
        grade.submissions(tmp_path / "nowhere")


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n\x00\x00", b"[]", b'{"cells": 3}', b'{"nbformat": 4}'])
def test_files_that_are_not_notebooks_never_reach_a_kernel(tmp_path, assigned, content):
    path = tmp_path / "x.ipynb"
    path.write_bytes(content)
    graded = grade.grade_submission("x", path, assigned.key, timeout=1)
    assert graded.points == 0 and graded.notes[0].startswith("not a readable notebook")
    assert all(r.feedback.startswith("not answered: not a readable notebook") for r in graded.rows)


def test_copied_numbers_fail_for_a_neighbour_with_other_inputs(assigned):
    entry = next(e for e in assigned.key if e["id"] == "fx.q1")
    family = variant("fixture", hardware=["H100 SXM", "A100 SXM 80GB"], batch=[1, 8, 32])
    mine = "s0001"
    theirs = next(s for s in (f"s{i:04d}" for i in range(2, 99)) if family.draw(s) != family.draw(mine))
    draw = family.draw(mine)
    answer = f"{ml.serve('Llama-2-7B', draw.hardware, batch=draw.batch).itl.m_as('ms'):.4f} ms"
    assert grade._score(mine, entry, [answer], "").points == 2
    copied = grade._score(theirs, entry, [answer], "")
    assert copied.points == 0 and copied.feedback.startswith("too ")


def test_the_last_answer_counts_and_attempts_are_counted(assigned):
    entry = next(e for e in assigned.key if e["id"] == "fx.q2")
    assert grade._score("s1", entry, ["A", "B"], "").points == 1
    row = grade._score("s1", entry, ["B", "C"], "")
    assert row.points == 0 and row.attempts == 2 and row.feedback == "incorrect: you chose C (network)"


def test_gradescope_results_for_a_batch_of_one(tmp_path, assigned):
    rows = [grade.Row("s1", e["id"], e["points"] if e["id"] != "fx.q2" else 0, e["points"], "fb")
            for e in assigned.key]
    grades = grade.Grades([grade.Submission("s1", tmp_path / "s1.ipynb", rows, ["a note"])],
                          [{k: e[k] for k in ("id", "kind", "points")} for e in assigned.key])
    files = grade.write(grades, tmp_path / "out", gradescope=tmp_path / "results" / "results.json")
    results = json.loads(files["gradescope"].read_text())
    assert results["score"] == 5 and results["output"] == "a note"
    assert results["tests"][1] == {"name": "fx.q2", "score": 0, "max_score": 1.0, "output": "fb",
                                   "visibility": "visible"}
    grades.submissions.append(grades.submissions[0])
    with pytest.raises(ml.InputError, match="one submission at a time"):
        grade.write(grades, tmp_path / "out", gradescope=tmp_path / "r.json")


def test_a_key_without_the_students_inputs_is_a_reason_not_a_crash(assigned):
    entry = json.loads(json.dumps(next(e for e in assigned.key if e["id"] == "fx.q1")))
    entry["expected"] = {}
    row = grade._score("s1", entry, ["1 ms"], "")
    assert row.points == 0 and row.feedback.startswith("could not grade: InputError")
    assert Exercise.from_key(assigned.key[1]).judge("B", "B").correct
