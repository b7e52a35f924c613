"""The widget layer, headless: chart specs via to_dict(), instruments moved programmatically, the
wiring audit and the predict-first flow. No browser; the JavaScript side is tested in
test_widgets_js.py."""
import numpy as np
import pytest

pytest.importorskip("altair")
pytest.importorskip("ipywidgets")

import ipywidgets as W  # noqa: E402

import mlsysim_lab as ml  # noqa: E402
from mlsysim_lab import widgets as mw  # noqa: E402
from mlsysim_lab.widgets import charts  # noqa: E402

H100 = "H100 SXM"


@pytest.fixture(autouse=True)
def no_bundling(monkeypatch):
    """Bundling the offline JavaScript takes seconds; here only its call is checked (the bundle itself
    is exercised in test_widgets_js.py)."""
    calls = []
    monkeypatch.setattr(mw.instrument, "enable_offline", lambda: calls.append(1))
    return calls


def layers(spec):
    return spec.get("layer") or spec.get("vconcat")


def titles(spec):
    out = []
    for layer in layers(spec):
        for channel in layer.get("encoding", {}).values():
            if isinstance(channel, dict) and channel.get("title"):
                out.append(channel["title"])
    return out


def rows_of(spec):
    return spec["datasets"][charts.DATASET]


# ------------------------------------------------------------------------------------------ charts
def test_roofline_chart_is_log_log_with_units_roofs_ridges_and_a_labelled_point():
    rows = charts.roofline_data("Llama-2-7B", [H100, "A100 SXM 80GB"], batch=8)
    spec = charts.roofline_chart(rows).to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["line", "point", "point", "text"]
    enc = spec["layer"][0]["encoding"]
    assert enc["x"]["scale"]["type"] == "log" and enc["y"]["scale"]["type"] == "log"
    assert enc["x"]["title"] == "arithmetic intensity (FLOP/B)"
    assert enc["y"]["title"] == "attainable performance (TFLOP/s)"
    assert spec["width"] <= 640
    points = [r for r in rows_of(spec) if r["kind"] == "point"]
    assert {p["device"] for p in points} == {H100, "A100 SXM 80GB"}
    r = ml.roofline("Llama-2-7B", H100, batch=8)
    assert points[0]["x"] == pytest.approx(r.intensity.m_as("FLOP/B"))
    assert points[0]["y"] == pytest.approx(r.attainable.m_as("TFLOP/s"))
    assert "memory bandwidth" in points[0]["label"] and points[1]["label"] == ""
    ridge = [row for row in rows if row["kind"] == "ridge" and row["device"] == H100][0]
    assert ridge["x"] == pytest.approx(r.ridge.m_as("FLOP/B")) and ridge["y"] == pytest.approx(r.peak.m_as("TFLOP/s"))


def test_waterfall_marks_the_binding_term_and_its_total_is_the_core_answer():
    r = ml.serve("Llama-2-7B", H100, batch=8)
    rows = charts.waterfall_data(r, total_label="ITL")
    spec = charts.waterfall_chart(rows).to_dict()
    assert spec["layer"][0]["mark"]["type"] == "bar" and "x2" in spec["layer"][0]["encoding"]
    assert "time (ms)" in titles(spec)
    by_term = {row["term"]: row for row in rows}
    assert by_term["memory (binding)"]["role"] == "binding wall"
    assert by_term["compute (hidden)"]["role"].startswith("overlapped")
    assert by_term["ITL"]["end"] == pytest.approx(r.itl.m_as("ms"))
    assert [row["order"] for row in rows] == list(range(len(rows)))


def test_waterfall_total_matches_training_step_time_with_its_bubble():
    t = ml.train("Llama-2-7B", ml.cluster(H100, gpus=8), tokens=1e9, global_batch_tokens=2**20, pp=2, tp=2)
    rows = charts.waterfall_data(t, total_label="step")
    assert rows[-1]["end"] == pytest.approx(t.step_time.m_as(rows[-1]["unit"]))
    assert any(row["term"].startswith("pipeline bubble") for row in rows)


def test_waterfall_of_an_infeasible_result_says_so_and_refuses_sweeps():
    rows = charts.waterfall_data(ml.serve("Llama-2-70B", H100))
    assert rows[-1]["term"] == "total (does not fit)"
    assert not any(row["role"] == "binding wall" for row in rows)
    with pytest.raises(ml.InputError, match="sweep"):
        charts.waterfall_data(ml.serve("Llama-2-7B", H100, batch=np.array([1, 2])))


def test_memory_ledger_labels_oom_only_when_over_capacity():
    over = charts.memory_chart(charts.memory_data(ml.memory("Llama-2-70B", H100, context=4096))).to_dict()
    fits = charts.memory_chart(charts.memory_data(ml.memory("Llama-2-70B", H100, context=4096,
                                                            precision="int4"))).to_dict()
    oom = [r for r in rows_of(over) if r["kind"] == "oom"]
    assert len(oom) == 1 and oom[0]["label"].startswith("OOM: needs 139 GB, has 80 GB")
    assert not [r for r in rows_of(fits) if "OOM" in str(r.get("label", ""))]
    assert "memory per device (GB)" in titles(over)
    assert [layer["mark"]["type"] for layer in over["layer"]] == ["bar", "tick", "text", "text"]
    m = ml.memory("Llama-2-70B", H100, context=4096)
    parts = [r for r in rows_of(over) if r["kind"] == "part"]
    assert parts[-1]["end"] == pytest.approx(m.total.m_as("GB"))
    assert {r["part"] for r in parts} == {"weights", "KV cache"}


def test_memory_ledger_compares_configurations_and_training_parts():
    rows = charts.memory_data({"ZeRO-0": ml.memory("Llama-2-7B", H100, mode="training", precision="bf16"),
                               "ZeRO-3": ml.memory("Llama-2-7B", H100, mode="training", precision="bf16",
                                                   zero=3, dp=64, recompute="full")})
    assert {r["bar"] for r in rows} == {"ZeRO-0", "ZeRO-3"}
    assert {"gradients", "optimizer state", "activations"} <= {r.get("part") for r in rows}
    assert [r["bar"] for r in rows if r["kind"] == "oom"] == ["ZeRO-0"]


def test_memory_ledger_reads_a_microcontroller_in_its_own_unit():
    rows = charts.memory_data(ml.memory("DS-CNN", "STM32F746", precision="int8"))
    assert rows[0]["unit"] in ("kB", "MB")


def test_sweep_chart_marks_points_that_do_not_fit_in_words():
    batch = 2 ** np.arange(11)
    r = ml.serve("Llama-2-13B", H100, batch=batch)
    rows = charts.sweep_data(batch, {"H100": r.tokens_per_second}, fits=r.fits)
    spec = charts.sweep_chart(rows, x_title="batch", y_title="throughput").to_dict()
    assert {"batch", "throughput (tok/s)"} <= set(titles(spec))
    assert {row["status"] for row in rows} == {"fits", "does not fit"}
    assert spec["layer"][1]["encoding"]["shape"]["scale"]["domain"] == ["fits", "does not fit"]


def test_scaling_breakdown_and_tornado_charts():
    spec = charts.scaling_chart(charts.scaling_data(np.array([8, 64, 512]), ml.Q_(np.array([1e5, 7e5, 4e6]),
                                                                                   "token/s"))).to_dict()
    assert len(spec["vconcat"]) == 2 and all(panel["width"] <= 640 for panel in spec["vconcat"])
    eff = [r for r in rows_of(spec) if r["kind"] == "efficiency"]
    assert eff[0]["y"] == pytest.approx(1.0) and eff[-1]["y"] == pytest.approx(4e6 / 512 / (1e5 / 8))

    cost = charts.breakdown_data({"capex": "1.2e6 USD", "energy": "3e5 USD"}, group="Quebec")
    spec = charts.breakdown_chart(cost, title="cost").to_dict()
    assert "cost (USD)" in titles(spec)
    assert [r["label"] for r in cost if r["kind"] == "total"] == ["1,500,000 USD"]

    def itl(bandwidth_efficiency, efficiency):
        return ml.serve("Llama-2-7B", H100, batch=1, bandwidth_efficiency=bandwidth_efficiency,
                        efficiency=efficiency).itl

    rows = charts.tornado_data(itl, dict(bandwidth_efficiency=0.8, efficiency=0.5),
                               dict(efficiency=0.2, bandwidth_efficiency=0.2))
    assert [r["input"] for r in rows] == ["bandwidth_efficiency", "efficiency"]  # widest first
    assert -1.3 < rows[0]["low"] < -0.5 and -1.3 < rows[0]["high"] < -0.5  # ITL ~ 1 / bandwidth
    assert rows[1]["low"] == pytest.approx(0, abs=1e-9)  # memory-bound: peak does not matter
    spec = charts.tornado_chart(rows, output="ITL").to_dict()
    assert titles(spec)[0].startswith("elasticity of ITL")
    with pytest.raises(ml.InputError, match="span"):
        charts.tornado_data(itl, dict(bandwidth_efficiency=0.8, efficiency=0.5), dict(efficiency=1.5))


def test_layout_key_reads_only_unit_columns():
    assert charts.layout_key([{"x": 1, "unit": "ms", "y_unit": "GB"}, {"x": 2, "unit": "ms"}]) == \
        (("unit", "ms"), ("y_unit", "GB"))


# ------------------------------------------------------------------------------------------ controls
def test_pickers_come_from_the_catalog_and_filter():
    edge = mw.hardware_picker(tier="edge")
    assert edge.options and all(ml.hardware(n).tier == "edge" for n in edge.options)
    assert mw.hardware_picker("h100-sxm").value == H100  # aliases and case folded
    assert set(mw.model_picker(kind="cnn").options) >= {"ResNet-50", "MobileNetV2"}
    with pytest.raises(ml.InputError, match="not among"):
        mw.hardware_picker(H100, tier="tiny")


def test_sliders_show_their_unit():
    batch = mw.pow2_slider(64, unit="requests")
    assert batch.value == 64 and batch.label == "64 requests"
    bw = mw.log_slider(3.35, lo=0.1, hi=10, unit="TB/s", description="bandwidth")
    assert bw.readout.value == "3.35 TB/s"
    bw.slider.value = 1.0
    assert bw.value == pytest.approx(1.0) and bw.readout.value == "1 TB/s" and bw.quantity.check("[information]/[time]")
    with pytest.raises(ml.InputError):
        mw.pow2_slider(48)


# ------------------------------------------------------------------------------------------ instruments
INSTRUMENTS = {
    "roofline": lambda: mw.RooflineInstrument(compare=["A100 SXM 80GB"]),
    "waterfall": lambda: mw.LatencyWaterfallInstrument(),
    "memory": lambda: mw.MemoryLedgerInstrument(),
    "sweep": lambda: mw.SweepInstrument(
        lambda hardware, precision, batch: ml.serve("Llama-2-13B", hardware, batch=batch, precision=precision),
        x="batch", xs=2 ** np.arange(9), y="tokens_per_second",
        controls=dict(hardware=mw.hardware_picker(), precision=mw.precision_picker())),
}
MOVES = {"roofline": dict(batch=64), "waterfall": dict(batch=64), "memory": dict(batch=64),
         "sweep": dict(precision="int8")}


@pytest.mark.parametrize("name", list(INSTRUMENTS))
def test_moving_a_control_updates_the_chart_data_in_place(name, no_bundling):
    inst = INSTRUMENTS[name]()
    jchart = inst.jchart
    assert no_bundling, "the offline bundle is enabled before the first chart widget"
    before, spec_before = inst.data(), jchart.spec
    inst.set(**MOVES[name])
    after = inst.data()
    assert after != before
    assert jchart.spec is spec_before  # same spec, new rows: no rebuild
    assert jchart.spec["datasets"][charts.DATASET] == after
    update = jchart._py_to_js_updates[0]
    assert update["namespace"] == "data" and update["name"] == charts.DATASET and update["value"] == after
    assert inst.chart().to_dict()["datasets"][charts.DATASET] == after
    assert inst.last_update < 0.5
    assert mw.audit(inst) == []


def test_a_unit_change_rebuilds_the_spec_once_then_reuses_it():
    inst = mw.LatencyWaterfallInstrument(model="Llama-2-7B")
    jchart = inst.jchart
    assert "time (ms)" in titles(jchart.spec)
    inst.set(model="GPT-2 Small")
    assert "time (µs)" in titles(jchart.spec) and jchart.spec["datasets"][charts.DATASET] == inst.data()
    inst.set(model="Llama-2-7B")
    assert "time (ms)" in titles(jchart.spec) and jchart.spec["datasets"][charts.DATASET] == inst.data()
    assert len(inst._templates) == 2


def test_status_says_failures_in_words_and_clears_when_the_control_moves_back():
    inst = mw.MemoryLedgerInstrument(model="Llama-2-70B", context=4096)
    assert inst.status.level == "fail" and inst.status.text.startswith("✗ DOES NOT FIT: needs 139 GB, has 80 GB")
    assert "DOES NOT FIT" in inst.status_line.value and "#c0392b" in inst.status_line.value
    inst.set(precision="int4")
    assert inst.status.level == "ok" and "fits: needs" in inst.status.text
    inst.set(precision="fp16")
    assert inst.status.level == "fail"


def test_sla_and_invalid_combinations_are_named_and_reversible():
    inst = mw.LatencyWaterfallInstrument(sla="10 ms")
    inst.set(batch=64)
    assert inst.status.headline == "MISSES THE SLA" and "> target 10 ms" in inst.status.detail
    inst.set(batch=1)
    assert inst.status.level == "ok" and "ITL" in inst.status.detail
    good = inst.data()
    inst.set(model="GPT-2 Small", tp=8)
    assert inst.status.level == "error" and "does not divide GPT-2 Small's 12 attention heads" in inst.status.text
    assert inst.data() == good  # the chart keeps its last good rows
    inst.set(tp=4)
    assert inst.status.level == "ok"


def test_controls_that_do_not_apply_are_disabled():
    inst = mw.MemoryLedgerInstrument()
    assert inst.controls["zero"].disabled and inst.controls["dp"].disabled
    inst.set(mode="training", precision="bf16")
    assert not inst.controls["zero"].disabled
    inst.set(model="ResNet-50")
    assert inst.controls["context"].disabled
    roof = mw.RooflineInstrument(model="ResNet-50")
    assert roof.controls["phase"].disabled and roof.status.level == "ok"


def test_roofline_status_flags_points_that_cannot_fit():
    roof = mw.RooflineInstrument(model="Llama-2-70B")
    assert roof.status.headline == "DOES NOT FIT" and "cannot be reached" in roof.status.detail
    roof.set(hardware="H200 SXM", precision="int4")
    assert roof.status.headline == "bound by memory bandwidth"


def test_sweep_status_counts_failing_points():
    inst = INSTRUMENTS["sweep"]()
    assert inst.status.headline == "DOES NOT FIT" and "batch = " in inst.status.detail


def test_set_names_bad_controls_and_options():
    inst = mw.MemoryLedgerInstrument()
    with pytest.raises(ml.InputError, match="no control named 'batchsize'"):
        inst.set(batchsize=2)
    with pytest.raises(ml.InputError, match="batch=48 is not an option"):
        inst.set(batch=48)


# ------------------------------------------------------------------------------------------ audit
def test_audit_finds_planted_unwired_controls():
    inst = mw.RooflineInstrument()
    assert mw.audit(inst) == []
    ghost = W.IntSlider(description="ghost")
    inst.controls["ghost"] = ghost  # created and registered, never laid out nor observed
    found = mw.audit(inst)
    assert any("ghost" in p and "not displayed" in p for p in found)
    assert any("ghost" in p and "not observed" in p for p in found)
    deaf = W.FloatSlider(description="deaf")
    inst.widget.children = inst.widget.children + (deaf,)  # displayed, wired to nothing
    assert any("'deaf'" in p and "not observed" in p for p in mw.audit(inst))


def test_audit_of_a_hand_built_layout():
    slider, button = W.IntSlider(description="n"), W.Button(description="go")
    slider.observe(lambda change: None, names="value")
    layout = W.VBox([W.HTML("<b>hi</b>"), slider])
    assert mw.audit(layout) == []
    problems = mw.audit({"n": slider, "go": button}, layout=layout)
    assert problems == ["go (Button 'go') is created but not displayed in the layout",
                        "go (Button 'go') is not observed by any update callback"]


# ------------------------------------------------------------------------------------------ predict
def test_choice_prediction_reveals_only_after_lock():
    calls = []

    def truth():
        calls.append(1)
        return ml.serve("Llama-2-7B", H100).bottleneck

    p = mw.Prediction("Which wall binds decode at batch 1?", truth,
                      choices=["compute", "memory bandwidth", "network"])
    assert p.revealed_text == "" and not calls and p.lock_button.disabled  # nothing chosen yet
    assert p.lock("compute") == "Not quite: you predicted compute; actual: memory bandwidth."
    assert p.revealed_text.startswith("Not quite") and p.correct is False and calls == [1]
    assert p.input.disabled and p.lock_button.disabled
    assert p.lock("memory bandwidth").startswith("Not quite")  # locked: the answer cannot change
    with pytest.raises(ml.InputError, match="not one of the choices"):
        mw.Prediction("?", "compute", choices=["compute"]).lock("memory")


def test_number_prediction_reports_the_ratio():
    r = ml.serve("Llama-2-7B", H100)
    p = mw.Prediction("ITL at batch 1, in ms?", lambda: r.itl, unit="ms", bounds=(0.01, 1e4))
    text = p.lock(20)
    assert text.startswith("You predicted 20 ms; actual ") and "(too high)" in text
    assert p.ratio == pytest.approx(20 / r.itl.m_as("ms"))
    close = mw.Prediction("ITL?", lambda: r.itl, unit="us", bounds=(1, 1e6))
    assert "good estimate" in close.lock(r.itl.m_as("us") * 1.2) and close.correct
    with pytest.raises(ml.InputError, match="outside"):
        mw.Prediction("?", r.itl, unit="ms", bounds=(1, 10)).lock(100)
    with pytest.raises(ml.InputError, match="either choices"):
        mw.Prediction("?", 1)


def test_audit_checks_predictions_too():
    p = mw.Prediction("?", "a", choices=["a", "b"])
    assert mw.audit(p) == []
    p.widget.children = p.widget.children + (W.Dropdown(options=["x"], description="orphan"),)
    assert mw.audit(p) == ["a displayed control (Dropdown 'orphan') is not observed by any update callback"]


def test_widgets_render_as_widget_views():
    for obj in (mw.MemoryLedgerInstrument(), mw.Prediction("?", "a", choices=["a", "b"])):
        bundle = obj._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle


@pytest.mark.parametrize("wall, headline", [(ml.Wall.POWER, "THERMAL THROTTLE"), (ml.Wall.COST, "NEGATIVE ROI"),
                                            (ml.Wall.BUBBLE, "PIPELINE STARVED"),
                                            (ml.Wall.LATENCY_SLO, "MISSES THE SLO")])
def test_status_names_every_failing_wall_in_words(wall, headline):
    from mlsysim_lab.results import Result

    failed = Result({}, terms={}, bottleneck=wall, margin=1.3, fits=False, verdict="needs 910 W, has 700 W")
    status = mw.status_of(failed)
    assert status.level == "fail" and status.text == f"✗ {headline}: needs 910 W, has 700 W"
    assert headline in status.html()


def test_tiny_devices_get_their_own_units():
    roof = mw.RooflineInstrument(model="DS-CNN", hardware="STM32F746", precision="int8", tier="tiny", kind="cnn")
    assert roof.status.level == "ok" and roof.data()[0]["y_unit"] in ("GFLOP/s", "MFLOP/s")
    mem = mw.MemoryLedgerInstrument(model="DS-CNN", hardware="STM32F746", precision="int8", tier="tiny",
                                    kind="cnn")
    assert mem.data()[0]["unit"] in ("kB", "MB") and mem.status.level == "ok"


def test_a_chart_with_parameters_is_replaced_through_altair():
    import altair as alt

    def chart_fn(rows):
        unit = charts._unit_of(rows)
        pick = alt.selection_point(fields=["x"], name="pick")
        return alt.Chart(alt.NamedData(name=charts.DATASET)).mark_point().encode(
            x=alt.X("x:Q", title=f"x ({unit})"), y="y:Q").add_params(pick).properties(
            datasets={charts.DATASET: rows})

    size = mw.choice(["small", "large"], description="size")
    inst = mw.Instrument({"size": size}, lambda size: [dict(x=1.0, y=2.0, unit="ms" if size == "small" else "s")],
                         chart_fn)
    jchart = inst.jchart
    inst.set(size="large")
    assert jchart.chart.to_dict()["encoding"]["x"]["title"] == "x (s)" and "pick" in jchart.selections.trait_names()
    inst.set(size="small")
    assert jchart.chart.to_dict()["encoding"]["x"]["title"] == "x (ms)"
    assert mw.audit(inst) == []


def test_levers_show_three_controls_and_list_the_rest_as_fixed():
    inst = mw.MemoryLedgerInstrument("Llama-2-7B", H100, mode="training", levers=["batch", "zero", "recompute"])
    shown = [w for w in inst.widget.children[2].children]
    assert shown == [inst.controls[n] for n in ("batch", "zero", "recompute")]
    assert inst.fixed == ("model", "hardware", "context", "precision", "mode", "dp")
    assert "fixed: model = Llama-2-7B" in inst.fixed_line.value and "mode = training" in inst.fixed_line.value
    assert mw.audit(inst) == []
    before = rows_of(inst.chart().to_dict())
    inst.set(context=512)  # a fixed control still moves from code, and says so
    assert "context = 512" in inst.fixed_line.value and rows_of(inst.chart().to_dict()) != before
    with pytest.raises(ml.InputError, match="no control named 'bach' to use as a lever"):
        mw.RooflineInstrument(levers=["bach"])
    assert mw.RooflineInstrument().fixed == () and mw.RooflineInstrument().fixed_line.value == ""


def test_show_renders_a_plain_chart_offline(no_bundling):
    import altair as alt

    chart = alt.Chart(alt.Data(values=[{"x": 1}])).mark_point().encode(x="x:Q")
    shown = mw.show(chart)
    assert isinstance(shown, alt.JupyterChart) and no_bundling == [1]


@pytest.mark.parametrize("wall, headline", [(ml.Wall.DATA_GRAVITY, "DATA TOO HEAVY TO MOVE"),
                                            (ml.Wall.LIGHT, "BELOW THE SPEED-OF-LIGHT FLOOR")])
def test_data_walls_fail_in_words(wall, headline):
    from mlsysim_lab.results import Result

    failed = Result({}, terms={}, bottleneck=wall, margin=2.0, fits=False, verdict="x")
    assert mw.status_of(failed).text == f"✗ {headline}: x"
