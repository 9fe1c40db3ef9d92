"""Fixtures shared by tests/ and firmware_tests/: the small generated sample is made once per test session."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers import SMALL_CONFIG
from mlflow_server import mlflow_server  # noqa: F401 - a fixture of both suites

_START = time.monotonic()
# Commands run by the tests do not track unless a test asks for it (the `tracking` fixture): an MLflow store costs
# seconds per command. Set here, not only per test, so that module and session fixtures run without tracking too.
os.environ["L1ML_NO_TRACKING"] = "1"
os.environ.pop("MLFLOW_TRACKING_URI", None)


def pytest_collection_modifyitems(config, items):
    """Tests marked `slow` run last (a stable sort keeps the others in their order)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


def pytest_runtest_setup(item):
    """`make test` keeps within its time on a 2-core machine: a `slow` test starts only while the session has used less
    than $L1ML_TEST_BUDGET_S seconds (unset or 0: no limit); past it, slow tests are skipped and say why."""
    budget = float(os.environ.get("L1ML_TEST_BUDGET_S") or 0)
    used = time.monotonic() - _START
    if budget and item.get_closest_marker("slow") is not None and used > budget:
        pytest.skip(f"slow test not started: the session has used {used / 60:.0f} of its {budget / 60:.0f} minutes "
                    "(L1ML_TEST_BUDGET_S; `make test-slow` runs every slow test)")


@pytest.fixture(scope="session")
def small_events(tmp_path_factory) -> Path:
    """configs/data/small.yaml generated once: background mix and the four signals."""
    from l1ml.data.generate import generate

    out = tmp_path_factory.mktemp("small") / "small.h5"
    generate(SMALL_CONFIG, out=out, jobs=2)
    return out



@pytest.fixture(autouse=True)
def no_tracking_by_default(monkeypatch):
    """Tracking off again for each test, whatever a test before it did; the tracking tests turn it on."""
    monkeypatch.setenv("L1ML_NO_TRACKING", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def tracking(monkeypatch):
    """Tracking on, as for a user (to the local store of the runs root, unless the test gives a URI)."""
    monkeypatch.delenv("L1ML_NO_TRACKING", raising=False)
