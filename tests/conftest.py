"""Shared fixtures: the fixture lab assigned once per session (one kernel), for the author and grade tests."""
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
#: Fixture notebooks are inputs to the grading tests (one is deliberately not JSON), not notebooks for nbval.
collect_ignore_glob = ["fixtures/*"]


@pytest.fixture(scope="session")
def assigned(tmp_path_factory):
    """``assign`` run on ``fixtures/grading/lab_instructor.ipynb``: the Assignment (path, key, warnings)."""
    author = pytest.importorskip("mlsysim_lab.exercises.author")
    return author.assign(FIXTURES / "lab_instructor.ipynb", tmp_path_factory.mktemp("student"), timeout=120)
