"""The browser half of an in-place update, without a browser: Altair's own JupyterChart front end
(its offline bundle, as ``enable_offline`` builds it) rendered by Node with a stub DOM. An instrument
moves a control; the message it sends must change the Vega view's data and scales.
Skipped where Node is not installed."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("vl_convert")
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js to run the widget's JavaScript")

HARNESS = Path(__file__).with_name("js") / "render_widget.mjs"


def test_an_instrument_update_changes_the_rendered_view(tmp_path):
    import altair as alt

    from mlsysim_lab import widgets as mw

    mw.enable_offline()
    assert alt.JupyterChart._is_offline and "esm.sh" not in alt.JupyterChart._esm  # no CDN import left
    inst = mw.MemoryLedgerInstrument(model="Llama-2-70B", context=4096, precision="int4")
    spec = json.loads(json.dumps(inst.jchart.spec))
    # A probe parameter reads the live dataset and the x scale; the widget reports it back as a param.
    spec["params"] = [{"name": "probe", "expr": "join(pluck(data('rows'), 'kind'), ',') + '|' + "
                                                "join(domain('x'), ',')"}]
    state = dict(spec=spec, _params={"probe": None}, _vl_selections={}, debounce_wait=10, max_wait=True,
                 embed_options={"renderer": "none", "actions": False})
    inst.set(precision="fp16")  # 139 GB on an 80 GB device: the OOM row appears, the axis grows
    bundle, state_file, updates = tmp_path / "widget.mjs", tmp_path / "state.json", tmp_path / "updates.json"
    bundle.write_text(alt.JupyterChart._esm, encoding="utf-8")
    state_file.write_text(json.dumps(state), encoding="utf-8")
    updates.write_text(json.dumps(inst.jchart._py_to_js_updates), encoding="utf-8")
    out = subprocess.run([NODE, str(HARNESS), str(bundle), str(state_file), str(updates)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["error"] == ""
    kinds_before, domain_before = report["before"].split("|")
    kinds_after, domain_after = report["after"].split("|")
    assert "oom" not in kinds_before.split(",") and "oom" in kinds_after.split(",")
    assert float(domain_after.split(",")[1]) > 139 > float(domain_before.split(",")[1])
