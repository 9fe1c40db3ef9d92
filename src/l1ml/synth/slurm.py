"""The Slurm backend: `sbatch --parsable` with the job's memory, time, cores (and partition and account), state from
`squeue`/`scontrol` (and `sacct` where accounting is on), `scancel` to cancel.

Slurm enforces the memory request itself (cgroups, or `JobAcctGatherParams=OverMemoryKill`); the job's
log then says `Exceeded job memory limit` and the state is OUT_OF_MEMORY or FAILED, both recorded as out
of memory. Jobs that the cluster lost (node failure, preemption) are submitted again, up to
`L1ML_SLURM_RETRIES` (default 2) more times.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from l1ml.errors import L1mlError
from l1ml.synth.db import JobDB

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
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text).timestamp() if text and text not in ("Unknown", "None") else None
    except ValueError:
        return None


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
        spec = json.loads((Path(job.job_dir) / "job.json").read_text())
        cmd = ["sbatch", "--parsable", f"--job-name=l1ml-{job_id[:60]}", f"--mem={int(round(job.mem_gb * 1024))}M",
               f"--time={max(1, -(-job.time_s // 60))}", f"--cpus-per-task={job.cpus}", f"--chdir={job.job_dir}",
               f"--output={job.job_dir}/job.log", "--open-mode=append"]
        for key in ("partition", "account"):
            if spec.get("extra", {}).get(key):
                cmd.append(f"--{key}={spec['extra'][key]}")
        slurm_id = _run([*cmd, str(Path(job.job_dir) / "run.sh")], "sbatch").strip().split(";")[0]
        self.db.update(job_id, backend_id=slurm_id, started=None)

    def state_of(self, slurm_id: str) -> dict:
        """JobState, ExitCode, NodeList, StartTime of a job, from scontrol (or sacct once scontrol forgot it)."""
        proc = subprocess.run(["scontrol", "show", "job", "-o", slurm_id], capture_output=True, text=True, timeout=60)
        if proc.returncode == 0 and proc.stdout.strip():
            fields = dict(item.split("=", 1) for item in proc.stdout.split() if "=" in item)
            return {"state": fields.get("JobState", ""), "exit": fields.get("ExitCode", ""), "node": fields.get("NodeList", ""),
                    "reason": fields.get("Reason", ""), "start": _epoch(fields.get("StartTime")), "end": _epoch(fields.get("EndTime"))}
        if shutil.which("sacct"):
            acct = subprocess.run(["sacct", "-n", "-X", "-P", "-j", slurm_id, "-o", "State,ExitCode,NodeList"],
                                  capture_output=True, text=True, timeout=60)
            if acct.returncode == 0 and acct.stdout.strip():
                state, code, node = acct.stdout.strip().splitlines()[0].split("|")
                return {"state": state.split()[0], "exit": code, "node": node, "reason": "", "start": None, "end": None}
        return {"state": "UNKNOWN", "exit": "", "node": "", "reason": "", "start": None, "end": None}

    def schedule(self) -> list[str]:
        self.refresh()
        return []

    def refresh(self) -> None:
        from l1ml.synth.runner import finish, save_result

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
            spec = json.loads((job_dir / "job.json").read_text())
            code, _, signal_ = info["exit"].partition(":")
            exit_code = int(code or 0) or (128 + int(signal_) if signal_ and int(signal_) else 0)
            result = finish(job_dir, spec, exit_code=exit_code, killed_for=None, peak_bytes=None,
                            started=job.started or job.submitted, slurm_state=state)
            result["host"] = info["node"]
            if info["start"] and info["end"]:  # Slurm's own times, not when l1ml noticed
                result["started"], result["ended"] = info["start"], info["end"]
            if result["transient"] and job.attempts <= retries():
                self.db.update(job.id, state="queued", attempts=job.attempts + 1, message=result["message"])
                self.submit(job.id)
                continue
            save_result(self.db, job_dir, result)

    def cancel(self, job) -> None:
        _run(["scancel", job.backend_id], "scancel")

    def stop_leftovers(self, job) -> str | None:
        return None  # Slurm ends every process of a job that ended
