"""A study folder and its Optuna studies.

    runs/search/<name>/
        search.json          what the search is (`SearchStudy`): config hash, storage, segments, objectives
        config.yaml          the search config as given
        optuna.sqlite        Optuna's storage (the steering process is its only writer), unless a server URL is given
        status.json          every trial of every segment (`l1ml search status --json`)
        segments/<seg>/events.h5   a segment's data, prepared once
        trials/<seg>/<NNNN>/       one folder per trial: trial.json, config.yaml, runs/, result.json, attempts.log
        report/              `l1ml search report`: front.png, front.csv, importances.json
        steering.lock        held by the steering process while it runs

One Optuna study per segment, named `<name>/<segment>` (`<name>/all` without segments).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from l1ml.config.loader import resolve_path
from l1ml.config.search import SearchConfig
from l1ml.documents import SearchStudy, read
from l1ml.errors import L1mlError
from l1ml.synth.db import NETWORK_FS, filesystem_type

if TYPE_CHECKING:
    import optuna

NO_SEGMENTS = "all"
AGAIN = "start the search again under another name (search.json was written by another l1ml)"


@dataclass(frozen=True)
class StudyFolder:
    root: Path

    @property
    def search_json(self) -> Path:
        return self.root / "search.json"

    @property
    def status_json(self) -> Path:
        return self.root / "status.json"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def segment_dir(self, segment: str) -> Path:
        return self.root / "segments" / segment

    def trial_dir(self, segment: str, number: int) -> Path:
        return self.root / "trials" / segment / f"{number:04d}"

    def read(self) -> SearchStudy:
        if not self.search_json.is_file():
            raise L1mlError("not a study folder of `l1ml search` (no search.json): give the folder `l1ml search` printed last",
                            path=self.root)
        return read(self.search_json, SearchStudy, again=AGAIN)

    @contextmanager
    def steering(self):
        """Held while a steering process runs: a second one on the same study is refused (the lock goes with the
        process, so a steering process killed with -9 leaves none behind)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "steering.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                raise L1mlError(f"another `l1ml search` is steering this study ({handle.read().strip() or 'pid unknown'}); "
                                "wait for it, or stop it first", path=self.root) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
            handle.flush()
            yield


def study_name(name: str, segment: str) -> str:
    return f"{name}/{segment}"


def storage_url(folder: StudyFolder, doc: SearchStudy) -> str:
    """The study's Optuna storage: the server given with --storage, else the SQLite file in the study folder, found where
    the folder is now (a study folder moved or copied keeps working)."""
    return doc.storage or default_storage(folder)


def default_storage(folder: StudyFolder) -> str:
    """SQLite beside the study, refused on a network filesystem (SQLite's locking is unreliable there)."""
    fs = filesystem_type(folder.root)
    if fs in NETWORK_FS:
        raise L1mlError(f"the study folder is on {fs}, where SQLite's locking is unreliable: put --runs on a local disk, or "
                        "give --storage the URL of a database server (e.g. postgresql://HOST/DB)", path=folder.root,
                        key="--storage")
    return f"sqlite:///{(folder.root / 'optuna.sqlite').resolve()}"


def new_study_document(folder: StudyFolder, cfg: SearchConfig, config_path: Path, digest: str, storage: str | None,
                       backend: str, trials: int) -> SearchStudy:
    return SearchStudy(trials=trials, data_source=str(resolve_path(config_path, cfg.data.events)),
                       name=folder.root.name, created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                       config_path=str(config_path.resolve()), config_hash=digest, storage=storage, backend=backend,
                       segments=[s.name for s in cfg.segments] or [NO_SEGMENTS],
                       directions=[o.direction for o in cfg.search.objectives],
                       objectives=[o.label for o in cfg.search.objectives])


def storage_of(url: str) -> optuna.storages.BaseStorage:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's and Optuna's errors for a URL that does not work
        raise L1mlError(f"Optuna cannot open this storage ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                        key="--storage", value=url) from None


def sampler_for(cfg: SearchConfig, segment_index: int) -> optuna.samplers.BaseSampler:
    """The config's sampler, seeded per segment. TPE and NSGA-II steer away from trials that miss the constraints (each
    told trial carries its constraint values: `Trial.set_constraint`)."""
    import optuna

    seed = cfg.seed * 1009 + segment_index
    if cfg.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    startup = max(2, min(10, cfg.search.budget.trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True)


def open_studies(folder: StudyFolder, doc: SearchStudy, cfg: SearchConfig | None = None,
                 create: bool = False) -> dict[str, optuna.Study]:
    """The Optuna study of every segment (created with `create`, else loaded as they are)."""
    import optuna

    url = storage_url(folder, doc)
    storage = storage_of(url)
    studies = {}
    for i, segment in enumerate(doc.segments):
        name = study_name(doc.name, segment)
        sampler = sampler_for(cfg, i) if cfg is not None else None
        if create:
            studies[segment] = optuna.create_study(storage=storage, study_name=name, directions=doc.directions,
                                                   sampler=sampler, load_if_exists=True)
        else:
            try:
                studies[segment] = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
            except KeyError:
                raise L1mlError(f"the storage holds no study {name!r}", path=url) from None
    return studies
