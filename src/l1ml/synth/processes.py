"""A job's processes: found by the mark its run.sh exports (`L1ML_JOB`, inherited by everything it starts, also what
leaves its process group), measured (resident memory of the group) and stopped (SIGTERM, a grace time, then SIGKILL
until none is left). The runner and the local queue use these; psutil does the inspection."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

JOB_MARK = "L1ML_JOB"
GRACE_S = 10.0  # between SIGTERM and SIGKILL when a job is stopped (cancel, time limit)
KILL_ROUNDS = 3  # SIGKILL again what the job started meanwhile


def group_rss_bytes(pgid: int) -> int:
    total = 0
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid:
                total += psutil.Process(pid).memory_info().rss
        except (ProcessLookupError, psutil.NoSuchProcess):  # ended meanwhile
            continue
    return total


def job_processes(job_dir: str | Path) -> list[psutil.Process]:
    """The running processes that carry the job's mark: run.sh and everything it started."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(JOB_MARK) == str(job_dir) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:  # ended meanwhile, a zombie, or another user's
            continue
    return found


def stop_job(job_dir: str | Path, grace_s: float = 0.0) -> int:
    """Stop every process of a job: SIGTERM and `grace_s` to exit, then SIGKILL for what is left. Returns how many
    processes the job had."""
    found = job_processes(job_dir)
    if found and grace_s:
        _signal_all(found, signal.SIGTERM)
        _until_gone(job_dir, grace_s)
    for _ in range(KILL_ROUNDS):
        left = job_processes(job_dir)
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        _until_gone(job_dir, 2.0)
    return len(found)


def _signal_all(procs: list[psutil.Process], signum: int) -> None:
    for proc in procs:
        try:
            proc.send_signal(signum)
        except psutil.NoSuchProcess:
            pass


def _until_gone(job_dir: str | Path, timeout_s: float) -> None:
    """Poll rather than wait(): the runner's own child must be left for Popen to reap, with its exit status."""
    deadline = time.time() + timeout_s
    while job_processes(job_dir) and time.time() < deadline:
        time.sleep(0.05)
