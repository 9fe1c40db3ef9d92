"""Where l1ml tracks: which MLflow store a command talks to, and a client for it.

The store is, in this order: `--tracking-uri`, `$MLFLOW_TRACKING_URI`, else the local store of the runs root
(`<runs>/mlflow/`: an SQLite database `mlflow.db` and an `artifacts/` folder beside it; no server, works offline).
`--no-tracking` or `L1ML_NO_TRACKING=1` turn tracking off.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from l1ml.errors import L1mlError

if TYPE_CHECKING:
    from mlflow import MlflowClient

OUTBOX = "mlflow-outbox"  # beside the runs root's store: the records a tracking server refused, for `l1ml track sync`
ENV_URI = "MLFLOW_TRACKING_URI"
ENV_OFF = "L1ML_NO_TRACKING"
LOCAL_DIR = "mlflow"  # the local store's folder in a runs root (and in a synth job's folder)
DATABASE = "mlflow.db"
ARTIFACTS = "artifacts"

#: MLflow's settings for l1ml's commands (a user's own environment wins): a dead tracking server must cost seconds,
#: not MLflow's default of minutes of retries; no "View run ... at: URL" on stdout, where l1ml's commands print their
#: result; no progress bars of artifact transfers; no usage telemetry sent home (it also holds the exit for a second).
MLFLOW_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "15", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
                   "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


def tracking_off() -> bool:
    return os.environ.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no")


def local_uri(folder: str | Path) -> str:
    """The URI of the local store in `folder` (a runs root's `mlflow/`, or a job's).

    >>> local_uri("/data/runs/mlflow")
    'sqlite:////data/runs/mlflow/mlflow.db'
    """
    return f"sqlite:///{Path(folder).resolve() / DATABASE}"


def runs_root_of(run_dir: str | Path) -> Path:
    """The runs root a training run folder sits in (`<runs>/<model>/<run>`)."""
    return Path(run_dir).resolve().parent.parent


def resolve_uri(option: str | None, runs_root: str | Path) -> str:
    """The store a command tracks to: the option, else $MLFLOW_TRACKING_URI, else `<runs_root>/mlflow/`.

    >>> resolve_uri("http://mlflow.example.cern.ch:5000", "runs")
    'http://mlflow.example.cern.ch:5000'
    """
    if option:
        return check_uri(option)
    if os.environ.get(ENV_URI):
        return check_uri(os.environ[ENV_URI], ENV_URI)
    return local_uri(Path(runs_root) / LOCAL_DIR)


def check_uri(uri: str, source: str = "--tracking-uri") -> str:
    """Only the stores l1ml can keep exactly-once bookkeeping in: a tracking server or an SQLite file.

    >>> check_uri("./mlruns")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    l1ml.errors.L1mlError: key '--tracking-uri', value './mlruns': not a store l1ml tracks to: give http(s)://HOST:PORT ...
    """
    if not uri.startswith(("http://", "https://", "sqlite:///", "databricks")):
        raise L1mlError("not a store l1ml tracks to: give http(s)://HOST:PORT (a tracking server) or sqlite:///PATH.db "
                        "(a local store)", key=source, value=uri)
    return uri


def is_local(uri: str) -> bool:
    return uri.startswith("sqlite:///")


def local_folder(uri: str) -> Path:
    """The folder of a local store (its database and artifacts)."""
    return Path(uri.removeprefix("sqlite:///")).parent


def quiet_mlflow() -> None:
    """MLflow and alembic log every database migration at INFO; l1ml's own output says what matters."""
    for name, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for name in ("mlflow", "alembic", "sqlalchemy", "urllib3", "huey"):
        logging.getLogger(name).setLevel(logging.ERROR)


def client(uri: str) -> MlflowClient:
    """A client of the store `uri` (a local store's folder is made on first use)."""
    quiet_mlflow()
    from mlflow import MlflowClient  # heavy: a second to import

    quiet_mlflow()  # MLflow sets its loggers' level when it is imported
    if is_local(uri):
        _new_local_store(local_folder(uri))
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _new_local_store(folder: Path) -> None:
    """A new local store starts as a copy of an empty database that MLflow has already migrated (kept in
    `$L1ML_CACHE/mlflow/` per MLflow version): MLflow's migrations of a new SQLite file take 2 to 10 s, and every
    synthesis job has its own store."""
    import shutil

    import mlflow  # heavy

    folder.mkdir(parents=True, exist_ok=True)
    database = folder / DATABASE
    if database.exists():
        return
    cache = Path(os.environ.get("L1ML_CACHE") or Path.home() / ".cache" / "l1ml") / "mlflow"
    template = cache / f"empty-{mlflow.__version__}.db"
    try:
        if not template.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            staging = cache / f".empty-{os.getpid()}.db"
            staging.unlink(missing_ok=True)
            mlflow.MlflowClient(tracking_uri=f"sqlite:///{staging}").search_experiments()  # MLflow migrates it
            os.replace(staging, template)
        staging = folder / f".{DATABASE}.tmp-{os.getpid()}"
        shutil.copyfile(template, staging)
        os.replace(staging, database)
    except OSError:  # no cache to write to: MLflow makes the database itself
        return


def experiment_id(mlflow_client: MlflowClient, name: str) -> str:
    """The id of experiment `name`, made if missing; a local store keeps its artifacts beside its database (MLflow's
    default would be `./mlruns` of whatever folder the command ran in)."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            mlflow_client.restore_experiment(found.experiment_id)
        return found.experiment_id
    uri = mlflow_client.tracking_uri
    location = None
    if is_local(uri):
        location = (local_folder(uri) / ARTIFACTS / name).resolve().as_uri()
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except Exception:  # made meanwhile by another process
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id
