"""One ``snsm lab all --quick --json`` run per test session, shared by the lab tests."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from snsm_workbench.cli import main


@pytest.fixture(scope="session")
def lab_out(tmp_path_factory):
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def quick_results(lab_out):
    """The parsed JSON list of the CLI's quick run of every experiment (fixed seeds)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["lab", "all", "--quick", "--json", "--out", str(lab_out)])
    assert code == 0
    return {item["experiment"]: item for item in json.loads(buffer.getvalue())}


@pytest.fixture
def figure(quick_results):
    def get(experiment: str) -> dict:
        return quick_results[experiment]["figure"]
    return get


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    """As ``snsm lab`` runs: the lab's tensors are tiny, a thread pool only adds latency."""
    from snsm_workbench.lab.registry import intra_op_threads

    with intra_op_threads(1):
        yield
