"""The documents of synthesis jobs and deliveries (`job.json`, `result.json`, `condor_query_failures.json`, a delivery's
`manifest.json`, its record, `vectors.json`) and the verify report the delivery gate reads: each reads back what the
real code wrote, and an old (no format), foreign or damaged one is a named error where l1ml reads it, never a guess."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from l1ml.errors import L1mlError
from l1ml.synth.jobs import AGAIN

from helpers import assert_one_line_error, run, small_converted_bdt

OLDER = "written by an older l1ml"


@pytest.fixture(scope="module")
def bdt_dir(tmp_path_factory):
    """A small BDT of your own, converted (conifer's HLS project and VHDL): job folders of every kind can be written."""
    return small_converted_bdt(tmp_path_factory.mktemp("docs_bdt"), 3)


@pytest.fixture
def db(tmp_path, monkeypatch):
    from l1ml.synth.db import JobDB

    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))  # where the `l1ml` the tests run finds it too
    return JobDB()


def _job(db, target: Path, kind: str = "verify", state: str = "queued", backend_id: str | None = None):
    """A job folder written by `create_job_dir` and its row in the job database, as `synth submit` leaves them (no runner
    is started: what happens to the job is up to the test)."""
    from l1ml.synth.jobs import create_job_dir, spec_for

    spec = spec_for(target, kind=kind, backend=None, steps=["csynth"], mem_gb=None, time_s=3600, cpus=1, floor_gb=1,
                    settings=None, container=None)
    job_id, job_dir = create_job_dir(db.jobs_dir, spec)
    with db.transaction() as conn:
        db.insert(conn, id=job_id, kind=kind, model=spec.model, backend="local", state=state, dedup_key=spec.dedup_key,
                  job_dir=str(job_dir), mem_gb=spec.mem_gb, cpus=1, time_s=3600, submitted=time.time(), attempts=1,
                  backend_id=backend_id)
    return db.get(job_id)


def _finish(db, job):
    """The job's end as every backend records it (`runner.finish`, `runner.save_result`): here a job that never ran."""
    from l1ml.synth.jobs import read_job
    from l1ml.synth.runner import finish, save_result

    result = finish(Path(job.job_dir), read_job(job.job_dir), exit_code=1, killed_for=None, peak_bytes=None,
                    started=time.time())
    save_result(db, Path(job.job_dir), result)
    return result


def _older(path: Path) -> dict:
    """Rewrite a document as an older l1ml wrote it: the same keys, no format."""
    data = json.loads(path.read_text())
    del data["format"]
    path.write_text(json.dumps(data))
    return data


# ------------------------------------------------------------------------------------------------ synthesis jobs


def test_job_and_result_read_back_what_the_job_folder_got(bdt_dir, db):
    from l1ml.documents import JobSpec, SynthResult
    from l1ml.synth.jobs import read_job, read_result

    job = _job(db, bdt_dir)
    spec = read_job(job.job_dir)
    assert json.loads(Path(job.job_dir, "job.json").read_text())["format"] == "l1ml-synth-job/1"
    assert spec.id == job.id and spec.dedup_key == job.dedup_key and spec.kind == "verify"
    assert JobSpec.model_validate(spec.model_dump(exclude={"format", "id"})).dedup_key == job.dedup_key
    result = _finish(db, job)
    assert result.state == "failed" and result.reports.found == []
    assert read_result(job.job_dir) == result == db.get(job.id).recorded_result()
    assert isinstance(result, SynthResult) and json.loads(Path(job.job_dir, "result.json").read_text())["budget_unknown"]


@pytest.mark.parametrize("name", ["job.json", "result.json"])
@pytest.mark.parametrize(("damage", "fragments"), [
    ("older", ["key 'format'", "format None, expected 'l1ml-synth-", f"{OLDER}: {AGAIN}"]),
    ("foreign", ["key 'format'", "format 'l1ml-delivery/1'", f"not this kind of l1ml document: {AGAIN}"]),
    ("damaged", ["key 'id'", "damaged", AGAIN]),
    ("not JSON", ["not a readable JSON document", AGAIN]),
])
def test_every_way_a_job_document_is_wrong_is_named(bdt_dir, db, name, damage, fragments):
    from l1ml.synth.jobs import read_job, read_result

    job = _job(db, bdt_dir)
    _finish(db, job)
    path = Path(job.job_dir, name)
    data = json.loads(path.read_text())
    if damage == "older":
        _older(path)
    elif damage == "not JSON":
        path.write_text(path.read_text()[:-20])
    else:
        path.write_text(json.dumps({**data, "format": "l1ml-delivery/1"} if damage == "foreign" else {**data, "id": 3}))
    with pytest.raises(L1mlError) as e:
        (read_job if name == "job.json" else read_result)(job.job_dir)
    message = str(e.value)
    assert message.startswith(str(path)) and all(f in message for f in fragments), message


def test_synth_status_ends_a_queued_job_an_older_l1ml_wrote_naming_why(bdt_dir, db):
    job = _job(db, bdt_dir)
    _older(Path(job.job_dir, "job.json"))
    shown = run("synth", "status")
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.startswith(job.id))
    assert " failed " in row and f"job.json, key 'format': format None, expected 'l1ml-synth-job/1': {OLDER}: {AGAIN}" in row
    assert db.get(job.id).state == "failed" and not list(Path(job.job_dir).glob("runner.log")), "no runner was started"


def test_synth_status_ends_a_running_job_whose_result_an_older_l1ml_wrote(bdt_dir, db):
    job = _job(db, bdt_dir, state="running", backend_id="999999999")  # a runner that is gone
    _finish(db, job)
    db.update(job.id, state="running", result=None)  # as if the runner died before it recorded the result
    _older(Path(job.job_dir, "result.json"))
    shown = run("synth", "status", "--json")
    assert shown.returncode == 0, shown.stderr
    (listed,) = json.loads(shown.stdout)
    assert listed["state"] == "failed" and listed["result"] is None
    assert f"result.json, key 'format': format None, expected 'l1ml-synth-result/1': {OLDER}" in listed["message"]


def test_synth_status_report_and_logs_of_a_job_an_older_l1ml_recorded(bdt_dir, db):
    job = _job(db, bdt_dir)
    result = _finish(db, job)
    old = result.model_dump(mode="json", exclude={"format"})
    db.update(job.id, state="done", result=json.dumps(old))  # the database's copy, as an older l1ml stored it
    Path(job.job_dir, "job.log").write_text("what the job printed\n")
    named = f"the result of job {job.id}, key 'format': format None, expected 'l1ml-synth-result/1': {OLDER}: {AGAIN}"

    shown = run("synth", "status")
    assert shown.returncode == 0 and named in shown.stdout, shown.stdout + shown.stderr
    as_json = json.loads(run("synth", "status", "--json").stdout)[0]
    assert as_json["result"] is None and as_json["result_problem"] == named
    assert_one_line_error(run("synth", "report", job.id), named)
    _older(Path(job.job_dir, "result.json"))
    assert_one_line_error(run("synth", "report", job.job_dir), "result.json, key 'format'", OLDER)
    logs = run("synth", "logs", job.id)
    assert logs.returncode == 0 and logs.stdout == "what the job printed\n", logs.stderr


def test_condor_query_failures_read_back(tmp_path):
    from l1ml.documents import CondorQueryFailures, read

    record = CondorQueryFailures(count=3, since=time.time())
    assert read(record.write(tmp_path / "condor_query_failures.json"), CondorQueryFailures) == record


# ------------------------------------------------------------------------------------------------ the delivery gate


def test_the_gate_names_jobs_it_cannot_read_and_results_an_older_l1ml_recorded(bdt_dir, db):
    from l1ml.deliver.gate import _synthesis_condition
    from l1ml.firmware.project import projects_in

    project = next(p for p in projects_in(bdt_dir) if p.build_script is not None)  # what an hls job synthesises
    job = _job(db, bdt_dir, kind="hls")
    _older(Path(job.job_dir, "job.json"))
    problems: list[str] = []
    assert _synthesis_condition(bdt_dir, project, problems, db) is None
    assert "no synthesis of this firmware project" in problems[0]
    assert f"1 of its jobs cannot be read, the first: {job.job_dir}/job.json" in problems[0] and f"{OLDER}: {AGAIN}" in problems[0]

    done = _job(db, bdt_dir, kind="hls")
    result = _finish(db, done)
    db.update(done.id, state="done", result=json.dumps(result.model_dump(mode="json", exclude={"format"})))
    problems = []
    assert _synthesis_condition(bdt_dir, project, problems, db) is None
    assert problems == [f"the result of job {done.id}, key 'format': format None, expected 'l1ml-synth-result/1': "
                        f"{OLDER}: {AGAIN}"]


@pytest.fixture
def finished_run(tmp_path):
    """What the gate needs of a run before it reads the verify report: a finished training run's files (their content
    is not read before the report)."""
    from l1ml.documents import RunState

    run_dir = tmp_path / "runs" / "m" / "r1"
    (run_dir / "verify").mkdir(parents=True)
    RunState(config_hash="ab" * 32, status="finished", started="2026-12-01T00:00:00+00:00").write(run_dir / "run.json")
    for name in ("config.yaml", "metrics.json", "manifest.json", "inputs.json"):
        (run_dir / name).write_text("{}")
    return run_dir


REPORT = {"format": "l1ml-verify-report/1", "created": "2026-12-01T00:00:00+00:00", "target": "t", "firmware": "f",
          "passed": True, "failed_checks": [], "checks": [], "kind": "network", "fingerprint": {}, "checked_firmware": [],
          "options": {}, "sample": {}, "csim": {}, "emulator": {}, "l1ml_git": {}, "tools": {}}


@pytest.mark.parametrize(("report", "fragments"), [
    ({k: v for k, v in REPORT.items() if k not in ("format", "fingerprint", "checked_firmware")},
     ["key 'format'", f"format None, expected 'l1ml-verify-report/1': {OLDER}: run `l1ml verify RUN` again"]),
    ({**REPORT, "format": "l1ml-synth-result/1"}, ["key 'format'", "not this kind of l1ml document: run `l1ml verify RUN` again"]),
    ({**REPORT, "passed": "maybe"}, ["key 'passed'", "damaged: Input should be a valid boolean", ": run `l1ml verify RUN` again"]),
])
def test_the_gate_refuses_an_old_foreign_or_damaged_verify_report_by_name(finished_run, report, fragments):
    from l1ml.deliver.gate import DeliveryRefused, check

    path = finished_run / "verify" / "report.json"
    path.write_text(json.dumps(report))
    with pytest.raises(DeliveryRefused) as refused:
        check(finished_run, finished_run / "v1", synthesis=False)
    (problem,) = refused.value.problems
    assert problem.startswith(f"{path}, ") and all(f.replace("RUN", str(finished_run)) in problem for f in fragments), problem


# ------------------------------------------------------------------------------------------------ deliveries


@pytest.fixture
def package(tmp_path):
    """A small delivery written by the code that writes every delivery's manifest, archive and record."""
    from l1ml.deliver.manifest import MANIFEST, make_record, record_path
    from l1ml.deliver.package import _tar, _write_manifest

    folder = tmp_path / "deliveries" / "m" / "1.0.0"
    (folder / "emulator").mkdir(parents=True)
    (folder / "README.md").write_text("# m 1.0.0\n")
    (folder / "emulator" / "Makefile").write_text("all:\n")
    content = {"model": "m", "version": "1.0.0", "kind": "emulator-only", "firmware_release": False,
               "created": "2026-12-01T00:00:00+00:00", "lineage": {"run": {"id": "r1"}}, "verify": {"passed": True},
               "synthesis": {"none": "emulator-only delivery"}, "emulator": {"library": "m_v1_0_0.so"},
               "test_vectors": {"events": 0}, "metrics": {"signals": {}}}
    manifest = _write_manifest(folder, content)
    archive = folder.parent / "1.0.0.tar.gz"
    _tar(folder, "1.0.0", archive, manifest.created)
    make_record(manifest, folder / MANIFEST, archive).write(record_path(folder.parent, "1.0.0"))
    return folder


def test_a_delivery_manifest_and_record_read_back(package):
    from l1ml.deliver.manifest import check, read_manifest, read_record

    manifest = read_manifest(package)
    assert manifest.format == "l1ml-delivery/1" and set(manifest.files) == {"README.md", "emulator/Makefile"}
    record = read_record(package.parent / "1.0.0.record.json")
    assert (record.model, record.version, record.kind) == ("m", "1.0.0", "emulator-only")
    assert check(package).ok and check(package.parent / "1.0.0.tar.gz").ok
    checked = run("deliver", "--check", package)
    assert checked.returncode == 0 and checked.stdout.strip().endswith("m 1.0.0 (emulator-only), 2 files: ok"), checked.stderr


@pytest.mark.parametrize(("damage", "fragments"), [
    ("older manifest", ["manifest.json, key 'format': format None, expected 'l1ml-delivery/1'", OLDER]),
    ("damaged manifest", ["manifest.json, key 'files.README.md.sha256': damaged: Field required"]),
    ("foreign record", ["1.0.0.record.json, key 'format': format 'l1ml-delivery/1', expected 'l1ml-delivery-record/1'",
                        "not this kind of l1ml document"]),
])
def test_deliver_check_names_an_old_foreign_or_damaged_document(package, damage, fragments):
    manifest, record = package / "manifest.json", package.parent / "1.0.0.record.json"
    if damage == "older manifest":
        _older(manifest)
    elif damage == "damaged manifest":
        data = json.loads(manifest.read_text())
        del data["files"]["README.md"]["sha256"]
        manifest.write_text(json.dumps(data))
    else:
        record.write_text(json.dumps({**json.loads(record.read_text()), "format": "l1ml-delivery/1"}))
    assert_one_line_error(run("deliver", "--check", package), *fragments)
    listed = run("deliver", "--list", "--out", package.parents[1])
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].endswith("unreadable manifest"), listed.stdout


def test_test_vectors_read_back_and_an_old_description_is_named(tmp_path):
    from l1ml.deliver.vectors import Vectors, load_vectors
    from l1ml.quantize.fixedpoint import parse_fixed

    t = parse_fixed("ap_fixed<8,3>")
    vectors = Vectors(np.array([[3, -4], [127, -128]]), np.array([[-5], [6]]), t, t, [("test:background", 0, 2)],
                      np.zeros((2, 2)))
    vectors.write(tmp_path / "test_vectors")
    info, inputs, outputs = load_vectors(tmp_path / "test_vectors")
    assert info == vectors.description() and info.blocks[0].rows == (0, 2)
    assert np.array_equal(inputs, vectors.inputs) and np.array_equal(outputs, vectors.outputs)
    _older(tmp_path / "test_vectors" / "vectors.json")
    with pytest.raises(L1mlError, match=f"vectors.json, key 'format': format None, expected 'l1ml-test-vectors/1': {OLDER}"):
        load_vectors(tmp_path / "test_vectors")
