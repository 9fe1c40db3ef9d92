"""`python -m l1ml.synth.runner JOB_DIR STATE_DIR`: run one job of the local queue and record how it ended.

The job (`run.sh`) runs in its own process group, with the job folder in its environment (`L1ML_JOB`): that mark
is inherited by everything it starts, so the job's processes are found even when they leave the group or outlive
run.sh. A watchdog sums the resident memory of the group every 0.2 s: above the job's memory request the job is
killed (as a batch system's memory limit would) and ends as out of memory; past its time request it is stopped
and ends as timed out. SIGTERM to the runner (`l1ml synth cancel`) stops the job and records it as cancelled.
Whatever the job left running is killed before the outcome and the parsed reports go to `result.json` and the
job database; then the queue starts whatever now fits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from l1ml.documents import SynthResult
from l1ml.synth.db import JobDB
from l1ml.synth.jobs import read_job
from l1ml.synth.local import LocalBackend
from l1ml.synth.outcome import classify
from l1ml.synth.processes import GRACE_S, JOB_MARK, group_rss_bytes, stop_job
from l1ml.synth.results import check_budget, collect_reports

if TYPE_CHECKING:
    from l1ml.documents import SynthJob, SynthResult

POLL_S = 0.2
def run(job_dir: Path, state_dir: Path) -> SynthResult:
    spec = read_job(job_dir)
    limit = spec.mem_gb * 1024**3
    killed_for = None
    stop = {"requested": False}

    def on_term(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_term)
    start = time.time()
    peak = 0
    with open(job_dir / "job.log", "ab") as log:
        proc = subprocess.Popen(["bash", str(job_dir / "run.sh")], cwd=job_dir, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ, JOB_MARK: str(job_dir)})
        while proc.poll() is None:
            rss = group_rss_bytes(proc.pid)
            peak = max(peak, rss)
            if stop["requested"] or (job_dir / "cancel").exists():
                killed_for = "cancel"
            elif rss > limit:
                killed_for = "memory"
            elif time.time() - start > spec.time_s:
                killed_for = "time"
            if killed_for:
                stop_job(job_dir, grace_s=0 if killed_for == "memory" else GRACE_S)
                break
            time.sleep(POLL_S)
        exit_code = proc.wait()
    stop_job(job_dir)  # what run.sh left running ends with it
    if exit_code < 0:
        exit_code = 128 - exit_code  # killed by a signal, as a shell reports it
    result = finish(job_dir, spec, exit_code=exit_code, killed_for=killed_for, peak_bytes=peak, started=start)
    db = JobDB(state_dir)
    save_result(db, job_dir, result)
    LocalBackend(db).schedule()
    return result


def save_result(db, job_dir: Path, result: SynthResult) -> None:
    """result.json in the job folder (atomically: the local queue reads it to recover), then the database."""
    result.write(job_dir / "result.json")
    db.record(result.id, result)
    track_job(job_dir)


def track_job(job_dir: Path) -> None:
    """Log the ended job into its own MLflow store (`<job>/mlflow/`: batch nodes have no network; `l1ml track sync`
    copies it on). Never raises: the job's outcome is recorded already and stays what it is."""
    from l1ml.track.store import local_uri, tracking_off

    if tracking_off():
        return
    try:
        if read_job(job_dir).kind == "trial":  # a search logs its trials with the study
            return
        from l1ml.track.log import track
        from l1ml.track.records import for_step

        track(lambda: for_step("synth", job_dir), local_uri(Path(job_dir) / "mlflow"), warn=_warn)
    except Exception as exc:  # noqa: BLE001 - tracking never changes how a job ended
        _warn(f"warning: job {Path(job_dir).name} not tracked ({type(exc).__name__}: {exc})")


def _warn(message: str) -> None:
    """On stderr: the runner's goes to the job's runner.log; Slurm and HTCondor results are saved by `l1ml synth
    status`/`wait`, whose stdout is their table or JSON."""
    print(message, file=sys.stderr)


def finish(job_dir: Path, spec: SynthJob, *, exit_code: int | None, killed_for: str | None, peak_bytes: int | None,
           started: float, slurm_state: str | None = None) -> SynthResult:
    """The result record of an ended job: outcome, tool version, parsed reports (shared by every backend)."""

    log_path = job_dir / "job.log"
    log = log_path.read_text(errors="replace") if log_path.is_file() else ""
    reports = collect_reports(job_dir, spec, started)
    outcome = classify(exit_code=exit_code, log=log, has_report=bool(reports.found), mem_gb=spec.mem_gb,
                       time_limit=_duration(spec.time_s), killed_for=killed_for, slurm_state=slurm_state,
                       expects_report=True)
    version = job_dir / "tool_version.txt"
    budget = check_budget(spec.kind, spec.steps, reports.csynth, spec.extra.hw_target)
    return SynthResult(
        id=spec.id, state=outcome.state, message=outcome.message, transient=outcome.transient, exit_code=exit_code,
        killed_for=killed_for, started=started, ended=time.time(), host=socket.gethostname(),
        peak_mem_gb=round(peak_bytes / 1024**3, 3) if peak_bytes else None,
        tool_version=version.read_text().strip() if version.is_file() else None, reports=reports, **budget.to_result(),
    )


def _duration(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


if __name__ == "__main__":
    os.setsid()  # its own session: signals to the terminal or process group of the submitting l1ml do not reach it
    run(Path(sys.argv[1]), Path(sys.argv[2]))
