"""The in-notebook check API: unit-equivalent answers, wrong dimensions, tolerance edges, choices."""
import pickle
import subprocess
import sys

import pytest

import mlsysim_lab as ml
from mlsysim_lab.exercises import CheckResult, exercise

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
