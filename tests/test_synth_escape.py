"""Jobs never escape the queue: their processes live and die with their records, every failure says why, `wait`
reports what it waited for, and impossible requests or a broken state folder are refused with one named error."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

import test_synth_local as local_queue
from l1ml.errors import L1mlError

bdt_dir, state, _submit = local_queue.bdt_dir, local_queue.state, local_queue._submit  # its fixtures and helper, shared
needs_gxx = local_queue.pytestmark

LONG = 3_000_000  # random events: a verify job that runs for minutes


def _until(condition, what: str, timeout_s: float = 120.0):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group(pgid: int) -> list[int]:
    """The running members of a process group."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return members


def _verify_process(job) -> psutil.Process:
    """The `l1ml verify` process of a running local job (run.sh execs it), once it runs."""

    def find():
        try:
            children = psutil.Process(int(job.backend_id)).children(recursive=True)
            return next((p for p in children if "verify" in p.cmdline()), None)
        except psutil.NoSuchProcess:
            return None

    return _until(find, f"the verify process of {job.id}")


def _orphaned_job(bdt_dir, db):
    """A running long job whose runner was killed with SIGKILL (as `kill -9` or a crash would), and its process group."""
    job = _submit(bdt_dir, db, mem_gb=1.0, random_events=LONG)
    pgid = os.getpgid(_verify_process(job).pid)
    runner = int(job.backend_id)
    os.kill(runner, signal.SIGKILL)
    _until(lambda: not _running(runner), "the runner to die")
    return job, pgid


@needs_gxx
def test_a_vanished_runner_s_job_is_killed_before_it_is_marked_lost(bdt_dir, state):
    from l1ml.synth.queue import status

    job, pgid = _orphaned_job(bdt_dir, state)
    found = next(j for j in status(state) if j.id == job.id)
    assert found.state == "lost" and "runner process is gone" in found.message, found.message
    assert _group(pgid) == [], "the lost job's process group still runs"
    log = Path(job.job_dir, "job.log")
    size = log.stat().st_size
    time.sleep(1.0)
    assert log.stat().st_size == size and not Path(job.job_dir, "result.json").exists()


@needs_gxx
def test_cancel_of_a_lost_job_stops_what_still_runs(bdt_dir, state):
    from l1ml.synth.queue import cancel

    job, pgid = _orphaned_job(bdt_dir, state)
    # a record that says lost while the job's processes still run (as earlier versions of l1ml left them)
    state.update(job.id, state="lost", ended=time.time(), message="the runner process is gone")
    ended = cancel(job.id, state)
    assert ended.state == "lost" and re.search(r"`l1ml synth cancel` stopped \d+ process(es)? left running", ended.message), ended.message
    assert _group(pgid) == []
    with pytest.raises(L1mlError, match=r"already ended \(lost\) and nothing of it is still running"):
        cancel(job.id, state)


@needs_gxx
def test_cancel_of_a_running_job_whose_runner_vanished_stops_it(bdt_dir, state):
    from l1ml.synth.queue import cancel

    job, pgid = _orphaned_job(bdt_dir, state)
    ended = cancel(job.id, state)  # no `status` in between: the record still says running
    assert ended.state == "lost" and re.search(r"killed the \d+ process(es)? it left running", ended.message), ended.message
    assert _group(pgid) == []


@needs_gxx
def test_a_job_killed_by_a_signal_names_the_signal(bdt_dir, state):
    from l1ml.synth.queue import wait

    job = _submit(bdt_dir, state, mem_gb=1.0, random_events=LONG)
    _verify_process(job)
    run_sh = psutil.Process(int(job.backend_id)).children()[0]  # the job itself (run.sh, or what it exec'd), not its runner
    run_sh.kill()
    ended = wait([job.id], state, timeout_s=60, poll_s=0.2)[0]
    assert ended.state == "failed"
    assert ended.message.startswith("killed by SIGKILL (exit status 137)"), ended.message


def test_wait_without_arguments_reports_jobs_that_ended_before_it_and_exits_non_zero(bdt_dir, state, monkeypatch):
    from l1ml.cli import cli
    from l1ml.synth.queue import status

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no HLS tool: the job fails at once
    job = _submit(bdt_dir, state, kind="hls", mem_gb=1.0)
    _until(lambda: next(j for j in status(state) if j.id == job.id).state == "tool_missing", "the job to fail")
    waited = CliRunner().invoke(cli, ["synth", "wait"])
    assert waited.exit_code == 5, waited.output
    assert f"{job.id}: tool_missing (l1ml: no HLS tool" in waited.output
    again = CliRunner().invoke(cli, ["synth", "wait"])  # each ended job is reported once
    assert again.exit_code == 0 and "no jobs to wait for" in again.output, again.output


@pytest.mark.parametrize(("request_", "flag", "value"), [({"mem_gb": 0.0}, "--mem", "0G"), ({"time_s": 0}, "--time", "0s"),
                                                       ({"time_s": -60}, "--time", "-60s"), ({"cpus": 0}, "--cpus", 0)])
def test_impossible_requests_are_refused_at_submission(bdt_dir, state, request_, flag, value):
    with pytest.raises(L1mlError) as refused:
        _submit(bdt_dir, state, **request_)
    assert f"key '{flag}', value {value!r}" in str(refused.value)
    assert state.jobs() == []


def test_submit_cli_refuses_mem_0g(bdt_dir, state):
    from l1ml.cli import cli

    result = CliRunner().invoke(cli, ["synth", "submit", str(bdt_dir), "--kind", "verify", "--mem", "0G"])
    assert isinstance(result.exception, L1mlError) and "key '--mem', value '0G'" in str(result.exception)
    assert state.jobs() == []


FAILING_CONDOR = """#!/bin/sh
echo "$(basename "$0"): Failed to connect to the schedd (HTCondor is down)" >&2
exit 1
"""


@pytest.fixture
def condor_job(state, tmp_path, monkeypatch):
    """A job record as condor_submit leaves it, on a host whose HTCondor commands all fail (real failing commands)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("condor_q", "condor_history", "condor_rm"):
        (bin_dir / name).write_text(FAILING_CONDOR)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    job_dir = state.jobs_dir / "m-verify-1"
    job_dir.mkdir()
    with state.transaction() as conn:
        state.insert(conn, id="m-verify-1", kind="verify", model="m", backend="condor", state="queued", dedup_key="k",
                     job_dir=str(job_dir), mem_gb=2.0, cpus=1, time_s=3600, submitted=time.time(), attempts=1, backend_id="4242")
    return state.get("m-verify-1")


def test_a_condor_job_whose_queries_keep_failing_ends_lost_naming_the_commands(state, condor_job, monkeypatch):
    from l1ml.synth import condor
    from l1ml.synth.queue import status

    monkeypatch.setattr(condor, "MAX_QUERY_OUTAGE_S", 0)  # the count alone decides here
    status(state)
    assert state.get(condor_job.id).state == "queued", "one failed query does not end a job"
    for _ in range(100):
        if state.get(condor_job.id).state != "queued":
            break
        status(state)
    ended = state.get(condor_job.id)
    assert ended.state == "lost", ended.message
    assert "condor_q 4242 -json exited 1: condor_q: Failed to connect" in ended.message
    assert "condor_history 4242 -json -limit 1 exited 1: condor_history: Failed to connect" in ended.message


def test_a_condor_job_unanswered_for_too_long_ends_lost(state, condor_job, monkeypatch):
    from l1ml.synth import condor
    from l1ml.synth.queue import status

    monkeypatch.setattr(condor, "MAX_FAILED_QUERIES", 2)
    monkeypatch.setattr(condor, "MAX_QUERY_OUTAGE_S", 0.5)
    for _ in range(3):  # three quick failures are not yet an outage
        status(state)
    assert state.get(condor_job.id).state == "queued"
    time.sleep(0.6)
    status(state)
    assert state.get(condor_job.id).state == "lost"


@pytest.mark.parametrize("damage", ["garbage file", "garbage pages"])
def test_a_corrupted_job_database_is_one_named_error(state, damage):
    from l1ml.synth.db import JobDB

    if damage == "garbage file":
        state.path.write_bytes(b"not a database " * 1000)
    else:
        with open(state.path, "r+b") as db:
            db.seek(100)  # the header of the first page, where the schema's table starts
            db.write(b"\xff" * 3000)
    with pytest.raises(L1mlError) as refused:
        JobDB()
    message = str(refused.value)
    assert message.startswith(f"{state.path}: ") and "\n" not in message
    assert "not a job database SQLite can read" in message and "move it away" in message


def test_l1ml_state_pointing_at_a_file_is_one_named_error(tmp_path, monkeypatch):
    from l1ml.synth.db import JobDB

    not_a_folder = tmp_path / "state.txt"
    not_a_folder.write_text("")
    monkeypatch.setenv("L1ML_STATE", str(not_a_folder))
    with pytest.raises(L1mlError) as refused:
        JobDB()
    assert str(refused.value).startswith(f"{not_a_folder}, key 'L1ML_STATE': is a file, not a folder")
