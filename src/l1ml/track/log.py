"""Logging to an MLflow store, exactly once, and never at the cost of the command that did the work.

A `Record` is what one step of an l1ml run puts into MLflow: params, metrics (with their steps: epochs, rates),
tags and artifacts, under a `key` that names that result (the run, the step and the content hash of the step's
document). The key is kept in the MLflow run's tag `l1ml.record`, and `l1ml.complete` is set last: logging a record
whose key is already complete in the store does nothing, and a half-logged one (a command killed while logging) is
deleted and logged again. Re-running a command, `l1ml track sync` run twice, or a sync interrupted and started again
therefore never make a second copy.

The l1ml run (a training run folder) is one MLflow run; its steps (convert, verify, estimate, synthesis jobs,
deliveries) are nested runs of it (`mlflow.parentRunId`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from l1ml.track.store import client, experiment_id, is_local, local_uri, tracking_off

if TYPE_CHECKING:
    from mlflow import MlflowClient

RECORD_TAG = "l1ml.record"
COMPLETE_TAG = "l1ml.complete"
PARENT_TAG = "mlflow.parentRunId"
#: MLflow's limits per log_batch call
MAX_PARAMS, MAX_METRICS, MAX_TAGS = 100, 1000, 100
MAX_PARAM_CHARS = 6000


@dataclass
class Record:
    """One MLflow run's worth of an l1ml step. `artifacts` are (local file or folder, artifact path or None)."""

    experiment: str
    key: str
    name: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int]] = field(default_factory=list)  # (key, value, step)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[tuple[Path, str | None]] = field(default_factory=list)
    parent: Record | None = None
    status: str = "FINISHED"


def find_run(mlflow_client: MlflowClient, experiment: str, key: str):
    """The (not deleted) MLflow run of record `key` in experiment id `experiment`, or None."""
    found = mlflow_client.search_runs([experiment], filter_string=f"tags.`{RECORD_TAG}` = '{key}'", max_results=5)
    complete = [r for r in found if r.data.tags.get(COMPLETE_TAG) == "1"]
    return (complete or found or [None])[0]


def log_record(mlflow_client: MlflowClient, record: Record) -> str:
    """Log `record` (its parent first) unless it is complete in the store already; returns its MLflow run id."""
    parent_id = log_record(mlflow_client, record.parent) if record.parent is not None else None
    experiment = experiment_id(mlflow_client, record.experiment)
    existing = find_run(mlflow_client, experiment, record.key)
    if existing is not None and existing.data.tags.get(COMPLETE_TAG) == "1":
        return existing.info.run_id
    if existing is not None:  # a logging that was interrupted: start it again
        mlflow_client.delete_run(existing.info.run_id)
    tags = {**record.tags, RECORD_TAG: record.key}
    if parent_id is not None:
        tags[PARENT_TAG] = parent_id
    run_id = mlflow_client.create_run(experiment, tags=tags, run_name=record.name).info.run_id
    log_contents(mlflow_client, run_id, record.params, record.metrics)
    for path, artifact_path in record.artifacts:
        path = Path(path)
        if path.is_dir():
            mlflow_client.log_artifacts(run_id, str(path), artifact_path)
        elif path.is_file():
            mlflow_client.log_artifact(run_id, str(path), artifact_path)
    mlflow_client.set_terminated(run_id, record.status)
    mlflow_client.set_tag(run_id, COMPLETE_TAG, "1")
    return run_id


def log_contents(mlflow_client: MlflowClient, run_id: str, params: dict[str, str],
                 metrics: Iterable[tuple[str, float, int]], timestamp_ms: int | None = None) -> None:
    """Params and metrics in batches of MLflow's size limits (long param values are cut, marked with '…')."""
    from mlflow.entities import Metric, Param  # heavy: MLflow

    now = timestamp_ms or int(time.time() * 1000)
    items = [Param(k, v if len(v) <= MAX_PARAM_CHARS else v[: MAX_PARAM_CHARS - 1] + "…") for k, v in params.items()]
    for i in range(0, len(items), MAX_PARAMS):
        mlflow_client.log_batch(run_id, params=items[i : i + MAX_PARAMS])
    points = [Metric(k, float(v), now, int(s)) for k, v, s in metrics]
    for i in range(0, len(points), MAX_METRICS):
        mlflow_client.log_batch(run_id, metrics=points[i : i + MAX_METRICS])


def track(build: Callable[[], list[Record]], uri: str, *, outbox: str | Path | None = None,
          warn: Callable[[str], None] = print, mlflow_client: MlflowClient | None = None) -> list[str] | None:
    """Log the records `build()` makes to `uri` (through `mlflow_client`, a client of `uri` already made, if given);
    never raises. A store that fails is one warning; for a tracking server, the records go to the local outbox store
    `outbox` instead, from which `l1ml track sync` sends them on. Returns the MLflow run ids (None: tracking off, or
    it failed)."""
    if tracking_off():
        return None
    try:
        records = build()
    except Exception as exc:  # noqa: BLE001 - tracking never fails a command whose work succeeded
        warn(f"warning: not tracked: could not read what to track ({type(exc).__name__}: {exc})")
        return None
    try:
        c = mlflow_client or client(uri)
        return [log_record(c, r) for r in records]
    except Exception as exc:  # noqa: BLE001
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    if outbox is None or is_local(uri):
        warn(f"warning: tracking to {uri} failed ({reason}); the command's results are complete, only not tracked")
        return None
    try:
        c = client(local_uri(outbox))
        for r in records:
            while r is not None:
                r.tags, r = {**r.tags, "l1ml.sync_to": uri}, r.parent
        [log_record(c, r) for r in records]
    except Exception as exc:  # noqa: BLE001
        warn(f"warning: tracking to {uri} failed ({reason}) and so did the outbox {outbox} ({type(exc).__name__}: {exc})")
        return None
    warn(f"warning: tracking to {uri} failed ({reason}); queued in {outbox}: `l1ml track sync --to {uri}` sends it")
    return None
