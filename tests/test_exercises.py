"""The student's side: unit-equivalent answers, wrong dimensions, stated tolerances, choices, functions,
hints, per-student variants, sealed keys, and the answers log the grader reads."""
import json
import pickle
import subprocess
import sys

import pint
import pytest

import mlsysim_lab as ml
from mlsysim_lab.exercises import CheckResult, Exercise, exercise, key as keys, student, variant, variants
from mlsysim_lab.exercises.check import sealed_key

H100 = ml.hardware("H100 SXM")


@pytest.fixture
def itl_exercise():
    return exercise("q1", lambda: ml.Q_("2.1 ms"), tolerance=0.05)


@pytest.mark.parametrize("answer", ["2.1 ms", "0.0021 s", " 2100 us ", "2100 µs", ml.Q_(2.1e6, "ns"),
                                    ml.Q_(2.1, "ms")])
def test_the_same_time_in_any_unit_is_the_same_answer(itl_exercise, answer):
    result = itl_exercise.check(answer)
    assert result.correct and result.message.startswith("correct")


@pytest.mark.parametrize("answer, message", [
    ("2.1 GB", "wrong unit: expected dimension [time], got [information] (2.1 GB)"),
    ("2.1 TFLOP/s", "wrong unit: expected dimension [time], got [compute] / [time]"),
    (2.1, "add a unit: expected a quantity of dimension [time], e.g. '5 us'"),
    ("2.1", "add a unit"),
    ("fast", "could not read 'fast' as a number with a unit, e.g. '5 us'"),
    ("", "no answer yet"),
    (None, "no answer yet"),
    (True, "could not read True"),
    ("2.3 ms", "too high by 9.52% (you gave 2.3 ms; tolerance 5%)"),
    ("1.5 ms", "too low by 28.6%"),
    ("21 ms", "too high by x10"),
    ("2.1 us", "too low by x1,000; check the unit prefix"),
])
def test_wrong_answers_say_what_is_wrong_without_giving_the_answer(itl_exercise, answer, message):
    result = itl_exercise.check(answer)
    assert not result.correct and message in result.message
    assert "2.1 ms" not in result.message  # the feedback never gives the answer away


def test_relative_tolerance_edges_are_inclusive():
    ex = exercise("edge", "100 ms", tolerance=0.05)
    assert ex.check("105 ms").correct and ex.check("95 ms").correct
    assert not ex.check("105.01 ms").correct and not ex.check("94.99 ms").correct
    exact = exercise("exact", "100 ms", tolerance=0)
    assert exact.check("0.1 s").correct and not exact.check("100.0001 ms").correct


def test_absolute_tolerance_in_any_compatible_unit():
    ex = exercise("abs", "2.1 ms", tolerance="100 us")
    assert ex.check("2.2 ms").correct and ex.check("2.0 ms").correct
    assert not ex.check("2.2001 ms").correct
    assert "tolerance 100 µs" in ex.check("3 ms").message


def test_expected_answers_come_from_the_core_at_check_time():
    state = {"batch": 1}
    ex = exercise("itl", lambda: ml.serve("Llama-2-7B", H100, batch=state["batch"]).itl)
    at_one = ml.serve("Llama-2-7B", H100, batch=1).itl
    assert ex.check(at_one.to("us")).correct
    state["batch"] = 64
    assert not ex.check(at_one).correct  # the core answered again, for batch 64
    assert ex.check(ml.serve("Llama-2-7B", H100, batch=64).itl).correct


def test_dimensionless_answers_accept_numbers_and_percent():
    ex = exercise("mfu", lambda: ml.Q_(0.45, ""), tolerance=0.02)
    assert ex.check(0.45).correct and ex.check("45 %").correct and ex.check("0.45").correct
    assert not ex.check("0.5").correct
    assert "wrong unit" in ex.check("0.45 s").message


def test_counts_with_units_are_strict():
    ex = exercise("params", "7e9 param", tolerance=0.1)
    assert ex.check("6.9e9 param").correct and ex.check("7 Gparam").correct
    assert "add a unit" in ex.check(7e9).message


@pytest.mark.parametrize("answer, correct", [("B", True), ("b", True), (" memory bandwidth ", True),
                                             ("Memory Bandwidth", True), ("A", False), ("compute", False)])
def test_choices_by_letter_or_text(answer, correct):
    ex = exercise("wall", lambda: ml.serve("Llama-2-7B", H100).bottleneck, kind="choice",
                  choices=["compute", "memory bandwidth", "network"])
    result = ex.check(answer)
    assert result.correct is correct
    assert result.message == ("correct: B (memory bandwidth)" if correct else "incorrect: you chose A (compute)")


def test_choices_reject_unknown_letters_and_plain_choices_compare_text():
    ex = exercise("wall", "B", kind="choice", choices={"A": "compute", "B": "memory bandwidth"})
    assert "'Z' is not one of the choices: A (compute), B (memory bandwidth)" in ex.check("Z").message
    plain = exercise("yes", "Yes", kind="choice")
    assert plain.check("yes").correct and not plain.check("no").correct
    broken = exercise("broken", "D", kind="choice", choices=["a", "b"])
    with pytest.raises(ml.InputError, match="not among the choices"):
        broken.check("A")


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="essay"), "kind must be 'number' or 'choice'"),
    (dict(tolerance=1.5), "relative tolerance is a fraction"),
    (dict(tolerance=-0.1), "relative tolerance is a fraction"),
])
def test_bad_exercise_definitions_are_refused(kwargs, message):
    with pytest.raises(ml.InputError, match=message):
        exercise("bad", "1 ms", **kwargs)


def test_results_print_nicely_and_travel():
    result = exercise("q9", "1 ms").check("1 ms")
    assert isinstance(result, CheckResult) and bool(result)
    assert str(result) == "✅ q9: correct: 1 ms"
    assert result._repr_markdown_() == "✅ **q9**: correct: 1 ms"
    assert pickle.loads(pickle.dumps(result)) == result


def test_exercises_load_no_widget_stack():
    code = ("import sys, mlsysim_lab.exercises; print([m for m in ('altair', 'ipywidgets', 'anywidget') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------ feedback
@pytest.fixture(autouse=True)
def no_student_no_log(monkeypatch):
    """Each test starts with no declared student, no grader override and no answers log."""
    monkeypatch.setattr(variants, "_declared", None)
    monkeypatch.delenv(variants.STUDENT_ENV, raising=False)
    monkeypatch.delenv(keys.ANSWERS_ENV, raising=False)


def test_a_hint_follows_a_wrong_try_only():
    ex = exercise("h", "2.1 ms", tolerance=0.05, hint="decode reads every weight once")
    assert ex.check("3 ms").message.endswith("Hint: decode reads every weight once")
    assert "Hint" in ex.check("3 GB").message and "Hint" in ex.check("fast").message
    assert "Hint" not in ex.check("2.1 ms").message and ex.check(None).message == "no answer yet"
    assert ex.check(...).message == "no answer yet"  # the placeholder `answer = ...` of a student notebook


@pytest.mark.parametrize("tolerance, inside, outside, stated", [
    ("order", ["50 GB", "0.4 TB", "43.7 GB"], ["43.6 GB", "450 GB", "-138 GB"], "same order of magnitude"),
    ("x2", ["69 GB", "276 GB", "0.2 TB"], ["68 GB", "277 GB"], "within x2"),
    (0.05, ["131.1 GB", "144.9 GB"], ["130 GB", "146 GB"], "5%"),
    ("5 GB", ["133 GB", "143 GB"], ["132.9 GB", "143.1 GB"], "5 GB"),
])
def test_tolerances_relative_absolute_factor_and_order_of_magnitude(tolerance, inside, outside, stated):
    ex = exercise("weights", "138 GB", tolerance=tolerance)
    assert all(ex.check(a).correct for a in inside), [ex.check(a).message for a in inside]
    for answer in outside:
        result = ex.check(answer)
        assert not result.correct and f"tolerance {stated}" in result.message
    assert f"tolerance {stated}" in ex.describe()


@pytest.mark.parametrize("tolerance, message", [
    ("x1", "more than x1"), ("x0.5", "more than x1"), ("roughly", "tolerance is a fraction"),
    ("-1 ms", "one quantity >= 0"), (True, "tolerance is a fraction"),
])
def test_bad_tolerances_are_refused_with_the_accepted_forms(tolerance, message):
    with pytest.raises(ml.InputError, match=message):
        exercise("bad", "1 ms", tolerance=tolerance)


def test_an_absolute_tolerance_of_another_dimension_is_an_error_of_the_exercise():
    with pytest.raises(pint.DimensionalityError):
        exercise("abs", "2.1 ms", tolerance="1 GB").check("2 ms")


def test_the_exercise_describes_itself_without_its_answer():
    ex = exercise("lab.q1", lambda: ml.Q_("7.42 ms"), tolerance=0.05, points=2, hint="think bandwidth")
    text = ex.describe()
    assert text == ("lab.q1: a number with its unit (any compatible unit); tolerance 5%; 2 points; "
                    "a hint after a wrong try")
    assert "7.42" not in repr(ex) + ex._repr_markdown_()
    choice = exercise("c", "B", kind="choice", choices=["compute", "memory bandwidth"])
    assert "one of: A (compute), B (memory bandwidth); tolerance exact; 1 point" in choice.describe()


# ------------------------------------------------------------------------------------------ functions
def ridge(peak, bandwidth):
    return peak / bandwidth


CASES = [dict(peak=ml.Q_("989 TFLOP/s"), bandwidth=ml.Q_("3.35 TB/s")),
         dict(peak=ml.Q_("312 TFLOP/s"), bandwidth=ml.Q_("2.039 TB/s")),
         dict(peak=ml.Q_("121 TFLOP/s"), bandwidth=ml.Q_("300 GB/s"))]


@pytest.mark.parametrize("answer, score, message", [
    (ridge, 1.0, "correct on all 3 cases"),
    (lambda peak, bandwidth: (peak / bandwidth).to("FLOP/B"), 1.0, "correct on all 3 cases"),
    (lambda peak, bandwidth: peak / bandwidth if bandwidth > ml.Q_("1 TB/s") else 1 / 0, 2 / 3,
     "2 of 3 cases correct; case 3 (peak=121 TFLOP/s, bandwidth=300 GB/s) raised ZeroDivisionError"),
    (lambda peak, bandwidth: peak * bandwidth, 0.0, "0 of 3 cases correct; case 1 (peak=989 TFLOP/s, "
                                                    "bandwidth=3.35 TB/s): wrong unit"),
    (lambda peak: peak, 0.0, "raised TypeError"),
    ("peak / bandwidth", 0.0, "expected a function to call on 3 cases, got 'peak / bandwidth'"),
])
def test_a_function_answer_runs_on_every_case_with_partial_credit(answer, score, message):
    ex = exercise("ridge", ridge, kind="function", cases=CASES, tolerance=0.01, points=2)
    result = ex.check(answer)
    assert result.score == pytest.approx(score) and message in result.message
    assert result.correct is (score == 1.0)


def test_a_function_returning_none_is_not_an_answer_yet():
    ex = exercise("ridge", ridge, kind="function", cases=CASES)
    assert ex.check(lambda peak, bandwidth: None).message == "no answer yet: your function returns None"


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="function"), "needs cases"),
    (dict(kind="function", cases=[{"peak": object()}]), "case inputs are numbers, strings or quantities"),
    (dict(cases=CASES), "cases are for kind='function'"),
    (dict(points=0), "points must be a number > 0"),
    (dict(hint=3), "hint must be a string"),
])
def test_bad_function_and_points_definitions_are_refused(kwargs, message):
    with pytest.raises(ml.InputError, match=message):
        exercise("bad", ridge, **kwargs)


# ------------------------------------------------------------------------------------------ variants
def test_variants_are_a_pure_function_of_family_and_student():
    v = variant("lab02", hardware=["H100 SXM", "A100 SXM 80GB"], batch=[1, 8, 64])
    draws = {sid: v.draw(sid) for sid in (f"s{i:04d}" for i in range(200))}
    assert {(d.hardware, d.batch) for d in draws.values()} == {(h, b) for h in v.fields["hardware"]
                                                               for b in v.fields["batch"]}  # neighbours differ
    assert v.draw(" S0007 ") == draws["s0007"] == v.draw("s0007")  # case and spaces do not matter
    assert variants.seed("lab02", "s0007") != variants.seed("lab03", "s0007")  # the family salts the draw
    # The published draw of one ID: if this changes, every issued assignment changes with it.
    assert dict(v.draw("s0007")) == {"hardware": "A100 SXM 80GB", "batch": 64}
    assert v.count == 6 and len(list(v.every())) == 6 and v.key in {d.key for d in v.every()}


def test_the_grader_id_wins_over_the_declared_one(monkeypatch):
    v = variant("lab02", batch=list(range(100)))
    assert student("Alice") == "alice" and variants.declared_student() == "alice"
    mine = variant("lab02", batch=list(range(100)))
    assert mine == v.draw("alice")
    monkeypatch.setenv(variants.STUDENT_ENV, "bob")
    assert student("alice") == "bob" and variant("lab02", batch=list(range(100))) == v.draw("bob")


def test_variant_reads_like_a_mapping_and_tells_whose_it_is():
    student("s1")
    v = variant("lab", model=["Llama-2-7B"], batch=[8])
    assert v.model == "Llama-2-7B" and v["batch"] == 8 and dict(v) == {"model": "Llama-2-7B", "batch": 8}
    assert "drawn for student **s1**" in v._repr_markdown_() and "| batch | 8 |" in v._repr_markdown_()
    with pytest.raises(AttributeError, match="has no input 'hardware'; it has: model, batch"):
        v.hardware
    assert pickle.loads(pickle.dumps(v)) == v


@pytest.mark.parametrize("args, kwargs, message", [
    (("",), dict(batch=[1]), "needs a name"),
    (("lab",), {}, "at least one input"),
    (("lab",), dict(batch=[]), "has no options"),
    (("lab",), dict(batch=8), "needs a list of options"),
    (("lab",), dict(hardware="H100 SXM"), "needs a list of options"),
    (("lab",), dict(key=[1, 2]), "reserved name"),
    (("lab",), dict(batch=[ml.Q_("1 ms")]), "options are strings or numbers"),
    (("lab",), dict(a=range(20), b=range(20), c=range(20)), "8000 combinations; at most 4096"),
])
def test_bad_variants_are_refused(args, kwargs, message):
    with pytest.raises(ml.InputError, match=message):
        variant(*args, **kwargs)


def test_a_variant_exercise_answers_for_whoever_checks():
    v = variant("lab02", hardware=["H100 SXM", "A100 SXM 80GB"], batch=[1, 64])
    q = exercise("itl", lambda v: ml.serve("Llama-2-7B", v.hardware, batch=v.batch).itl, variant=v)
    for sid in ("s1", "s2", "s3", "s4", "s5"):
        student(sid)
        mine = v.draw(sid)
        assert q.inputs == mine and q.check(ml.serve("Llama-2-7B", mine.hardware, batch=mine.batch).itl)
    with pytest.raises(ml.InputError, match="the answer takes the student's inputs: lambda v"):
        exercise("itl", lambda: 1, variant=v)
    with pytest.raises(ml.InputError, match="takes no variant"):
        exercise("f", ridge, kind="function", cases=CASES, variant=v)


# ------------------------------------------------------------------------------------------ sealed keys
def _sealed(ex):
    return exercise(ex.id, key=sealed_key(ex.answer_key(), salt="pepper"))


def test_a_sealed_exercise_judges_like_its_recipe_for_every_student():
    v = variant("lab02", hardware=["H100 SXM", "A100 SXM 80GB", "L4"], batch=[1, 8, 64])
    recipe = exercise("itl", lambda v: ml.serve("Llama-2-7B", v.hardware, batch=v.batch).itl, variant=v,
                      tolerance=0.05, hint="bandwidth")
    sealed = _sealed(recipe)
    assert sealed.sealed and not recipe.sealed and sealed.describe() == recipe.describe()
    for sid in ("ann", "ben", "cy", "dee"):
        student(sid)
        truth = recipe.expected()
        for answer in (truth, truth.to("us"), truth * 1.04, truth * 1.2, "3 GB", 0.004, "fast"):
            assert sealed.check(answer) == recipe.check(answer), (sid, answer)
    with pytest.raises(ml.InputError, match="sealed in a student notebook"):
        sealed.expected()
    with pytest.raises(ml.InputError, match="made from the instructor notebook"):
        sealed.answer_key()


def test_a_sealed_key_hides_numbers_and_choices():
    number = exercise("n", lambda: ml.Q_("7.4213 ms"), tolerance=0.05)
    choice = exercise("c", lambda: ml.Wall.MEMORY_BANDWIDTH, kind="choice",
                      choices=["compute", "memory bandwidth", "network"])
    for ex in (number, choice):
        text = sealed_key(ex.answer_key(), salt="pepper")
        assert text.startswith("mlsl1:") and "7.42" not in text and "7421" not in text
    unsealed = keys.unseal(sealed_key(choice.answer_key(), salt="pepper"))
    assert unsealed["expected"][""].keys() == {"h"}  # even unsealed, the choice is a salted hash
    assert _sealed(choice).check("B").correct and not _sealed(choice).check("A").correct
    assert _sealed(choice).check("memory bandwidth").message == "correct: B (memory bandwidth)"


def test_a_damaged_or_foreign_key_is_refused_clearly():
    text = sealed_key(exercise("q1", "1 ms").answer_key(), salt="s")
    with pytest.raises(ml.InputError, match="belongs to exercise 'q1'"):
        exercise("q2", key=text)
    with pytest.raises(ml.InputError, match="the exercise's key is damaged"):
        exercise("q1", key=text[:-8])
    with pytest.raises(ml.InputError, match="not both"):
        exercise("q1", "1 ms", key=text)


def test_an_answer_key_holds_every_variant_and_names_the_inputs_that_fail():
    v = variant("lab02", hardware=["H100 SXM", "nonexistent GPU"], batch=[1])
    entry = exercise("itl", lambda v: ml.serve("Llama-2-7B", v.hardware, batch=v.batch).itl, variant=v,
                     points=3).answer_key()
    assert entry["points"] == 3 and entry["variant"]["fields"] == [["hardware", ["H100 SXM", "nonexistent GPU"]],
                                                                   ["batch", [1]]]
    assert entry["expected"]["0,0"]["q"][1] == "second"
    assert "UnknownNameError" in entry["expected"]["1,0"]["error"]


# ------------------------------------------------------------------------------------------ the answers log
def test_checks_log_raw_answers_only_when_a_grader_asks(tmp_path, monkeypatch):
    ex = exercise("q", "2.1 ms")
    ex.check("2.1 ms")  # no log open: nothing written anywhere
    log = tmp_path / "answers.jsonl"
    monkeypatch.setenv(keys.ANSWERS_ENV, str(log))
    student("S1")
    for answer in ("2.1 ms", ml.Q_(2.2, "ms"), None, "", 7, True, [1, 2], ml.Wall.COMPUTE):
        ex.check(answer)
    exercise("f", ridge, kind="function", cases=CASES[:2]).check(lambda peak, bandwidth: 1 / 0 if peak < 500 *
                                                                  ml.Q_("TFLOP/s") else peak / bandwidth)
    with open(log, "a") as f:  # forged, damaged and oversized lines are skipped
        f.write('{"id": "q", "answer": {"s": "forged"}, "correct": true}\nnot json\n[1]\n{"id": 3}\n')
        f.write('{"id": "q", "answer": {"q": [1, "no_such_unit"]}}\n' + "x" * (keys.MAX_LOG_LINE + 5) + "\n")
    answers, declared = keys.read_log(log)
    assert declared == ["s1"]
    q = answers["q"]
    assert q[:3] == ["2.1 ms", ml.Q_(2.2, "ms"), ml.Q_(7.0, "")]
    assert q[3] == "True" and isinstance(q[3], keys.Unreadable)
    assert q[4] == "[1, 2]" and q[5] == "compute" and q[6] == "forged" and isinstance(q[7], keys.Unreadable)
    outputs = answers["f"][0]
    assert isinstance(outputs, keys.CaseOutputs) and outputs[0].m_as("FLOP/B") == pytest.approx(989 / 3.35)
    assert outputs[1] == keys.CaseError("ZeroDivisionError: division by zero")


def test_the_grader_judges_a_logged_answer_as_the_student_saw_it(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.ANSWERS_ENV, str(tmp_path / "log"))
    exercises = [exercise("n", "2.1 ms", tolerance=0.05, hint="h"),
                 exercise("c", "B", kind="choice", choices=["compute", "memory bandwidth"]),
                 exercise("f", ridge, kind="function", cases=CASES)]
    answers = {"n": ["2.1 ms", ml.Q_(2100, "us"), "2.3 ms", "3 GB", 2.1, "fast", True, [1]],
               "c": ["B", "memory bandwidth", "A", "Z", ml.Wall.COMPUTE],
               "f": [ridge, lambda peak, bandwidth: peak * bandwidth, lambda peak, bandwidth: 1 / 0, "no"]}
    seen = {ex.id: [ex.check(a) for a in answers[ex.id]] for ex in exercises}
    logged, _ = keys.read_log(tmp_path / "log")
    for ex in exercises:
        graded = Exercise.from_key(json.loads(json.dumps(ex.answer_key())))  # through JSON, as from the kernel
        assert [graded.judge(a, graded._expected_for("")) for a in logged[ex.id]] == seen[ex.id]
