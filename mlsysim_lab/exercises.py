"""In-notebook exercises: ``ex = exercise("q1", answer=...)`` then ``ex.check(student_answer)``.

The expected answer is computed by the core when the student checks (pass a callable), so a lab never
hard-codes a number. Numbers are compared with units: "2.1 ms", ``ml.Q_(2100, "us")`` and "0.0021 s"
are the same answer; a time given in gigabytes is told it has the wrong dimension, and a bare number
where a unit is needed is asked for its unit. Choices are letters ("B") or the option's text.
No widget imports: this module works in a plain Python session and in a grader.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pint

from .errors import InputError
from .results import Wall
from .units import SI, Q_, fmt, ureg

#: Relative tolerance when none is given: 2% absorbs rounding to three significant figures.
DEFAULT_TOLERANCE = 0.02


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``correct`` and a ``message`` that says why (never the answer)."""

    id: str
    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return f"{'✅' if self.correct else '❌'} {self.id}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"{'✅' if self.correct else '❌'} **{self.id}**: {self.message}"


def _as_quantity(value: Any, what: str) -> pint.Quantity:
    """A quantity of the package registry from a quantity, a string ("2.1 ms") or a plain number."""
    if isinstance(value, pint.Quantity):
        if value._REGISTRY is not ureg:
            raise InputError(f"{what} was made with another pint registry; use mlsysim_lab.Q_")
        return value
    if isinstance(value, str):
        return Q_(value.strip())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{what} must be a number, a quantity or a string such as '2.1 ms', got {value!r}")
    return Q_(float(value), "")


def _dimension(q: pint.Quantity) -> str:
    return str(q.dimensionality) if not q.dimensionless else "dimensionless"


class Exercise:
    """One checkable question. Build it with ``exercise(...)``."""

    def __init__(self, id: str, answer: Callable[[], Any] | Any, *, tolerance=DEFAULT_TOLERANCE,
                 kind: str = "number", choices: Sequence[str] | Mapping[str, str] | None = None):
        if kind not in ("number", "choice"):
            raise InputError(f"exercise(): kind must be 'number' or 'choice', got {kind!r}")
        if kind == "number" and isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool):
            if not 0 <= tolerance < 1:
                raise InputError(f"exercise(): a relative tolerance is a fraction in [0, 1), got {tolerance!r}")
        elif kind == "number":
            _as_quantity(tolerance, "exercise(): 'tolerance'")
        if isinstance(choices, Mapping):
            self.choices = {str(k).upper(): str(v) for k, v in choices.items()}
        elif choices is not None:
            self.choices = {chr(ord("A") + i): str(v) for i, v in enumerate(choices)}
        else:
            self.choices = None
        self.id, self.answer, self.tolerance, self.kind = id, answer, tolerance, kind

    def expected(self) -> Any:
        """The expected answer, computed now (the core runs if ``answer`` is a callable)."""
        return self.answer() if callable(self.answer) else self.answer

    def check(self, student: Any) -> CheckResult:
        """Compare a student's answer with the expected one; the message says what is wrong."""
        if student is None or (isinstance(student, str) and not student.strip()):
            return CheckResult(self.id, False, "no answer yet")
        if self.kind == "choice":
            return self._check_choice(student)
        return self._check_number(student)

    # ------------------------------------------------------------------------------ numbers
    def _check_number(self, student: Any) -> CheckResult:
        expected = _as_quantity(self.expected(), f"exercise {self.id!r}: the expected answer")
        if np.ndim(expected.magnitude):
            raise InputError(f"exercise {self.id!r}: the expected answer must be one number, not an array")
        try:
            got = _as_quantity(student, "your answer")
        except (InputError, pint.errors.PintError, ValueError, TypeError, SyntaxError, AttributeError):
            return CheckResult(self.id, False, f"could not read {student!r} as a number with a unit, "
                                               f"e.g. '{_example(expected)}'")
        if got.dimensionality != expected.dimensionality:
            if got.dimensionless:
                return CheckResult(self.id, False, f"add a unit: expected a quantity of dimension "
                                                   f"{_dimension(expected)}, e.g. '{_example(expected)}'")
            return CheckResult(self.id, False, f"wrong unit: expected dimension {_dimension(expected)}, got "
                                               f"{_dimension(got)} ({fmt(got)})")
        value, target = float(got.m_as(expected.units)), float(expected.magnitude)
        if isinstance(self.tolerance, (int, float)) and not isinstance(self.tolerance, bool):
            allowed = self.tolerance * abs(target)
            tolerance_text = f"{self.tolerance:.0%}" if self.tolerance else "exact"
        else:
            allowed = float(_as_quantity(self.tolerance, "tolerance").m_as(expected.units))
            tolerance_text = fmt(_as_quantity(self.tolerance, "tolerance"))
        # The 1e-9 relative slack absorbs unit-conversion rounding ("2.1 ms" vs "0.0021 s").
        if abs(value - target) <= allowed + 1e-9 * max(abs(target), abs(value)):
            return CheckResult(self.id, True, f"correct: {fmt(got)}")
        given = student.strip() if isinstance(student, str) else fmt(got, digits=4)
        return CheckResult(self.id, False, f"{_how_far(value, target)} (you gave {given}; tolerance "
                                           f"{tolerance_text})")

    # ------------------------------------------------------------------------------ choices
    def _check_choice(self, student: Any) -> CheckResult:
        expected, got = self._letter(self.expected(), "the expected answer"), self._letter(student, "your answer")
        if got is None:
            options = ", ".join(f"{k} ({v})" for k, v in self.choices.items()) if self.choices else ""
            return CheckResult(self.id, False, f"{student!r} is not one of the choices: {options}")
        shown = f"{got} ({self.choices[got]})" if self.choices else got
        if got == expected:
            return CheckResult(self.id, True, f"correct: {shown}")
        return CheckResult(self.id, False, f"incorrect: you chose {shown}")

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


def exercise(id: str, answer: Callable[[], Any] | Any, *, tolerance=DEFAULT_TOLERANCE, kind: str = "number",
             choices: Sequence[str] | Mapping[str, str] | None = None) -> Exercise:
    """A checkable exercise.

    Parameters
    ----------
    id : str  a short label shown in the feedback ("q1")
    answer : callable() -> quantity | number | str, or a value  the expected answer; pass a callable
        (e.g. ``lambda: ml.serve(llama, h100).itl``) so the core computes it when the student checks
    tolerance : float or Quantity  a float is relative (0.05 = 5%), a quantity or string ("0.1 ms")
        absolute; the boundary counts as correct
    kind : {'number', 'choice'}
    choices : list of options (lettered A, B, ...) or {letter: option}  for ``kind='choice'``

    Returns
    -------
    Exercise  whose ``check(student_answer)`` returns a ``CheckResult`` (``.correct``, ``.message``)
    """
    return Exercise(id, answer, tolerance=tolerance, kind=kind, choices=choices)
