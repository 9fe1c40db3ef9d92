"""Fixtures shared by tests/ and firmware_tests/: the small generated sample is made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import SMALL_CONFIG


@pytest.fixture(scope="session")
def small_events(tmp_path_factory) -> Path:
    """configs/data/small.yaml generated once: background mix and the four signals."""
    from l1ml.data.generate import generate

    out = tmp_path_factory.mktemp("small") / "small.h5"
    generate(SMALL_CONFIG, out=out, jobs=2)
    return out

