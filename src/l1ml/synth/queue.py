"""`l1ml synth` as library functions: submit, status, wait, cancel, logs, over the job database and a backend."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from l1ml.documents import JobSpec
from l1ml.errors import L1mlError
from l1ml.synth.condor import CondorBackend
from l1ml.synth.db import Job, JobDB
from l1ml.synth.jobs import DEFAULT_FLOOR_GB, create_job_dir, spec_for
from l1ml.synth.local import LocalBackend
from l1ml.synth.outcome import FINAL
from l1ml.synth.slurm import SlurmBackend

BACKENDS = ("local", "slurm", "condor")


@dataclass
class SubmitOptions:
    kind: str = "hls"
    backend: str = "local"
    firmware_backend: str | None = None  # which project of the run (vitis, vivado, xilinxhls)
    steps: tuple[str, ...] = ("csynth",)
    mem_gb: float | None = None
    time_s: int = 8 * 3600
    cpus: int = 1
    floor_gb: float = DEFAULT_FLOOR_GB
    settings: str | None = None
    container: str | None = None
    force: bool = False
    partition: str | None = None
    account: str | None = None
    random_events: int = 20000  # verify jobs of models converted with --out


def backend_for(name: str, db: JobDB):
    if name == "local":

        return LocalBackend(db)
    if name == "slurm":

        return SlurmBackend(db)
    if name == "condor":

        return CondorBackend(db)
    raise L1mlError(f"unknown backend; choose one of {', '.join(BACKENDS)}", key="--backend", value=name)


def check_request(options: SubmitOptions) -> None:
    """Refuse what no host or batch system can run."""
    if options.mem_gb is not None and not options.mem_gb > 0:
        raise L1mlError("a job needs more than 0 GB of memory", key="--mem", value=f"{options.mem_gb:g}G")
    if options.time_s < 1:
        raise L1mlError("a job needs a time limit of at least 1 s", key="--time", value=f"{options.time_s}s")
    if options.cpus < 1:
        raise L1mlError("a job needs at least 1 core", key="--cpus", value=options.cpus)


def submit(target: str | Path, options: SubmitOptions, db: JobDB | None = None) -> Job:
    check_request(options)
    db = db or JobDB()
    spec = spec_for(Path(target), kind=options.kind, backend=options.firmware_backend, steps=list(options.steps),
                    mem_gb=options.mem_gb, time_s=options.time_s, cpus=options.cpus, floor_gb=options.floor_gb,
                    settings=options.settings, container=options.container)
    spec.extra = spec.extra.model_copy(update={"partition": options.partition or db.setting("slurm.partition"),
                                               "account": options.account or db.setting("slurm.account"),
                                               "random_events": options.random_events})
    backend = backend_for(options.backend, db)
    backend.check_fits(spec.mem_gb, spec.cpus)
    if not options.force:
        same = db.jobs(None, "dedup_key = ? AND state IN ('queued', 'running', 'done')", (spec.dedup_key,))
        if same:
            j = same[-1]
            raise L1mlError(f"this project was already submitted as job {j.id} ({j.state}); give --force to run it again",
                            path=target)
    return submit_spec(spec, backend, db)


def submit_spec(spec: JobSpec, backend, db: JobDB) -> Job:
    """Write the job folder of `spec`, record it as queued and hand it to `backend`."""
    job_id, job_dir = create_job_dir(db.jobs_dir, spec)
    with db.transaction() as conn:
        db.insert(conn, id=job_id, kind=spec.kind, model=spec.model, backend=backend.name, state="queued",
                  dedup_key=spec.dedup_key, job_dir=str(job_dir), mem_gb=spec.mem_gb, cpus=spec.cpus, time_s=spec.time_s,
                  submitted=time.time(), attempts=1)
    backend.submit(job_id)
    return db.get(job_id)


def status(db: JobDB | None = None) -> list[Job]:
    db = db or JobDB()
    for name in {j.backend for j in db.jobs(None, "state IN ('queued', 'running')")}:
        refresher = backend_for(name, db)
        (refresher.schedule if name == "local" else refresher.refresh)()
    return db.jobs()


def wait(job_ids: list[str], db: JobDB | None = None, timeout_s: float | None = None, poll_s: float = 1.0,
         progress: Callable[[list[Job]], None] | None = None) -> list[Job]:
    """Wait until the given jobs have ended, by default every job that no wait has reported yet (those queued or
    running, and those that ended since): each is reported once by a wait without arguments. `progress` gets the jobs
    after every look at them."""
    db = db or JobDB()
    ids = [db.get(j).id for j in job_ids] if job_ids else [j.id for j in db.jobs(None, "reported IS NULL")]
    deadline = None if timeout_s is None else time.time() + timeout_s
    while True:
        status(db)
        jobs = [db.get(j) for j in ids]
        if progress:
            progress(jobs)
        if all(j.state in FINAL for j in jobs):
            db.mark_reported(ids)
            return jobs
        if deadline is not None and time.time() > deadline:
            raise L1mlError(f"{sum(j.state not in FINAL for j in jobs)} jobs still running after {timeout_s:g} s",
                            key="--timeout", value=timeout_s)
        time.sleep(poll_s)


def cancel(job_id: str, db: JobDB | None = None) -> Job:
    """Cancel a queued or running job. Of a job that has ended (a lost one), stop whatever still runs and note it in
    its record; refused when nothing does."""
    db = db or JobDB()
    job = db.get(job_id)
    backend = backend_for(job.backend, db)
    if job.state not in FINAL:
        backend.cancel(job)
        return db.get(job.id)
    stopped = backend.stop_leftovers(job)
    if not stopped:
        raise L1mlError(f"the job has already ended ({job.state}) and nothing of it is still running", key="JOB", value=job.id)
    db.update(job.id, message=f"{job.message}; `l1ml synth cancel` {stopped}")
    return db.get(job.id)


def logs(job_id: str, db: JobDB | None = None) -> str:
    db = db or JobDB()
    job = db.get(job_id)
    path = Path(job.job_dir) / "job.log"
    return path.read_text(errors="replace") if path.is_file() else ""
