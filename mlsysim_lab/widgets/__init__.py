"""The lab layer: charts, controls, instruments, predict-first widgets and a wiring audit.

Imported on its own (``from mlsysim_lab import widgets``); ``import mlsysim_lab`` never loads it, so
the core stays free of altair and ipywidgets. Needs the lab extra: ``pip install 'mlsysim-lab[lab]'``.
"""
from __future__ import annotations

try:
    import altair  # noqa: F401
    import ipywidgets  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised by a no-extras install
    raise ImportError(f"mlsysim_lab.widgets needs the lab extra ({err.name} is missing): "
                      "pip install 'mlsysim-lab[lab]'") from err

from . import charts, controls
from .audit import audit
from .controls import choice, hardware_picker, log_slider, model_picker, pow2_slider, precision_picker
from .instrument import (Instrument, LatencyWaterfallInstrument, MemoryLedgerInstrument, RooflineInstrument,
                         Status, SweepInstrument, enable_offline, status_of)
from .predict import Prediction

__all__ = [
    "charts", "controls", "audit", "Instrument", "RooflineInstrument", "LatencyWaterfallInstrument",
    "MemoryLedgerInstrument", "SweepInstrument", "Status", "status_of", "enable_offline", "Prediction",
    "hardware_picker", "model_picker", "precision_picker", "pow2_slider", "log_slider", "choice",
]
