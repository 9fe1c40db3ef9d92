"""`l1ml search` with real trial jobs on the local queue (and the one-node Slurm that `make test` starts): a search runs
to N trials, survives kill -9 of its steering process, resumes a trial stopped at its wall time to the metrics of an
uninterrupted one, tells a failing trial with its reason, and runs a segmented search."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from test_synth_batch import needs_slurm

from helpers import L1ML, run, write_yaml

BDT = """
name: {name}
seed: 42
data: {{events: {events}, signals: [Ato4l, LQ_btau]}}
model: {{kind: bdt, n_estimators: 20, max_depth: 3, learning_rate: 0.3}}
evaluation: {{rates_khz: [3000]}}
search:
  parameters:
    model.n_estimators: {{int: [5, 40], step: 5}}
    model.max_depth: {{int: [2, 4]}}
    model.learning_rate: {{float: [0.1, 0.5], log: true}}
  objectives:
    - {{metric: efficiency, direction: maximize, rate_khz: 3000}}
    - {{metric: comparators, direction: minimize}}
  budget: {{trials: {trials}, parallel: 2, trial_time: 5m}}
"""


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def _search(config, tmp_path, **kw):
    from l1ml.search.steer import SearchOptions, search

    return search(config, SearchOptions(runs_root=tmp_path / "runs", poll_s=0.2, **kw), log=lambda m: None)


def _status(folder: Path):
    from l1ml.documents import SearchStatus, read

    return read(folder / "status.json", SearchStatus)


def _jobs_per_trial(state: Path, name: str) -> dict[str, int]:
    from l1ml.synth.db import JobDB

    counts: dict[str, int] = {}
    for job in JobDB(state).jobs(None, "model LIKE ?", (f"{name}/%",)):
        counts[job.model] = counts.get(job.model, 0) + 1
    return counts


def test_a_search_runs_to_n_trials_tells_what_the_runs_measured_and_exports_a_trial(small_events, tmp_path, state, tracking):
    from l1ml.config.loader import load_config
    from l1ml.config.search import Objective
    from l1ml.config.train import TrainConfig
    from l1ml.documents import EstimateReport, Metrics, read
    from l1ml.search.objectives import values

    config = write_yaml(tmp_path / "bdt.yaml", BDT.format(name="bdt_n", events=small_events, trials=3))
    folder = _search(config, tmp_path)
    assert folder == tmp_path / "runs" / "search" / "bdt_n"
    status = _status(folder)
    assert [(t.number, t.state) for t in status.trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    assert status.finished and any(t.on_front for t in status.trials)
    assert _jobs_per_trial(state, "bdt_n") == {f"bdt_n/all/{n:04d}": 1 for n in range(3)}
    assert status.trials[0].params == {"model.n_estimators": 20, "model.max_depth": 3, "model.learning_rate": 0.3}  # the config as written
    objectives = [Objective(metric="efficiency", direction="maximize", rate_khz=3000),
                  Objective(metric="comparators", direction="minimize")]
    for row in status.trials:
        run_dir = Path(row.run_dir)
        _text, cfg = load_config(run_dir / "config.yaml", TrainConfig)
        assert cfg.model.n_estimators == row.params["model.n_estimators"] and cfg.model.max_depth == row.params["model.max_depth"]
        measured, _ = values(read(run_dir / "metrics.json", Metrics), read(run_dir / "estimate" / "estimate.json", EstimateReport),
                             objectives, ["Ato4l", "LQ_btau"])
        assert row.values == measured

    out = tmp_path / "elsewhere" / "chosen.yaml"
    r = run("search", "export", folder, "--trial", "1", "--out", out, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text, exported = load_config(out, TrainConfig)
    assert exported.model.max_depth == status.trials[1].params["model.max_depth"]
    assert "search" not in yaml.safe_load(text) and exported.data.events == str(small_events)

    r = run("search", "status", folder, "--json", cwd=tmp_path)
    assert r.returncode == 0 and len(json.loads(r.stdout)["trials"]) == 3
    r = run("search", "report", folder, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (folder / "report").iterdir()} >= {"front.png", "front.csv", "importances.json"}
    assert "Pareto front:" in r.stdout

    from l1ml.track.store import client, local_uri  # the study and its trials, nested, in the runs root's store

    c = client(local_uri(tmp_path / "runs" / "mlflow"))
    experiment = c.get_experiment_by_name("search-bdt_n").experiment_id
    study = c.search_runs([experiment], filter_string="tags.`l1ml.step` = 'search'")
    assert len(study) == 1 and {a.path for a in c.list_artifacts(study[0].info.run_id, "report")} >= {"report/front.png"}
    trials = c.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{study[0].info.run_id}'")
    assert sorted(int(t.data.tags["l1ml.trial"]) for t in trials) == [0, 1, 2]
    assert {t.data.metrics["efficiency_at_3000kHz"] for t in trials} == {row.values[0] for row in status.trials}

    moved = tmp_path / "elsewhere" / "study"  # a study folder moved elsewhere reads its own storage
    shutil.move(folder, moved)
    r = run("search", "status", moved, "--json", cwd=tmp_path / "elsewhere")
    assert r.returncode == 0, r.stderr
    assert [t["values"] for t in json.loads(r.stdout)["trials"]] == [t.values for t in status.trials]


def test_steering_killed_and_started_again_ends_with_exactly_n_trials(small_events, tmp_path, state):
    config = write_yaml(tmp_path / "bdt.yaml", BDT.format(name="bdt_k", events=small_events, trials=5))
    cmd = [*L1ML, "search", str(config), "--poll", "0.2", "--no-tracking"]
    env = {**os.environ, "L1ML_STATE": str(state)}
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not (state / "jobs.sqlite").exists() or sum(_jobs_per_trial(state, "bdt_k").values()) < 2):
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert sum(_jobs_per_trial(state, "bdt_k").values()) >= 2  # killed with trials running

    second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    folder = Path(second.stdout.strip().splitlines()[-1])
    status = _status(folder)
    assert [t.number for t in status.trials] == [0, 1, 2, 3, 4]
    assert all(t.state == "COMPLETE" for t in status.trials)
    assert _jobs_per_trial(state, "bdt_k") == {f"bdt_k/all/{n:04d}": 1 for n in range(5)}  # none ran twice

    # stopped between asking Optuna and submitting the job: the trial is in the storage, with no parameters yet
    from l1ml.documents import SearchStudy, read
    from l1ml.search.study import StudyFolder, open_studies

    open_studies(StudyFolder(folder), read(folder / "search.json", SearchStudy))["all"].ask()
    third = subprocess.run([*cmd, "--trials", "6"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr
    status = _status(folder)
    assert [t.number for t in status.trials] == list(range(6)) and all(t.state == "COMPLETE" for t in status.trials)
    assert set(status.trials[5].params) == {"model.n_estimators", "model.max_depth", "model.learning_rate"}
    assert _jobs_per_trial(state, "bdt_k") == {f"bdt_k/all/{n:04d}": 1 for n in range(6)}


AE = """
name: ae_w
seed: 4
data: {{events: {events}, signals: [Ato4l, LQ_btau]}}
model: {{kind: dense_ae, encoder: [{{units: 16}}, {{units: 8}}], latent: 3}}
training: {{epochs: 60, batch_size: 32}}
evaluation: {{rates_khz: [3000]}}
search:
  parameters:
    model.encoder.0.units: {{choices: [8, 16]}}
  objectives:
    - {{metric: efficiency, direction: maximize, rate_khz: 3000}}
    - {{metric: bops, direction: minimize}}
  budget: {{trials: 1, parallel: 1, trial_time: {time}, resumes: 5}}
"""


def test_a_trial_stopped_at_its_wall_time_resumes_to_the_metrics_of_an_uninterrupted_run(small_events, tmp_path, state):
    config = write_yaml(tmp_path / "ae.yaml", AE.format(events=small_events, time="14s"))
    _assert_resumed_as_uninterrupted(_search(config, tmp_path), tmp_path)


def _assert_resumed_as_uninterrupted(folder: Path, tmp_path: Path) -> None:
    from l1ml.train.run import train

    row = _status(folder).trials[0]
    assert row.state == "COMPLETE" and row.resumes >= 1, row
    trial_dir = folder / "trials" / "all" / "0000"
    assert "resume" in (trial_dir / "attempts.log").read_text()
    assert json.loads((Path(row.run_dir) / "manifest.json").read_text())["resumed"] is True  # continued from a checkpoint
    reference = train(trial_dir / "config.yaml", runs_root=tmp_path / "reference", log=None).run_dir
    resumed, uninterrupted = (json.loads((Path(d) / "metrics.json").read_text()) for d in (row.run_dir, reference))
    assert resumed["signals"] == uninterrupted["signals"] and resumed["thresholds"] == uninterrupted["thresholds"]
    weights = [h5py.File(Path(d) / "model" / "quantized" / "weights.h5") for d in (row.run_dir, reference)]
    names = []
    weights[0].visit(lambda n: names.append(n) if isinstance(weights[0][n], h5py.Dataset) else None)
    assert names and all(np.array_equal(weights[0][n][()], weights[1][n][()]) for n in names)


def test_a_failing_trial_is_told_failed_with_its_reason(small_events, tmp_path, state):
    text = BDT.format(name="bdt_f", events=small_events, trials=2).replace(
        "    model.learning_rate: {float: [0.1, 0.5], log: true}\n",
        "    model.learning_rate: {float: [0.1, 0.5], log: true}\n    evaluation.min_background_events: {choices: [100000]}\n")
    folder = _search(write_yaml(tmp_path / "bdt.yaml", text), tmp_path)
    status = _status(folder)
    assert [t.state for t in status.trials] == ["FAIL", "FAIL"] and status.finished
    for row in status.trials:
        assert row.job_state == "failed" and "min_background_events" in row.reason, row.reason
    r = run("search", "status", folder, cwd=tmp_path)
    assert "failed:" in r.stdout and "min_background_events" in r.stdout


def test_a_segmented_search_runs_one_study_per_segment_on_its_own_data(small_events, tmp_path, state):
    from l1ml.data.events import list_samples, read_sample

    text = BDT.format(name="bdt_seg", events=small_events, trials=2) + """
segments:
  - {name: central, select: {objects_eta: [0, 1.5]}}
  - {name: forward, select: {objects_eta: [1.5, 5.0]}, overrides: {model.max_depth: 2}}
  - {name: lq, select: {signals: [LQ_btau]}}
"""
    folder = _search(write_yaml(tmp_path / "bdt.yaml", text), tmp_path)
    status = _status(folder)
    assert sorted((t.segment, t.number, t.state) for t in status.trials) == sorted(
        (s, n, "COMPLETE") for s in ("central", "forward", "lq") for n in (0, 1))
    central = folder / "segments" / "central" / "events.h5"
    particles = read_sample(central, "background").particles
    objects = particles[:, 1:, :]
    assert np.all(np.abs(objects[:, :, 1][objects[:, :, 0] > 0]) < 1.5)
    assert list_samples(folder / "segments" / "lq" / "events.h5") == ["background", "LQ_btau"]
    for row in status.trials:
        trial_config = yaml.safe_load((folder / "trials" / row.segment / f"{row.number:04d}" / "config.yaml").read_text())
        assert trial_config["data"]["events"] == str((folder / "segments" / row.segment / "events.h5").resolve())
        if row.segment == "forward" and row.number == 0:
            assert trial_config["model"]["max_depth"] == 2  # the segment's override, then the trial's parameters
    r = run("search", "status", folder, cwd=tmp_path)
    assert r.returncode == 0 and all(f"\n{s} " in r.stdout for s in ("central", "forward", "lq"))


def test_the_front_is_verified_when_the_config_asks(small_events, tmp_path, state):
    text = BDT.format(name="bdt_v", events=small_events, trials=2).replace("  budget:", "  verify_front: true\n  budget:")
    folder = _search(write_yaml(tmp_path / "bdt.yaml", text), tmp_path)
    front = [t for t in _status(folder).trials if t.on_front]
    assert front and all(t.verify is True for t in front), front
    assert all((Path(t.run_dir) / "verify" / "report.json").is_file() for t in front)
    r = run("search", "status", folder, cwd=tmp_path)
    assert "verified" in r.stdout


@needs_slurm
def test_a_search_on_slurm(small_events, tmp_path, state):
    config = write_yaml(tmp_path / "bdt.yaml", BDT.format(name="bdt_slurm", events=small_events, trials=2))
    folder = _search(config, tmp_path, backend="slurm")
    status = _status(folder)
    assert [t.state for t in status.trials] == ["COMPLETE", "COMPLETE"]
    from l1ml.synth.db import JobDB

    assert {j.backend for j in JobDB(state).jobs(None, "model LIKE 'bdt_slurm/%'")} == {"slurm"}


@needs_slurm
@pytest.mark.slow
def test_a_trial_stopped_at_its_slurm_wall_time_resumes_to_the_same_metrics(small_events, tmp_path, state):
    """Slurm's wall time is in minutes and its --signal may come up to a minute early: a 1-minute trial of a longer
    training is stopped by SIGTERM and resumed."""
    config = write_yaml(tmp_path / "ae.yaml", AE.format(events=small_events, time="1m").replace("epochs: 60", "epochs: 400"))
    _assert_resumed_as_uninterrupted(_search(config, tmp_path, backend="slurm"), tmp_path)
