"""`l1ml track`: send the runs of local stores (synthesis jobs, the outbox) to the central store, and open the MLflow UI."""

from __future__ import annotations

import click

from l1ml.cli.tracking import DEFAULT_RUNS


@click.group()
def track() -> None:
    """MLflow tracking: sync local stores into one, open the UI.

    Every producing command logs its step to MLflow (the runs root's store, --tracking-uri or $MLFLOW_TRACKING_URI).
    """


@track.command()
@click.argument("sources", nargs=-1, type=click.Path())
@click.option("--to", "to", help="The store to copy into: http(s)://HOST:PORT or sqlite:///PATH.db "
              "[default: $MLFLOW_TRACKING_URI, else the local store of --runs].")
@click.option("--runs", "runs", default=str(DEFAULT_RUNS), show_default=True, type=click.Path(file_okay=False),
              help="The runs root: its local store (the default destination) and its outbox (a default source).")
def sync(sources: tuple[str, ...], to: str | None, runs: str) -> None:
    """Copy the runs of SOURCES into one store, each exactly once (running it again, or after an interruption, never
    makes a second copy). A SOURCE is a synthesis job folder, a folder of jobs, a store folder (with mlflow.db) or
    sqlite:///PATH.db [default: the synthesis jobs in $L1ML_STATE/jobs and the outbox <runs>/mlflow-outbox of runs
    a tracking server refused].

    \b
    Exit status: 0 everything is in the destination (or there was nothing to do), 1 a source or the destination
    cannot be used, or some runs could not be copied (named; run it again).
    """
    from pathlib import Path

    from l1ml.errors import L1mlError
    from l1ml.synth.db import state_dir
    from l1ml.track.store import OUTBOX, resolve_uri
    from l1ml.track.sync import sync as run

    dest = resolve_uri(to, runs)
    if sources:
        chosen: list[str | Path] = list(sources)
    else:
        chosen = [p for p in (state_dir() / "jobs", Path(runs) / OUTBOX) if p.is_dir()]
    summary = run(chosen, dest, log=click.echo)  # a source that is not a store: an error before anything is copied
    click.echo(f"synced: {summary}")
    if not summary.ok:
        raise L1mlError(f"not everything was synced ({summary.failed} runs failed, {summary.unregistered} deliveries not "
                        f"registered, {len(summary.broken)} stores unreadable; said above why): run `l1ml track sync` "
                        "again once fixed")


@track.command()
@click.option("--runs", "runs", default=str(DEFAULT_RUNS), show_default=True, type=click.Path(file_okay=False),
              help="The runs root whose local store (<runs>/mlflow/) the UI shows.")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--tracking-uri", help="The store to show [default: $MLFLOW_TRACKING_URI, else the local store of --runs].")
def ui(runs: str, port: int, tracking_uri: str | None) -> None:
    """Open the MLflow UI on l1ml's store: `mlflow ui` on this host (127.0.0.1) for a local store; a tracking server
    has its own UI, whose address is printed."""
    import os
    import sys
    from pathlib import Path

    from l1ml.errors import L1mlError
    from l1ml.track.store import ARTIFACTS, is_local, local_folder, resolve_uri

    uri = resolve_uri(tracking_uri, runs)
    if not is_local(uri):
        click.echo(f"the store is a tracking server: open {uri} in a browser")
        return
    folder = local_folder(uri)
    if not Path(uri.removeprefix("sqlite:///")).is_file():
        raise L1mlError("no MLflow store here yet: run a command with tracking on first (or give --runs)", path=folder)
    mlflow = Path(sys.executable).with_name("mlflow")
    if not mlflow.is_file():
        raise L1mlError("MLflow's command is not installed beside this Python", path=mlflow)
    click.echo(f"MLflow UI of {uri}: open http://127.0.0.1:{port} in a browser (Ctrl-C stops it)")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(str(mlflow), [str(mlflow), "ui", "--backend-store-uri", uri,
                            "--default-artifact-root", (folder / ARTIFACTS).resolve().as_uri(),
                            "--host", "127.0.0.1", "--port", str(port),
                            # one worker: MLflow's default of four starts slowly and, on a busy host, its supervisor
                            # restarts workers that miss a health check; one user's UI needs one
                            "--workers", "1"])
