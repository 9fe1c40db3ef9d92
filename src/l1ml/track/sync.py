"""`l1ml track sync`: copy l1ml's MLflow runs from local stores (synthesis jobs' own, the outbox) into one store, once.

Batch nodes have no network: a synthesis job logs into the store in its job folder, and a command whose tracking server
was down logs into the outbox of its runs root. Sync copies their runs (run name, times, status, tags, params, the full
history of every metric, artifacts) into the destination. A run is known by its record key (tag `l1ml.record`, see
`l1ml.track.log`): one complete in the destination is not copied again, a half-copied one (a sync that was
interrupted: no `l1ml.complete` tag) is deleted and copied again, and `l1ml.complete` is set last, so running sync
twice, or again after an interruption, leaves exactly one complete copy of each run. Runs without a record key are not
l1ml's and stay where they are.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from l1ml.errors import L1mlError
from l1ml.track.log import COMPLETE_TAG, MAX_METRICS, MAX_PARAMS, MAX_TAGS, PARENT_TAG, RECORD_TAG
from l1ml.track.store import DATABASE, LOCAL_DIR, check_uri, client, experiment_id, is_local

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

#: tags MLflow sets itself from create_run's arguments, or that sync sets (parent, complete)
OWN_TAGS = {"mlflow.runName", PARENT_TAG, COMPLETE_TAG}
NOT_A_STORE = ("not an MLflow store to sync from: give a synthesis job folder (with mlflow/mlflow.db), a folder of jobs, "
               "a store folder (with mlflow.db) or sqlite:///PATH.db")


@dataclass
class SyncSummary:
    """What a sync did, in runs (a run is one MLflow run of a source store)."""

    dest: str
    stores: int = 0
    copied: int = 0
    already: int = 0  # complete in the destination already
    failed: int = 0  # could not be copied (said why); a later sync tries again
    skipped: int = 0  # not l1ml's (no record key), or incompletely logged in their source
    registered: int = 0  # deliveries copied and registered as model versions in the destination
    unregistered: int = 0  # deliveries synced whose registration failed (tried again by the next sync)
    broken: list[str] = field(default_factory=list)  # source stores that could not be read

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unregistered and not self.broken

    def __str__(self) -> str:
        text = (f"{self.copied} copied, {self.already} already there, {self.failed} failed, {self.skipped} skipped "
                f"from {self.stores} store{'' if self.stores == 1 else 's'} to {self.dest}")
        if self.registered:
            text += f"; {self.registered} deliveries registered"
        if self.unregistered:
            text += f"; {self.unregistered} deliveries not registered"
        if self.broken:
            text += f"; {len(self.broken)} store{'' if len(self.broken) == 1 else 's'} could not be read"
        return text


def stores_of(source: Path | str) -> list[str]:
    """The URIs of the local stores a source names: a job folder's, those of a folder of jobs, a store folder's, or an
    sqlite URI. A folder of jobs none of which has a store yet has none; anything else is one named error."""
    if isinstance(source, str) and source.startswith("sqlite:///"):
        database = Path(source.removeprefix("sqlite:///"))
        if not database.is_file():
            raise L1mlError("no such store database", value=source)
        return [_uri(database)]
    if isinstance(source, str) and "://" in source:
        raise L1mlError("sync copies from local stores (job folders, the outbox, sqlite:///PATH.db), not from a server",
                        value=source)
    path = Path(source)
    if path.is_file() and path.suffix == ".db":
        return [_uri(path)]
    if not path.is_dir():
        raise L1mlError("no such folder" if not path.exists() else NOT_A_STORE, path=path)
    if (path / DATABASE).is_file():
        return [_uri(path / DATABASE)]
    if (path / LOCAL_DIR / DATABASE).is_file():  # a job folder (or a runs root)
        return [_uri(path / LOCAL_DIR / DATABASE)]
    if (path / "job.json").is_file():  # a job whose store is not made yet (it runs, or ran with tracking off)
        return []
    found = sorted(path.glob(f"*/{LOCAL_DIR}/{DATABASE}"))
    if found or any(path.glob("*/job.json")) or not any(path.iterdir()):
        return [_uri(p) for p in found]
    raise L1mlError(NOT_A_STORE, path=path)


def _uri(database: Path) -> str:
    return f"sqlite:///{database.resolve()}"


def sync(sources: list[Path | str], dest_uri: str, log: Callable[[str], None] = print) -> SyncSummary:
    """Copy the l1ml runs of every store of `sources` into `dest_uri`, each exactly once (see the module docstring).
    One line per store goes to `log`. A source that is not a store is an L1mlError before anything is copied; a store
    that cannot be read is reported and the others sync; a destination that stops answering ends the sync."""
    check_uri(dest_uri)
    stores: list[str] = []
    for source in sources:
        stores += [s for s in stores_of(source) if s not in stores]
    summary = SyncSummary(dest=dest_uri)
    if is_local(dest_uri) and _uri(Path(dest_uri.removeprefix("sqlite:///"))) in stores:
        stores.remove(_uri(Path(dest_uri.removeprefix("sqlite:///"))))
        log(f"{_name(dest_uri)}: skipped, it is the destination")
    if not stores:
        return summary
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars on l1ml's output
    try:
        dest = client(dest_uri)
        dest.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - an unreachable server or unusable store is the user's to fix
        raise L1mlError(f"the destination store cannot be used ({_reason(exc)})", value=dest_uri) from None
    copier = _Copier(dest, summary)
    for store in stores:
        summary.stores += 1
        before = (summary.copied, summary.already, summary.failed, summary.skipped)
        try:
            runs = _runs_of(store)
        except Exception as exc:  # noqa: BLE001 - one broken store does not stop the others
            summary.broken.append(store)
            log(f"{_name(store)}: cannot be read ({_reason(exc)})")
            continue
        notes = copier.copy_store(runs)
        copied, already, failed, skipped = (now - then for now, then in
                                            zip((summary.copied, summary.already, summary.failed, summary.skipped), before))
        log(f"{_name(store)}: {copied} copied, {already} already there" + (f", {failed} failed" if failed else "")
            + (f", {skipped} skipped" if skipped else ""))
        for note in notes:
            log(f"  {note}")
    if copier.dest_down:
        log(f"the destination {dest_uri} stopped answering: run `l1ml track sync` again once it does")
    return summary


@dataclass
class _SourceRuns:
    client: MlflowClient
    runs: list[Run]  # parents before their children
    experiments: dict[str, str]  # source experiment id -> name


def _runs_of(store: str) -> _SourceRuns:
    """Every active run of a store, parents first."""
    from mlflow.entities import ViewType  # heavy: MLflow

    source = client(store)
    experiments, token = {}, None
    while True:
        page = source.search_experiments(view_type=ViewType.ACTIVE_ONLY, page_token=token)
        experiments.update({e.experiment_id: e.name for e in page})
        token = page.token
        if not token:
            break
    runs, token = [], None
    while experiments:
        page = source.search_runs(list(experiments), run_view_type=ViewType.ACTIVE_ONLY, page_token=token,
                                  order_by=["attributes.start_time ASC"])
        runs += list(page)
        token = page.token
        if not token:
            break
    by_id = {r.info.run_id: r for r in runs}

    def depth(run, seen=()) -> int:
        parent = run.data.tags.get(PARENT_TAG)
        if parent not in by_id or parent in seen:
            return 0
        return 1 + depth(by_id[parent], (*seen, run.info.run_id))

    return _SourceRuns(source, sorted(runs, key=depth), experiments)


class _Copier:
    def __init__(self, dest: MlflowClient, summary: SyncSummary):
        self.dest, self.summary = dest, summary
        self.notes: list[str] = []  # what the store's line is followed by: runs not copied and why
        self.experiments: dict[str, str] = {}  # name -> destination experiment id
        self.dest_down = False

    def copy_store(self, source: _SourceRuns) -> list[str]:
        """Copy a store's runs; the notes on runs not copied (or not registered)."""
        self.notes = []
        mapped: dict[str, str] = {}  # source run id -> destination run id
        foreign = 0
        for run in source.runs:
            tags = run.data.tags
            key = tags.get(RECORD_TAG)
            if key is None:
                foreign += 1
                self.summary.skipped += 1
                continue
            if tags.get(COMPLETE_TAG) != "1":
                self.summary.skipped += 1
                self.notes.append(f"{key}: skipped, not completely logged in its source (interrupted, or being logged now)")
                continue
            if self.dest_down:  # not tried: each would wait for the server's timeouts
                self.summary.failed += 1
                continue
            parent = tags.get(PARENT_TAG)
            if parent is not None and parent not in mapped:
                self.summary.failed += 1
                self.notes.append(f"{key}: not copied: its parent run {parent} was not synced")
                continue
            try:
                dest_id, copied = self.copy_run(source, run, mapped.get(parent))
            except Exception as exc:  # noqa: BLE001 - reported, retried by the next sync
                self.summary.failed += 1
                self.notes.append(f"{key}: not copied ({_reason(exc)})")
                self.dest_down = not self._dest_answers()
                continue
            mapped[run.info.run_id] = dest_id
            if copied:
                self.summary.copied += 1
            else:
                self.summary.already += 1
            if tags.get("l1ml.step") == "deliver":
                self.register(tags, dest_id, copied)
        if foreign:
            self.notes.append(f"{foreign} run{'' if foreign == 1 else 's'} without an l1ml record key skipped (not l1ml's)")
        return self.notes

    def copy_run(self, source: _SourceRuns, run: Run, dest_parent: str | None) -> tuple[str, bool]:
        """The destination's complete copy of `run` (made unless there); returns (its run id, whether it was made)."""
        from mlflow.entities import Param, RunTag  # heavy: MLflow

        tags = run.data.tags
        key = tags[RECORD_TAG]
        name = source.experiments[run.info.experiment_id]
        if name not in self.experiments:
            self.experiments[name] = experiment_id(self.dest, name)
        experiment = self.experiments[name]
        found = self.dest.search_runs([experiment], filter_string=f"tags.`{RECORD_TAG}` = '{key}'", max_results=50)
        complete = [r for r in found if r.data.tags.get(COMPLETE_TAG) == "1"]
        if complete:
            return complete[0].info.run_id, False
        for half in found:  # a copy that was interrupted: made again
            self.dest.delete_run(half.info.run_id)
        first = {RECORD_TAG: key, **({PARENT_TAG: dest_parent} if dest_parent else {})}
        new_id = self.dest.create_run(experiment, start_time=run.info.start_time, tags=first,
                                      run_name=run.info.run_name).info.run_id
        try:
            rest = [RunTag(k, v) for k, v in tags.items() if k not in OWN_TAGS and k not in first]
            params = [Param(k, v) for k, v in run.data.params.items()]
            points = [m for metric in run.data.metrics for m in source.client.get_metric_history(run.info.run_id, metric)]
            for batch_tags, batch_params, batch_metrics in _batches(rest, params, points):
                self.dest.log_batch(new_id, metrics=batch_metrics, params=batch_params, tags=batch_tags)
            self._copy_artifacts(source.client, run.info.run_id, new_id)
            if run.info.end_time is not None:
                self.dest.set_terminated(new_id, run.info.status, end_time=run.info.end_time)
            else:
                self.dest.update_run(new_id, status=run.info.status)
            self.dest.set_tag(new_id, COMPLETE_TAG, "1")
        except Exception:
            try:  # a half copy would be replaced by the next sync anyway; gone now, it confuses nobody meanwhile
                self.dest.delete_run(new_id)
            except Exception:  # noqa: BLE001, S110 - the next sync deletes it
                pass
            raise
        return new_id, True

    def _copy_artifacts(self, source: MlflowClient, run_id: str, new_id: str) -> None:
        if not source.list_artifacts(run_id):
            return
        with tempfile.TemporaryDirectory(prefix="l1ml-sync-") as tmp:
            source.download_artifacts(run_id, "", tmp)
            self.dest.log_artifacts(new_id, tmp)

    def register(self, tags: dict[str, str], run_id: str, copied: bool) -> None:
        """A delivery copied into the destination is a model version there. One found there already is registered again
        (a no-op, registering is idempotent): a sync interrupted between copying and registering left it unregistered."""
        package = tags.get("l1ml.package_dir")
        if not package or not Path(package).is_dir():
            return
        try:
            from l1ml.track.registry import register_delivery
        except ImportError as exc:
            self.summary.unregistered += 1
            self.notes.append(f"{tags[RECORD_TAG]}: not registered as a model version ({exc})")
            return
        try:
            register_delivery(self.dest, Path(package), run_id)
            self.summary.registered += copied
        except Exception as exc:  # noqa: BLE001 - the run is synced; registering it is tried again by the next sync
            self.summary.unregistered += 1
            self.notes.append(f"{tags[RECORD_TAG]}: synced, but not registered as a model version ({_reason(exc)})")

    def _dest_answers(self) -> bool:
        try:
            self.dest.search_experiments(max_results=1)
            return True
        except Exception:  # noqa: BLE001
            return False


def _batches(tags: list, params: list, metrics: list):
    """(tags, params, metrics) in as few log_batch calls as MLflow takes: at most 100 tags, 100 params and 1000 items
    in all per call (a request to a server costs more than its size).

    >>> [tuple(map(len, batch)) for batch in _batches(list(range(150)), list(range(30)), list(range(2000)))]
    [(100, 30, 800), (50, 0, 800), (0, 0, 400)]
    """
    per_metrics = MAX_METRICS - MAX_TAGS - MAX_PARAMS
    chunks = [[items[i : i + size] for i in range(0, len(items), size)]
              for items, size in ((tags, MAX_TAGS), (params, MAX_PARAMS), (metrics, per_metrics))]
    for i in range(max(map(len, chunks))):
        yield tuple(chunk[i] if i < len(chunk) else [] for chunk in chunks)


def _name(store: str) -> str:
    """A store as the user named it: its folder (a job's store is `<job>/mlflow/mlflow.db`)."""
    folder = Path(store.removeprefix("sqlite:///")).parent
    return str(folder.parent if folder.name == LOCAL_DIR else folder)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300]
