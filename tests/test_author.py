"""The instructor's side: solutions stripped, exercise calls sealed, no answer left in the student notebook."""
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mlsysim_lab as ml
from mlsysim_lab.cli import app
from mlsysim_lab.exercises import Exercise, key as keys

author = pytest.importorskip("mlsysim_lab.exercises.author")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
GOLDEN = FIXTURES / "lab_student.golden.txt"
MASK = re.compile(r"key='mlsl1:[A-Za-z0-9_=-]+'")


# ------------------------------------------------------------------------------------------ stripping
@pytest.mark.parametrize("source, stripped", [
    ("x = 2  # SOLUTION", "x = ..."),
    ("    itl = ml.serve(m, h).itl  # solution", "    itl = ..."),
    ("total += step.time  # SOLUTION", "total += ..."),
    ("q1.check(ml.serve(m, h).itl)  # SOLUTION", "..."),
    ("if a == b:  # SOLUTION", "..."),
    ("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\nq.check(f)",
     "def f(x):\n    ...  # your answer here\nq.check(f)"),
    ("# BEGIN SOLUTION NO PROMPT\nsecret = 42\n# END SOLUTION\nprint(1)", "print(1)"),
    ("a = 1\n# not a SOLUTION marker here\nb = 2", "a = 1\n# not a SOLUTION marker here\nb = 2"),
])
def test_solution_markers_of_nbgrader_and_otter_are_stripped(source, stripped):
    assert author.strip_code(source, "cell 1") == stripped


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "cell 3: BEGIN SOLUTION without END SOLUTION"),
    ("x = 1\n### END SOLUTION", "cell 3, line 2: END SOLUTION without BEGIN SOLUTION"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "BEGIN SOLUTION inside another solution block"),
])
def test_unbalanced_markers_are_an_error_naming_the_cell(source, message):
    with pytest.raises(author.AssignError, match=message):
        author.strip_code(source, "cell 3")


def test_markdown_solutions_are_replaced_by_a_prompt():
    text = "Why?\n<!-- BEGIN SOLUTION -->\nBecause bandwidth.\n<!-- END SOLUTION -->\nNext."
    assert author.strip_markdown(text, "cell 1") == "Why?\n_Type your answer here._\nNext."
    with pytest.raises(author.AssignError, match="without END SOLUTION"):
        author.strip_markdown("### BEGIN SOLUTION\nsecret", "cell 1")


def test_exercise_calls_are_found_with_their_exact_span():
    source = ('%matplotlib inline\n!echo "µ"\nλ = 1  # non-ASCII before the call moves byte offsets\n'
              'q1 = ml.exercise("lab.q1", lambda: ml.serve(\n    "Llama-2-7B", "H100 SXM").itl, tolerance=0.05)\n'
              'q2 = exercise(id="lab.q2", answer="B", kind="choice")\nq1.check(None)')
    calls = author.exercise_calls(source, "cell 1")
    assert [(i, callee) for i, _, _, callee in calls] == [("lab.q1", "ml.exercise"), ("lab.q2", "exercise")]
    (_, start, end, _), (_, start2, end2, _) = calls
    assert source[start:end].startswith('ml.exercise("lab.q1"') and source[start:end].endswith("tolerance=0.05)")
    assert source[start2:end2] == 'exercise(id="lab.q2", answer="B", kind="choice")'
    assert author.exercise_calls("print('no calls here')", "cell 1") == []


def test_an_exercise_id_must_be_a_literal_for_assign_to_find_it():
    with pytest.raises(author.AssignError, match="cell 4, line 2: an exercise's id must be a string literal"):
        author.exercise_calls("for i in range(3):\n    exercise(f'q{i}', lambda: 1)", "cell 4")
    with pytest.raises(author.AssignError, match="cannot parse the cell"):
        author.exercise_calls("exercise('q1', lambda: )", "cell 4")


# ------------------------------------------------------------------------------------------ the student notebook
def _instructor(*cells):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells])


def _entries(*exercises):
    return [json.loads(json.dumps(e.answer_key())) for e in exercises]


def test_the_student_notebook_drops_instructor_cells_clears_outputs_and_seals_answers():
    entries = _entries(ml.exercise("t.q1", lambda: ml.Q_("7.4213 ms"), tolerance=0.05))
    done = nbformat.v4.new_code_cell("q1 = exercise('t.q1', lambda: ml.Q_('7.4213 ms'), tolerance=0.05)\n"
                                     "q1.check('7.4213 ms')  # SOLUTION", execution_count=3,
                                     outputs=[nbformat.v4.new_output("stream", text="7.4213 ms")])
    nb = _instructor("import mlsysim_lab as ml", done,
                     nbformat.v4.new_code_cell("q1.expected()", metadata={"tags": ["instructor"]}),
                     nbformat.v4.new_code_cell("assert q1.check('7.42 ms')", metadata={"tags": ["assert"]}))
    student = author.student_notebook(nb, entries, salt="s", source_name="t.ipynb")
    code = [c for c in student.cells if c.cell_type == "code"]
    assert len(code) == 2 and code[1].outputs == [] and code[1].execution_count is None
    assert MASK.sub("KEY", code[1].source) == "q1 = exercise('t.q1', KEY)\n..."
    assert student.metadata["mlsysim_lab"] == {"student_version": True, "source": "t.ipynb", "exercises": ["t.q1"]}
    assert "7.42" not in json.dumps(student) and author.leaks(student, entries) == []
    again = author.student_notebook(nb, entries, salt="s")
    assert [c.source for c in again.cells] == [c.source for c in student.cells]  # same salt, same notebook
    assert [c.source for c in author.student_notebook(nb, entries, salt="t").cells] != [c.source for c in again.cells]


def test_every_exercise_must_be_found_once_as_a_call():
    q = ml.exercise("t.q1", "1 ms")
    with pytest.raises(author.AssignError, match="not found as exercise"):
        author.student_notebook(_instructor("x = 1"), _entries(q), salt="s")
    with pytest.raises(author.AssignError, match="defined twice: t.q1"):
        author.student_notebook(_instructor("exercise('t.q1', '1 ms')", "exercise('t.q1', '1 ms')"), _entries(q),
                                salt="s")
    with pytest.raises(author.AssignError, match="exercise 't.q9' was not built when the notebook ran"):
        author.student_notebook(_instructor("exercise('t.q1', '1 ms')", "if False:\n    exercise('t.q9', 1)"),
                                _entries(q), salt="s")


def test_the_leak_scan_finds_answers_written_out():
    entries = _entries(ml.exercise("t.q1", lambda: ml.Q_("7.4213 ms")),
                       ml.exercise("t.q2", lambda: ml.Q_("138 GB"), tolerance="order"))
    nb = _instructor("print('the answer is 7.42 ms')", "x = 0.00742", "y = 1.38e+11", "z = 140", "w = 17.42")
    found = author.leaks(nb, entries)
    assert any("t.q1: '7.42' appears in cell 1" in f for f in found)
    assert any("'0.00742' appears in cell 2" in f for f in found) and any("'1.38e+11' appears in cell 3" in f
                                                                          for f in found)
    assert not any("cell 4" in f or "cell 5" in f for f in found)  # 140 is not 138; 17.42 is not 7.42


def test_an_instructor_solution_that_fails_its_own_key_is_reported():
    entries = _entries(ml.exercise("t.q1", "2.1 ms"), ml.exercise("t.q2", "B", kind="choice", choices=["a", "b"]))
    answers = {"t.q1": ["3 ms", "2.1 ms"], "t.q2": ["A"]}
    failures, warnings = author.verify_solutions(entries, answers, [])
    assert failures == ["t.q2: the notebook's own solution does not pass: incorrect: you chose A (a)"]
    assert author.verify_solutions(entries, {"t.q1": ["2.1 ms"]}, [])[1] == \
        ["t.q2: the instructor notebook never checks a solution"]


@pytest.mark.parametrize("lab", sorted((ROOT / "labs").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_lab_is_ready_to_assign(lab):
    """Each lab's exercises go through exercise("literal id", ...) once each, with balanced solution markers,
    so `mlsysim-lab assign` can seal them (the kernel part runs in the fixture test below)."""
    nb = nbformat.read(lab, as_version=4)
    ids = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type == "code" and not author.DROP_TAGS & set(cell.metadata.get("tags", [])):
            where = f"cell {number}"
            ids += [i for i, *_ in author.exercise_calls(author.strip_code(cell.source, where), where)]
        elif cell.cell_type == "markdown":
            author.strip_markdown(cell.source, f"cell {number}")
    assert len(ids) == len(set(ids)), f"{lab.name}: an exercise id is used twice"


# ------------------------------------------------------------------------------------------ assign, for real
def test_the_assigned_fixture_matches_its_golden_file(assigned):
    nb = nbformat.read(assigned.path, as_version=4)
    text = "\n".join(f"--- {c.cell_type}\n{MASK.sub('KEY', c.source)}" for c in nb.cells) + "\n"
    assert text == GOLDEN.read_text(encoding="utf-8")
    assert assigned.warnings == [] and assigned.points == 6
    assert [e["id"] for e in assigned.exercises] == ["fx.q1", "fx.q2", "fx.q3", "fx.q4"]
    nbformat.validate(nb)


def _spellings(q) -> set[str]:
    out = set()
    for value in (q, q.to_base_units(), q.to_compact(), q.to_base_units().to_compact()):
        m = float(value.magnitude)
        out |= {f"{m:.{d}g}" for d in (2, 3, 4, 5, 6)} | {repr(m), f"{m:.2f}", f"{m:,.0f}"}
    return {s for s in out if len(re.sub(r"\D", "", re.split("e", s)[0]).strip("0")) >= 3}  # 12, 0.5: too common


def test_the_student_notebook_contains_no_solution_in_plaintext(assigned):
    text = assigned.path.read_text(encoding="utf-8")
    visible = MASK.sub("KEY", text)
    solutions = ['ml.serve("Llama-2-7B", v.hardware, batch=v.batch).itl', 'wall = "B"', "return peak / bandwidth",
                 'ml.memory("Llama-2-70B"', "lambda peak, bandwidth", "Each token streams every weight", "SOLUTION",
                 "q1.expected()", "assert q1.check", '"989 TFLOP/s"']
    assert [s for s in solutions if s in visible] == []
    numbers = set()
    for entry in assigned.key:
        for data in entry["expected"].values():
            for item in data.get("cases", [data]) if "s" not in data else []:
                numbers |= _spellings(keys.load_value(item))
    assert len(numbers) > 50
    assert [n for n in sorted(numbers) if re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", visible)] == []
    assert "key='mlsl1:" in text and text.count("key='mlsl1:") == 4


def test_the_key_holds_every_variant_and_the_grader_can_rebuild_each_exercise(assigned):
    q1 = next(e for e in assigned.key if e["id"] == "fx.q1")
    assert q1["variant"]["fields"] == [["hardware", ["H100 SXM", "A100 SXM 80GB"]], ["batch", [1, 8, 32]]]
    assert len(q1["expected"]) == 6 and all(d["q"][1] == "second" for d in q1["expected"].values())
    for sid in ("s1", "s2", "s3"):
        ex = Exercise.from_key(q1)
        draw = ex.variant.draw(sid)
        truth = ml.serve("Llama-2-7B", draw.hardware, batch=draw.batch).itl
        assert ex.judge(truth.to("us"), ex._expected_for(sid)).correct


def test_an_instructor_notebook_must_run_clean(tmp_path):
    nb = _instructor("x = 1", "y = 1 / 0  # a bug", "z = 2")
    nbformat.write(nb, tmp_path / "broken.ipynb")
    with pytest.raises(author.AssignError, match=r"must run clean: cell 2 \(`y = 1 / 0  # a bug`\) raised "
                                                 "ZeroDivisionError: division by zero"):
        author.assign(tmp_path / "broken.ipynb", tmp_path / "out", timeout=60)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ the commands
@pytest.fixture
def cached_key(assigned, monkeypatch):
    """answer_key without a kernel: the session's key, and the expected answers as the notebook's checks."""
    solved = {}
    for entry in assigned.key:
        expected = Exercise.from_key(entry)._expected_for("")
        solved[entry["id"]] = [keys.CaseOutputs(expected) if entry["kind"] == "function" else expected]
    monkeypatch.setattr(author, "answer_key", lambda *a, **k: (assigned.key, solved, []))
    return assigned.key


def test_assign_command_writes_the_student_notebook(cached_key, tmp_path):
    result = CliRunner().invoke(app, ["assign", str(FIXTURES / "lab_instructor.ipynb"), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'lab_instructor.ipynb'}: 4 exercises, 6 points" in result.stdout
    refused = CliRunner().invoke(app, ["assign", str(FIXTURES / "lab_instructor.ipynb"), "-o", str(FIXTURES)])
    assert refused.exit_code == 1 and "would overwrite the instructor notebook" in refused.stderr


def test_answers_command_shows_each_students_inputs_and_answers(cached_key):
    result = CliRunner().invoke(app, ["answers", str(FIXTURES / "lab_instructor.ipynb"), "-s", "s1", "-s", "s2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("fx.q1") == 2 and "B (memory bandwidth)" in result.stdout
    assert "hardware=" in result.stdout and "FLOP/B" in result.stdout
