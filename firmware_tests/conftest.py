"""Fixtures of the firmware suite: small trained runs, converted to hls4ml projects and compiled with g++."""

from __future__ import annotations

import shutil

import pytest

from helpers import write_yaml

RUN = """
name: fw_{kind}
seed: 4
data: {{events: {events}, signals: [Ato4l, LQ_btau]}}
model:
  kind: {kind}
  encoder: [{{units: 16}}, {{units: 8}}]
  latent: 3
training: {{epochs: 2, batch_size: 32}}
evaluation: {{rates_khz: [3000]}}
# 2 epochs and 20 test events per signal: the float and quantised models differ by more than the defaults allow
verify: {{auc_tolerance: 0.15, efficiency_tolerance: 0.3}}
"""


def pytest_collection_modifyitems(config, items):
    if shutil.which("g++") is None:
        skip = pytest.mark.skip(reason="g++ is not installed (make test installs it)")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def csim_cache(tmp_path_factory):
    """A C-simulation cache of this test session only: every project compiles once here, then comes from the cache."""
    import os

    old = os.environ.get("L1ML_CACHE")
    os.environ["L1ML_CACHE"] = str(tmp_path_factory.mktemp("l1ml_cache"))
    yield
    if old is None:
        os.environ.pop("L1ML_CACHE", None)
    else:
        os.environ["L1ML_CACHE"] = old


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, small_events):
    """One finished training run per network kind."""
    from l1ml.train.run import train

    root = tmp_path_factory.mktemp("fw_runs")
    return {kind: train(write_yaml(root / f"{kind}.yaml", RUN.format(kind=kind, events=small_events)),
                        runs_root=root / "runs", log=None).run_dir
            for kind in ("dense_ae", "vae_encoder")}
