"""Predict first: the student commits to an answer before the core reveals the truth.

A ``Prediction`` is either a choice among a few options (which wall binds?) or a number with a unit
(how many ms per token?). Nothing is revealed until the Lock button is pressed; then the inputs freeze
and the reveal says how far off the guess was ("you predicted 20 ms, actual 7.37 ms: off by x2.71,
too high"). The truth comes from a callable evaluated at lock time, so it is always the core's
current answer. Structured input only: no free text. Headless: ``p.lock(answer)``, ``p.revealed_text``.
"""
from __future__ import annotations

import html
from typing import Any, Callable, Sequence

import ipywidgets as W

import mlsysim_lab as ml
from mlsysim_lab.units import fmt

from .controls import CONTROL_LAYOUT, DESCRIPTION_WIDTH

#: Within this factor of the truth a numeric prediction counts as a good estimate.
GOOD_ESTIMATE = 1.5


class Prediction:
    """A locked-in prediction and its reveal.

    Parameters
    ----------
    question : str  shown above the input (plain text)
    answer : callable() -> value, or a value  the truth: a choice (a Wall counts by its name) or a
        quantity/number; called only when the student locks
    choices : list of str  for a multiple-choice prediction (radio buttons)
    unit : str  for a numeric prediction: the unit the student answers in ("ms")
    bounds : (low, high)  allowed range of the numeric input, in ``unit``
    value : the input's starting value
    explanation : str or callable() -> str  shown after the reveal (why the answer is what it is)
    """

    def __init__(self, question: str, answer: Callable[[], Any] | Any, *, choices: Sequence[str] | None = None,
                 unit: str | None = None, bounds: tuple[float, float] = (0.0, 1e12), value=None,
                 explanation: str | Callable[[], str] | None = None):
        if (choices is None) == (unit is None):
            raise ml.InputError("Prediction(): give either choices=[...] (multiple choice) or unit='...' (a number)")
        self.question, self.answer_source, self.explanation = question, answer, explanation
        self.choices, self.unit = (list(choices) if choices is not None else None), unit
        style = dict(style={"description_width": DESCRIPTION_WIDTH}, layout=W.Layout(**CONTROL_LAYOUT))
        if self.choices is not None:
            self.input = W.RadioButtons(options=self.choices, value=value, **style)
        else:
            ml.Q_(1, unit)  # refuses a unit the registry does not know
            low, high = bounds
            start = value if value is not None else low
            self.input = W.BoundedFloatText(value=start, min=low, max=high, description=f"your guess ({unit})",
                                            **style)
        self.lock_button = W.Button(description="Lock my prediction", button_style="primary", icon="lock")
        self.lock_button.on_click(lambda _button: self.lock())
        self.input.observe(self._on_input, names="value")
        self.reveal = W.HTML(layout=W.Layout(max_width="640px"))
        self.locked = False
        self.guess = self.actual = None
        self.correct: bool | None = None
        self.ratio: float | None = None
        self._on_input()
        self.widget = W.VBox([W.HTML(f"<b>Predict first.</b> {html.escape(question)}"), self.input,
                              self.lock_button, self.reveal], layout=W.Layout(max_width="680px"))

    def _on_input(self, _change=None) -> None:
        """The lock is only offered once there is an answer to lock."""
        self.lock_button.disabled = self.locked or self.input.value is None

    def lock(self, answer=None) -> str:
        """Lock the prediction (``answer`` sets the input first, as a test would) and reveal the truth."""
        if self.locked:
            return self.revealed_text
        if answer is not None:
            if self.choices is not None and answer not in self.choices:
                raise ml.InputError(f"Prediction.lock(): {answer!r} is not one of the choices: "
                                    f"{', '.join(self.choices)}")
            if self.choices is None and not self.input.min <= answer <= self.input.max:
                raise ml.InputError(f"Prediction.lock(): {answer!r} is outside [{self.input.min}, {self.input.max}]")
            self.input.value = answer
        if self.input.value is None:
            raise ml.InputError("Prediction.lock(): choose an answer before locking")
        self.guess = self.input.value
        truth = self.answer_source() if callable(self.answer_source) else self.answer_source
        self.locked = True
        self.input.disabled = self.lock_button.disabled = True
        self.lock_button.description = "Locked"
        text = self._judge(truth)
        if self.explanation is not None:
            text += " " + (self.explanation() if callable(self.explanation) else self.explanation)
        self.revealed_text_value = text
        colour = "#1e7b34" if self.correct else "#c0392b"
        self.reveal.value = f'<div style="color:{colour};padding:4px 0" role="status">{html.escape(text)}</div>'
        return text

    def _judge(self, truth) -> str:
        if self.choices is not None:
            self.actual = str(truth)
            self.correct = self.actual == self.guess
            return (f"Correct: {self.actual}." if self.correct
                    else f"Not quite: you predicted {self.guess}; actual: {self.actual}.")
        q = ml.Q_(truth) if isinstance(truth, str) else truth
        self.actual = q.m_as(self.unit) if hasattr(q, "m_as") else float(q)
        guess = ml.Q_(self.guess, self.unit)
        actual_text = fmt(ml.Q_(self.actual, self.unit))
        if self.guess <= 0 or self.actual <= 0:
            self.correct, self.ratio = self.guess == self.actual, None
            return f"You predicted {fmt(guess)}; actual {actual_text}."
        self.ratio = self.guess / self.actual
        off = max(self.ratio, 1 / self.ratio)
        self.correct = off <= GOOD_ESTIMATE
        direction = "too high" if self.ratio > 1 else "too low"
        verdict = "a good estimate" if self.correct else direction
        return f"You predicted {fmt(guess)}; actual {actual_text}: off by x{off:.3g} ({verdict})."

    @property
    def revealed_text(self) -> str:
        """The reveal in words; empty until the prediction is locked."""
        return getattr(self, "revealed_text_value", "") if self.locked else ""

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
