"""The HTCondor backend: a submit description with `request_memory`, `request_cpus` and the run time (`+MaxRuntime`,
or CERN's `+JobFlavour` when `L1ML_CONDOR_FLAVOUR=1`), submitted with `condor_submit`; state from `condor_q` and
`condor_history`; `condor_rm` to cancel. HTCondor holds a job that exceeds its memory request (hold reason
code 34, or 26 for the system periodic hold), which is recorded as out of memory.

HTCondor does not run here: the submit description is tested, the integration test runs where
`condor_submit` exists.
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

# CERN batch job flavours and their wall-time limits (https://batchdocs.web.cern.ch)
FLAVOURS = [("espresso", 20 * 60), ("microcentury", 3600), ("longlunch", 2 * 3600), ("workday", 8 * 3600),
            ("tomorrow", 24 * 3600), ("testmatch", 3 * 24 * 3600), ("nextweek", 7 * 24 * 3600)]
MEMORY_HOLD_CODES = (26, 34)


def flavour_for(time_s: int) -> str:
    """The shortest CERN job flavour whose limit covers `time_s`."""
    for name, limit in FLAVOURS:
        if time_s <= limit:
            return name
    raise L1mlError(f"{time_s} s is longer than the longest HTCondor job flavour (nextweek)", key="--time", value=time_s)


def submit_description(job_dir: Path, *, mem_gb: float, cpus: int, time_s: int, job_id: str, cern_flavour: bool = False) -> str:
    runtime = f'+JobFlavour = "{flavour_for(time_s)}"' if cern_flavour else f"+MaxRuntime = {int(time_s)}"
    return "\n".join([
        f"# l1ml job {job_id}",
        f"executable = {job_dir / 'run.sh'}",
        f"initialdir = {job_dir}",
        f"output = {job_dir / 'job.log'}",
        f"error = {job_dir / 'job.log'}",
        f"log = {job_dir / 'condor.log'}",
        f"request_memory = {int(round(mem_gb * 1024))}M",
        f"request_cpus = {cpus}",
        runtime,
        "should_transfer_files = NO",
        f'+L1mlJob = "{job_id}"',
        "queue 1",
        "",
    ])


class CondorBackend:
    name = "condor"

    def __init__(self, db: JobDB):
        self.db = db

    def check_fits(self, mem_gb: float, cpus: int) -> None:
        if shutil.which("condor_submit") is None:
            raise L1mlError("condor_submit is not installed here: the HTCondor backend needs the HTCondor client",
                            key="--backend", value="condor")

    def submit(self, job_id: str) -> None:
        job = self.db.get(job_id)
        desc = submit_description(Path(job.job_dir), mem_gb=job.mem_gb, cpus=job.cpus, time_s=job.time_s, job_id=job_id,
                                  cern_flavour=os.environ.get("L1ML_CONDOR_FLAVOUR") == "1")
        sub = Path(job.job_dir) / "job.sub"
        sub.write_text(desc)
        proc = subprocess.run(["condor_submit", "-terse", str(sub)], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise L1mlError(f"condor_submit failed: {proc.stderr.strip()}", path=sub)
        self.db.update(job_id, backend_id=proc.stdout.strip().split(" - ")[0])

    def schedule(self) -> list[str]:
        self.refresh()
        return []

    def refresh(self) -> None:
        from l1ml.synth.runner import finish, save_result

        for job in self.db.jobs(None, "backend = 'condor' AND state IN ('queued', 'running')"):
            ad = self._classad(job.backend_id)
            status = int(ad.get("JobStatus", 0))
            if status == 2 and job.state != "running":  # running
                self.db.update(job.id, state="running", started=time.time(), host=str(ad.get("RemoteHost", "")))
            if status not in (3, 4, 5):  # removed, completed, held
                continue
            killed_for = "cancel" if status == 3 else None
            if status == 5 and int(ad.get("HoldReasonCode", 0)) in MEMORY_HOLD_CODES:
                killed_for = "memory"
            spec = json.loads((Path(job.job_dir) / "job.json").read_text())
            result = finish(Path(job.job_dir), spec, exit_code=ad.get("ExitCode"), killed_for=killed_for, peak_bytes=None,
                            started=job.started or job.submitted)
            save_result(self.db, Path(job.job_dir), result)
            if status == 5:
                subprocess.run(["condor_rm", job.backend_id], capture_output=True, timeout=60)

    def _classad(self, cluster: str) -> dict:
        for cmd in (["condor_q", cluster, "-json"], ["condor_history", cluster, "-json", "-limit", "1"]):
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if proc.returncode == 0 and proc.stdout.strip():
                return json.loads(proc.stdout)[0]
        return {}

    def cancel(self, job) -> None:
        subprocess.run(["condor_rm", job.backend_id], capture_output=True, timeout=60, check=False)
