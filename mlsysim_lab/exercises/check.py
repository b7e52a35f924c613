"""The student's side: ``q = exercise("q1", ...)`` then ``q.check(answer)``: feedback at once, never the answer.

An exercise is built in one of two ways:

* in a lab or an instructor notebook, with the answer as a callable into the core, evaluated when the
  student checks (so a lab never hard-codes a number): ``exercise("q1", lambda: ml.serve(...).itl,
  tolerance=0.05)``; with ``variant=v`` the callable takes the student's inputs: ``lambda v: ...``;
* in a student notebook made by ``mlsysim-lab assign``, from a sealed key that replaced the callable:
  ``exercise("q1", key="mlsl1:...")`` (see ``key.py`` for what the seal does and does not hide).

Numbers are compared with units: "2.1 ms", ``ml.Q_(2100, "us")`` and "0.0021 s" are the same answer; a time
given in gigabytes is told the dimension it should have; a bare number where a unit is needed is asked
for its unit. Tolerances are stated with every verdict: relative (0.05), absolute ("0.1 ms") or a factor
("x2", or "order" for an order of magnitude). Choices are letters ("B") or the option's text; a function
answer is run on the exercise's cases. A wrong try shows the exercise's hint. Every check also appends
the raw answer to the grader's log when one is open (``key.record``). No widget or Jupyter imports.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pint

from ..errors import InputError
from ..results import Wall
from ..units import SI, Q_, fmt, ureg
from . import key as keys
from .variants import Variant, current_student

#: Relative tolerance when none is given: 2% absorbs rounding to three significant figures.
DEFAULT_TOLERANCE = 0.02
#: ``tolerance="order"``: within a factor of sqrt(10) either way, i.e. the same order of magnitude.
ORDER_OF_MAGNITUDE = math.sqrt(10)
KINDS = ("number", "choice", "function")

#: Exercises built from a callable in this process, by id: the instructor's answer key (``answer_keys``).
_REGISTRY: dict[str, "Exercise"] = {}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``correct`` and a ``message`` that says why (never the answer).

    ``fraction`` is the share of the points earned where it is partial (a function right on 2 of 3 cases).
    """

    id: str
    correct: bool
    message: str
    fraction: float | None = None

    @property
    def score(self) -> float:
        """The share of the exercise's points earned, 0 to 1."""
        return float(self.correct) if self.fraction is None else self.fraction

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return f"{'✅' if self.correct else '❌'} {self.id}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"{'✅' if self.correct else '❌'} **{self.id}**: {self.message}"


@dataclass(frozen=True)
class Tolerance:
    """How close counts as correct: ``relative`` (a fraction), ``absolute`` (a magnitude in ``unit``) or
    ``factor`` (within x``value`` either way); the boundary counts as correct."""

    kind: str
    value: float
    unit: str = ""

    @classmethod
    def parse(cls, tolerance: Any, where: str) -> "Tolerance":
        if isinstance(tolerance, Tolerance):
            return tolerance
        if isinstance(tolerance, (int, float, np.integer, np.floating)) and not isinstance(tolerance, bool):
            if not 0 <= tolerance < 1:
                raise InputError(f"{where}: a relative tolerance is a fraction in [0, 1), got {tolerance!r}")
            return cls("relative", float(tolerance))
        if isinstance(tolerance, str):
            text = tolerance.strip().casefold()
            if text in ("order", "order of magnitude"):
                return cls("factor", ORDER_OF_MAGNITUDE)
            factor = re.fullmatch(r"[x×]\s*([0-9]*\.?[0-9]+)", text)
            if factor:
                if float(factor.group(1)) <= 1:
                    raise InputError(f"{where}: a factor tolerance is more than x1, got {tolerance!r}")
                return cls("factor", float(factor.group(1)))
        try:
            q = _as_quantity(tolerance, f"{where}: 'tolerance'")
        except (pint.errors.PintError, ValueError, TypeError, SyntaxError, AttributeError) as err:
            raise InputError(f"{where}: tolerance is a fraction (0.05), a quantity ('0.1 ms'), 'x2' or "
                             f"'order', got {tolerance!r}") from err
        if np.ndim(q.magnitude) or not q.magnitude >= 0:
            raise InputError(f"{where}: an absolute tolerance is one quantity >= 0, got {tolerance!r}")
        return cls("absolute", float(q.magnitude), format(q.units, "D"))

    def allows(self, value: float, target: float, unit: pint.Unit) -> bool:
        slack = 1e-9 * max(abs(target), abs(value))  # unit-conversion rounding ("2.1 ms" vs "0.0021 s")
        if self.kind == "relative":
            return abs(value - target) <= self.value * abs(target) + slack
        if self.kind == "absolute":
            return abs(value - target) <= Q_(self.value, self.unit).m_as(unit) + slack
        if target == 0 or value == 0:
            return value == target
        ratio = value / target
        return ratio > 0 and max(ratio, 1 / ratio) <= self.value * (1 + 1e-9)

    def text(self) -> str:
        if self.kind == "relative":
            return f"{self.value * 100:.3g}%" if self.value else "exact"
        if self.kind == "absolute":
            return fmt(Q_(self.value, self.unit))
        if abs(self.value - ORDER_OF_MAGNITUDE) < 1e-12:
            return "same order of magnitude (within x3.16)"
        return f"within x{self.value:g}"

    def to_json(self) -> dict:
        return {"kind": self.kind, "value": self.value, "unit": self.unit}


def _as_quantity(value: Any, what: str) -> pint.Quantity:
    """A quantity of the package registry from a quantity, a string ("2.1 ms") or a plain number."""
    if isinstance(value, pint.Quantity):
        if value._REGISTRY is not ureg:
            raise InputError(f"{what} was made with another pint registry; use mlsysim_lab.Q_")
        return value
    if isinstance(value, keys.Unreadable):
        raise InputError(f"{what} is not a number: {value}")
    if isinstance(value, str):
        return Q_(value.strip())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{what} must be a number, a quantity or a string such as '2.1 ms', got {value!r}")
    return Q_(float(value), "")


def _dimension(q: pint.Quantity) -> str:
    return str(q.dimensionality) if not q.dimensionless else "dimensionless"


def _blank(answer: Any) -> bool:
    return answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip())


class _Digest:
    """A sealed choice: matches a normalized letter by its salted hash, without naming the letter."""

    def __init__(self, salt: str, exercise_id: str, variant_key: str, hexdigest: str):
        self.salt, self.id, self.variant_key, self.hexdigest = salt, exercise_id, variant_key, hexdigest

    def matches(self, letter: str) -> bool:
        return keys.digest(self.salt, self.id, self.variant_key, letter) == self.hexdigest


class Exercise:
    """One checkable question. Build it with ``exercise(...)``."""

    def __init__(self, id: str, answer: Callable[..., Any] | Any = None, *, tolerance=DEFAULT_TOLERANCE,
                 kind: str = "number", choices: Sequence[str] | Mapping[str, str] | None = None,
                 hint: str | None = None, points: float = 1, variant: Variant | None = None,
                 cases: Sequence[Mapping[str, Any]] | None = None, key: str | Mapping | None = None):
        where = f"exercise({id!r})"
        if not isinstance(id, str) or not id.strip():
            raise InputError(f"exercise(): the id is a short label such as 'lab02.q3', got {id!r}")
        self.id = id
        self._key: dict | None = None
        if key is not None:
            if answer is not None:
                raise InputError(f"{where}: give the answer or a sealed key, not both")
            self._load_key(key, where)
            return
        if kind not in KINDS:
            raise InputError(f"exercise(): kind must be 'number' or 'choice' (or 'function' for a function "
                             f"answer), got {kind!r}")
        if answer is None:
            raise InputError(f"{where}: needs the answer: a callable into the core, e.g. "
                             "lambda: ml.serve(...).itl, or a value")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not points > 0:
            raise InputError(f"{where}: points must be a number > 0, got {points!r}")
        if hint is not None and not isinstance(hint, str):
            raise InputError(f"{where}: hint must be a string, got {hint!r}")
        if variant is not None:
            if not isinstance(variant, Variant):
                raise InputError(f"{where}: variant must come from variant(...), got {variant!r}")
            if kind == "function":
                raise InputError(f"{where}: a function exercise has fixed cases; it takes no variant")
            if not callable(answer) or not _takes_one_argument(answer):
                raise InputError(f"{where}: with variant=..., the answer takes the student's inputs: "
                                 "lambda v: ml.serve(v.model, v.hardware).itl")
        if kind == "function":
            if not callable(answer):
                raise InputError(f"{where}: a function exercise's answer is the reference function")
            if not cases or isinstance(cases, (str, Mapping)) or not all(isinstance(c, Mapping) for c in cases):
                raise InputError(f"{where}: a function exercise needs cases: a list of keyword-argument dicts, "
                                 "e.g. cases=[dict(layers=32, context=4096)]")
            for case in cases:
                for name, value in case.items():
                    if isinstance(keys.dump_value(value).get("r"), str):
                        raise InputError(f"{where}: case inputs are numbers, strings or quantities; "
                                         f"{name!r} is {value!r}")
        elif cases is not None:
            raise InputError(f"{where}: cases are for kind='function'")
        self.answer, self.kind, self.hint, self.points = answer, kind, hint, float(points)
        self.tolerance = Tolerance.parse(tolerance, where) if kind != "choice" else Tolerance.parse(0, where)
        self.choices = _choices(choices)
        self.variant = variant.draw("") if variant is not None else None  # the family; draws happen per check
        self.cases = [dict(c) for c in cases] if cases is not None else None
        _REGISTRY[id] = self

    # ------------------------------------------------------------------------------ the student's calls
    @property
    def sealed(self) -> bool:
        """True in a student notebook: the expected answer is in a sealed key, not a callable."""
        return self._key is not None and self._key.get("salt") is not None

    @property
    def inputs(self) -> Variant | None:
        """The current student's inputs (None if the exercise has no variants)."""
        return self.variant.draw(current_student()) if self.variant is not None else None

    def expected(self) -> Any:
        """The expected answer for the current student, computed now (the core runs if ``answer`` is a
        callable). Not available in a student notebook, whose answers are sealed."""
        if self._key is not None:
            raise InputError(f"exercise {self.id!r}: the expected answer is sealed in a student notebook; "
                             "check an answer with .check(...)")
        return self._raw(self.inputs)

    def check(self, student: Any) -> CheckResult:
        """Compare a student's answer with the expected one; the message says what is wrong.

        The raw answer also goes to the grader's log when one is open: that, not this result, is what the
        grader scores (again, in its own process).
        """
        if _blank(student):
            return CheckResult(self.id, False, "no answer yet")
        given = self._given(student)
        if isinstance(given, keys.CaseOutputs) and all(out is None for out in given):
            return CheckResult(self.id, False, "no answer yet: your function returns None")
        keys.record({"id": self.id, "answer": keys.dump_answer(given)})
        return self.judge(given, self._expected_for(current_student()))

    # ------------------------------------------------------------------------------ judging
    def judge(self, given: Any, expected: Any) -> CheckResult:
        """Score ``given`` (an answer, or a function's ``CaseOutputs``) against a normalized expected answer
        (a quantity, a letter, a sealed letter, or a list of quantities); used by ``check`` and the grader."""
        if _blank(given):
            return CheckResult(self.id, False, "no answer yet")
        if self.kind == "choice":
            result = self._judge_choice(given, expected)
        elif self.kind == "function":
            result = self._judge_function(given, expected)
        else:
            correct, message = self._judge_number(given, expected)
            result = CheckResult(self.id, correct, message)
        if not result.correct and self.hint:
            result = CheckResult(result.id, False, f"{result.message}. Hint: {self.hint}", result.fraction)
        return result

    def _judge_number(self, given: Any, expected: pint.Quantity) -> tuple[bool, str]:
        try:
            got = _as_quantity(given, "your answer")
            if np.ndim(got.magnitude):
                raise ValueError("an array")
        except (InputError, pint.errors.PintError, ValueError, TypeError, SyntaxError, AttributeError):
            shown = given if isinstance(given, keys.Unreadable) else repr(given)
            return False, f"could not read {shown} as a number with a unit, e.g. '{_example(expected)}'"
        if got.dimensionality != expected.dimensionality:
            if got.dimensionless:
                return False, (f"add a unit: expected a quantity of dimension {_dimension(expected)}, "
                               f"e.g. '{_example(expected)}'")
            return False, f"wrong unit: expected dimension {_dimension(expected)}, got {_dimension(got)} ({fmt(got)})"
        value, target = float(got.m_as(expected.units)), float(expected.magnitude)
        if self.tolerance.allows(value, target, expected.units):
            return True, f"correct: {fmt(got)}"
        given_text = given.strip() if isinstance(given, str) else fmt(got, digits=4)
        return False, f"{_how_far(value, target)} (you gave {given_text}; tolerance {self.tolerance.text()})"

    def _judge_choice(self, given: Any, expected: str | _Digest) -> CheckResult:
        got = self._letter(given, "your answer")
        if got is None:
            options = ", ".join(f"{k} ({v})" for k, v in self.choices.items()) if self.choices else ""
            return CheckResult(self.id, False, f"{given!r} is not one of the choices: {options}")
        shown = f"{got} ({self.choices[got]})" if self.choices else got
        if expected.matches(got) if isinstance(expected, _Digest) else got == expected:
            return CheckResult(self.id, True, f"correct: {shown}")
        return CheckResult(self.id, False, f"incorrect: you chose {shown}")

    def _judge_function(self, given: Any, expected: list) -> CheckResult:
        if not isinstance(given, keys.CaseOutputs):
            shown = given if isinstance(given, keys.Unreadable) else repr(given)
            return CheckResult(self.id, False, f"expected a function to call on {len(expected)} cases, got {shown}",
                               0.0)
        failures = []
        for i, (case, want) in enumerate(zip(self._case_inputs(), expected)):
            out = given[i] if i < len(given) else keys.CaseError("was not run")
            if isinstance(out, keys.CaseError):
                failures.append(f"case {i + 1} ({_call_text(case)}) raised {out.message}")
                continue
            correct, message = self._judge_number(out, want)
            if not correct:
                failures.append(f"case {i + 1} ({_call_text(case)}): {message}")
        n = len(expected)
        if not failures:
            return CheckResult(self.id, True, f"correct on all {n} cases" if n > 1 else "correct on the one case", 1.0)
        return CheckResult(self.id, False, f"{n - len(failures)} of {n} cases correct; {failures[0]}",
                           (n - len(failures)) / n)

    def _letter(self, value: Any, what: str) -> str | None:
        text = (value.value if isinstance(value, Wall) else str(value)).strip()
        if self.choices is None:
            return text.casefold()
        if text.upper() in self.choices:
            return text.upper()
        for letter, option in self.choices.items():
            if option.casefold() == text.casefold():
                return letter
        if what == "the expected answer":
            raise InputError(f"exercise {self.id!r}: the expected answer {value!r} is not among the choices")
        return None

    # ------------------------------------------------------------------------------ expected answers
    def _given(self, student: Any) -> Any:
        """What gets judged and logged: the answer itself, or a function's outputs on every case."""
        if self.kind != "function":
            return student
        if not callable(student):
            return keys.Unreadable(keys._short_repr(student))
        outputs = keys.CaseOutputs()
        for case in self._case_inputs():
            try:
                outputs.append(student(**case))
            except Exception as err:  # the student's function: report what it raised, case by case
                outputs.append(keys.CaseError(f"{type(err).__name__}: {err}"[:keys.MAX_TEXT]))
        return outputs

    def _case_inputs(self) -> list[dict]:
        if self._key is not None:
            return [{k: keys.load_value(v) for k, v in case.items()} for case in self._key["cases"]]
        return [dict(case) for case in self.cases]

    def _raw(self, draw: Variant | None) -> Any:
        """The recipe's answer for one draw, as the core gives it (a quantity, a float, a Wall, a name)."""
        if self.kind == "function":
            return [self.answer(**case) for case in self._case_inputs()]
        if draw is not None:
            return self.answer(draw)
        return self.answer() if callable(self.answer) else self.answer

    def _normalized(self, raw: Any) -> Any:
        """A raw answer in the form ``judge`` compares with: a scalar quantity, a letter, quantities."""
        what = f"exercise {self.id!r}: the expected answer"
        if self.kind == "choice":
            return self._letter(raw, "the expected answer")
        values = raw if self.kind == "function" else [raw]
        out = []
        for value in values:
            q = _as_quantity(value, what)
            if np.ndim(q.magnitude):
                raise InputError(f"{what} must be one number, not an array")
            out.append(q)
        return out if self.kind == "function" else out[0]

    def _expected_for(self, student_id: str) -> Any:
        draw = self.variant.draw(student_id) if self.variant is not None else None
        if self._key is None:
            return self._normalized(self._raw(draw))
        variant_key = draw.key if draw is not None else ""
        data = self._key["expected"].get(variant_key)
        if data is None or "error" in data:
            raise InputError(f"exercise {self.id!r}: the answer key has no answer for inputs {draw!r}")
        if self.kind == "choice":
            if "h" in data:
                return _Digest(self._key["salt"], self.id, variant_key, data["h"])
            return data["s"]
        if self.kind == "function":
            return [keys.load_value(v) for v in data["cases"]]
        return keys.load_value(data)

    # ------------------------------------------------------------------------------ answer keys
    def spec(self) -> dict:
        """The public part of the exercise as JSON-ready data: kind, tolerance, choices, hint, points,
        variant family and cases (no expected answer)."""
        if self._key is not None:
            return {k: v for k, v in self._key.items() if k not in ("expected", "salt")}
        return {"id": self.id, "kind": self.kind, "tolerance": self.tolerance.to_json(), "choices": self.choices,
                "hint": self.hint, "points": self.points,
                "variant": self.variant.spec() if self.variant is not None else None,
                "cases": [{k: keys.dump_value(v) for k, v in c.items()} for c in self.cases]
                if self.cases is not None else None}

    def answer_key(self) -> dict:
        """The spec plus the expected answer of every variant, computed now by the core (plaintext: for the
        instructor's tools only). A combination whose recipe fails holds ``{"error": ...}``."""
        if self._key is not None:
            raise InputError(f"exercise {self.id!r}: an answer key is made from the instructor notebook, "
                             "where the answer is a callable")
        expected = {}
        for draw in (self.variant.every() if self.variant is not None else [None]):
            try:
                value = self._normalized(self._raw(draw))
            except Exception as err:  # the instructor's recipe: report which inputs broke it
                expected[draw.key if draw else ""] = {"error": f"{type(err).__name__}: {err}"[:keys.MAX_TEXT]}
                continue
            if self.kind == "choice":
                data = {"s": value}
            elif self.kind == "function":
                data = {"cases": [keys.dump_value(v) for v in value]}
            else:
                data = keys.dump_value(value)
            expected[draw.key if draw else ""] = data
        return {**self.spec(), "expected": expected}

    @classmethod
    def from_key(cls, entry: Mapping) -> "Exercise":
        """An exercise that judges from an answer key (plaintext from ``answer_key``, or unsealed)."""
        return cls(entry["id"], key=dict(entry))

    def _load_key(self, key: str | Mapping, where: str) -> None:
        try:
            data = keys.unseal(key) if isinstance(key, str) else dict(key)
            if data["id"] != self.id:
                raise InputError(f"{where}: this key belongs to exercise {data['id']!r}")
            self._key = data
            self.kind, self.hint, self.points = data["kind"], data.get("hint"), float(data.get("points", 1))
            self.tolerance = Tolerance(**data["tolerance"])
            self.choices = data.get("choices")
            self.variant = Variant.from_spec(data["variant"]) if data.get("variant") else None
            self.cases = [{k: keys.load_value(v) for k, v in c.items()} for c in data["cases"]] \
                if data.get("cases") is not None else None
            self.answer = None
        except InputError:
            raise
        except Exception as err:  # a damaged key: say so instead of a traceback from zlib or json
            raise InputError(f"{where}: the exercise's key is damaged ({type(err).__name__}); "
                             "get a fresh copy of the notebook") from err

    # ------------------------------------------------------------------------------ display
    def describe(self) -> str:
        """What the exercise asks for and how it is judged (never the answer)."""
        return f"{self.id}: {self._asks()}"

    def _asks(self) -> str:
        if self.kind == "choice":
            what = ("one of: " + ", ".join(f"{k} ({v})" for k, v in self.choices.items())) if self.choices \
                else "a short text answer"
            how = "exact"
        elif self.kind == "function":
            n = len(self.cases)
            what, how = f"a function, called on {n} case{'s' * (n != 1)}", f"each output {self.tolerance.text()}"
        else:
            what, how = "a number with its unit (any compatible unit)", self.tolerance.text()
        points = f"{self.points:g} point{'s' * (self.points != 1)}"
        inputs = self.inputs
        mine = f"; your inputs: {', '.join(f'{k}={v}' for k, v in inputs.items())}" if inputs else ""
        hint = "; a hint after a wrong try" if self.hint else ""
        return f"{what}; tolerance {how}; {points}{hint}{mine}"

    def __repr__(self) -> str:
        return f"<Exercise {self.describe()}>"

    def _repr_markdown_(self) -> str:
        return f"**{self.id}**: {self._asks()}"


def _choices(choices) -> dict[str, str] | None:
    if isinstance(choices, Mapping):
        return {str(k).upper(): str(v) for k, v in choices.items()}
    if choices is not None:
        return {chr(ord("A") + i): str(v) for i, v in enumerate(choices)}
    return None


def _takes_one_argument(fn: Callable) -> bool:
    try:
        inspect.signature(fn).bind(None)
        return True
    except TypeError:
        return False
    except ValueError:  # a builtin without a signature: let the call decide
        return True


def _call_text(case: Mapping) -> str:
    return ", ".join(f"{k}={fmt(v) if isinstance(v, pint.Quantity) else repr(v)}" for k, v in case.items())


def _example(q: pint.Quantity) -> str:
    """An example of an accepted answer of ``q``'s dimension that does not give ``q`` away."""
    if q.dimensionless:
        return "0.5"
    for _dims, _unit, example in SI.values():
        if Q_(example).dimensionality == q.dimensionality:
            return example
    return f"1 {q.units:~P}"


def _how_far(value: float, target: float) -> str:
    """'too high by 12%', 'too low by x10.5', with a hint when the miss is a power of 1000 (a prefix)."""
    if target == 0:
        return f"off by {value:.3g} (expected zero)"
    if value == 0 or (value > 0) != (target > 0):
        return "wrong sign or zero"
    ratio = value / target
    direction = "too high" if ratio > 1 else "too low"
    if 0.5 <= ratio <= 2:
        return f"{direction} by {abs(ratio - 1) * 100:.3g}%"
    off = max(ratio, 1 / ratio)
    thousands = math.log10(off) / 3
    hint = "; check the unit prefix (k, M, G / m, µ, n)" if abs(thousands - round(thousands)) < 0.005 else ""
    return f"{direction} by x{off:,.0f}{hint}" if off >= 100 else f"{direction} by x{off:.3g}{hint}"


def exercise(id: str, answer: Callable[..., Any] | Any = None, *, tolerance=DEFAULT_TOLERANCE, kind: str = "number",
             choices: Sequence[str] | Mapping[str, str] | None = None, hint: str | None = None, points: float = 1,
             variant: Variant | None = None, cases: Sequence[Mapping[str, Any]] | None = None,
             key: str | None = None) -> Exercise:
    """A checkable exercise: ``q = exercise("q1", lambda: ml.serve(...).itl)``, then ``q.check("7.4 ms")``.

    Parameters
    ----------
    id : str  a short label shown in the feedback and the grades ("lab02.q3")
    answer : callable -> quantity | number | str | Wall, or a value  the expected answer; pass a callable
        (e.g. ``lambda: ml.serve(llama, h100).itl``) so the core computes it when the student checks;
        with ``variant=v`` it takes the student's inputs (``lambda v: ...``); for ``kind='function'`` it is
        the reference function, called with each case's keyword arguments
    tolerance : float, quantity or str  a float is relative (0.05 = 5%); a quantity or string ("0.1 ms")
        absolute; "x2" a factor either way; "order" the same order of magnitude (x3.16); boundaries count
    kind : {'number', 'choice', 'function'}
    choices : list of options (lettered A, B, ...) or {letter: option}  for ``kind='choice'``
    hint : str  shown after a wrong try
    points : float  the exercise's weight in the grades (default 1)
    variant : Variant  from ``variant(...)``: each student gets their own inputs (and answer)
    cases : list of dict  for ``kind='function'``: the keyword arguments of each test call
    key : str  a sealed key written by ``mlsysim-lab assign`` (student notebooks); replaces ``answer``

    Returns
    -------
    Exercise  whose ``check(student_answer)`` returns a ``CheckResult`` (``.correct``, ``.message``)
    """
    return Exercise(id, answer, tolerance=tolerance, kind=kind, choices=choices, hint=hint, points=points,
                    variant=variant, cases=cases, key=key)


def answer_keys() -> list[dict]:
    """The answer key of every exercise built from a callable in this process, in the order built."""
    return [ex.answer_key() for ex in _REGISTRY.values()]


def write_answer_keys(path: str) -> None:
    """Write ``answer_keys()`` as JSON (run by ``assign`` and ``grade`` at the end of the instructor notebook)."""
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"version": 1, "exercises": answer_keys()}, out)


def sealed_key(entry: Mapping, salt: str) -> str:
    """The sealed key of one exercise for a student notebook: the spec, and every variant's expected answer
    with choices replaced by salted hashes."""
    expected = {}
    for variant_key, data in entry["expected"].items():
        if entry["kind"] == "choice":
            data = {"h": keys.digest(salt, entry["id"], variant_key, data["s"])}
        expected[variant_key] = data
    nonce = hashlib.sha256(f"{salt}\x1f{entry['id']}".encode()).hexdigest()[:16]
    return keys.seal({**entry, "expected": expected, "salt": salt}, nonce=nonce)
