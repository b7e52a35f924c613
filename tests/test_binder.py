"""The Binder environment, built as repo2docker would build it, minus Docker (repo2docker needs a Docker
engine, which CI machines do not run): a fresh virtualenv of the Python that binder/runtime.txt names,
binder/postBuild run in it from the repository root, then every import statement of every lab and the
JupyterLab widget extensions checked there. About a minute (pip downloads and installs JupyterLab)."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
pytestmark = pytest.mark.binder


def lab_imports() -> list[str]:
    """Every import statement in the labs' code cells, as written (IPython magics and shell lines left
    out; Colab's own module, imported only when running there, left out)."""
    statements = {}
    for lab in sorted((ROOT / "labs").glob("*.ipynb")):
        for cell in json.loads(lab.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            source = re.sub(r"^(\s*)[%!].*$", r"\1pass", source, flags=re.M)  # %pip, !ls: not Python
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                    statement = ast.unparse(node)
                    if "google.colab" not in statement:
                        statements.setdefault(statement, lab.name)
    return list(statements)


def test_lab_imports_are_found():
    found = lab_imports()
    assert "import mlsysim_lab as ml" in found and "from mlsysim_lab import widgets as mw" in found


def test_binder_environment_installs_and_imports_everything_the_labs_import(tmp_path):
    version = re.fullmatch(r"python-(3\.\d+)", (BINDER / "runtime.txt").read_text().strip())[1]
    python = sys.executable if f"{sys.version_info[0]}.{sys.version_info[1]}" == version else \
        shutil.which(f"python{version}")
    if python is None:
        pytest.skip(f"binder/runtime.txt asks for Python {version}; this machine has no python{version}")
    venv = tmp_path / "binder"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    # repo2docker runs postBuild from the repository root with its environment first on PATH: so do we.
    build = subprocess.run(["bash", str(BINDER / "postBuild")], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=900)
    assert build.returncode == 0, f"binder/postBuild failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"

    statements = lab_imports()
    script = "\n".join(statements) + "\nprint('imported', len(%r))" % (statements,)
    run = subprocess.run([str(bin_dir / "python"), "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, f"a lab import fails in the Binder environment:\n{run.stderr[-3000:]}"

    # JupyterLab (the one Binder opens) must see the widget manager and anywidget's renderer, prebuilt.
    listing = subprocess.run([str(bin_dir / "jupyter"), "labextension", "list"], env=env, capture_output=True,
                             text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(r"JupyterLab v4\.", text), text
    for extension in ("@jupyter-widgets/jupyterlab-manager", "anywidget"):
        assert re.search(rf"{re.escape(extension)} v\S+ enabled OK", text), f"{extension} missing:\n{text}"
