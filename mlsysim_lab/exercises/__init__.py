"""Exercises: students check themselves in the notebook, instructors assign and grade, answers stay hidden.

Split by role, as otter-grader splits its workflow: ``check`` is the student's ``exercise(...)`` /
``.check(answer)``; ``variants`` draws each student's inputs from their ID; ``key`` holds the formats that
cross processes (values, sealed keys, the answers log); ``author`` turns an instructor notebook into a
student notebook (``mlsysim-lab assign``); ``grade`` grades a folder of submissions (``mlsysim-lab grade``);
``kernel`` runs a notebook on a fresh kernel with a time budget. ``import mlsysim_lab.exercises`` loads
only the student's side (no Jupyter, no widgets); ``author`` and ``grade`` need the grade extra
(``pip install 'mlsysim-lab[grade]'``).
"""
from __future__ import annotations

from .check import DEFAULT_TOLERANCE, CheckResult, Exercise, Tolerance, exercise
from .variants import Variant, student, variant

__all__ = ["exercise", "Exercise", "CheckResult", "Tolerance", "DEFAULT_TOLERANCE", "student", "variant", "Variant"]
