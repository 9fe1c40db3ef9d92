"""The HTCondor backend: a submit description with `request_memory`, `request_cpus` and the run time (`+MaxRuntime`,
or CERN's `+JobFlavour` when `L1ML_CONDOR_FLAVOUR=1`), submitted with `condor_submit`; state from `condor_q` and
`condor_history`; `condor_rm` to cancel. HTCondor holds a job that exceeds its memory request (hold reason
code 34, or 26 for the system periodic hold), which is recorded as out of memory. A job whose state neither
`condor_q` nor `condor_history` can tell, in at least MAX_FAILED_QUERIES queries in a row over at least
MAX_QUERY_OUTAGE_S (a schedd restart or a short network outage must not end jobs that still run), is recorded as
lost with what they said (and removed with `condor_rm` if that still works).

HTCondor does not run here: the submit description and the failing queries are tested, the integration test runs
where `condor_submit` exists.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from l1ml.documents import CondorQueryFailures, read
from l1ml.errors import L1mlError
from l1ml.synth.db import JobDB
from l1ml.synth.jobs import read_job
from l1ml.synth.runner import finish, save_result

# CERN batch job flavours and their wall-time limits (https://batchdocs.web.cern.ch)
FLAVOURS = [("espresso", 20 * 60), ("microcentury", 3600), ("longlunch", 2 * 3600), ("workday", 8 * 3600),
            ("tomorrow", 24 * 3600), ("testmatch", 3 * 24 * 3600), ("nextweek", 7 * 24 * 3600)]
MEMORY_HOLD_CODES = (26, 34)
# a schedd that restarts or is overloaded fails queries for a while; one that never answers must not hold jobs forever
MAX_FAILED_QUERIES = 10
MAX_QUERY_OUTAGE_S = 15 * 60
QUERY_FAILURES = "condor_query_failures.json"  # in the job folder: how many queries in a row failed, since when


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
        out, error = _run(["condor_submit", "-terse", str(sub)], timeout_s=120)
        if error:
            raise L1mlError(error, path=sub)
        self.db.update(job_id, backend_id=out.strip().split(" - ")[0])

    def schedule(self) -> list[str]:
        self.refresh()
        return []

    def refresh(self) -> None:
        for job in self.db.jobs(None, "backend = 'condor' AND state IN ('queued', 'running')"):
            ad, errors = _classad(job.backend_id)
            failures = Path(job.job_dir) / QUERY_FAILURES
            if errors:
                self._query_failed(job, failures, errors)
                continue
            failures.unlink(missing_ok=True)
            self._follow(job, ad)

    def _follow(self, job, ad: dict) -> None:
        status = int(ad.get("JobStatus", 0))
        if status == 2 and job.state != "running":  # running
            self.db.update(job.id, state="running", started=time.time(), host=str(ad.get("RemoteHost", "")))
        if status not in (3, 4, 5):  # removed, completed, held
            return
        killed_for = killed_for_of(ad)
        try:
            result = finish(Path(job.job_dir), read_job(job.job_dir), exit_code=_exit_code(ad), killed_for=killed_for,
                            peak_bytes=None, started=job.started or job.submitted)
        except L1mlError as exc:
            self.db.end_unreadable(job.id, exc)
            return
        if status == 5:  # a held job stays in the queue until removed
            _, error = _run(["condor_rm", job.backend_id])
            if error:
                result.message += f"; {error}: remove it with condor_rm"
        save_result(self.db, Path(job.job_dir), result)

    def _query_failed(self, job, failures: Path, errors: list[str]) -> None:
        record = (read(failures, CondorQueryFailures, again=f"remove it: it only counts the failed queries of job {job.id}")
                  if failures.is_file() else CondorQueryFailures(count=0, since=time.time()))
        record.count += 1
        outage_s = time.time() - record.since
        if record.count < MAX_FAILED_QUERIES or outage_s < MAX_QUERY_OUTAGE_S:
            record.write(failures)
            return
        _, error = _run(["condor_rm", job.backend_id])
        removal = f"it may still run ({error}): `l1ml synth cancel {job.id}` removes it" if error else "removed it with condor_rm"
        self.db.update(job.id, state="lost", ended=time.time(),
                       message=f"HTCondor could not tell the state of job {job.backend_id} in {record.count} queries over "
                               f"{outage_s:.0f} s ({'; '.join(errors)}); {removal}")

    def cancel(self, job) -> None:
        _, error = _run(["condor_rm", job.backend_id])
        if error:
            raise L1mlError(error, key="JOB", value=job.id)

    def stop_leftovers(self, job) -> str | None:
        """A lost job may still be in HTCondor (its state could not be queried): remove it."""
        if job.state != "lost":
            return None
        self.cancel(job)
        return f"removed HTCondor job {job.backend_id}"


# What pools write when a job's wall time ran out: CERN's "Job removed by SYSTEM_PERIODIC_REMOVE due to wall time
# exceeded", MaxRuntime/MaxWallTime policies, "maximum run time"
WALL_TIME_REASON = re.compile(r"wall ?time|max(imum)?[ _]?(run ?time|wall)|run ?time (limit|exceeded)", re.I)


def killed_for_of(ad: dict) -> str | None:
    """Why HTCondor ended a removed (3) or held (5) job: memory (its hold codes), time (a wall-time policy: the job got
    SIGTERM first, and a search resumes it), or a cancel (removed by someone)."""
    status = int(ad.get("JobStatus", 0))
    reason = f"{ad.get('RemoveReason', '')} {ad.get('HoldReason', '')}"
    if status == 5 and int(ad.get("HoldReasonCode", 0)) in MEMORY_HOLD_CODES:
        return "memory"
    if status in (3, 5) and WALL_TIME_REASON.search(reason):
        return "time"
    return "cancel" if status == 3 else None


def _run(cmd: list[str], timeout_s: float = 60) -> tuple[str, str | None]:
    """An HTCondor command's output, and None; or '' and what went wrong, naming the command."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", f"{shlex.join(cmd)}: {exc}"
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip().splitlines()
        return "", f"{shlex.join(cmd)} exited {proc.returncode}: {said[-1] if said else 'no output'}"
    return proc.stdout, None


def _classad(cluster: str) -> tuple[dict, list[str]]:
    """The job's ClassAd from condor_q, else from condor_history; else an empty one and what each of them said."""
    errors = []
    for cmd in (["condor_q", cluster, "-json"], ["condor_history", cluster, "-json", "-limit", "1"]):
        out, error = _run(cmd)
        if error is None:
            try:
                ads = json.loads(out) if out.strip() else []
            except ValueError:
                ads, error = [], f"{shlex.join(cmd)} printed no JSON: {out.strip()[:200]}"
            if ads:
                return ads[0], []
        errors.append(error or f"{shlex.join(cmd)} does not know the job")
    return {}, errors


def _exit_code(ad: dict) -> int | None:
    """ExitCode, or for a job killed by a signal 128 + the signal, as a shell reports it."""
    if ad.get("ExitBySignal"):
        return 128 + int(ad.get("ExitSignal", 0))
    return ad.get("ExitCode")
