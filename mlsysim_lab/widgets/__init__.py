"""The lab layer: charts, controls, instruments, predict-first widgets and a wiring audit.

Imported on its own (``from mlsysim_lab import widgets``); ``import mlsysim_lab`` never loads it, so
the core stays free of altair and ipywidgets. Needs the lab extra: ``pip install 'mlsysim-lab[lab]'``.
"""
from __future__ import annotations

import importlib.util
import sys
import types


def _defer_rfc3987_syntax() -> None:
    """Put off ``rfc3987_syntax`` until a JSON Schema 'iri' format is checked.

    altair imports jsonschema, and jsonschema imports rfc3987_syntax (when installed, as JupyterLab's
    jupyter-events installs it) only to register an 'iri' format checker; that import compiles an Earley
    grammar and costs ~2 s, two thirds of ``import mlsysim_lab.widgets`` (python-jsonschema/jsonschema
    issue #1428). A stand-in module loads the real one on the first use of any of its names.
    """
    name = "rfc3987_syntax"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return

    def real() -> types.ModuleType:
        if not isinstance(sys.modules.get(name), _StandIn):
            return sys.modules[name]
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    class _StandIn(types.ModuleType):
        def __getattr__(self, attr):
            if attr.startswith("__"):  # the import system probing (__path__ ...): not a use
                raise AttributeError(attr)
            return getattr(real(), attr)

    stand_in = _StandIn(name)
    stand_in.is_valid_syntax = lambda *args, **kwargs: real().is_valid_syntax(*args, **kwargs)
    sys.modules[name] = stand_in


_defer_rfc3987_syntax()

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
                         Status, SweepInstrument, enable_offline, show, status_of)
from .predict import Prediction

__all__ = [
    "charts", "controls", "audit", "Instrument", "RooflineInstrument", "LatencyWaterfallInstrument",
    "MemoryLedgerInstrument", "SweepInstrument", "Status", "status_of", "enable_offline", "show", "Prediction",
    "hardware_picker", "model_picker", "precision_picker", "pow2_slider", "log_slider", "choice",
]
