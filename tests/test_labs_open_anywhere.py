"""Every lab opens anywhere: the generated setup cell (install where missing, Colab's widget manager) and
the "Open in Colab" / "Launch Binder" badges, all from the one repository setting in pyproject.toml.
The setup cell's logic runs here under IPython's own magic transform, with pip and Colab stubbed."""
import importlib.util
import json
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted((ROOT / "labs").glob("*.ipynb"))
spec = importlib.util.spec_from_file_location("badges", ROOT / "tools" / "badges.py")
badges = importlib.util.module_from_spec(spec)
spec.loader.exec_module(badges)
CONFIG = badges.settings()


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_every_lab_starts_with_the_setup_cell_and_both_badges(lab):
    assert badges.problems(lab, CONFIG) == [], "run: python tools/badges.py --write"


def test_the_badges_open_this_lab_at_the_configured_ref():
    cell = badges.badge_cell(CONFIG, ROOT / "labs" / "v1_02_ml_systems.ipynb")
    slug, ref = CONFIG["slug"], CONFIG["ref"]
    links = re.findall(r"\]\((https://[^)]+)\)\]\((https://[^)]+)\)", cell)
    assert links == [
        (badges.COLAB_BADGE, f"https://colab.research.google.com/github/{slug}/blob/{ref}/labs/v1_02_ml_systems.ipynb"),
        (badges.BINDER_BADGE, f"https://mybinder.org/v2/gh/{slug}/{ref}?urlpath=lab/tree/labs/v1_02_ml_systems.ipynb"),
    ]


def test_the_install_names_extras_that_exist_and_binder_installs_the_lab_extra():
    extras = badges.tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    install = re.search(r'%pip install -q "mlsysim-lab\[(\w+)\] @ git\+(\S+)@(\S+)"', badges.setup_block(CONFIG))
    assert install and install[1] in extras and "jupyterlab" not in " ".join(extras[install[1]])
    assert (install[2], install[3]) == (CONFIG["repository"], CONFIG["ref"])
    assert "mlsysim-lab[widgets]" in extras["lab"]  # Binder's JupyterLab gets the same kernel side as Colab
    assert re.search(r'pip install [^\n]*-e "\.\[lab\]"', (ROOT / "binder" / "postBuild").read_text())
    assert re.fullmatch(r"python-3\.\d+\n?", (ROOT / "binder" / "runtime.txt").read_text())


def _run_setup(monkeypatch, *, importable: bool, colab: bool) -> list:
    """Execute the generated block as IPython would (``%pip`` becomes a magic call); return the calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    calls = []
    shell = types.SimpleNamespace(run_line_magic=lambda name, line: calls.append((name, line)))
    if not importable:
        monkeypatch.setitem(sys.modules, "mlsysim_lab", None)  # `import mlsysim_lab` raises ImportError
    if colab:
        output = types.ModuleType("google.colab.output")
        output.enable_custom_widget_manager = lambda: calls.append(("colab", "enable_custom_widget_manager"))
        colab_module = types.ModuleType("google.colab")
        colab_module.output = output
        google = types.ModuleType("google")
        google.colab = colab_module
        for name, module in {"google": google, "google.colab": colab_module, "google.colab.output": output}.items():
            monkeypatch.setitem(sys.modules, name, module)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = TransformerManager().transform_cell(badges.setup_block(CONFIG))
    exec(compile(code, "setup-cell", "exec"), {"get_ipython": lambda: shell})  # noqa: S102
    return calls


def test_the_setup_cell_installs_only_when_the_package_is_missing(monkeypatch):
    assert _run_setup(monkeypatch, importable=True, colab=False) == []  # JupyterLab, Binder, VS Code: nothing
    pip = f'install -q "mlsysim-lab[widgets] @ git+{CONFIG["repository"]}@{CONFIG["ref"]}"'
    assert _run_setup(monkeypatch, importable=False, colab=False) == [("pip", pip)]


def test_the_setup_cell_turns_on_colabs_widget_manager_in_colab_only(monkeypatch):
    assert _run_setup(monkeypatch, importable=True, colab=True) == [("colab", "enable_custom_widget_manager")]
    calls = _run_setup(monkeypatch, importable=False, colab=True)
    assert [name for name, _ in calls] == ["pip", "colab"]


def test_write_is_idempotent_and_keeps_the_labs_own_imports(tmp_path):
    old = ('{"cells": [{"cell_type": "code", "execution_count": null, "id": "c0", "metadata": {}, "outputs": [], '
           '"source": ["try:\\n", "    import mlsysim_lab\\n", "except ImportError:\\n", '
           '"    %pip install -q \\"mlsysim-lab[lab]\\"\\n", "import mlsysim_lab as ml"]}, '
           '{"cell_type": "markdown", "id": "c1", "metadata": {}, "source": ["# Title"]}], '
           '"metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    lab = tmp_path / "v1_99_example.ipynb"
    lab.write_text(old)
    assert badges.problems(lab, CONFIG)
    assert badges.write(lab, CONFIG) is True
    assert badges.problems(lab, CONFIG) == []
    first = lab.read_text()
    assert badges.write(lab, CONFIG) is False and lab.read_text() == first
    cells = json.loads(first)["cells"]
    assert [c["id"] for c in cells] == ["c0", "badges", "c1"]
    assert "".join(cells[0]["source"]) == badges.setup_block(CONFIG) + "import mlsysim_lab as ml"
