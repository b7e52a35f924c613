"""Chart builders: ``*_data(...)`` asks the core and returns rows; ``*_chart(rows)`` draws them.

Both halves are pure (no widgets, no I/O), so a test asserts on ``chart.to_dict()`` and an instrument
can keep one chart spec and stream new rows into it. Every chart reads one named dataset
(``DATASET``); layers pick their rows with a ``kind`` column. A chart's spec depends on its rows only
through the columns whose name ends in ``unit`` (``layout_key``): while those stay the same, an
instrument updates the data in place instead of rebuilding the chart.

Numbers are converted to a display unit here (the only place besides ``units.fmt``), never computed:
every value drawn comes from a core result.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import altair as alt
import numpy as np

import mlsysim_lab as ml
from mlsysim_lab.results import TERM_WALL, Wall

#: Plot-area width and height in pixels: with axes and a bottom legend a chart stays under ~640 px,
#: which fits a laptop split screen, Colab and a phone in landscape.
WIDTH, HEIGHT = 520, 280
#: The name of the one dataset every chart reads (instruments replace its rows in place).
DATASET = "rows"

#: Display units, largest first: a value is shown in the largest unit in which it is at least 1.
LADDERS = {
    "[time]": ("day", "h", "min", "s", "ms", "µs", "ns"),
    "[information]": ("PB", "TB", "GB", "MB", "kB", "B"),
    "[compute] / [time]": ("EFLOP/s", "PFLOP/s", "TFLOP/s", "GFLOP/s", "MFLOP/s", "kFLOP/s", "FLOP/s"),
    "[currency]": ("USD",),
}

#: Which Iron-Law term each binding wall stands for (the inverse of ``results.TERM_WALL``, plus the
#: pipeline bubble that training reports).
WALL_TERM = {**{wall: term for term, wall in TERM_WALL.items()}, Wall.BUBBLE: "bubble"}
#: Terms that run concurrently, so only the larger counts (the Iron Law's max); the rest add.
OVERLAPPING = ("compute", "memory")
TERM_LABELS = {"compute": "compute", "memory": "memory", "network": "network", "overhead": "overhead",
               "bubble": "pipeline bubble"}
MEMORY_PARTS = {"weights": "weights", "kv_cache": "KV cache", "activations": "activations",
                "gradients": "gradients", "optimizer": "optimizer state"}
MEMORY_COLOURS = ("#4c78a8", "#f58518", "#72b7b2", "#54a24b", "#b279a2")
FAIL_COLOUR = "#c0392b"
#: Waterfall roles, named in words in the legend so the chart never speaks in colour alone.
ROLES = {"binding": "binding wall", "hidden": "overlapped (hidden by the max)", "adds": "adds to the total",
         "total": "total"}
ROLE_COLOURS = {"binding wall": FAIL_COLOUR, "overlapped (hidden by the max)": "#c8ced3",
                "adds to the total": "#4c78a8", "total": "#34495e"}


# ------------------------------------------------------------------------------------------ helpers
def display_unit(q, ladder: Iterable[str] | None = None) -> str:
    """The unit a student reads ``q`` in: the largest of its ladder in which |q| >= 1 (max over arrays)."""
    ladder = tuple(ladder) if ladder is not None else LADDERS.get(str(q.dimensionality))
    if not ladder:
        return f"{q.to_compact().units:~P}" if np.ndim(q.magnitude) == 0 else f"{q.units:~P}"
    mags = np.abs(np.asarray(q.magnitude, dtype=float))
    biggest = float(np.nanmax(mags)) if mags.size else 0.0
    base = ml.Q_(biggest, q.units)
    for unit in ladder:
        if base.m_as(unit) >= 1:
            return unit
    return ladder[-1]


def number(value: float) -> str:
    """Three significant figures, thousands separated: 0.00123, 4.56, 789, 12,345."""
    if not math.isfinite(value):
        return "∞" if value > 0 else str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def layout_key(rows: list[dict]) -> tuple:
    """The part of ``rows`` a chart's spec depends on: every column whose name ends in ``unit``."""
    return tuple(sorted({(k, v) for row in rows for k, v in row.items() if k.endswith("unit")}))


def _unit_of(rows: list[dict], column: str = "unit", default: str = "") -> str:
    for row in rows:
        if row.get(column):
            return row[column]
    return default


def _titled(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def _base(rows: list[dict]) -> dict:
    """Properties every top-level chart shares: the named dataset, the width, a bottom legend."""
    return dict(data=alt.NamedData(name=DATASET), datasets={DATASET: rows}, width=WIDTH)


def _plain(rows: list[dict]) -> list[dict]:
    """Rows with numpy scalars turned into Python floats and bools (JSON and widget traits want those)."""
    for row in rows:
        for k, v in row.items():
            if isinstance(v, np.generic):
                row[k] = v.item()
    return rows


def _kind(name: str) -> str:
    return f"datum.kind === '{name}'"


def _legend(title=None) -> alt.Legend:
    return alt.Legend(orient="bottom", title=title, direction="horizontal", columns=3, labelLimit=220)


def _scalar(result, what: str) -> None:
    if np.ndim(result.bottleneck):
        raise ml.InputError(f"{what}: needs one configuration, got a sweep (array) result; "
                            "pass scalar inputs, or draw the sweep with sweep_data()")


# ------------------------------------------------------------------------------------------ roofline
def roofline_data(model, hardware, *, batch=1, phase: str = "decode", precision: str = "fp16",
                  context=None) -> list[dict]:
    """Roof lines of one or more devices and where ``model`` sits on each (``ml.roofline``).

    ``hardware`` is one device or a list; the first is the one the operating point is labelled on.
    Rows: ``roof`` (three points per device: the bandwidth slope, the ridge, the flat peak),
    ``ridge`` and ``point`` (the workload's intensity and attainable FLOP/s).
    """
    devices = [hardware] if isinstance(hardware, (str, ml.Hardware)) else list(hardware)
    results = [ml.roofline(model, hw, batch=batch, phase=phase, precision=precision, context=context)
               for hw in devices]
    peaks = ml.Q_(np.array([r.peak.magnitude for r in results]), results[0].peak.units)
    y_unit = display_unit(peaks)
    x_unit = "FLOP/B"
    intensity = results[0].intensity.m_as(x_unit)  # the same on every device: ops and bytes are the model's
    ridges = [r.ridge.m_as(x_unit) for r in results]
    x_lo = 10.0 ** math.floor(math.log10(min([intensity] + ridges)) - 1)
    x_hi = 10.0 ** math.ceil(math.log10(max([intensity] + ridges)) + 1)
    name = ml.workload(model).name
    per_flops = ml.Q_(1.0, "FLOP/s").m_as(y_unit)
    rows = []
    for i, r in enumerate(results):
        device, peak, ridge, bound = r.inputs["hardware"].name, r.peak.m_as(y_unit), ridges[i], str(r.bound)
        # Left of the ridge the roof is the bandwidth slope: intensity x bandwidth (FLOP/B x B/s).
        slope_start = x_lo * r.bandwidth.m_as("B/s") * per_flops
        common = dict(device=device, x_unit=x_unit, y_unit=y_unit)
        rows += [
            dict(kind="roof", x=x_lo, y=slope_start, **common),
            dict(kind="roof", x=ridge, y=peak, **common),
            dict(kind="roof", x=x_hi, y=peak, **common),
            dict(kind="ridge", x=ridge, y=peak, label=f"ridge {number(ridge)} {x_unit}", **common),
            dict(kind="point", x=intensity, y=r.attainable.m_as(y_unit), bound=bound,
                 label=(f"{name} {phase}, batch {number(float(batch))}: bound by {bound}" if i == 0 else ""),
                 **common),
        ]
    return _plain(rows)


def roofline_chart(rows: list[dict]) -> alt.LayerChart:
    """Log-log roofline: a roof per device, its ridge, and the workload's operating point, labelled."""
    x_unit, y_unit = _unit_of(rows, "x_unit", "FLOP/B"), _unit_of(rows, "y_unit", "FLOP/s")
    base = alt.Chart().encode(
        x=alt.X("x:Q", scale=alt.Scale(type="log"), title=_titled("arithmetic intensity", x_unit)),
        y=alt.Y("y:Q", scale=alt.Scale(type="log"), title=_titled("attainable performance", y_unit)),
        color=alt.Color("device:N", legend=_legend()))
    tip = [alt.Tooltip("device:N"), alt.Tooltip("x:Q", title=_titled("intensity", x_unit), format=".3~g"),
           alt.Tooltip("y:Q", title=_titled("attainable", y_unit), format=".3~g")]
    roof = base.mark_line(strokeWidth=2).transform_filter(_kind("roof"))
    ridge = base.mark_point(shape="diamond", size=70, filled=False).encode(tooltip=tip + ["label:N"]) \
        .transform_filter(_kind("ridge"))
    point = base.mark_point(shape="circle", size=140, filled=True, stroke="black", strokeWidth=1) \
        .encode(tooltip=tip + [alt.Tooltip("bound:N", title="bound by")]).transform_filter(_kind("point"))
    label = base.mark_text(align="left", dx=10, dy=-12, fontWeight="bold") \
        .encode(text="label:N", color=alt.value("black")) \
        .transform_filter(_kind("point") + " && datum.label !== ''")
    return alt.layer(roof, ridge, point, label).properties(height=HEIGHT, **_base(rows))


# ------------------------------------------------------------------------------------------ waterfall
def waterfall_data(result, *, total_label: str = "total", unit: str | None = None) -> list[dict]:
    """The Iron-Law terms of one result as a waterfall: compute and memory overlap (only the larger
    counts, the max), every other term adds; the term of the binding wall is marked.

    Rows: ``bar`` (term, start, end, value, role, label) and a ``total`` bar.
    """
    _scalar(result, "waterfall_data()")
    terms = result.terms
    if not terms:
        raise ml.InputError(f"waterfall_data(): a {type(result).__name__} has no terms to draw")
    some = next(iter(terms.values()))
    total_si = max([terms[t].magnitude for t in OVERLAPPING if t in terms] + [0.0]) + \
        sum(q.magnitude for t, q in terms.items() if t not in OVERLAPPING)
    unit = unit or display_unit(ml.Q_(total_si, some.units))
    values = {t: q.m_as(unit) for t, q in terms.items()}
    binding = WALL_TERM.get(result.bottleneck)
    overlap = [t for t in OVERLAPPING if t in values]
    longest = max(overlap, key=lambda t: values[t]) if overlap else None
    rows = []
    for t in overlap:
        role = "binding" if t == binding else ("hidden" if t != longest else "adds")
        rows.append(dict(term=t, start=0.0, end=values[t], value=values[t], role=role))
    end = values[longest] if longest else 0.0
    for t, v in values.items():
        if t in overlap:
            continue
        rows.append(dict(term=t, start=end, end=end + v, value=v, role="binding" if t == binding else "adds"))
        end += v
    rows.append(dict(term=total_label, start=0.0, end=end, value=end, role="total"))
    for order, row in enumerate(rows):
        name = TERM_LABELS.get(row["term"], row["term"])
        tag = {"binding": " (binding)", "hidden": " (hidden)"}.get(row["role"], "")
        if row["role"] == "total" and not _fits(result):
            tag = " (does not fit)"
        row.update(kind="bar", term=name + tag, order=order, role=ROLES[row["role"]],
                   label=f"{number(row['value'])} {unit}", unit=unit)
    return _plain(rows)


def _fits(result) -> bool:
    return bool(np.all(result.fits))


def waterfall_chart(rows: list[dict], *, title: str = "time") -> alt.LayerChart:
    """Horizontal waterfall: one bar per term from where the previous ones end, the total last."""
    unit = _unit_of(rows)
    y = alt.Y("term:N", sort=alt.EncodingSortField("order"), title=None)
    bars = alt.Chart().mark_bar(height=22).encode(
        x=alt.X("start:Q", title=_titled(title, unit)), x2="end:Q", y=y,
        color=alt.Color("role:N", scale=alt.Scale(domain=list(ROLE_COLOURS), range=list(ROLE_COLOURS.values())),
                        legend=_legend()),
        tooltip=[alt.Tooltip("term:N"), alt.Tooltip("value:Q", title=_titled(title, unit), format=".3~g"),
                 alt.Tooltip("role:N")]).transform_filter(_kind("bar"))
    labels = alt.Chart().mark_text(align="left", dx=4, fontSize=11).encode(x="end:Q", y=y, text="label:N")
    plain = labels.transform_filter(_kind("bar") + " && datum.role !== 'binding wall'")
    bold = labels.mark_text(align="left", dx=4, fontSize=11, fontWeight="bold", color=FAIL_COLOUR) \
        .transform_filter(_kind("bar") + " && datum.role === 'binding wall'")
    return alt.layer(bars, plain, bold).properties(height=alt.Step(30), **_base(rows))


# ------------------------------------------------------------------------------------------ memory
def memory_data(result, *, unit: str | None = None) -> list[dict]:
    """What sits in device memory (``ml.memory`` results) against the capacity; an ``OOM`` label when
    the total is over. ``result`` may be a dict {bar label: result} to compare configurations."""
    results = result if isinstance(result, Mapping) else {"per device": result}
    for r in results.values():
        _scalar(r, "memory_data()")
    first = next(iter(results.values()))
    # The unit follows the device's capacity (not the total), so it stays put while a slider moves.
    unit = unit or display_unit(ml.Q_(max(r.capacity.magnitude for r in results.values()), first.capacity.units),
                                LADDERS["[information]"])
    rows = []
    for bar, r in results.items():
        start = 0.0
        for order, (field, name) in enumerate(MEMORY_PARTS.items()):
            value = getattr(r, field).m_as(unit)
            if value <= 0:
                continue
            rows.append(dict(kind="part", bar=bar, part=name, order=order, start=start, end=start + value,
                             value=value, unit=unit))
            start += value
        capacity = r.capacity.m_as(unit)
        rows.append(dict(kind="capacity", bar=bar, x=capacity, label=f"capacity {number(capacity)} {unit}",
                         unit=unit))
        if not r.fits:
            rows.append(dict(kind="oom", bar=bar, x=start,
                             label=f"OOM: needs {number(start)} {unit}, has {number(capacity)} {unit}", unit=unit))
    return _plain(rows)


def memory_chart(rows: list[dict]) -> alt.LayerChart:
    """Stacked horizontal bar per configuration, the capacity as a red rule, ``OOM`` written when over."""
    unit = _unit_of(rows)
    y = alt.Y("bar:N", title=None, sort=None)
    parts = alt.Chart().mark_bar(height=28).encode(
        x=alt.X("start:Q", title=_titled("memory per device", unit)), x2="end:Q", y=y,
        color=alt.Color("part:N", sort=list(MEMORY_PARTS.values()), legend=_legend(),
                        scale=alt.Scale(domain=list(MEMORY_PARTS.values()), range=list(MEMORY_COLOURS))),
        order="order:Q",
        tooltip=["part:N", alt.Tooltip("value:Q", title=_titled("size", unit), format=".3~g")]) \
        .transform_filter(_kind("part"))
    capacity = alt.Chart().mark_tick(color=FAIL_COLOUR, thickness=3, size=40).encode(
        x="x:Q", y=y, tooltip=["label:N"]).transform_filter(_kind("capacity"))
    cap_label = alt.Chart().mark_text(align="left", dx=4, dy=22, color=FAIL_COLOUR, fontSize=11).encode(
        x="x:Q", y=y, text="label:N").transform_filter(_kind("capacity"))
    oom = alt.Chart().mark_text(align="right", dy=-22, color=FAIL_COLOUR, fontWeight="bold").encode(
        x="x:Q", y=y, text="label:N").transform_filter(_kind("oom"))
    return alt.layer(parts, capacity, cap_label, oom).properties(height=alt.Step(80), **_base(rows))


# ------------------------------------------------------------------------------------------ sweeps
def _magnitudes(values, unit: str | None):
    """(floats, unit) for a quantity, a quantity string or a plain array (unit '')."""
    if isinstance(values, str):
        values = ml.Q_(values)
    if hasattr(values, "units"):
        unit = unit if unit is not None else display_unit(values)
        return np.atleast_1d(np.asarray(values.m_as(unit), dtype=float)), unit
    return np.atleast_1d(np.asarray(values, dtype=float)), unit or ""


def sweep_data(x, ys: Mapping[str, Any], *, x_unit: str | None = None, y_unit: str | None = None,
               fits=None) -> list[dict]:
    """Rows {x, y, series} for a line sweep: ``x`` an array (or quantity), ``ys`` {series: array or
    quantity} from a core call with array inputs. ``fits`` (bool array) marks points that do not fit."""
    xs, x_unit = _magnitudes(x, x_unit)
    first = next(iter(ys.values()))
    if y_unit is None and hasattr(first, "units"):
        y_unit = display_unit(first)
    rows = []
    ok = np.broadcast_to(np.asarray(True if fits is None else fits, dtype=bool), xs.shape)
    for series, values in ys.items():
        vals, unit = _magnitudes(values, y_unit)
        vals = np.broadcast_to(vals, xs.shape)
        rows += [dict(kind="line", x=float(a), y=float(b), series=series,
                      status="fits" if f else "does not fit", x_unit=x_unit, y_unit=unit)
                 for a, b, f in zip(xs, vals, ok)]
    return _plain(rows)


def sweep_chart(rows: list[dict], *, x_title: str = "x", y_title: str = "y", log_x: bool = True,
                log_y: bool = False) -> alt.LayerChart:
    """Generic line sweep: one line per series; points that do not fit drawn hollow and named so."""
    x_unit, y_unit = _unit_of(rows, "x_unit"), _unit_of(rows, "y_unit")
    base = alt.Chart().encode(
        x=alt.X("x:Q", title=_titled(x_title, x_unit), scale=alt.Scale(type="log" if log_x else "linear",
                                                                      nice=False)),
        y=alt.Y("y:Q", title=_titled(y_title, y_unit), scale=alt.Scale(type="log" if log_y else "linear")),
        color=alt.Color("series:N", legend=_legend()))
    line = base.mark_line().transform_filter(_kind("line"))
    points = base.mark_point(size=50, filled=True).encode(
        shape=alt.Shape("status:N", scale=alt.Scale(domain=["fits", "does not fit"], range=["circle", "cross"]),
                        legend=alt.Legend(orient="bottom", title=None, symbolFillColor="gray")),
        tooltip=["series:N", alt.Tooltip("x:Q", title=_titled(x_title, x_unit), format=".4~g"),
                 alt.Tooltip("y:Q", title=_titled(y_title, y_unit), format=".4~g"), "status:N"]) \
        .transform_filter(_kind("line"))
    return alt.layer(line, points).properties(height=HEIGHT, **_base(rows))


def scaling_data(x, throughput, *, efficiency=None, series: str = "", x_unit: str | None = None) -> list[dict]:
    """Rows for a scaling curve: throughput and efficiency against GPUs (or batch). ``efficiency``
    defaults to throughput per x relative to the first point (1.0 = perfectly linear)."""
    xs, x_unit = _magnitudes(x, x_unit)
    tput, y_unit = _magnitudes(throughput, None)
    if efficiency is None:
        per = tput / xs
        efficiency = per / per[0]
    eff, _ = _magnitudes(efficiency, "")
    common = dict(series=series, x_unit=x_unit)
    return ([dict(kind="throughput", x=float(a), y=float(b), y_unit=y_unit, **common) for a, b in zip(xs, tput)]
            + [dict(kind="efficiency", x=float(a), y=float(b), **common) for a, b in zip(xs, eff)])


def scaling_chart(rows: list[dict], *, x_title: str = "GPUs", y_title: str = "throughput") -> alt.VConcatChart:
    """Two stacked panels sharing x (log): throughput (log) above, efficiency (0-100 %) below."""
    x_unit, y_unit = _unit_of(rows, "x_unit"), _unit_of(rows, "y_unit")
    x = alt.X("x:Q", scale=alt.Scale(type="log", nice=False), title=_titled(x_title, x_unit))
    colour = alt.Color("series:N", legend=_legend())
    top = alt.Chart().mark_line(point=True).encode(
        x=x, y=alt.Y("y:Q", scale=alt.Scale(type="log"), title=_titled(y_title, y_unit)), color=colour,
        tooltip=[alt.Tooltip("x:Q", format=",.0f"), alt.Tooltip("y:Q", format=".3~s")]) \
        .transform_filter(_kind("throughput")).properties(width=WIDTH, height=HEIGHT * 2 // 3)
    bottom = alt.Chart().mark_line(point=True).encode(
        x=x, y=alt.Y("y:Q", title="scaling efficiency (%)", axis=alt.Axis(format="%"),
                     scale=alt.Scale(domain=[0, 1.05])), color=colour,
        tooltip=[alt.Tooltip("x:Q", format=",.0f"), alt.Tooltip("y:Q", format=".1%")]) \
        .transform_filter(_kind("efficiency")).properties(width=WIDTH, height=HEIGHT // 2)
    return alt.vconcat(top, bottom, data=alt.NamedData(name=DATASET)).properties(datasets={DATASET: rows})


# ------------------------------------------------------------------------------------------ breakdowns
def breakdown_data(items, *, group: str = "", unit: str | None = None) -> list[dict]:
    """Rows {item, value, group} of a cost, carbon or energy breakdown: ``items`` is {name: quantity}
    or a result whose ``terms`` are the items (e.g. USD terms). Call once per group and add the lists."""
    if hasattr(items, "terms"):
        _scalar(items, "breakdown_data()")
        items = items.terms
    quantities = {k: (ml.Q_(v) if isinstance(v, str) else v) for k, v in items.items()}
    if unit is None:
        total = sum(q.magnitude for q in quantities.values())
        unit = display_unit(ml.Q_(total, next(iter(quantities.values())).units))
    rows, start = [], 0.0
    for order, (name, q) in enumerate(quantities.items()):
        value = q.m_as(unit)
        rows.append(dict(kind="item", item=name, group=group or "total", order=order, start=start,
                         end=start + value, value=value, unit=unit))
        start += value
    rows.append(dict(kind="total", group=group or "total", x=start, label=f"{number(start)} {unit}", unit=unit))
    return _plain(rows)


def breakdown_chart(rows: list[dict], *, title: str = "cost") -> alt.LayerChart:
    """Stacked horizontal bars of named items per group, with the group total written at the end."""
    unit = _unit_of(rows)
    y = alt.Y("group:N", title=None, sort=None)
    bars = alt.Chart().mark_bar(height=26).encode(
        x=alt.X("start:Q", title=_titled(title, unit)), x2="end:Q", y=y,
        color=alt.Color("item:N", legend=_legend(), sort=alt.EncodingSortField("order")),
        tooltip=["group:N", "item:N", alt.Tooltip("value:Q", title=_titled(title, unit), format=".3~g")]) \
        .transform_filter(_kind("item"))
    totals = alt.Chart().mark_text(align="left", dx=4).encode(x="x:Q", y=y, text="label:N") \
        .transform_filter(_kind("total"))
    return alt.layer(bars, totals).properties(height=alt.Step(40), **_base(rows))


def tornado_data(metric: Callable[..., Any], base: Mapping[str, Any], spans: Mapping[str, float], *,
                 measure: str = "elasticity") -> list[dict]:
    """Sensitivity of ``metric(**base)`` to each input moved down and up by ``spans[name]`` (0.2 = ±20%).

    ``metric`` calls the core and returns a quantity or a number. Rows {input, low, high}: the
    elasticity (relative change of the output / relative change of the input; -1 = inversely
    proportional, 0 = no effect) or, with ``measure='percent'``, the output's change in percent.
    """
    if measure not in ("elasticity", "percent"):
        raise ml.InputError(f"tornado_data(): measure must be 'elasticity' or 'percent', got {measure!r}")
    y0 = _value(metric(**base))
    rows = []
    for name, span in spans.items():
        if not 0 < span < 1:
            raise ml.InputError(f"tornado_data(): span of {name!r} must be in (0, 1), got {span!r}")
        ends = {}
        for side, factor in (("low", 1 - span), ("high", 1 + span)):
            change = _value(metric(**{**base, name: base[name] * factor})) / y0 - 1
            ends[side] = change / (factor - 1) if measure == "elasticity" else 100 * change
        rows.append(dict(kind="bar", input=name, low=ends["low"], high=ends["high"],
                         spread=abs(ends["high"] - ends["low"]), span=f"±{span:.0%}",
                         unit="" if measure == "elasticity" else "%"))
    rows.sort(key=lambda r: -r["spread"])
    for order, row in enumerate(rows):
        row["order"] = order
    return _plain(rows)


def _value(y) -> float:
    return float(y.magnitude) if hasattr(y, "magnitude") else float(y)


def tornado_chart(rows: list[dict], *, output: str = "output") -> alt.LayerChart:
    """Tornado: per input, a bar from 0 to the effect of moving it down and one to moving it up,
    widest first. Elasticity -1 reads "the output is inversely proportional to this input"."""
    unit = _unit_of(rows)
    title = f"change in {output} (%)" if unit == "%" else f"elasticity of {output} (d ln y / d ln x)"
    long = alt.Chart().transform_filter(_kind("bar")).transform_fold(["low", "high"], as_=["side", "effect"])
    y = alt.Y("input:N", sort=alt.EncodingSortField("order"), title=None)
    bars = long.mark_bar(height=12).encode(
        x=alt.X("effect:Q", title=title), x2=alt.datum(0), y=y, yOffset=alt.YOffset("side:N", sort=["low", "high"]),
        color=alt.Color("side:N", scale=alt.Scale(domain=["low", "high"], range=["#4c78a8", "#f58518"]),
                        legend=alt.Legend(orient="bottom", title="input moved",
                                          labelExpr="datum.label === 'low' ? 'down' : 'up'")),
        tooltip=["input:N", "side:N", "span:N", alt.Tooltip("effect:Q", format=".3~g")])
    zero = alt.Chart().mark_rule(color="black").encode(x=alt.datum(0))
    return alt.layer(bars, zero).properties(height=alt.Step(16), **_base(rows))  # step of each up/down bar
