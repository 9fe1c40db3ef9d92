"""The local synthesis queue, with real jobs (`l1ml verify` and GHDL) run through the same machinery as HLS jobs:
memory budget, refusal, cancel, memory kill, survival of a kill -9 of the submitting `l1ml`, duplicates."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from l1ml.errors import L1mlError

from helpers import small_converted_bdt

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed (make test installs it)")


@pytest.fixture(scope="module")
def bdt_dir(tmp_path_factory):
    """A small BDT of your own, converted (xilinxhls + vhdl): verify jobs take a few seconds."""
    return small_converted_bdt(tmp_path_factory.mktemp("synth_bdt"), 5)


@pytest.fixture
def state(tmp_path, monkeypatch):
    from l1ml.synth.db import JobDB

    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("L1ML_CACHE", str(tmp_path / "cache"))
    db = JobDB()
    db.set_setting("local.mem_budget_gb", "10")
    db.set_setting("local.cores", "4")
    return db


def _submit(target, db, **kw):
    from l1ml.synth.queue import SubmitOptions, submit

    return submit(target, SubmitOptions(**{"kind": "verify", "force": True, **kw}), db)


def _result(job):
    return json.loads(Path(job.job_dir, "result.json").read_text())


def test_two_jobs_of_60_percent_never_overlap_and_a_third_waits(bdt_dir, state):
    from l1ml.synth.queue import wait

    jobs = [_submit(bdt_dir, state, mem_gb=6.0) for _ in range(2)]
    assert [j.state for j in jobs] == ["running", "queued"]
    ended = wait([j.id for j in jobs], state, timeout_s=600, poll_s=0.3)
    assert [j.state for j in ended] == ["done", "done"], [j.message for j in ended]
    first, second = (_result(j) for j in ended)
    assert second["started"] >= first["ended"] - 0.5, "the second started only after the first ended"
    assert first["reports"]["verify"]["passed"] and first["peak_mem_gb"] > 0.05
    assert first["tool_version"].startswith("l1ml")


def test_a_job_bigger_than_the_budget_is_refused_at_submission(bdt_dir, state):
    with pytest.raises(L1mlError, match="asks for 12 GB but this host's synthesis budget is 10 GB"):
        _submit(bdt_dir, state, mem_gb=12.0)
    assert state.jobs() == []


def test_duplicate_submission_is_refused_without_force(bdt_dir, state):
    from l1ml.synth.queue import wait

    job = _submit(bdt_dir, state, mem_gb=1.0, force=False)
    with pytest.raises(L1mlError, match=f"already submitted as job {job.id}"):
        _submit(bdt_dir, state, mem_gb=1.0, force=False)
    assert wait([job.id], state, timeout_s=600, poll_s=0.3)[0].state == "done"


def test_cancel_a_running_and_a_queued_job(bdt_dir, state):
    from l1ml.synth.queue import cancel, wait

    running = _submit(bdt_dir, state, mem_gb=6.0, random_events=3_000_000)
    queued = _submit(bdt_dir, state, mem_gb=6.0)
    assert queued.state == "queued"
    assert cancel(queued.id, state).state == "cancelled"
    time.sleep(1.0)
    cancel(running.id, state)
    ended = wait([running.id], state, timeout_s=120, poll_s=0.3)[0]
    assert ended.state == "cancelled" and ended.ended - ended.started < 100


def test_a_job_over_its_memory_request_ends_out_of_memory(bdt_dir, state):
    from l1ml.synth.queue import wait

    job = _submit(bdt_dir, state, mem_gb=0.05)  # l1ml verify alone needs more than 50 MB
    ended = wait([job.id], state, timeout_s=300, poll_s=0.3)[0]
    assert ended.state == "out_of_memory"
    assert ended.message == "out of memory at 0.05 GB: raise --mem or the ReuseFactor"
    assert _result(ended)["killed_for"] == "memory"


def test_the_queue_survives_kill_9_of_the_submitting_l1ml(bdt_dir, state, tmp_path):
    """`l1ml synth submit ... && l1ml synth wait` killed -9 mid-way: the running job finishes, and the queued one is
    started by the first one's runner, with no l1ml process left."""
    env = {**os.environ}
    script = (f"{sys.executable} -m l1ml synth submit {bdt_dir} --kind verify --mem 6G --force && "
              f"{sys.executable} -m l1ml synth submit {bdt_dir} --kind verify --mem 6G --force && "
              f"exec {sys.executable} -m l1ml synth wait")
    proc = subprocess.Popen(["bash", "-c", script], env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(state.jobs()) < 2:
        time.sleep(0.2)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [j.state for j in state.jobs()] == ["running", "queued"]
    deadline = time.time() + 600
    while time.time() < deadline and any(j.state in ("running", "queued") for j in state.jobs()):
        time.sleep(0.5)  # only reads the database: no l1ml command drives the queue
    assert [j.state for j in state.jobs()] == ["done", "done"]


def test_a_job_whose_runner_vanished_is_lost(bdt_dir, state):
    from l1ml.synth.queue import status

    job = _submit(bdt_dir, state, mem_gb=1.0, random_events=3_000_000)
    os.kill(int(job.backend_id), signal.SIGKILL)  # the runner, not the job: as on a reboot
    time.sleep(0.5)
    found = next(j for j in status(state) if j.id == job.id)
    assert found.state == "lost" and "runner process is gone" in found.message


@pytest.mark.skipif(shutil.which("ghdl") is None, reason="GHDL is not installed (make test installs it)")
def test_ghdl_job_runs_the_vhdl_testbench_on_test_vectors(bdt_dir, state):
    from l1ml.synth.queue import wait

    job = _submit(bdt_dir, state, kind="ghdl", mem_gb=1.0)
    ended = wait([job.id], state, timeout_s=600, poll_s=0.3)[0]
    assert ended.state == "done", ended.message
    assert _result(ended)["reports"]["ghdl"]["events"] > 200
    assert Path(ended.job_dir, "vectors", "expected.txt").read_text().strip(), "expected scores were written"


def test_an_hls_job_without_the_tool_fails_at_once_naming_it(bdt_dir, state, monkeypatch):
    from l1ml.synth.queue import wait

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no Vivado/Vitis here in any case
    job = _submit(bdt_dir, state, kind="hls", mem_gb=1.0)
    files = sorted(os.listdir(job.job_dir))
    assert {"build.tcl", "job.json", "project", "run.sh"} <= set(files)
    assert "array set opt" in Path(job.job_dir, "project", "build_opt.tcl").read_text()
    ended = wait([job.id], state, timeout_s=120, poll_s=0.3)[0]
    assert ended.state == "tool_missing"
    assert "Vitis HLS (vitis_hls, vitis-run or vivado_hls) is not on the PATH" in ended.message


def test_memory_request_from_the_config_else_the_rule_with_its_floor(bdt_dir, tmp_path):
    from l1ml.synth.jobs import spec_for

    def mem(target, floor):
        return spec_for(target, kind="hls", backend=None, steps=["csynth"], mem_gb=None, time_s=60, cpus=1, floor_gb=floor,
                        settings=None, container=None).mem_gb

    assert mem(bdt_dir, 8.0) == 8.0  # a 4-tree BDT: the rule gives 2 GB, the floor wins
    assert mem(bdt_dir, 1.0) == 2.0
    run_like = tmp_path / "run"
    shutil.copytree(bdt_dir, run_like)
    (run_like / "config.yaml").write_text("firmware: {synth_mem_gb: 3.5}\n")
    assert mem(run_like, 8.0) == 3.5
