"""Instruments: controls bound to one core call, a chart updated in place, a status line in words.

An ``Instrument`` holds ipywidgets controls, ``data_fn(**values) -> rows`` (calls the core) and
``chart_fn(rows) -> alt.Chart`` (pure). The chart is built once; when a control moves, the new rows
replace the chart's named dataset in the browser (a few hundred bytes over the comm, no re-embed),
and the chart is rebuilt only when the spec itself changes (a unit column changes, e.g. ms -> s).
The status line says what failed in words as well as colour, and it is recomputed from the current
values on every change, so moving a control back clears it.

Everything works headless: ``inst.set(batch=64)`` moves controls as a test would, ``inst.data()`` and
``inst.chart()`` return the current rows and chart, ``inst.status.text`` the status line.
"""
from __future__ import annotations

import hashlib
import html
import os
import time
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import altair as alt
import ipywidgets as W
import numpy as np
import traitlets

import mlsysim_lab as ml
from mlsysim_lab.results import Wall
from mlsysim_lab.units import fmt

from . import charts
from . import controls as C

#: The word a student reads when a result's wall makes the configuration fail (``fits`` False).
FAILURE_WORDS = {
    Wall.MEMORY_CAPACITY: "DOES NOT FIT", Wall.SRAM: "DOES NOT FIT ON CHIP", Wall.LATENCY_SLO: "MISSES THE SLO",
    Wall.POWER: "THERMAL THROTTLE", Wall.COST: "NEGATIVE ROI", Wall.BUBBLE: "PIPELINE STARVED",
    Wall.CARBON: "OVER THE CARBON BUDGET", Wall.WATER: "OVER THE WATER BUDGET",
    Wall.RELIABILITY: "FAILS BEFORE IT FINISHES", Wall.NETWORK: "NETWORK-STARVED",
    Wall.INGEST: "DATA-STARVED", Wall.PREPROCESSING: "DATA-STARVED", Wall.DATA_GRAVITY: "DATA TOO HEAVY TO MOVE",
    Wall.LIGHT: "BELOW THE SPEED-OF-LIGHT FLOOR",
}
LEVEL_STYLE = {"ok": ("✓", "#1e7b34"), "fail": ("✗", "#c0392b"), "error": ("⚠", "#8a5a00")}


@dataclass(frozen=True)
class Status:
    """One line under an instrument: a level ('ok', 'fail', 'error'), a headline word and details."""

    level: str
    headline: str
    detail: str = ""

    @property
    def text(self) -> str:
        symbol = LEVEL_STYLE[self.level][0]
        return f"{symbol} {self.headline}" + (f": {self.detail}" if self.detail else "")

    def html(self) -> str:
        symbol, colour = LEVEL_STYLE[self.level]
        detail = f": {html.escape(self.detail)}" if self.detail else ""
        return (f'<div style="color:{colour};padding:4px 0;font-size:14px" role="status">'
                f"<b>{symbol} {html.escape(self.headline)}</b>{detail}</div>")


def _margin(result) -> str:
    m = result.margin
    return f" (x{m:.3g} ahead of the next)" if np.ndim(m) == 0 and np.isfinite(m) and m > 1 else ""


def status_of(result, *, x=None, x_name: str = "x") -> Status:
    """The status of a core result in words: the failing wall and the verdict ("needs X, has Y"), or
    the binding wall. For a sweep (arrays), how many points fail and from which ``x`` on."""
    fits = np.asarray(result.fits, dtype=bool)
    walls = [Wall(w) for w in np.ravel(np.asarray(result.bottleneck, dtype=object))]
    if fits.ndim:
        bad = ~fits.ravel()
        if bad.any():
            wall = next(w for w, b in zip(walls, bad) if b)
            where = f" ({x_name} = {charts.number(float(np.ravel(x)[bad.argmax()]))} and beyond)" if x is not None \
                else ""
            return Status("fail", FAILURE_WORDS.get(wall, f"FAILS: {wall}"),
                          f"at {int(bad.sum())} of {bad.size} points{where}")
        names = list(dict.fromkeys(str(w) for w in walls))
        return Status("ok", "OK", f"all {fits.size} points fit; binding wall: {', '.join(names)}")
    wall = walls[0]
    if not fits:
        headline = FAILURE_WORDS.get(wall, f"FAILS: {wall}")
        detail = result.verdict
        if detail.lower().startswith(headline.lower() + ": "):
            detail = detail[len(headline) + 2:]
        return Status("fail", headline, detail)
    parts = [f"binding wall: {wall}{_margin(result)}" if result.terms else "", result.verdict]
    return Status("ok", "OK", "; ".join(p for p in parts if p))


def enable_offline() -> None:
    """Serve the charts' JavaScript from the installed vl-convert instead of a CDN (no internet needed);
    done once per kernel, before the first chart widget is made.

    vl-convert bundles the same JavaScript every time (~2 s); the bundle is kept on disk, keyed by its
    source and the vl-convert version, so only the first kernel on a machine waits for it."""
    import vl_convert as vlc

    bundle = vlc.javascript_bundle

    def remembered(source: str, vl_version: str | None = None) -> str:
        key = hashlib.sha256(f"{vlc.__version__}\n{vl_version}\n{source}".encode()).hexdigest()[:24]
        path = _cache_dir() / f"vega-bundle-{key}.js"
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            text = bundle(source, vl_version=vl_version)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError:  # a read-only home: no cache, same bundle
            pass
        return text

    vlc.javascript_bundle = remembered
    try:
        alt.JupyterChart.enable_offline()
    finally:
        vlc.javascript_bundle = bundle


def show(chart: alt.TopLevelMixin) -> alt.JupyterChart:
    """Display a plain Altair chart offline: a bare chart in a cell loads Vega from a CDN, which fails
    without internet; this one renders through the same widget and local scripts as the instruments."""
    enable_offline()
    return alt.JupyterChart(chart)


def _cache_dir() -> Path:
    """$MLSYSIM_LAB_CACHE, else the XDG cache folder (~/.cache/mlsysim-lab)."""
    override = os.environ.get("MLSYSIM_LAB_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlsysim-lab"


class Instrument:
    """Controls + ``data_fn(**values) -> rows`` + ``chart_fn(rows) -> chart``, kept in sync.

    Parameters
    ----------
    controls : {name: widget}  each widget's ``value`` is passed to ``data_fn`` under ``name``
    data_fn : callable(**values) -> list[dict]  calls the core (``charts.*_data``)
    chart_fn : callable(rows) -> alt.Chart  pure (``charts.*_chart``); reads ``charts.DATASET``
    status_fn : callable(**values) -> Status  (default: no status)
    title : str  shown above the controls
    layout_key : callable(rows) -> hashable  the part of the rows the chart *spec* depends on
    levers : names of the controls a student sees (default: all). The others keep their values, are
        listed as fixed under the title and still move with ``set()``: a lab keeps to three levers
        without building its own instrument.
    """

    def __init__(self, controls: Mapping[str, W.Widget], data_fn: Callable[..., list[dict]],
                 chart_fn: Callable[[list[dict]], alt.TopLevelMixin], *,
                 status_fn: Callable[..., Status] | None = None, title: str = "",
                 layout_key: Callable[[list[dict]], Any] = charts.layout_key, levers: Sequence[str] | None = None):
        self.controls = dict(controls)
        unknown = sorted(set(levers or ()) - set(self.controls))
        if unknown:
            raise ml.InputError(f"{type(self).__name__}: no control named {', '.join(map(repr, unknown))} to use as a "
                                f"lever; controls: {', '.join(self.controls)}")
        self.levers = tuple(levers) if levers else tuple(self.controls)
        self.fixed = tuple(name for name in self.controls if name not in self.levers)
        self.fixed_line = W.HTML(layout=W.Layout(max_width="640px"))
        self.data_fn, self.chart_fn, self.status_fn = data_fn, chart_fn, status_fn
        self.layout_key, self.title = layout_key, title
        self.status = Status("ok", "")
        self.status_line = W.HTML(layout=W.Layout(max_width="640px"))
        self.last_update = 0.0  # seconds the last update took in the kernel (core + rows + push)
        self._rows: list[dict] = []
        self._key = None
        self._jchart: alt.JupyterChart | None = None
        self._widget: W.Box | None = None
        self._holding = False
        self._serial = 0
        self._templates: dict[Any, dict] = {}  # chart spec per layout key, rows left out
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    # ------------------------------------------------------------------------------ headless API
    def values(self) -> dict[str, Any]:
        """The current value of every control, by name (what ``data_fn`` receives)."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values) -> "Instrument":
        """Move controls programmatically (as a student would), then update once."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ml.InputError(f"{type(self).__name__}.set(): no control named {', '.join(map(repr, unknown))}; "
                                f"controls: {', '.join(self.controls)}")
        self._holding = True
        try:
            for name, value in values.items():
                control = self.controls[name]
                try:
                    control.value = value
                except traitlets.TraitError:
                    options = [o[1] if isinstance(o, tuple) else o for o in getattr(control, "options", ())]
                    raise ml.InputError(f"{type(self).__name__}.set(): {name}={value!r} is not an option of "
                                        f"this control; options: {', '.join(map(str, options))}") from None
        finally:
            self._holding = False
        self.update()
        return self

    def data(self) -> list[dict]:
        """The rows the chart shows now."""
        return self._rows

    def chart(self) -> alt.TopLevelMixin:
        """The chart for the current rows, as a plain Altair chart (``.to_dict()`` for tests)."""
        return self.chart_fn(self._rows)

    # ------------------------------------------------------------------------------ updating
    def update(self) -> None:
        """Recompute rows and status from the controls and push them to the chart in place."""
        start = time.perf_counter()
        values = self.values()
        self._before_update(values)
        try:
            rows = self.data_fn(**values)
            status = self.status_fn(**values) if self.status_fn else Status("ok", "")
        except ml.MlsysimError as err:  # a combination with no physical meaning: say so, keep the chart
            rows, status = None, Status("error", "CANNOT COMPUTE", str(err))
        if rows is not None:
            self._rows = rows
            self._push(rows)
        self.status = status
        html_text = status.html()
        if self.status_line.value != html_text:
            self.status_line.value = html_text
        fixed = self._fixed_html(values)
        if self.fixed_line.value != fixed:
            self.fixed_line.value = fixed
        self.last_update = time.perf_counter() - start

    def _fixed_html(self, values: dict[str, Any]) -> str:
        fixed = [f"{name} = {values[name]}" for name in self.fixed]
        return f"<small>fixed: {html.escape(', '.join(fixed))}</small>" if fixed else ""

    def _before_update(self, values: dict[str, Any]) -> None:
        """Hook: enable or disable controls that do not apply to the current values."""

    def _on_change(self, _change) -> None:
        if not self._holding:
            self.update()

    def _push(self, rows: list[dict]) -> None:
        jchart = self._jchart
        if jchart is None:
            return
        key = self.layout_key(rows)
        datasets = (jchart.spec or {}).get("datasets", {})
        if key != self._key or charts.DATASET not in datasets or not jchart.has_trait("_py_to_js_updates"):
            self._replace(key, rows)
            return
        # Fast path: a view already on screen swaps the named dataset's rows (Altair's own
        # setDataValue in its widget JavaScript); the spec is patched too, so a view created later
        # (re-display, page reload) starts from the same rows. The serial makes every push a change.
        datasets[charts.DATASET] = rows
        self._serial += 1
        jchart._py_to_js_updates = [{"namespace": "data", "name": charts.DATASET, "scope": [], "value": rows,
                                     "serial": self._serial}]

    def _replace(self, key, rows: list[dict]) -> None:
        """Slow path, when the spec itself changes (a unit): building an Altair chart costs tens of
        ms, so each layout's spec is built once and reused with new rows when the key comes back."""
        self._key = key
        chart = None
        template = self._templates.get(key)
        if template is None:
            chart = self.chart_fn(rows)
            template = self._remember(key, chart.to_dict())
        if "params" in template or any("params" in part for part in template.get("layer", ())):
            self._jchart.chart = chart or self.chart_fn(rows)  # let Altair wire parameters and selections
            return
        self._jchart.spec = {**template, "datasets": {**template.get("datasets", {}), charts.DATASET: rows}}

    def _remember(self, key, spec: dict) -> dict:
        template = {**spec, "datasets": {k: v for k, v in spec.get("datasets", {}).items() if k != charts.DATASET}}
        self._templates[key] = template
        return template

    # ------------------------------------------------------------------------------ display
    @property
    def jchart(self) -> alt.JupyterChart:
        """The chart widget (made on first use, after ``enable_offline``)."""
        if self._jchart is None:
            enable_offline()
            self._key = self.layout_key(self._rows)
            self._jchart = alt.JupyterChart(self.chart_fn(self._rows))
            self._remember(self._key, self._jchart.spec)
        return self._jchart

    @property
    def widget(self) -> W.VBox:
        """Title, controls, chart and status line, stacked for a narrow screen."""
        if self._widget is None:
            head = [W.HTML(f"<h4 style='margin:4px 0'>{html.escape(self.title)}</h4>")] if self.title else []
            box = W.VBox([self.controls[name] for name in self.levers])
            fixed = [self.fixed_line] if self.fixed else []
            self._widget = W.VBox(head + fixed + [box, self.jchart, self.status_line],
                                  layout=W.Layout(max_width="680px"))
        return self._widget

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.values().items())
        return f"<{type(self).__name__} {values}: {self.status.text}>"


def _cached(solve: Callable) -> Callable:
    """Solve each distinct set of control values once (data and status both read the result)."""
    return lru_cache(maxsize=64)(solve)


def _is_per_sample(model) -> bool:
    return isinstance(ml.workload(model), ml.SampleWorkload)


def _metrics(*pairs) -> str:
    return " · ".join(f"{name} {fmt(q)}" for name, q in pairs)


# ---------------------------------------------------------------------------------------- roofline
class RooflineInstrument(Instrument):
    """Where a model sits on a device's roofline as batch, precision and phase move.

    ``compare`` adds fixed devices' roofs for context. Per-sample models (CNNs) have one phase,
    'inference'; the phase buttons are disabled for them.
    """

    def __init__(self, model: str | None = None, hardware: str | None = None, *, batch: int = 1,
                 precision: str = "fp16", phase: str = "decode", compare: Sequence[str] = (), context: int = 1024,
                 tier=None, kind=None, levers: Sequence[str] | None = None):
        self.compare, self.context = tuple(compare), context
        self._roofline = _cached(self._solve)
        super().__init__(
            dict(model=C.model_picker(model, kind=kind), hardware=C.hardware_picker(hardware, tier=tier),
                 batch=C.pow2_slider(batch, hi=4096, unit="requests"), precision=C.precision_picker(precision),
                 phase=C.choice(["decode", "prefill"], phase, description="phase")),
            self._data_of, charts.roofline_chart, status_fn=self._status_of, title="Roofline", levers=levers)

    def _phase(self, model, phase):
        return "inference" if _is_per_sample(model) else phase

    def _solve(self, model, hardware, batch, precision, phase):
        return ml.roofline(model, hardware, batch=batch, phase=self._phase(model, phase), precision=precision,
                           context=self.context)

    def _before_update(self, values):
        self.controls["phase"].disabled = _is_per_sample(values["model"])

    def _data_of(self, model, hardware, batch, precision, phase):
        devices = [hardware] + [d for d in self.compare if ml.hardware(d).name != hardware]
        return charts.roofline_data(model, devices, batch=batch, phase=self._phase(model, phase),
                                    precision=precision, context=self.context)

    def _status_of(self, model, hardware, batch, precision, phase):
        r = self._roofline(model, hardware, batch, precision, phase)
        m = ml.memory(model, hardware, batch=batch, precision=precision,
                      context=None if _is_per_sample(model) else self.context)
        if not m.fits:
            return Status("fail", "DOES NOT FIT", m.verdict.removeprefix("does not fit: ")
                          + "; this point on the roof cannot be reached")
        side = "below" if r.bound == Wall.MEMORY_BANDWIDTH else "above"
        ratio = float(r.margin)
        return Status("ok", f"bound by {r.bound}",
                      f"intensity {fmt(r.intensity)} is x{ratio:.3g} {side} the ridge ({fmt(r.ridge)}); "
                      f"attainable {fmt(r.attainable.to('FLOP/s'))} of {fmt(r.peak.to('FLOP/s'))} peak")


# ---------------------------------------------------------------------------------------- waterfall
class LatencyWaterfallInstrument(Instrument):
    """The Iron-Law terms of one decode step (ITL) of ``ml.serve``, the binding one marked.

    ``sla`` (e.g. "50 ms") is an ITL target; missing it is a failure the status line names.
    For per-sample models the waterfall is the batch's latency and tensor parallelism is disabled.
    """

    def __init__(self, model: str | None = None, hardware: str | None = None, *, batch: int = 1,
                 precision: str = "fp16", tp: int = 1, prompt_tokens: int = 1024, output_tokens: int = 256,
                 sla=None, tier=None, kind=None, levers: Sequence[str] | None = None):
        self.prompt_tokens, self.output_tokens = prompt_tokens, output_tokens
        self.sla = ml.Q_(sla) if isinstance(sla, str) else sla
        if self.sla is not None and not self.sla.check("[time]"):
            raise ml.InputError(f"LatencyWaterfallInstrument(): 'sla' must be a time, e.g. '50 ms', got {sla!r}")
        self._serve = _cached(self._solve)
        super().__init__(
            dict(model=C.model_picker(model, kind=kind), hardware=C.hardware_picker(hardware, tier=tier),
                 batch=C.pow2_slider(batch, hi=1024, unit="requests"), precision=C.precision_picker(precision),
                 tp=C.choice([1, 2, 4, 8], tp, description="GPUs (TP)")),
            self._data_of, partial(charts.waterfall_chart, title="time"), status_fn=self._status_of,
            title="Where the time goes (Iron Law terms)", levers=levers)

    def _solve(self, model, hardware, batch, precision, tp):
        return ml.serve(model, hardware, batch=batch, precision=precision, tp=tp,
                        prompt_tokens=self.prompt_tokens, output_tokens=self.output_tokens)

    def _before_update(self, values):
        self.controls["tp"].disabled = _is_per_sample(values["model"])

    def _data_of(self, **values):
        r = self._serve(**values)
        return charts.waterfall_data(r, total_label="latency" if _is_per_sample(values["model"]) else "ITL")

    def _status_of(self, **values):
        r = self._serve(**values)
        status = status_of(r)
        if status.level == "fail":
            return status
        if _is_per_sample(values["model"]):
            numbers = _metrics(("latency", r.latency), ("throughput", r.throughput))
            return Status("ok", status.headline, f"{numbers}; {status.detail}")
        if self.sla is not None and r.itl > self.sla:
            return Status("fail", "MISSES THE SLA", f"ITL {fmt(r.itl)} > target {fmt(self.sla)}; "
                          f"binding wall: {r.bottleneck}")
        numbers = _metrics(("TTFT", r.ttft), ("ITL", r.itl), ("throughput", r.tokens_per_second))
        return Status("ok", status.headline, f"{numbers}; {status.detail}")


# ---------------------------------------------------------------------------------------- memory
class MemoryLedgerInstrument(Instrument):
    """What must sit in one device's memory (``ml.memory``): weights, KV cache, activations,
    gradients, optimizer state, against the capacity. ZeRO, recompute and data parallelism apply to
    training only and are disabled for inference; context is disabled for per-sample models."""

    def __init__(self, model: str | None = None, hardware: str | None = None, *, batch: int = 1,
                 context: int = 4096, precision: str = "fp16", mode: str = "inference", zero: int = 0,
                 recompute: str = "none", dp: int = 1, tier=None, kind=None, levers: Sequence[str] | None = None):
        self._memory = _cached(self._solve)
        super().__init__(
            dict(model=C.model_picker(model, kind=kind), hardware=C.hardware_picker(hardware, tier=tier),
                 batch=C.pow2_slider(batch, hi=1024, unit="sequences"),
                 context=C.pow2_slider(context, lo=128, hi=131072, unit="tokens", description="context"),
                 precision=C.precision_picker(precision), mode=C.choice(["inference", "training"], mode,
                                                                        description="mode"),
                 zero=C.choice([0, 1, 2, 3], zero, description="ZeRO stage"),
                 recompute=C.choice(["none", "selective", "full"], recompute, description="recompute"),
                 dp=C.pow2_slider(dp, hi=1024, unit="GPUs", description="data parallel")),
            self._data_of, charts.memory_chart, status_fn=self._status_of, title="Memory ledger (per device)",
            levers=levers)

    def _solve(self, model, hardware, batch, context, precision, mode, zero, recompute, dp):
        return ml.memory(model, hardware, batch=batch, context=None if _is_per_sample(model) else context,
                         precision=precision, mode=mode, zero=zero, recompute=recompute, dp=dp)

    def _before_update(self, values):
        inference = values["mode"] == "inference"
        for name in ("zero", "recompute", "dp"):
            self.controls[name].disabled = inference
        self.controls["context"].disabled = _is_per_sample(values["model"])

    def _data_of(self, **values):
        return charts.memory_data(self._memory(**values))

    def _status_of(self, **values):
        return status_of(self._memory(**values))


# ---------------------------------------------------------------------------------------- sweeps
class SweepInstrument(Instrument):
    """Any core call swept over one input (``x`` = ``xs``, an array) with other inputs on controls.

    ``solve(**values)`` receives the controls' values and ``x`` as an array and returns a result whose
    ``y`` fields are arrays; points that do not fit are drawn as crosses and counted in the status.

    Example: ``SweepInstrument(lambda hardware, batch: ml.serve("Llama-2-7B", hardware, batch=batch),
    x="batch", xs=2 ** np.arange(11), y="tokens_per_second", controls={"hardware": hardware_picker()})``
    """

    def __init__(self, solve: Callable[..., Any], *, x: str, xs, y: str | Sequence[str],
                 controls: Mapping[str, W.Widget], x_title: str | None = None, y_title: str | None = None,
                 log_x: bool = True, log_y: bool = False, title: str = "", levers: Sequence[str] | None = None):
        self.solve, self.x, self.xs = solve, x, xs
        self.y = [y] if isinstance(y, str) else list(y)
        self._sweep = _cached(lambda **values: self.solve(**values, **{self.x: self.xs}))
        chart_fn = partial(charts.sweep_chart, x_title=x_title or x, y_title=y_title or self.y[0], log_x=log_x,
                           log_y=log_y)
        super().__init__(controls, self._data_of, chart_fn, status_fn=self._status_of, title=title, levers=levers)

    def _data_of(self, **values):
        r = self._sweep(**values)
        return charts.sweep_data(self.xs, {field: getattr(r, field) for field in self.y}, fits=r.fits)

    def _status_of(self, **values):
        return status_of(self._sweep(**values), x=self.xs, x_name=self.x)
