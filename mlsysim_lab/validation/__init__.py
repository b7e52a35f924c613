"""Validation against published measurements: the error table, the parity plot and the fit of the defaults.

``python -m mlsysim_lab.validation CASE`` explains one case; ``--table`` prints the error table;
``--fit`` refits the default efficiencies on the calibration split (see ``efficiency.py``).
"""
from __future__ import annotations

from .runner import EXCLUDED, METRIC_UNITS, Row, evaluate, find, measurements, run_all, summary

__all__ = ["EXCLUDED", "METRIC_UNITS", "Row", "evaluate", "find", "measurements", "run_all", "summary"]
