"""The Pareto front of a study and `l1ml verify` of its members as jobs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from l1ml.documents import SearchStatus, read
from l1ml.errors import L1mlError
from l1ml.search.study import StudyFolder
from l1ml.synth.db import JobDB
from l1ml.synth.queue import SubmitOptions, submit, wait


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """`a` is at least as good as `b` in every objective and better in one.

    >>> dominates([0.9, 100], [0.8, 100], ["maximize", "minimize"]), dominates([0.9, 200], [0.8, 100], ["maximize", "minimize"])
    (True, False)
    """
    signs = [1.0 if d == "maximize" else -1.0 for d in directions]
    better_or_equal = all(s * x >= s * y for s, x, y in zip(signs, a, b))
    return better_or_equal and any(s * x > s * y for s, x, y in zip(signs, a, b))


def front(points: dict[int, Sequence[float]], directions: Sequence[str]) -> list[int]:
    """The keys of the points no other point dominates (with one objective: the best ones), in key order."""
    return sorted(k for k, v in points.items() if not any(dominates(w, v, directions) for j, w in points.items() if j != k))


def verify_front(folder: StudyFolder, db: JobDB, backend: str, log) -> None:
    """Submit `l1ml verify` of every front member as a job (once: a member verified or submitted before is not again),
    and wait for them; their verdicts go into the status table."""
    status = read(folder.status_json, SearchStatus)
    runs = [row.run_dir for row in status.trials if row.on_front and row.run_dir]
    jobs = []
    for run in runs:
        if (Path(run) / "verify" / "report.json").is_file():
            continue
        try:
            jobs.append(submit(run, SubmitOptions(kind="verify", backend=backend, time_s=3600), db).id)
        except L1mlError as exc:
            if "already submitted" not in str(exc):
                raise
    if jobs:
        log(f"verifying the {len(runs)} members of the front: {len(jobs)} jobs")
        wait(jobs, db)
