"""Every lab opens anywhere: its first cell installs mlsysim-lab where it is missing (Colab, a bare kernel)
and turns on Colab's widget manager; its second cell holds "Open in Colab" and "Launch Binder" badges.

Both, and the README's badge line, are generated from ``[tool.mlsysim-lab]`` in pyproject.toml
(``repository``, ``ref``), the one place that names the repository. A lab keeps its own imports after the
generated block of its first cell.

    python tools/badges.py            # check every labs/*.ipynb and README.md; exit 1 and list what is stale
    python tools/badges.py --write    # regenerate the badge cells, the setup blocks and the README line
    python tools/badges.py --write labs/v1_02_ml_systems.ipynb

Standard library only, so it runs before anything is installed.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"
README = ROOT / "README.md"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"

#: Lines of an earlier setup cell that the generated block replaces: comments, ``import sys``, the
#: ``try: import mlsysim_lab / except ImportError: %pip install ...`` guard and the Colab switch.
OLD_SETUP = re.compile(
    r"\A(?:#[^\n]*\n)*(?:import sys\n)?"
    r"try:\n    import mlsysim_lab\nexcept ImportError:\n    [%!]pip install[^\n]*\n"
    r"(?:if \"google\.colab\" in sys\.modules:[^\n]*\n(?:    [^\n]*\n)*)?")


def settings(pyproject: Path = ROOT / "pyproject.toml") -> dict:
    """``repository`` (https://github.com/OWNER/NAME) and ``ref`` (branch, tag or commit) from pyproject."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["mlsysim-lab"]
    repository, ref = config["repository"].rstrip("/"), config["ref"]
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository):
        raise SystemExit(f"{pyproject}: [tool.mlsysim-lab] repository must be https://github.com/OWNER/NAME, "
                         f"got {repository!r}")
    return dict(repository=repository, slug=repository.removeprefix("https://github.com/"), ref=ref)


def setup_block(config: dict) -> str:
    """The generated start of every lab's first cell (the lab's own imports follow it)."""
    return (
        "# Setup: installs mlsysim-lab where it is missing (Colab, a bare kernel) and turns on Colab's widget\n"
        "# manager; in JupyterLab, Binder or VS Code with the package installed it only imports. Safe to re-run.\n"
        "import sys\n"
        "try:\n"
        "    import mlsysim_lab\n"
        "except ImportError:\n"
        f'    %pip install -q "mlsysim-lab[widgets] @ git+{config["repository"]}@{config["ref"]}"\n'
        'if "google.colab" in sys.modules:  # Colab draws third-party widgets (the charts) only with this on\n'
        "    from google.colab import output as colab_output\n"
        "    colab_output.enable_custom_widget_manager()\n")


def badge_cell(config: dict, lab: Path) -> str:
    """Markdown with the two badges, each opening this lab at ``ref``."""
    path = f"{LABS.name}/{lab.name}"
    colab = f"https://colab.research.google.com/github/{config['slug']}/blob/{config['ref']}/{path}"
    binder = f"https://mybinder.org/v2/gh/{config['slug']}/{config['ref']}?urlpath=lab/tree/{path}"
    return f"[![Open In Colab]({COLAB_BADGE})]({colab}) [![Launch Binder]({BINDER_BADGE})]({binder})"


def readme_line(config: dict) -> str:
    """The README's badges: Binder opens the labs folder in JupyterLab, Colab the quick tour."""
    tour = f"{LABS.name}/v1_00_quick_tour.ipynb"
    colab = f"https://colab.research.google.com/github/{config['slug']}/blob/{config['ref']}/{tour}"
    binder = f"https://mybinder.org/v2/gh/{config['slug']}/{config['ref']}?urlpath=lab/tree/{LABS.name}"
    return f"[![Launch Binder]({BINDER_BADGE})]({binder}) [![Open In Colab]({COLAB_BADGE})]({colab})"


def _readme(config: dict, fix: bool) -> list[str]:
    lines = README.read_text(encoding="utf-8").split("\n")
    at = [i for i, line in enumerate(lines) if BINDER_BADGE in line]
    if len(at) != 1:
        return [f"README.md: needs exactly one line with the Binder badge ({BINDER_BADGE}), found {len(at)}"]
    if lines[at[0]] == readme_line(config):
        return []
    if fix:
        lines[at[0]] = readme_line(config)
        README.write_text("\n".join(lines), encoding="utf-8")
        print("updated README.md")
        return []
    return ["README.md: the badge line is stale"]


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _is_badge_cell(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and (COLAB_BADGE in _source(cell) or BINDER_BADGE in _source(cell))


def _is_setup_cell(cell: dict) -> bool:
    return cell["cell_type"] == "code" and bool(OLD_SETUP.match(_source(cell)))


def problems(lab: Path, config: dict | None = None) -> list[str]:
    """What is missing or stale in ``lab`` (empty when its first two cells are what ``--write`` makes)."""
    config = config or settings()
    cells = json.loads(lab.read_text(encoding="utf-8"))["cells"]
    found = []
    if not cells or cells[0]["cell_type"] != "code" or not _source(cells[0]).startswith(setup_block(config)):
        found.append("the first cell is not the generated setup cell (install guard + Colab widget manager)")
    if len(cells) < 2 or _source(cells[1]) != badge_cell(config, lab):
        found.append("the second cell is not the generated 'Open in Colab' / 'Launch Binder' badge cell")
    others = [i for i, cell in enumerate(cells[2:], start=2) if _is_badge_cell(cell) or _is_setup_cell(cell)]
    if others:
        found.append(f"cells {others} repeat the setup or the badges")
    return found


def _new_cell(kind: str, source: str, cell_id: str, taken: set[str], with_ids: bool) -> dict:
    cell = dict(cell_type=kind, metadata={}, source=_lines(source))
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    if with_ids:
        cell["id"] = cell_id if cell_id not in taken else f"{cell_id}-{len(taken)}"
    return cell


def write(lab: Path, config: dict | None = None) -> bool:
    """Put the generated setup block and badge cell in place; True if the file changed."""
    config = config or settings()
    raw = lab.read_text(encoding="utf-8")
    notebook = json.loads(raw)
    cells = notebook["cells"]
    with_ids = (notebook["nbformat"], notebook["nbformat_minor"]) >= (4, 5)
    setup = next((c for c in cells if _is_setup_cell(c)), None)
    if setup is None and cells and cells[0]["cell_type"] == "code":
        setup = cells[0]  # a new lab's imports: the generated block goes on top of them
    cells[:] = [c for c in cells if c is not setup and not _is_badge_cell(c)]
    taken = {c.get("id") for c in cells}
    if setup is None:
        setup = _new_cell("code", setup_block(config), "setup", taken, with_ids)
    else:
        own = OLD_SETUP.sub("", _source(setup), count=1)
        setup["source"] = _lines(setup_block(config) + own)
    cells[:0] = [setup, _new_cell("markdown", badge_cell(config, lab), "badges", taken, with_ids)]
    text = json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"  # nbformat's layout
    if text == raw:
        return False
    lab.write_text(text, encoding="utf-8")
    return True


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", type=Path, help="notebooks (default: labs/*.ipynb)")
    parser.add_argument("--write", action="store_true", help="regenerate instead of checking")
    args = parser.parse_args(argv)
    config = settings()
    labs = args.labs or sorted(LABS.glob("*.ipynb"))
    stale = 0
    if not args.labs:
        for problem in _readme(config, fix=args.write):
            stale += 1
            print(problem)
    for lab in labs:
        if args.write:
            if write(lab, config):
                print(f"updated {_shown(lab)}")
            continue
        for problem in problems(lab, config):
            stale += 1
            print(f"{_shown(lab)}: {problem}")
    if stale:
        print(f"run: python {Path(__file__).relative_to(ROOT)} --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
