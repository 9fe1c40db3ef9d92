"""Paths and small helpers the tests share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SMALL_CONFIG = ROOT / "configs" / "data" / "small.yaml"


L1ML = [sys.executable, "-m", "l1ml"]


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    """The `l1ml` command as a user runs it, in a process of its own."""
    return subprocess.run([*L1ML, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_one_line_error(r, *fragments, code=1):
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    for frag in fragments:
        assert frag in lines[0], lines[0]


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of a run folder, for tests that damage it."""
    import shutil

    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def find_check(report, prefix: str):
    """The check of a verify report whose name starts with `prefix`."""
    return next(c for c in report.checks if c.name.startswith(prefix))


def small_converted_bdt(root: Path, seed: int, backend: str | None = None) -> Path:
    """A 4-tree BDT of your own, trained on random data and converted with `l1ml convert --xgboost` (seconds)."""
    import numpy as np
    import xgboost as xgb

    from l1ml.firmware.byo import convert_xgboost

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 10, size=(2000, 4)).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1, "seed": 1},
                        xgb.DMatrix(x, label=(x[:, seed % 4] > 1).astype(int)), 4)
    booster.save_model(str(root / "model.json"))
    out = root / "own"
    convert_xgboost(root / "model.json", out, input_type="ap_fixed<12,6,AP_RND_CONV,AP_SAT>", score_type=None,
                    target="vu13p", backend=backend, clock_period_ns=None)
    return out


def trained_and_converted(config_text: str, root: Path) -> Path:
    """A training run of `config_text` (written to root/config.yaml), converted to firmware."""
    from l1ml.firmware.convert import convert_run
    from l1ml.train.run import train

    run_dir = train(write_yaml(root / "config.yaml", config_text), runs_root=root / "runs", log=None).run_dir
    convert_run(run_dir)
    return run_dir


def recorded_synthesis(run_dir: Path, db, report: Path) -> str:
    """A finished HLS job of this run's project in the job database, its result made by the same code that records every
    synthesis (`runner.finish`) from a C-synthesis report of a real Vivado HLS run in ../shared/fixtures. There is no
    Vivado here: the synthesis itself is tested behind the vivado marker (test_synth_hls.py)."""
    import shutil
    import time

    from l1ml.synth.jobs import create_job_dir, read_job, spec_for
    from l1ml.synth.runner import finish, save_result

    spec = spec_for(run_dir, kind="hls", backend=None, steps=["csynth"], mem_gb=8, time_s=3600, cpus=1, floor_gb=8,
                    settings=None, container=None)
    job_id, job_dir = create_job_dir(db.jobs_dir, spec)
    with db.transaction() as conn:
        db.insert(conn, id=job_id, kind="hls", model=spec.model, backend="local", state="running", dedup_key=spec.dedup_key,
                  job_dir=str(job_dir), mem_gb=8, cpus=1, time_s=3600, submitted=time.time(), attempts=1)
    started = time.time()
    target = job_dir / "project" / "l1ml_model_prj" / "solution1" / "syn" / "report" / "l1ml_model_csynth.xml"
    target.parent.mkdir(parents=True)
    shutil.copyfile(report, target)
    (job_dir / "job.log").write_text("INFO: [HLS 200-111] Finished Command csynth_design\n")
    save_result(db, job_dir, finish(job_dir, read_job(job_dir), exit_code=0, killed_for=None, peak_bytes=2 << 30,
                                    started=started))
    return job_id
