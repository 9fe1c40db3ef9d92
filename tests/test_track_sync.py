"""`l1ml track sync`: runs of local stores (synthesis jobs', the outbox) copied into a real tracking server exactly once.

The source stores are real local MLflow stores written by `log_record`; the destination is the session's real
`mlflow server` (sqlite backend, proxied artifacts) or a local store. Each test has experiments of its own.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from l1ml.errors import L1mlError
from l1ml.track.log import COMPLETE_TAG, PARENT_TAG, RECORD_TAG, Record, log_record, track
from l1ml.track.store import client, experiment_id, local_uri
from l1ml.track.sync import sync

from helpers import assert_one_line_error, run
from mlflow_server import free_port


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An empty local store's database, made by MLflow once: a new one costs 3-10 s of schema migrations, so each
    store of these tests starts as a copy of it (the database MLflow would make; experiments get their artifact
    folders from the store they are made in)."""
    folder = tmp_path_factory.mktemp("empty_store")
    client(local_uri(folder)).search_experiments()
    return folder / "mlflow.db"


def _store(folder: Path, empty: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty, folder / "mlflow.db")
    return local_uri(folder)


def _files(root: Path) -> Path:
    """Artifact files: a config, a plots folder with a sub-folder (binary and text), a report."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text("name: demo\nmodel:\n  latent: 3\n")
    (root / "plots" / "sub").mkdir(parents=True, exist_ok=True)
    (root / "plots" / "roc.png").write_bytes(bytes(range(256)) * 7)
    (root / "plots" / "sub" / "eff.txt").write_text("0.42 +- 0.01\n")
    (root / "report.txt").write_text("LUT 1234\n")
    return root


def _records(experiment: str, files: Path, child: str = "a") -> tuple[Record, Record]:
    parent = Record(experiment, f"run:{experiment}/r1", f"{experiment}/r1",
                    params={"model.latent": "3", "optimizer.lr": "0.001", "rates": "[100.0, 250.0]",
                            **{f"model.layers.{i}.units": str(i) for i in range(130)}},  # more than one batch of params
                    metrics=[("training/train/loss", 1.0 / (epoch + 1), epoch) for epoch in range(900)]  # and of metrics
                    + [("auc/float/Ato4l", 0.913, 0), ("eff_100kHz/quantized/Ato4l", 0.25, 0)],
                    tags={"l1ml.step": "train", "l1ml.run": f"{experiment}/r1", "l1ml.events_sha256": "ab" * 32},
                    artifacts=[(files / "config.yaml", None), (files / "plots", "plots")])
    job = Record(experiment, f"synth:{experiment}/r1:{child * 16}", f"synth job-{child}",
                 params={"part": "xcvu13p", "clock_ns": "2.5"}, metrics=[("lut", 1234.0, 0), ("latency_ns", 25.0, 0)],
                 tags={"l1ml.step": "synth", "l1ml.run": f"{experiment}/r1"}, artifacts=[(files / "report.txt", None)],
                 parent=parent, status="FAILED")
    return parent, job


def _source(folder: Path, empty: Path, experiment: str, files: Path, child: str = "a") -> tuple[object, dict[str, str]]:
    """A local store in `folder` with a parent and a child run (and a run of someone else's); (client, key -> run id)."""
    from mlflow.entities import Metric

    source = client(_store(folder, empty))
    parent, job = _records(experiment, files, child)
    ids = {job.key: log_record(source, job)}
    ids[parent.key] = source.get_run(ids[job.key]).data.tags[PARENT_TAG]
    # points of a history with their own timestamps, two at one step: all of them are copied
    source.log_batch(ids[parent.key], metrics=[Metric("training/val/loss", 2.0 - e / 10, 1_700_000_000_000 + 1000 * e, e)
                                               for e in range(5)] + [Metric("training/val/loss", 9.0, 1_700_000_123_000, 0)])
    foreign = source.create_run(experiment_id(source, experiment), run_name="not l1ml's")
    source.set_terminated(foreign.info.run_id)
    return source, ids


def _experiment() -> str:
    return f"sync_{uuid.uuid4().hex[:10]}"


def _active(dest, experiment: str, key: str) -> list:
    found = dest.get_experiment_by_name(experiment)
    return dest.search_runs([found.experiment_id], filter_string=f"tags.`{RECORD_TAG}` = '{key}'") if found else []


def _artifacts(c, run_id: str, tmp: Path) -> dict[str, bytes]:
    tmp.mkdir(parents=True)
    if c.list_artifacts(run_id):
        c.download_artifacts(run_id, "", str(tmp))
    return {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(tmp.rglob("*")) if p.is_file()}


def _history(c, run_id: str, key: str) -> list[tuple[int, int, float]]:
    return sorted((m.step, m.timestamp, m.value) for m in c.get_metric_history(run_id, key))


def _assert_same(source, dest, source_id: str, dest_id: str, tmp: Path, dest_parent: str | None) -> None:
    a, b = source.get_run(source_id), dest.get_run(dest_id)
    assert (b.info.run_name, b.info.start_time, b.info.end_time, b.info.status) == \
        (a.info.run_name, a.info.start_time, a.info.end_time, a.info.status)
    assert b.data.params == a.data.params
    tags = {k: v for k, v in a.data.tags.items() if k != PARENT_TAG}
    assert {k: v for k, v in b.data.tags.items() if k != PARENT_TAG} == tags
    assert b.data.tags.get(PARENT_TAG) == dest_parent
    assert set(b.data.metrics) == set(a.data.metrics)
    for key in a.data.metrics:
        assert _history(dest, dest_id, key) == _history(source, source_id, key), key
    copied, original = _artifacts(dest, dest_id, tmp / dest_id), _artifacts(source, source_id, tmp / source_id)
    assert copied == original and original  # bytes of every file, sub-folders included


def test_sync_to_server_copies_everything_once(tmp_path, mlflow_server, tracking, empty_store):
    experiment = _experiment()
    files = _files(tmp_path / "files")
    source, ids = _source(tmp_path / "job" / "mlflow", empty_store, experiment, files)
    parent, job = _records(experiment, files)
    lines = []

    summary = sync([tmp_path / "job"], mlflow_server, log=lines.append)

    assert (summary.stores, summary.copied, summary.already, summary.failed, summary.skipped) == (1, 2, 0, 0, 1), lines
    assert summary.ok and summary.broken == []
    assert lines == [f"{tmp_path / 'job'}: 2 copied, 0 already there, 1 skipped",
                     "  1 run without an l1ml record key skipped (not l1ml's)"]
    dest = client(mlflow_server)
    [dest_parent], [dest_job] = _active(dest, experiment, parent.key), _active(dest, experiment, job.key)
    assert len(dest.search_runs([dest_parent.info.experiment_id])) == 2  # the foreign run stayed behind
    assert dest_job.info.artifact_uri.startswith("mlflow-artifacts:")  # through the server, not its folder
    _assert_same(source, dest, ids[parent.key], dest_parent.info.run_id, tmp_path / "dl", None)
    _assert_same(source, dest, ids[job.key], dest_job.info.run_id, tmp_path / "dl", dest_parent.info.run_id)
    assert dest_job.data.tags[COMPLETE_TAG] == "1" and dest_job.info.status == "FAILED"

    again = sync([tmp_path / "job" / "mlflow"], mlflow_server, log=lines.append)

    assert (again.copied, again.already, again.failed) == (0, 2, 0)
    assert [r.info.run_id for r in _active(dest, experiment, parent.key)] == [dest_parent.info.run_id]
    assert [r.info.run_id for r in _active(dest, experiment, job.key)] == [dest_job.info.run_id]


def test_half_copied_run_in_destination_is_replaced(tmp_path, mlflow_server, tracking, empty_store):
    """A sync killed while copying left a run without the complete tag: the next sync deletes it and copies again."""
    experiment = _experiment()
    files = _files(tmp_path / "files")
    source, ids = _source(tmp_path / "store", empty_store, experiment, files)
    parent, job = _records(experiment, files)
    dest = client(mlflow_server)
    half = dest.create_run(experiment_id(dest, experiment), tags={RECORD_TAG: parent.key}, run_name=parent.name)
    dest.log_param(half.info.run_id, "stale", "1")

    summary = sync([f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"], mlflow_server, log=lambda line: None)

    assert (summary.copied, summary.already, summary.failed) == (2, 0, 0)
    assert dest.get_run(half.info.run_id).info.lifecycle_stage == "deleted"
    [copy] = _active(dest, experiment, parent.key)
    assert copy.data.tags[COMPLETE_TAG] == "1" and "stale" not in copy.data.params
    _assert_same(source, dest, ids[parent.key], copy.info.run_id, tmp_path / "dl", None)
    assert _active(dest, experiment, job.key)[0].data.tags[PARENT_TAG] == copy.info.run_id


def test_sync_interrupted_by_a_vanished_artifact_then_rerun(tmp_path, mlflow_server, tracking, empty_store):
    """A source artifact that disappeared mid-copy (a dangling link: listing it fails) fails that run only; nothing
    half-copied is marked complete, and once the file is back a rerun makes exactly one complete copy."""
    experiment = _experiment()
    files = _files(tmp_path / "files")
    source, ids = _source(tmp_path / "store", empty_store, experiment, files)
    parent, job = _records(experiment, files)
    stored = Path(source.get_run(ids[job.key]).info.artifact_uri.removeprefix("file://")) / "report.txt"
    content = stored.read_bytes()
    stored.unlink()
    stored.symlink_to(tmp_path / "gone")
    lines = []

    first = sync([tmp_path / "store"], mlflow_server, log=lines.append)

    assert (first.copied, first.failed, first.ok) == (1, 1, False)
    assert any(line.startswith(f"  {job.key}: not copied (FileNotFoundError") for line in lines), lines
    dest = client(mlflow_server)
    assert all(r.data.tags.get(COMPLETE_TAG) != "1" for r in _active(dest, experiment, job.key))
    stored.unlink()
    stored.write_bytes(content)

    second = sync([tmp_path / "store"], mlflow_server, log=lines.append)

    assert (second.copied, second.already, second.failed) == (1, 1, 0)
    [copy] = _active(dest, experiment, job.key)
    [dest_parent] = _active(dest, experiment, parent.key)
    _assert_same(source, dest, ids[job.key], copy.info.run_id, tmp_path / "dl", dest_parent.info.run_id)


def test_two_job_stores_into_one_destination(tmp_path, tracking, empty_store):
    """Two synthesis jobs of one run: its parent run is copied once and both jobs hang under it; a job folder without
    a store is nothing to sync, and a broken store is reported while the others sync."""
    experiment = _experiment()
    files = _files(tmp_path / "files")
    jobs = tmp_path / "jobs"
    _source(jobs / "job1" / "mlflow", empty_store, experiment, files, child="a")
    job2, _ = _source(jobs / "job2" / "mlflow", empty_store, experiment, files, child="b")
    killed = f"verify:{experiment}/r1:{'c' * 16}"  # a job killed while it logged: no complete tag in its own store
    job2.create_run(experiment_id(job2, experiment), tags={RECORD_TAG: killed}, run_name="verify")
    (jobs / "job3").mkdir()
    (jobs / "job3" / "job.json").write_text("{}")
    (jobs / "job0" / "mlflow").mkdir(parents=True)
    (jobs / "job0" / "mlflow" / "mlflow.db").write_bytes(b"this is not an SQLite database\n" * 64)
    dest_uri = _store(tmp_path / "central", empty_store)
    lines = []

    summary = sync([jobs], dest_uri, log=lines.append)

    assert (summary.stores, summary.copied, summary.already, summary.failed, summary.skipped) == (3, 3, 1, 0, 3), lines
    assert summary.broken == [f"sqlite:///{jobs / 'job0' / 'mlflow' / 'mlflow.db'}"] and not summary.ok
    assert lines[0].startswith(f"{jobs / 'job0'}: cannot be read (")
    assert f"  {killed}: skipped, not completely logged in its source (interrupted, or being logged now)" in lines
    assert _active(client(dest_uri), experiment, killed) == []
    dest = client(dest_uri)
    [parent] = _active(dest, experiment, f"run:{experiment}/r1")
    children = dest.search_runs([parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    assert sorted(r.info.run_name for r in children) == ["synth job-a", "synth job-b"]
    assert Path(parent.info.artifact_uri.removeprefix("file://")).is_relative_to(tmp_path / "central" / "artifacts")

    again = sync([jobs / "job1", jobs / "job2"], dest_uri, log=lines.append)

    assert (again.copied, again.already, again.failed, again.ok) == (0, 4, 0, True)
    assert len(dest.search_runs([parent.info.experiment_id])) == 3
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(L1mlError, match=f"value '{dead}': the destination store cannot be used"):
        sync([jobs / "job1"], dead, log=lines.append)


def test_dead_server_queues_in_outbox_then_cli_sync_sends_once(tmp_path, mlflow_server, tracking, monkeypatch, empty_store):
    experiment = _experiment()
    files = _files(tmp_path / "files")
    _, job = _records(experiment, files)
    runs = tmp_path / "runs"
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    _store(runs / "mlflow-outbox", empty_store)
    warnings = []

    assert track(lambda: [job], dead, outbox=runs / "mlflow-outbox", warn=warnings.append) is None

    assert len(warnings) == 1 and warnings[0].startswith(f"warning: tracking to {dead} failed (")
    assert warnings[0].endswith(f"queued in {runs / 'mlflow-outbox'}: `l1ml track sync --to {dead}` sends it")
    outbox = client(local_uri(runs / "mlflow-outbox"))
    assert outbox.get_experiment_by_name(experiment) is not None
    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))  # no synthesis jobs: the outbox is the only source

    first = run("track", "sync", "--to", mlflow_server, "--runs", runs)

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"{runs / 'mlflow-outbox'}: 2 copied, 0 already there",
        f"synced: 2 copied, 0 already there, 0 failed, 0 skipped from 1 store to {mlflow_server}"]
    second = run("track", "sync", "--to", mlflow_server, "--runs", runs)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == f"synced: 0 copied, 2 already there, 0 failed, 0 skipped from 1 store to {mlflow_server}"
    dest = client(mlflow_server)
    [copy] = _active(dest, experiment, job.key)
    assert copy.data.tags["l1ml.sync_to"] == dead and copy.data.tags[COMPLETE_TAG] == "1"
    assert len(_active(dest, experiment, job.parent.key)) == 1


def test_cli_sync_nothing_to_do_and_bad_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))
    dest = f"sqlite:///{tmp_path / 'central' / 'mlflow.db'}"

    nothing = run("track", "sync", "--runs", tmp_path / "runs")

    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout == f"synced: 0 copied, 0 already there, 0 failed, 0 skipped from 0 stores to {local_uri(tmp_path / 'runs' / 'mlflow')}\n"
    assert not (tmp_path / "runs").exists()  # nothing to do makes no store
    assert_one_line_error(run("track", "sync", tmp_path / "nowhere", "--to", dest), str(tmp_path / "nowhere"), "no such folder")
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "notes.txt").write_text("not a store")
    assert_one_line_error(run("track", "sync", tmp_path / "papers", "--to", dest), str(tmp_path / "papers"),
                          "not an MLflow store to sync from")
    assert_one_line_error(run("track", "sync", tmp_path / "papers", "--to", "./mlruns"), "'./mlruns'")


def test_cli_ui_of_a_server_prints_its_address(tmp_path):
    uri = "http://mlflow.example.cern.ch:5000"
    r = run("track", "ui", "--tracking-uri", uri, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"the store is a tracking server: open {uri} in a browser\n"
    missing = run("track", "ui", "--runs", tmp_path / "runs")
    assert_one_line_error(missing, str(tmp_path / "runs" / "mlflow"), "no MLflow store here yet")


def test_synth_hook_never_raises(tmp_path, monkeypatch, capsys):
    """A job whose record cannot be made (here: no job documents at all) is one warning on stderr, never an error of
    the job; with tracking off nothing is tried and no store is made."""
    from l1ml.synth.runner import track_job

    (tmp_path / "job").mkdir()
    track_job(tmp_path / "job")
    assert capsys.readouterr() == ("", "") and not (tmp_path / "job" / "mlflow").exists()
    monkeypatch.delenv("L1ML_NO_TRACKING")

    track_job(tmp_path / "job")

    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("warning: "), err


def test_ended_job_logs_into_its_own_store_then_syncs(tmp_path, monkeypatch, empty_store):
    """`save_result` (every backend's end of a job) logs the job into `<job>/mlflow/` after its result is recorded; off
    with L1ML_NO_TRACKING. The job's run folder is not on this host here, so its record stands alone."""
    import time

    from l1ml.documents import SynthJob, SynthResult
    from l1ml.synth.db import JobDB
    from l1ml.synth.runner import save_result

    experiment = _experiment()
    db = JobDB(tmp_path / "state")
    job_dir = db.jobs_dir / "job-1"
    job_dir.mkdir()
    SynthJob(id="job-1", kind="hls", model=f"{experiment}/r1", target=str(tmp_path / "elsewhere" / experiment / "r1"),
             project=str(tmp_path / "elsewhere" / "firmware" / "vitis" / "project"), tool="vitis", part="xcvu13p",
             clock_ns=2.5, steps=["csynth"], mem_gb=8.0, time_s=3600, cpus=1, project_hash="0" * 64).write(job_dir / "job.json")
    with db.transaction() as conn:
        db.insert(conn, id="job-1", kind="hls", model=f"{experiment}/r1", backend="local", state="running", dedup_key="x",
                  job_dir=str(job_dir), mem_gb=8.0, cpus=1, time_s=3600, submitted=time.time(), attempts=1)
    result = SynthResult(id="job-1", state="done", message="C-synthesis done", exit_code=0, started=time.time() - 42,
                         ended=time.time(), host="node7", peak_mem_gb=2.5)

    save_result(db, job_dir, result)
    assert not (job_dir / "mlflow").exists()  # L1ML_NO_TRACKING=1 (the tests' default)
    monkeypatch.delenv("L1ML_NO_TRACKING")
    save_result(db, job_dir, result)

    assert db.get("job-1").recorded_result() == result
    store = client(local_uri(job_dir / "mlflow"))
    [logged] = store.search_runs([store.get_experiment_by_name(experiment).experiment_id])
    assert logged.data.tags["l1ml.step"] == "synth" and logged.data.tags[COMPLETE_TAG] == "1"
    assert logged.data.metrics["peak_mem_gb"] == 2.5
    dest_uri = _store(tmp_path / "central", empty_store)
    summary = sync([db.jobs_dir], dest_uri, log=lambda line: None)
    assert (summary.copied, summary.already, summary.failed, summary.ok) == (1, 0, 0, True)
    [copy] = _active(client(dest_uri), experiment, logged.data.tags[RECORD_TAG])
    assert _artifacts(client(dest_uri), copy.info.run_id, tmp_path / "dl") == {"job.json": (job_dir / "job.json").read_bytes(),
                                                                              "result.json": (job_dir / "result.json").read_bytes()}
