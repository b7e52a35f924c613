"""The public surface: small, documented, fast to import, and every result the same shape."""
import json
import pickle
import subprocess
import sys

import numpy as np
import pint
import pytest

import mlsysim_lab as ml
from mlsysim_lab.results import Result, Wall

H100 = ml.hardware("H100 SXM")
LLAMA7 = ml.workload("Llama-2-7B")


def test_all_names_exist_are_documented_few_and_never_aliases():
    # One verb per question (the product promises each capability in one line from mlsysim_lab), plus the
    # spec classes, units and errors: about 70 names, no helpers, no aliases (see README, "Layout").
    assert len(ml.__all__) <= 70
    assert len(set(ml.__all__)) == len(ml.__all__)
    objects = {}
    for name in ml.__all__:
        obj = getattr(ml, name)
        if name not in ("__version__", "ureg", "Q_"):
            assert obj.__doc__ and obj.__doc__.strip(), name
            assert id(obj) not in objects, f"{name} aliases {objects.get(id(obj))}"
            objects[id(obj)] = name
    assert callable(ml.memory) and callable(ml.fleet)  # verbs, not their modules


def test_import_loads_no_widget_cli_or_agent_stack():
    code = ("import sys, mlsysim_lab; heavy = [m for m in ('altair', 'ipywidgets', 'anywidget', 'typer', "
            "'mcp', 'pandas', 'jupyter_core') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


SOLVERS = {
    "serve": lambda: ml.serve(LLAMA7, H100, batch=4),
    "serve-cnn": lambda: ml.serve("ResNet-50", H100, batch=4),
    "train": lambda: ml.train(LLAMA7, ml.cluster(H100, gpus=8), tokens=1e9, global_batch_tokens=2**20, zero=3),
    "roofline": lambda: ml.roofline(LLAMA7, H100, batch=4),
    "memory": lambda: ml.memory(LLAMA7, H100, batch=4, context=2048),
    "iron_law": lambda: ml.iron_law(H100, ops="1 TFLOP", bytes="1 GB"),
}


@pytest.mark.parametrize("name", list(SOLVERS))
def test_every_result_honours_the_common_contract(name):
    r = SOLVERS[name]()
    assert isinstance(r, Result)
    for field in r.fields:  # quantities out, never bare floats
        assert isinstance(getattr(r, field), pint.Quantity), field
    for term in r.terms.values():
        assert term.check("[time]")
    assert isinstance(r.bottleneck, Wall)
    text = r.explain()
    assert str(r.bottleneck) in text and "binding wall" in text
    data = json.loads(r.to_json())
    assert data["bottleneck"] == r.bottleneck.value and set(data["fields"]) == set(r.fields)
    again = pickle.loads(pickle.dumps(r))
    assert again.to_dict() == r.to_dict()
    with pytest.raises(AttributeError, match="frozen"):
        r.bottleneck = Wall.COMPUTE
    with pytest.raises(AttributeError, match="has no field"):
        r.no_such_field
    assert "|" in r._repr_markdown_()


def test_results_are_deterministic_and_leave_inputs_alone():
    before = H100.model_dump_json()
    assert ml.serve(LLAMA7, H100, batch=3).to_dict() == ml.serve(LLAMA7, H100, batch=3).to_dict()
    assert H100.model_dump_json() == before


def test_specs_are_frozen():
    with pytest.raises(Exception):
        H100.tdp = "1 W"


@pytest.mark.parametrize("call, message", [
    (lambda: ml.serve(LLAMA7, "H100 SXMM"), "did you mean 'H100 SXM'"),
    (lambda: ml.serve(LLAMA7, H100, batch=0), "'batch' must be > 0"),
    (lambda: ml.serve(LLAMA7, H100, batch=-2), "'batch' must be > 0"),
    (lambda: ml.serve(LLAMA7, H100, batch=float("nan")), "'batch' must be finite"),
    (lambda: ml.serve(LLAMA7, H100, overhead="5 GB"), "'overhead' got 5 GB ([information]); expected [time]"),
    (lambda: ml.serve(LLAMA7, H100, overhead=5), "'overhead' got 5 (a bare number)"),
    (lambda: ml.serve(LLAMA7, H100, precision="fp12"), "unknown precision 'fp12'"),
    (lambda: ml.serve(LLAMA7, "T4", precision="bf16"), "T4 publishes no bf16 peak"),
    (lambda: ml.train(LLAMA7, H100, tokens="1e9 param", global_batch_tokens=4096), "'tokens' got"),
    (lambda: ml.train(LLAMA7, H100, tokens=1e9, global_batch_tokens=4096, zero=4), "'zero' must be one of 0, 1, 2, 3"),
    (lambda: ml.cluster(H100, gpus=0), "'gpus' must be > 0"),
    (lambda: ml.cluster(H100, gpus=12), "do not fill whole nodes of 8"),
])
def test_bad_input_gets_a_clear_error_never_a_number(call, message):
    with pytest.raises(ml.InputError) as err:
        call()
    assert message in str(err.value)


def test_cluster_from_catalog_node():
    c = ml.cluster(H100, gpus=1024)
    assert c.gpus == 1024 and c.per_node == 8 and c.nodes == 128
    assert c.intra_fabric.kind == "nvlink" and c.inter_fabric.kind == "infiniband"
    assert ml.cluster("DGX H100", nodes=2).gpus == 16


def test_array_sweep_gives_array_results():
    r = ml.serve(LLAMA7, H100, batch=np.arange(1, 65))
    assert r.itl.magnitude.shape == (64,)
    assert np.all(np.diff(r.tokens_per_second.magnitude) > 0)


def test_swept_walls_stay_wall_members():
    r = ml.serve(LLAMA7, H100, batch=np.array([1, 8, 4096]))
    assert all(isinstance(w, Wall) for w in r.bottleneck)
    assert r.bottleneck[-1] is Wall.MEMORY_CAPACITY
    roof = ml.roofline(LLAMA7, H100, batch=np.array([1, 4096]))
    assert all(isinstance(w, Wall) for w in roof.bottleneck)
