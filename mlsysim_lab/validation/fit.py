"""Fit the default efficiencies on the calibration split, never on the held-out one.

The fitted numbers are ``efficiency.FITTED``. The objective is the sum over calibration cases of
log(predicted / published)^2 for each case's scored (primary) metric: a relative error, symmetric in
over- and under-prediction, one term per case so that no measurement counts twice. Fractions are fitted
through a logit and times and sizes through a log, so every trial value stays physical. The minimiser is
Levenberg-Marquardt with a forward-difference Jacobian (Marquardt 1963), started from ``START``; it is
deterministic, so the test suite can refit and compare with the numbers in efficiency.py.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from .. import efficiency
from .runner import EXCLUDED, measurements, predict, published, solve

#: Where the minimiser starts: round numbers from the sources in efficiency.DERIVATION, not from the data.
START: dict[str, float] = {
    "compute nvidia-ampere training": 0.5, "compute nvidia-hopper training": 0.5,
    "compute google-tpu training": 0.5, "compute datacenter inference": 0.6,
    "8-bit attainment": 0.75, "compute nvidia-turing inference": 0.3,
    "compute mcu inference": 0.5, "kv transfer half size": 1e4,
    "layer overhead": 2e-5, "request overhead": 1e-3,
}

#: Significant digits written into efficiency.py (the test compares within half a unit of the last one).
DIGITS = 3


def _is_fraction(key: str) -> bool:
    return key not in efficiency.UNITS


def _to_free(key: str, value: float) -> float:
    return math.log(value / (1.0 - value)) if _is_fraction(key) else math.log(value)


def _from_free(key: str, x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if _is_fraction(key) else math.exp(x)


def calibration_cases():
    """The calibration measurements that are scored (primary metric, not excluded, not accounting)."""
    return [m for m in measurements() if m.split == "calibration" and m.question != "carbon"
            and m.name not in EXCLUDED]


def residuals(values: dict[str, float], cases=None) -> np.ndarray:
    """log(predicted / published) of each calibration case's primary metric with ``values`` as defaults."""
    cases = calibration_cases() if cases is None else cases
    out = np.empty(len(cases))
    with efficiency.trial(values):
        for i, m in enumerate(cases):
            metric = next(iter(m.published))
            out[i] = math.log(predict(m, solve(m), metric) / published(m, metric))
    return out


def fit(start: dict[str, float] | None = None, *, iterations: int = 200, tolerance: float = 1e-12):
    """Levenberg-Marquardt on the calibration split. Returns (fitted values, residuals at the optimum)."""
    keys = list(START)
    cases = calibration_cases()
    x = np.array([_to_free(k, (start or START)[k]) for k in keys])

    def values_of(z):
        return {k: _from_free(k, float(v)) for k, v in zip(keys, z)}

    r = residuals(values_of(x), cases)
    cost, lam, step = float(r @ r), 1e-3, 1e-5
    for _ in range(iterations):
        jac = np.empty((len(r), len(keys)))
        for j in range(len(keys)):
            z = x.copy()
            z[j] += step
            jac[:, j] = (residuals(values_of(z), cases) - r) / step
        g, h = jac.T @ r, jac.T @ jac
        improved = False
        while lam < 1e12:
            # Damped normal equations; the small ridge keeps parameters no case constrains where they are.
            scale = np.diag(h) + 1e-6 * np.max(np.diag(h))
            delta = np.clip(np.linalg.solve(h + lam * np.diag(scale), -g), -2.0, 2.0)
            trial_r = residuals(values_of(x + delta), cases)
            trial_cost = float(trial_r @ trial_r)
            if trial_cost < cost:
                improved = cost - trial_cost > tolerance * max(cost, 1e-30)
                x, r, cost, lam = x + delta, trial_r, trial_cost, max(lam / 10.0, 1e-12)
                break
            lam *= 10.0
        if not improved:
            break
    return values_of(x), r


def rounded(values: dict[str, float], digits: int = DIGITS) -> dict[str, float]:
    """Values to ``digits`` significant figures, as efficiency.py holds them."""
    return {k: float(f"{v:.{digits}g}") for k, v in values.items()}


def within_rounding(fitted: dict[str, float], written: dict[str, float], digits: int = DIGITS) -> dict[str, tuple]:
    """Keys whose written value differs from the fitted one by more than half a unit in the last digit
    (plus 1% of that unit of slack for the minimiser's tolerance); empty when they agree."""
    bad = {}
    for k, v in fitted.items():
        unit = 10.0 ** (math.floor(math.log10(abs(v))) - digits + 1)
        if abs(written[k] - v) > 0.51 * unit:
            bad[k] = (v, written[k])
    return bad


def write(values: dict[str, float], path: Path | None = None) -> Path:
    """Rewrite the FITTED block of efficiency.py with ``values`` (rounded)."""
    path = Path(path or efficiency.__file__)
    text = path.read_text(encoding="utf-8")
    body = "".join(f'    "{k}": {v!r},\n' for k, v in rounded(values).items())
    new, n = re.subn(r"(FITTED: dict\[str, float\] = \{\n).*?(\}\n# END FITTED)", lambda m: m.group(1) + body
                     + m.group(2), text, flags=re.S)
    if n != 1:
        raise RuntimeError(f"{path}: no FITTED block between '# BEGIN FITTED' and '# END FITTED'")
    path.write_text(new, encoding="utf-8")
    return path


def report(values: dict[str, float], r: np.ndarray) -> str:
    """The fitted defaults with their units and what pins them, and the calibration residuals."""
    lines = ["Fitted defaults (calibration split; efficiency.FITTED):"]
    for k, v in rounded(values).items():
        unit = efficiency.UNITS.get(k, "")
        lines.append(f"  {k:<34} {v:<10g} {unit}")
    errs = np.abs(np.expm1(r))  # |predicted / published - 1|, as the error table reports it
    lines.append(f"calibration: {len(r)} cases, median |error| {np.median(errs):.1%}, max {errs.max():.1%}")
    return "\n".join(lines)
