"""The local backend: a persistent queue on this host, with no daemon.

A job starts only while the memory requests of the running jobs plus its own fit the host's budget and
their cores fit the cores (`l1ml synth config --mem-budget 200G --cores 32`; default 90 % of the RAM
and every core). Each job runs under a detached runner (`python -m l1ml.synth.runner`, its own session,
so it outlives the `l1ml` that submitted it) that enforces the job's memory and time requests, records
the outcome and then starts whatever queued jobs now fit. Any `l1ml synth` command does the same
bookkeeping, and marks as lost a running job whose runner is gone without a result, once it has killed
whatever of the job still ran: no job runs outside the budget.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from l1ml.errors import L1mlError
from l1ml.synth.db import JobDB
from l1ml.synth.jobs import read_job, read_result
from l1ml.synth.processes import GRACE_S, JOB_MARK, stop_job


def host_memory_gb() -> float:
    return psutil.virtual_memory().total / 1024**3


class LocalBackend:
    name = "local"

    def __init__(self, db: JobDB):
        self.db = db

    def budget(self) -> tuple[float, int]:
        mem = self.db.setting("local.mem_budget_gb")
        cores = self.db.setting("local.cores")
        return (float(mem) if mem else round(0.9 * host_memory_gb(), 1),
                int(cores) if cores else len(os.sched_getaffinity(0)))

    def check_fits(self, mem_gb: float, cpus: int) -> None:
        budget_mem, budget_cores = self.budget()
        if mem_gb > budget_mem:
            raise L1mlError(f"the job asks for {mem_gb:g} GB but this host's synthesis budget is {budget_mem:g} GB, so it "
                            "could never start; lower --mem (or raise the ReuseFactor), raise the budget with "
                            "`l1ml synth config --mem-budget`, or submit to a batch system", key="--mem", value=f"{mem_gb:g}G")
        if cpus > budget_cores:
            raise L1mlError(f"the job asks for {cpus} cores; this host's budget is {budget_cores}", key="--cpus", value=cpus)

    def submit(self, job_id: str) -> None:
        self.schedule()

    def schedule(self) -> list[str]:
        """Start the queued jobs that fit, oldest first; return their ids. A job whose folder cannot be read ends."""
        started = []
        budget_mem, budget_cores = self.budget()
        with self.db.transaction() as db:
            self._refresh(db)
            running = self.db.jobs(db, "backend = 'local' AND state = 'running'")
            used_mem = sum(j.mem_gb for j in running)
            used_cores = sum(j.cpus for j in running)
            for job in self.db.jobs(db, "backend = 'local' AND state = 'queued'"):
                if used_mem + job.mem_gb > budget_mem + 1e-9 or used_cores + job.cpus > budget_cores:
                    continue
                try:
                    read_job(job.job_dir)  # the runner's first step: a job an older l1ml wrote is refused here, by name
                except L1mlError as exc:
                    self.db.end_unreadable(job.id, exc, db)
                    continue
                pid = self._start_runner(job.job_dir)
                self.db.update(job.id, db, state="running", started=time.time(), backend_id=str(pid),
                               host=socket.gethostname())
                used_mem += job.mem_gb
                used_cores += job.cpus
                started.append(job.id)
        return started

    def _start_runner(self, job_dir: str) -> int:
        """Start the runner detached: a shell puts it in the background and exits, so the runner is nobody's child
        (it outlives this process and is never left a zombie of it); the runner starts its own session. Started from a
        job (a runner that starts the next one, a job that submits), it does not carry that job's mark."""
        env = {name: value for name, value in os.environ.items() if name != JOB_MARK}
        proc = subprocess.run(
            ["sh", "-c", '"$@" >>"$L1ML_RUNNER_LOG" 2>&1 </dev/null & echo $!', "sh",
             sys.executable, "-m", "l1ml.synth.runner", job_dir, str(self.db.root)],
            env={**env, "L1ML_RUNNER_LOG": str(Path(job_dir) / "runner.log")}, capture_output=True, text=True, check=True)
        return int(proc.stdout.strip())

    def refresh(self) -> None:
        with self.db.transaction() as db:
            self._refresh(db)

    def _refresh(self, db) -> None:
        """Finished jobs whose runner died before writing the database are taken from result.json; runners that are
        gone without a result are lost."""
        for job in self.db.jobs(db, "backend = 'local' AND state = 'running'"):
            alive = runner_alive(int(job.backend_id), job.job_dir)  # before looking for its result: it may be writing it
            if (Path(job.job_dir) / "result.json").is_file():
                try:
                    self.db.record(job.id, read_result(job.job_dir), db)
                except L1mlError as exc:
                    self.db.end_unreadable(job.id, exc, db)
            elif not alive:
                killed = stop_job(job.job_dir)
                self.db.update(job.id, db, state="lost", ended=time.time(),
                               message="the runner process is gone and left no result (host reboot or kill -9 of the runner)"
                               + (f"; killed the {_processes(killed)} it left running" if killed else ""))

    def cancel(self, job) -> None:
        if job.state == "queued":
            self.db.update(job.id, state="cancelled", ended=time.time(), message="cancelled before it started")
            return
        if not runner_alive(int(job.backend_id), job.job_dir):
            self.refresh()  # no runner to stop it: the job is lost, once what it left running is killed
            return
        (Path(job.job_dir) / "cancel").touch()
        try:
            os.kill(int(job.backend_id), signal.SIGTERM)  # the runner stops the job and records it
        except ProcessLookupError:
            pass

    def stop_leftovers(self, job) -> str | None:
        """What of an ended job was still running, now stopped (a lost job's processes)."""
        stopped = stop_job(job.job_dir, GRACE_S)
        return f"stopped {_processes(stopped)} left running" if stopped else None


def _processes(n: int) -> str:
    return f"{n} process" + ("es" if n != 1 else "")


def runner_alive(pid: int, job_dir: str) -> bool:
    """The runner of `job_dir` is still running (a reused pid does not count)."""
    try:
        runner = psutil.Process(pid)
        return job_dir in runner.cmdline() and runner.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

