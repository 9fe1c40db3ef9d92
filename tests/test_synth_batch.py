"""Batch backends: the real one-node Slurm that `make test` starts (scripts/start-slurm.sh), and HTCondor's submit
description (HTCondor cannot run here; its integration test runs where condor_submit exists)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from l1ml.errors import L1mlError

from helpers import small_converted_bdt


def slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10).stdout
    except subprocess.TimeoutExpired:
        return False
    return any(s.strip() in ("idle", "mix", "alloc") for s in out.splitlines())


needs_slurm = pytest.mark.skipif(not slurm_up(), reason="no Slurm cluster answers here: start one with "
                                                        "`sudo scripts/start-slurm.sh` (make test does when it runs as root)")


@pytest.fixture(scope="module")
def bdt_dir(tmp_path_factory):
    return small_converted_bdt(tmp_path_factory.mktemp("synth_bdt"), 6, "xilinxhls")


@pytest.fixture
def db(tmp_path, monkeypatch):
    from l1ml.synth.db import JobDB

    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("L1ML_CACHE", str(tmp_path / "cache"))
    return JobDB()


def _submit(target, db, **kw):
    from l1ml.synth.queue import SubmitOptions, submit

    return submit(target, SubmitOptions(**{"kind": "verify", "backend": "slurm", "force": True, **kw}), db)


def _node_gb() -> float:
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%m"], capture_output=True, text=True, timeout=10).stdout
    return max(int(m.rstrip("+")) for m in out.split()) / 1024


@needs_slurm
def test_slurm_runs_two_60_percent_jobs_one_after_the_other(bdt_dir, db):
    from l1ml.synth.queue import wait

    mem = round(0.6 * _node_gb(), 1)
    jobs = [_submit(bdt_dir, db, mem_gb=mem) for _ in range(2)]
    ended = wait([j.id for j in jobs], db, timeout_s=900, poll_s=1)
    assert [j.state for j in ended] == ["done", "done"], [j.message for j in ended]
    first, second = (json.loads(Path(j.job_dir, "result.json").read_text()) for j in ended)
    assert first["reports"]["verify"]["passed"]
    assert max(first["started"], second["started"]) >= min(first["ended"], second["ended"]), "they overlapped"


@needs_slurm
def test_slurm_refuses_a_job_larger_than_any_node(bdt_dir, db):
    with pytest.raises(L1mlError, match="the largest node of this Slurm cluster has"):
        _submit(bdt_dir, db, mem_gb=_node_gb() * 2)


@needs_slurm
def test_slurm_cancel_and_out_of_memory(bdt_dir, db):
    from l1ml.synth.queue import cancel, wait

    long = _submit(bdt_dir, db, mem_gb=2.0, random_events=3_000_000)
    oom = _submit(bdt_dir, db, mem_gb=0.05)
    time.sleep(2)
    cancel(long.id, db)
    ended = {j.id: j for j in wait([long.id, oom.id], db, timeout_s=600, poll_s=1)}
    assert ended[long.id].state == "cancelled"
    assert ended[oom.id].state == "out_of_memory", ended[oom.id].message
    assert ended[oom.id].message == "out of memory at 0.05 GB: raise --mem or the ReuseFactor"


@needs_slurm
def test_slurm_job_states_from_json_equal_those_from_text(tmp_path):
    """Exit status, signal, node and times of real jobs, as this Slurm's JSON job records give them (the shape of
    `scontrol --json show job`; here from `squeue --json`, which every Slurm since 21.08 has) and as its text does."""
    from l1ml.synth.slurm import controller_state, from_job_record, from_scontrol_text

    scripts = {"exit 3": "3:0", "kill -9 $$": "0:9", "true": "0:0"}
    ids = {}
    for script, exit_text in scripts.items():
        ids[subprocess.run(["sbatch", "--parsable", "--mem=50M", "--time=1", f"--chdir={tmp_path}", f"--output={tmp_path}/%j.log",
                            f"--wrap={script}"], capture_output=True, text=True, check=True).stdout.strip()] = exit_text
    deadline = time.time() + 300
    while any(controller_state(i)["state"] in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING") for i in ids):
        assert time.time() < deadline, "the test jobs did not end in 5 minutes"
        time.sleep(0.5)
    records = {str(job["job_id"]): job for job in json.loads(subprocess.run(["squeue", "--json"], capture_output=True,
                                                                           text=True, check=True).stdout)["jobs"]}
    for slurm_id, exit_text in ids.items():
        text = from_scontrol_text(subprocess.run(["scontrol", "show", "job", "-o", slurm_id], capture_output=True, text=True,
                                                 check=True).stdout)
        assert text["exit"] == exit_text and text["start"] and text["end"], text
        assert from_job_record(records[slurm_id]) == text
        assert controller_state(slurm_id) == text


def test_slurm_json_of_newer_releases_is_read_too():
    """Slurm 23.11 and newer: states as lists, numbers as {set, infinite, number}, the signal as an object."""
    from l1ml.synth.slurm import from_job_record, from_sacct_record

    def number(n):
        return {"set": True, "infinite": False, "number": n}

    exit_code = {"status": ["SIGNALED"], "return_code": number(0), "signal": {"id": number(9), "name": "KILL"}}
    expected = {"state": "FAILED", "exit": "0:9", "node": "n1", "reason": "None", "start": 100.0, "end": 200.0}
    assert from_job_record({"job_state": ["FAILED"], "exit_code": exit_code, "nodes": "n1", "state_reason": "None",
                            "start_time": number(100), "end_time": number(200)}) == expected
    assert from_sacct_record({"state": {"current": ["FAILED"], "reason": "None"}, "exit_code": exit_code, "nodes": "n1",
                              "time": {"start": 100, "end": 200}}) == expected


def test_condor_submit_description(tmp_path):
    from l1ml.synth.condor import flavour_for, submit_description

    desc = submit_description(tmp_path, mem_gb=48, cpus=4, time_s=8 * 3600, job_id="m-hls-1")
    lines = dict(line.split(" = ", 1) for line in desc.splitlines() if " = " in line)
    assert lines["request_memory"] == "49152M" and lines["request_cpus"] == "4" and lines["+MaxRuntime"] == "28800"
    assert lines["executable"] == str(tmp_path / "run.sh") and desc.rstrip().endswith("queue 1")
    cern = submit_description(tmp_path, mem_gb=8, cpus=1, time_s=3 * 3600, job_id="m", cern_flavour=True)
    assert '+JobFlavour = "workday"' in cern
    assert [flavour_for(t) for t in (600, 3600, 3601, 8 * 3600)] == ["espresso", "microcentury", "longlunch", "workday"]
    with pytest.raises(L1mlError, match="longer than the longest"):
        flavour_for(30 * 24 * 3600)


def test_condor_end_reasons_memory_wall_time_and_cancel():
    """What ended a removed or held job, from its ClassAd: a wall-time policy is a timeout (a search resumes the trial)."""
    from l1ml.synth.condor import killed_for_of

    cern = "Job removed by SYSTEM_PERIODIC_REMOVE due to wall time exceeded allowed max."
    assert killed_for_of({"JobStatus": 3, "RemoveReason": cern}) == "time"
    assert killed_for_of({"JobStatus": 5, "HoldReasonCode": 3, "HoldReason": "The job exceeded MaxRuntime of 600 s"}) == "time"
    assert killed_for_of({"JobStatus": 5, "HoldReasonCode": 34, "HoldReason": "memory usage exceeded request_memory"}) == "memory"
    assert killed_for_of({"JobStatus": 3, "RemoveReason": "via condor_rm (by user alice)"}) == "cancel"
    assert killed_for_of({"JobStatus": 5, "HoldReasonCode": 13, "HoldReason": "Error from starter"}) is None
    assert killed_for_of({"JobStatus": 4}) is None


@pytest.mark.skipif(shutil.which("condor_submit") is None, reason="HTCondor is not installed here (condor_submit missing)")
def test_condor_runs_a_verify_job(bdt_dir, db):
    from l1ml.synth.queue import wait

    job = _submit(bdt_dir, db, backend="condor", mem_gb=2.0)
    assert wait([job.id], db, timeout_s=1800, poll_s=5)[0].state == "done"
