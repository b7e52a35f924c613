"""The error table (text and Markdown), one case explained, and the parity plot.

Pure functions of the rows ``runner.run_all()`` returns; Altair is imported inside ``parity_chart`` only,
so the package and its command line stay light.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from .. import efficiency
from .runner import EXCLUDED, Row, evaluate, find, measurements, summary

#: Largest median and largest single absolute error the held-out split may reach (tests/test_validation.py
#: asserts them; tightened to what the fit reaches, with a little headroom). The worst case, 34.2%, is large-batch
#: decode measured on an H200 (docs/gpu_measurements.md): its kernels do not overlap as max() assumes.
HOLDOUT_MEDIAN_LIMIT = 0.13
HOLDOUT_MAX_LIMIT = 0.36

_SETUP_CALL = {"train": "ml.train({w!r}, ml.cluster({h!r}, gpus={g}), {kw})",
               "serve": "ml.serve({w!r}, {h!r}, {kw})", "inference": "ml.serve({w!r}, {h!r}, {kw})",
               "carbon": "footprint({h!r}, {kw})"}


def fmt_value(value: float, unit: str) -> str:
    """A value as the table shows it: three significant figures, fractions as percentages."""
    if not np.isfinite(value):
        return "n/a"
    if unit == "":
        return f"{value:.1%}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_error(row: Row) -> str:
    return "n/a" if not np.isfinite(row.error) else f"{row.error:+.1%}"


def primary_rows(rows: Iterable[Row]) -> list[Row]:
    """One row per case: its first published metric (the scored one)."""
    seen, out = set(), []
    for r in rows:
        if r.case not in seen:
            seen.add(r.case)
            out.append(r)
    return out


def _label(row: Row) -> str:
    return {"scored": "", "accounting": "accounting", "secondary": "same measurement",
            "excluded": "EXCLUDED"}[row.status]


def table_text(rows: list[Row], *, every_metric: bool = False, width: int = 64) -> str:
    """The error table as plain text: case, split, metric, predicted, published, error."""
    shown = rows if every_metric else primary_rows(rows)
    head = f"{'#':>3} {'case':<{width}} {'split':<5} {'metric':<23} {'predicted':>11} {'published':>11} {'unit':<8} " \
           f"{'error':>8}  note"
    lines = [head, "-" * len(head)]
    index = {m.name: i + 1 for i, m in enumerate(measurements())}
    for r in shown:
        name = r.case if len(r.case) <= width else r.case[:width - 1] + "…"
        lines.append(f"{index.get(r.case, 0):>3} {name:<{width}} {r.split[:4]:<5} {r.metric:<23} "
                     f"{fmt_value(r.predicted, r.unit):>11} {fmt_value(r.published, r.unit):>11} "
                     f"{r.unit or '-':<8} {fmt_error(r):>8}  {_label(r)}")
    return "\n".join(lines)


def summary_text(rows: list[Row]) -> str:
    s = summary(rows)
    out = []
    for split in ("calibration", "holdout"):
        d = s[split]
        out.append(f"{split:<11}: {d['cases']} scored cases, median |error| {d['median']:.1%}, "
                   f"max {d['max']:.1%} ({d['worst']}); {d['excluded']} excluded")
    a = s["accounting"]
    out.append(f"accounting : {a['cases']} carbon cases from the sources' own run time, max |error| {a['max']:.2%}")
    return "\n".join(out)


def exclusions_text() -> str:
    return "\n".join(f"- {name}: {why}" for name, why in EXCLUDED.items())


# ------------------------------------------------------------------------------------------ one case
def _kwargs(inputs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in inputs.items())


def explain_case(name: str) -> str:
    """One case as a student reads it: what was measured, the exact core call, the Iron-Law terms of the
    answer (``result.explain()``), and predicted against published for every metric."""
    m = find(name)
    number = [x.name for x in measurements()].index(m.name) + 1
    result, rows = evaluate(m)
    kw = dict(m.inputs)
    if m.question == "carbon":
        from .runner import carbon_inputs
        kw = carbon_inputs(m)
    call = _SETUP_CALL[m.question].format(w=m.workload, h=m.hardware, g=m.gpus, kw=_kwargs(kw))
    lines = [f"Case {number}: {m.name}  [{m.split}]", "", f"Source: {m.source}"]
    if m.convention:
        lines.append(f"Convention: {m.convention}")
    if m.notes:
        lines.append(f"Notes: {m.notes}")
    lines += ["", f"Setup: {call}", "", result.explain(), "", "Predicted vs published:"]
    for r in rows:
        lines.append(f"  {r.metric:<24} predicted {fmt_value(r.predicted, r.unit):>11}  published "
                     f"{fmt_value(r.published, r.unit):>11} {r.unit:<8} error {fmt_error(r):>8}  "
                     f"{_label(r) or 'scored'}")
    if m.name in EXCLUDED:
        lines += ["", f"Excluded from the error statistics: {EXCLUDED[m.name]}"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ markdown
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def fitted_text() -> list[str]:
    """The fitted defaults as Markdown table lines, with what pins each."""
    lines = ["| default | value | unit | pinned by |", "|---|---|---|---|"]
    for k, v in efficiency.FITTED.items():
        unit, why = efficiency.UNITS.get(k, "fraction"), _md_escape(efficiency.DERIVATION[k])
        lines.append(f"| {k} | {v:g} | {unit} | {why} |")
    for a in (efficiency.MEMORY_BANDWIDTH, efficiency.NETWORK_BANDWIDTH, efficiency.COLLECTIVE_LATENCY,
              efficiency.OVERLAP):
        lines.append(f"| {a.name} (derived, not fitted) | {a.value:g} | | {_md_escape(a.source)} |")
    return lines


def markdown_table(selected: list[Row]) -> list[str]:
    """Markdown lines of an error table: case number, case, metric, predicted, published, unit, error."""
    index = {m.name: i + 1 for i, m in enumerate(measurements())}
    out = ["| # | case | metric | predicted | published | unit | error | note |",
           "|---|---|---|---|---|---|---|---|"]
    for r in selected:
        out.append(f"| {index[r.case]} | {_md_escape(r.case)} | {r.metric} | {fmt_value(r.predicted, r.unit)} | "
                   f"{fmt_value(r.published, r.unit)} | {r.unit or '-'} | {fmt_error(r)} | {_label(r)} |")
    return out


def markdown(rows: list[Row]) -> str:
    """docs/validation.md: how to read it, the summary, the fitted defaults, the error tables, exclusions."""
    s = summary(rows)
    cal, hold = s["calibration"], s["holdout"]
    index = {m.name: i + 1 for i, m in enumerate(measurements())}

    table = markdown_table
    primary = primary_rows(rows)
    lines = [
        "# Validation against published measurements",
        "",
        "<!-- Generated by `python -m mlsysim_lab.validation --docs docs/validation.md`; do not edit by hand. "
        "tests/test_validation.py fails when this file and the suite disagree. -->",
        "",
        f"The core is run on {len(index)} published measurements (`catalog/validation/*.yaml`) with its default "
        "efficiencies; nothing measured is fed back in. Each case's first published metric is scored as "
        "predicted / published - 1. The defaults are fitted on the calibration split only "
        "(`python -m mlsysim_lab.validation --fit`) and checked on the held-out split.",
        "",
        f"- **Calibration**: {cal['cases']} scored cases, median |error| **{cal['median']:.1%}**, "
        f"max {cal['max']:.1%} ({_md_escape(cal['worst'])}); {cal['excluded']} excluded.",
        f"- **Held out**: {hold['cases']} scored cases, median |error| **{hold['median']:.1%}**, "
        f"max {hold['max']:.1%} ({_md_escape(hold['worst'])}); {hold['excluded']} excluded. "
        f"The test suite fails above {HOLDOUT_MEDIAN_LIMIT:.0%} median or {HOLDOUT_MAX_LIMIT:.0%} on any case.",
        f"- **Accounting**: {s['accounting']['cases']} carbon cases take the source's own run time or GPU-hours "
        f"as input, so they check the energy and carbon arithmetic only (max |error| "
        f"{s['accounting']['max']:.2%}); they are not in the statistics above.",
        "",
        "Run one case with its Iron-Law terms: `python -m mlsysim_lab.validation 48` (a number from the table "
        "or part of a name); the whole table: `python -m mlsysim_lab.validation --table`.",
        "",
        "## Which FLOPs, which peak",
        "",
        "- Megatron-LM rows (`hardware_tflops_per_gpu`) count F = 96 B s l h² (1 + s/6h + V/16lh) per "
        "iteration (SC21 eq. 3): the recomputed forward pass included (~8N per token), per GPU.",
        "- PaLM and Llama 3 MFU count 6N + 12 L H Q T per token (PaLM Appendix B: attention included, "
        "recomputation not) over the dense 16-bit peak (TPU v4 275, H100 989 TFLOP/s).",
        "- TensorRT-LLM throughput is output tokens per second per GPU over the whole static batch, prefill "
        "included (batch x output / latency / TP); gpt-fast is per user at batch 1 (output / latency).",
        "",
        "## Fitted defaults (efficiency.py)",
        "",
        *fitted_text(),
        "",
        "## Calibration cases",
        "",
        *table([r for r in primary if r.split == "calibration"]),
        "",
        "## Held-out cases",
        "",
        *table([r for r in primary if r.split == "holdout"]),
        "",
        "## Excluded cases",
        "",
        "Outside the model's scope; shown in the tables, left out of the statistics:",
        "",
        *[f"- **{_md_escape(name)}**: {_md_escape(why)}" for name, why in EXCLUDED.items()],
        "",
        "## The same measurements under other conventions (not scored)",
        "",
        *table([r for r in rows if r not in primary]),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- plot
#: Name of the chart's one dataset (the instruments' convention: widgets.charts.DATASET), so that an
#: instrument can replace its rows in place.
DATASET = "rows"


def parity_data(rows: list[Row], *, band: float = HOLDOUT_MAX_LIMIT, split: str = "all",
                regime: str = "all") -> list[dict[str, Any]]:
    """Chart rows: one ``kind='case'`` row per case with a prediction (its primary metric), filtered by
    ``split`` ('all', 'calibration', 'holdout', 'excluded') and ``regime``, plus ``kind='guide'`` rows for y = x and the
    +/- ``band`` lines across the whole suite's range."""
    index = {m.name: i + 1 for i, m in enumerate(measurements())}
    cases = []
    for r in primary_rows(rows):
        if not (np.isfinite(r.predicted) and r.predicted > 0 and r.published > 0):
            continue
        cases.append(dict(kind="case", case=r.case, number=index.get(r.case, 0), metric=r.metric,
                          unit=r.unit or "fraction", predicted=r.predicted, published=r.published,
                          error=round(100 * r.error, 1), within=bool(abs(r.error) <= band),
                          split="excluded" if r.status == "excluded" else r.split, regime=r.regime,
                          status=r.status))
    values = [v for d in cases for v in (d["predicted"], d["published"])]
    lo, hi = 10 ** math.floor(math.log10(min(values)) - 0.2), 10 ** math.ceil(math.log10(max(values)) + 0.2)
    guides = [dict(kind="guide", line=name, published=x, predicted=x * k)
              for k, name in ((1.0, "y = x"), (1 + band, f"+{band:.0%}"), (max(1 - band, 1e-3), f"-{band:.0%}"))
              for x in (lo, hi)]
    shown = [d for d in cases if split in ("all", d["split"]) and regime in ("all", d["regime"])]
    return shown + guides


def parity_chart(rows, *, width: int = 460, height: int = 460):
    """Predicted against published on log-log axes, one point per case (each in its own unit, so only the
    distance from the diagonal means anything), with y = x and the +/- band lines. ``rows`` are the
    suite's Rows (``run_all()``) or the output of ``parity_data``."""
    import altair as alt  # the lab layer; never imported by the physics

    data = parity_data(rows) if rows and isinstance(rows[0], Row) else list(rows)
    guide_values = [d[k] for d in data if d["kind"] == "guide" for k in ("published", "predicted")]
    scale = alt.Scale(type="log", domain=[min(guide_values), max(guide_values)])
    base = alt.Chart(alt.NamedData(name=DATASET))
    guides = base.transform_filter(alt.datum.kind == "guide").mark_line(strokeDash=[4, 4], color="gray").encode(
        x=alt.X("published:Q", scale=scale), y=alt.Y("predicted:Q", scale=scale), detail="line:N")
    points = base.transform_filter(alt.datum.kind == "case").mark_point(filled=True, size=70).encode(
        x=alt.X("published:Q", scale=scale, title="published (each case in its own unit)"),
        y=alt.Y("predicted:Q", scale=scale, title="predicted by mlsysim-lab"),
        color=alt.Color("split:N", title="split", scale=alt.Scale(domain=["calibration", "holdout", "excluded"])),
        shape=alt.Shape("regime:N", title="regime"),
        tooltip=["number:Q", "case:N", "metric:N", "unit:N", "published:Q", "predicted:Q",
                 alt.Tooltip("error:Q", title="error %"), "split:N"])
    return alt.layer(guides, points).properties(width=width, height=height, datasets={DATASET: data},
                                                title="Parity: predicted vs published (log-log)")
