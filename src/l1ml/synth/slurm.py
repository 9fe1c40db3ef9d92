"""The Slurm backend: `sbatch --parsable` with the job's memory, time, cores (and partition and account), state from
`scontrol` (and `sacct` where accounting is on), as JSON where this Slurm has it, `scancel` to cancel.

Slurm enforces the memory request itself (cgroups, or `JobAcctGatherParams=OverMemoryKill`); the job's
log then says `Exceeded job memory limit` and the state is OUT_OF_MEMORY or FAILED, both recorded as out
of memory. Jobs that the cluster lost (node failure, preemption) are submitted again, up to
`L1ML_SLURM_RETRIES` (default 2) more times.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from l1ml.errors import L1mlError
from l1ml.synth.db import JobDB
from l1ml.synth.jobs import read_job
from l1ml.synth.runner import finish, save_result

ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
         "DEADLINE")


def _run(cmd: list[str], what: str) -> str:
    if shutil.which(cmd[0]) is None:
        raise L1mlError(f"{cmd[0]} is not installed here: the Slurm backend needs the Slurm client commands", key="--backend",
                        value="slurm")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise L1mlError(f"{what} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}", key="--backend",
                        value="slurm")
    return proc.stdout


def _epoch(text: str | None) -> float | None:
    try:
        return dt.datetime.fromisoformat(text).timestamp() if text and text not in ("Unknown", "None") else None
    except ValueError:
        return None


# Job states come from the JSON output of `scontrol --json show job` and `sacct --json` where this Slurm has it (Slurm
# 23.02 and newer, with its data_parser plugin); older ones (Debian 12's 22.05, which `make test` runs) have no
# `scontrol --json`, and their state comes from `scontrol show job -o` and `sacct -P`, whose fields are read by name.
_NO_JSON: set[str] = set()  # the commands whose --json this Slurm lacks, found out once per process
_NO_JSON_RE = re.compile(r"unrecognized option|invalid option|unknown option|data_parser|serializer", re.I)


def json_output(cmd: list[str]) -> dict | None:
    """`cmd` run with `--json`, parsed; None where this Slurm build has no JSON output for it. A query that fails
    otherwise (a job the controller no longer knows) gives no jobs."""
    if cmd[0] in _NO_JSON:
        return None
    proc = subprocess.run([cmd[0], "--json", *cmd[1:]], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        if _NO_JSON_RE.search(proc.stderr):
            _NO_JSON.add(cmd[0])
            return None
        return {"jobs": []}
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        _NO_JSON.add(cmd[0])
        return None
    return data if isinstance(data, dict) else {"jobs": []}


def controller_state(slurm_id: str) -> dict | None:
    """The job as slurmctld knows it, or None once it has forgotten it (MinJobAge after the end)."""
    data = json_output(["scontrol", "show", "job", slurm_id])
    if data is not None:
        jobs = data.get("jobs") or []
        return from_job_record(jobs[0]) if jobs else None
    proc = subprocess.run(["scontrol", "show", "job", "-o", slurm_id], capture_output=True, text=True, timeout=60)
    return from_scontrol_text(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else None


def accounting_state(slurm_id: str) -> dict | None:
    """The job as Slurm's accounting recorded it, or None (accounting off, or no such job)."""
    data = json_output(["sacct", "-X", "-j", slurm_id])
    if data is not None:
        jobs = data.get("jobs") or []
        return from_sacct_record(jobs[0]) if jobs else None
    proc = subprocess.run(["sacct", "-n", "-X", "-P", "-j", slurm_id, "-o", "State,ExitCode,NodeList"], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    state, code, node = proc.stdout.strip().splitlines()[0].split("|")
    return job_info(state.split()[0], code, node)


def job_info(state: str, exit_text: str = "", node: str = "", reason: str = "", start: float | None = None,
             end: float | None = None) -> dict:
    """What the backend needs of a Slurm job: state, `code:signal`, node, reason, start and end (epoch seconds)."""
    return {"state": state, "exit": exit_text, "node": node, "reason": reason, "start": start, "end": end}


def from_scontrol_text(text: str) -> dict:
    """`scontrol show job -o`: Key=Value pairs; a value may hold spaces (a path), so only the first of each key counts."""
    fields: dict[str, str] = {}
    for item in text.split():
        key, eq, value = item.partition("=")
        if eq:
            fields.setdefault(key, value)
    return job_info(fields.get("JobState", ""), fields.get("ExitCode", ""), fields.get("NodeList", ""), fields.get("Reason", ""),
                    _epoch(fields.get("StartTime")), _epoch(fields.get("EndTime")))


def from_job_record(job: dict) -> dict:
    """A job of `scontrol --json show job` (or `squeue --json`), in any of the shapes Slurm's JSON has had: states as
    a string or a list, the exit code as a wait status or an object, times as numbers or {set, number} objects."""
    return job_info(_first(job.get("job_state")), _exit_text(job.get("exit_code")), job.get("nodes") or "",
                    job.get("state_reason") or "", _time(job.get("start_time")), _time(job.get("end_time")))


def from_sacct_record(job: dict) -> dict:
    """A job of `sacct --json`."""
    state, times = job.get("state") or {}, job.get("time") or {}
    return job_info(_first(state.get("current")), _exit_text(job.get("exit_code")), job.get("nodes") or "",
                    state.get("reason") or "", _time(times.get("start")), _time(times.get("end")))


def _first(value) -> str:
    return (value[0] if value else "") if isinstance(value, list) else value or ""


def _number(value) -> int | None:
    """A plain number, or Slurm's {"set": ..., "infinite": ..., "number": ...}."""
    if isinstance(value, dict):
        return value.get("number") if value.get("set", True) and not value.get("infinite") else None
    return value


def _time(value) -> float | None:
    number = _number(value)
    return float(number) if number else None


def _exit_text(exit_code) -> str:
    """`code:signal`, as `scontrol show job` prints ExitCode: from a wait status (Slurm 22.05's JSON) or from an object
    with return_code and signal."""
    if isinstance(exit_code, dict):
        signal = exit_code.get("signal") or {}
        signal_id = signal.get("id", signal.get("signal_id")) if isinstance(signal, dict) else None
        return f"{_number(exit_code.get('return_code')) or 0}:{_number(signal_id) or 0}"
    status = _number(exit_code) or 0
    return f"{(status >> 8) & 0xFF}:{status & 0x7F}"


def retries() -> int:
    return int(os.environ.get("L1ML_SLURM_RETRIES", "2"))


class SlurmBackend:
    name = "slurm"

    def __init__(self, db: JobDB):
        self.db = db

    def check_fits(self, mem_gb: float, cpus: int) -> None:
        nodes = [line.split() for line in _run(["sinfo", "-h", "-N", "-o", "%m %c"], "sinfo").splitlines() if line.strip()]
        if not nodes:
            raise L1mlError("this Slurm cluster has no nodes", key="--backend", value="slurm")
        largest_mem = max(int(m.rstrip("+")) for m, _ in nodes) / 1024
        largest_cpus = max(int(c.rstrip("+")) for _, c in nodes)
        if mem_gb > largest_mem:
            raise L1mlError(f"the job asks for {mem_gb:g} GB but the largest node of this Slurm cluster has {largest_mem:.1f} GB, "
                            "so it could never start; lower --mem (or raise the ReuseFactor)", key="--mem", value=f"{mem_gb:g}G")
        if cpus > largest_cpus:
            raise L1mlError(f"the job asks for {cpus} cores; the largest node has {largest_cpus}", key="--cpus", value=cpus)

    def submit(self, job_id: str) -> None:
        job = self.db.get(job_id)
        extra = read_job(job.job_dir).extra
        cmd = ["sbatch", "--parsable", f"--job-name=l1ml-{job_id[:60]}", f"--mem={int(round(job.mem_gb * 1024))}M",
               f"--time={max(1, -(-job.time_s // 60))}", f"--cpus-per-task={job.cpus}", f"--chdir={job.job_dir}",
               f"--output={job.job_dir}/job.log", "--open-mode=append"]
        if extra.signal_before_s:  # SIGTERM to the batch script (exec'd l1ml) before the wall time: it stops cleanly
            cmd.append(f"--signal=B:TERM@{extra.signal_before_s}")
        for key, value in (("partition", extra.partition), ("account", extra.account)):
            if value:
                cmd.append(f"--{key}={value}")
        slurm_id = _run([*cmd, str(Path(job.job_dir) / "run.sh")], "sbatch").strip().split(";")[0]
        self.db.update(job_id, backend_id=slurm_id, started=None)

    def state_of(self, slurm_id: str) -> dict:
        """JobState, ExitCode, NodeList, Reason, StartTime and EndTime of a job, from the controller (`scontrol`) or, once
        it forgot the job, from accounting (`sacct`)."""
        info = controller_state(slurm_id)
        if info is None and shutil.which("sacct"):
            info = accounting_state(slurm_id)
        return info or job_info("UNKNOWN")

    def schedule(self) -> list[str]:
        self.refresh()
        return []

    def refresh(self) -> None:
        for job in self.db.jobs(None, "backend = 'slurm' AND state IN ('queued', 'running')"):
            info = self.state_of(job.backend_id)
            state = info["state"]
            if state in ("PENDING", "CONFIGURING"):
                continue
            if state in ("RUNNING", "COMPLETING"):
                if job.state != "running":
                    self.db.update(job.id, state="running", started=time.time(), host=info["node"])
                continue
            if state == "UNKNOWN":
                self.db.update(job.id, state="lost", ended=time.time(),
                               message=f"Slurm no longer knows job {job.backend_id} and accounting is off")
                continue
            if state not in ENDED:
                continue
            job_dir = Path(job.job_dir)
            code, _, signal_ = info["exit"].partition(":")
            exit_code = int(code or 0) or (128 + int(signal_) if signal_ and int(signal_) else 0)
            try:
                result = finish(job_dir, read_job(job_dir), exit_code=exit_code, killed_for=None, peak_bytes=None,
                                started=job.started or job.submitted, slurm_state=state)
            except L1mlError as exc:
                self.db.end_unreadable(job.id, exc)
                continue
            result.host = info["node"]
            if info["start"] and info["end"]:  # Slurm's own times, not when l1ml noticed
                result.started, result.ended = info["start"], info["end"]
            if result.transient and job.attempts <= retries():
                self.db.update(job.id, state="queued", attempts=job.attempts + 1, message=result.message)
                self.submit(job.id)
                continue
            save_result(self.db, job_dir, result)

    def cancel(self, job) -> None:
        _run(["scancel", job.backend_id], "scancel")

    def stop_leftovers(self, job) -> str | None:
        return None  # Slurm ends every process of a job that ended
