"""A study of `l1ml search` as MLflow records: the study one run (experiment `search-<name>`), each trial a nested run
of it with its parameters, objective values, state, job and wall time; the report's files are the study's artifacts.

The study's key holds the SHA-256 of its trials and report, so a study logged again unchanged is not copied twice,
and one logged again with more trials or a new report is a new study run (its trials nested in it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from l1ml.documents import SearchStatus, SearchStudy, read
from l1ml.track.log import Record
from l1ml.track.records_run import flatten, key, name, present, text

REPORT_FILES = ("front.png", "front.csv", "importances.json")


def metric_key(label: str) -> str:
    """An objective's label as an MLflow metric name.

    >>> metric_key("efficiency@100kHz"), metric_key("bops (counts)")
    ('efficiency_at_100kHz', 'bops_counts')
    """
    return name(label.replace("@", "_at_").replace(" (", "_").replace(")", ""))


def search_records(folder: Path) -> list[Record]:
    folder = folder.resolve()
    study = read(folder / "search.json", SearchStudy, "the study")
    status = read(folder / "status.json", SearchStatus, "the study's status")
    report = [folder / "report" / f for f in REPORT_FILES if (folder / "report" / f).is_file()]
    content = hashlib.sha256(json.dumps([t.model_dump(mode="json") for t in status.trials], sort_keys=True).encode())
    for path in report:
        content.update(path.read_bytes())
    where = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    experiment = f"search-{study.name}"
    complete = [t for t in status.trials if t.values is not None]
    parent = Record(
        experiment=experiment, key=key("search", study.name, where, content.hexdigest()[:16]), name=f"search {study.name}",
        params={**flatten({"objectives": study.objectives, "directions": study.directions, "segments": study.segments,
                           "backend": study.backend, "storage": study.storage or "optuna.sqlite in the study folder"}),
                "trials_per_segment": str(status.trials_per_segment)},
        metrics=[("trials", float(len(status.trials)), 0), ("complete", float(len(complete)), 0),
                 ("failed", float(sum(t.state == "FAIL" for t in status.trials)), 0),
                 ("front", float(sum(t.on_front for t in status.trials)), 0)],
        tags=present({"l1ml.step": "search", "l1ml.study": str(folder), "l1ml.search_finished": str(status.finished).lower()}),
        artifacts=[(p, "report") for p in report] + [(folder / "status.json", None), (folder / "config.yaml", None)])
    records = [parent]
    for row in status.trials:
        metrics = [(metric_key(label), float(v), 0) for label, v in zip(status.objectives, row.values or [])]
        metrics += [("wall_s", float(row.wall_s), 0)] if row.wall_s is not None else []
        metrics += [("resumes", float(row.resumes), 0), ("on_front", float(row.on_front), 0)]
        row_hash = hashlib.sha256(json.dumps(row.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]
        records.append(Record(
            experiment=experiment, key=key("search-trial", study.name, where, row.segment, str(row.number), row_hash),
            name=f"{row.segment}/{row.number}", params={name(k): text(v) for k, v in row.params.items()}, metrics=metrics,
            tags=present({"l1ml.step": "search-trial", "l1ml.segment": row.segment, "l1ml.trial": str(row.number),
                          "l1ml.trial_state": row.state, "l1ml.job": row.job, "l1ml.run_dir": row.run_dir,
                          "l1ml.failure": (row.reason or "")[:4000] or None,
                          "l1ml.feasible": None if row.feasible is None else str(row.feasible).lower()}),
            parent=parent, status="FINISHED" if row.state == "COMPLETE" else "FAILED"))
    return records
