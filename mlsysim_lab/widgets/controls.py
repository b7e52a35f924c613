"""Controls fed from the catalog: device and model pickers, sliders that say their unit, choices.

Every control is a plain ipywidgets widget with a ``value`` trait (what an instrument observes and
passes to the core); sliders show their unit in the readout, so a student never reads a bare number.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import ipywidgets as W
import traitlets

import mlsysim_lab as ml
from mlsysim_lab.units import fmt

#: Precisions a student picks from; int4/int8 are weight-only on devices without an integer peak.
PRECISIONS = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")
#: Width of every control's description, so a column of controls lines up.
DESCRIPTION_WIDTH = "110px"
#: Controls stretch to the instrument's width but never past a narrow screen.
CONTROL_LAYOUT = dict(width="100%", max_width="600px")


def _style() -> dict:
    return dict(style={"description_width": DESCRIPTION_WIDTH}, layout=W.Layout(**CONTROL_LAYOUT))


#: What a picker shows first when no value is given (if the filter keeps it).
DEFAULTS = {"hardware": "H100 SXM", "workload": "Llama-2-7B"}


def _pick(names: list[str], value: str | None, kind: str) -> str:
    if value is None:
        return DEFAULTS[kind] if DEFAULTS[kind] in names else names[0]
    canonical = getattr(ml, kind)(value).name  # validates the name and maps aliases ("h100" -> "H100 SXM")
    if canonical not in names:
        raise ml.InputError(f"{kind} {canonical!r} is not among this picker's choices: {', '.join(names)}")
    return canonical


def hardware_picker(value: str | None = None, *, tier: str | Iterable[str] | None = None,
                    names: Sequence[str] | None = None, description: str = "hardware") -> W.Dropdown:
    """A dropdown of catalog accelerators, optionally only those of ``tier`` ('datacenter', 'edge', ...)."""
    tiers = {tier} if isinstance(tier, str) else set(tier or ())
    choices = list(names) if names is not None else [
        h.name for h in ml.default_catalog().entries("hardware") if not tiers or h.tier in tiers]
    if not choices:
        raise ml.InputError(f"hardware_picker(): no catalog hardware of tier {sorted(tiers)}")
    return W.Dropdown(options=choices, value=_pick(choices, value, "hardware"), description=description,
                      **_style())


def model_picker(value: str | None = None, *, kind: str | Iterable[str] | None = None,
                 names: Sequence[str] | None = None, description: str = "model") -> W.Dropdown:
    """A dropdown of catalog workloads, optionally only those of ``kind`` ('transformer', 'cnn', ...)."""
    kinds = {kind} if isinstance(kind, str) else set(kind or ())
    choices = list(names) if names is not None else [
        w.name for w in ml.default_catalog().entries("workload") if not kinds or w.kind in kinds]
    if not choices:
        raise ml.InputError(f"model_picker(): no catalog workload of kind {sorted(kinds)}")
    return W.Dropdown(options=choices, value=_pick(choices, value, "workload"), description=description,
                      **_style())


def precision_picker(value: str = "fp16", *, options: Sequence[str] = PRECISIONS,
                     description: str = "precision") -> W.Dropdown:
    """A dropdown of number formats (bytes per value and which datasheet peak applies)."""
    return W.Dropdown(options=list(options), value=value, description=description, **_style())


def choice(options: Sequence, value=None, *, description: str = "") -> W.ToggleButtons:
    """A row of buttons for a few discrete options (phase, mode, ZeRO stage, tensor parallelism)."""
    options = list(options)
    return W.ToggleButtons(options=options, value=options[0] if value is None else value,
                           description=description, style={"description_width": DESCRIPTION_WIDTH,
                                                           "button_width": "auto"},
                           layout=W.Layout(**CONTROL_LAYOUT))


def pow2_slider(value: int = 1, *, lo: int = 1, hi: int = 1024, unit: str = "", description: str = "batch"
                ) -> W.SelectionSlider:
    """A slider over powers of two (batch, GPUs, context) whose readout carries the unit: '64 seq'."""
    if lo < 1 or hi < lo:
        raise ml.InputError(f"pow2_slider(): need 1 <= lo <= hi, got lo={lo}, hi={hi}")
    steps = [2 ** k for k in range(int(math.log2(lo)), int(math.log2(hi)) + 1)]
    options = [(f"{v:,} {unit}".strip(), v) for v in steps]
    if value not in steps:
        raise ml.InputError(f"pow2_slider(): value {value} is not a power of two in [{lo}, {hi}]")
    return W.SelectionSlider(options=options, value=value, description=description, continuous_update=True,
                             **_style())


class LogSlider(W.HBox):
    """A log-scale slider with a readout that shows the unit ("3.35 TB/s"); ``value`` is a float in
    ``unit`` and ``quantity`` the same as a pint quantity."""

    value = traitlets.Float()

    def __init__(self, value: float, *, lo: float, hi: float, unit: str, description: str = "",
                 steps_per_decade: int = 20):
        if not 0 < lo < hi or not lo <= value <= hi:
            raise ml.InputError(f"log_slider(): need 0 < lo <= value <= hi, got {lo}, {value}, {hi}")
        ml.Q_(1, unit)  # refuses a unit the registry does not know
        self.unit = unit
        self.slider = W.FloatLogSlider(value=value, base=10, min=math.log10(lo), max=math.log10(hi),
                                       step=1 / steps_per_decade, readout=False, description=description,
                                       style={"description_width": DESCRIPTION_WIDTH},
                                       layout=W.Layout(flex="1 1 auto"))
        self.readout = W.Label(layout=W.Layout(min_width="90px"))
        super().__init__([self.slider, self.readout], layout=W.Layout(**CONTROL_LAYOUT))
        self.value = self.slider.value
        traitlets.link((self.slider, "value"), (self, "value"))
        self.observe(self._show, names="value")
        self._show()

    @property
    def description(self) -> str:
        return self.slider.description

    @property
    def quantity(self):
        return ml.Q_(self.value, self.unit)

    def _show(self, _change=None) -> None:
        self.readout.value = fmt(self.quantity)


def log_slider(value: float, *, lo: float, hi: float, unit: str, description: str = "",
               steps_per_decade: int = 20) -> LogSlider:
    """A log-scale slider over [lo, hi] in ``unit`` whose readout shows value and unit."""
    return LogSlider(value, lo=lo, hi=hi, unit=unit, description=description, steps_per_decade=steps_per_decade)
