"""The tracking options every producing command takes, and the calls that log its step once the work is done.

A command that tracks calls `start_tracking` before its work: that starts `l1ml.track.agent` in a process of its
own, which imports MLflow and opens the store on the other core meanwhile (two seconds, as long as some commands).
`track_step` at the end then only waits for the logging itself. Tracking never fails a command: the step's results
are on disk before anything is sent, and a store that cannot be reached is one warning (a tracking server's records
wait in the outbox for `l1ml track sync`).
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import click

DEFAULT_RUNS = Path("runs")


def tracking_options(command: Callable) -> Callable:
    """`--tracking-uri` and `--no-tracking`, checked before the command does any work."""
    command = click.option("--no-tracking", is_flag=True, help="Do not log this step to MLflow (also: L1ML_NO_TRACKING=1).")(command)
    return click.option("--tracking-uri", callback=_check_uri, help="MLflow store to log to: http(s)://HOST:PORT or "
                        "sqlite:///PATH.db [default: $MLFLOW_TRACKING_URI, else the runs root's mlflow/].")(command)


def _check_uri(ctx, param, value: str | None) -> str | None:
    if value is not None:
        from l1ml.track.store import check_uri

        check_uri(value)
    return value


def warn(message: str) -> None:
    click.echo(message, err=True)


class Agent:
    """The tracking process of one store (`l1ml.track.agent`), asked one JSON line per step."""

    def __init__(self, uri: str, outbox: Path, registry: bool):
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, "-m", "l1ml.track.agent", uri, str(outbox)] + (["--registry"] if registry else []),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.asked = False
        atexit.register(self.close)

    def ask(self, request: dict) -> dict | None:
        self.asked = True
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self.proc.wait()
            self.log.seek(0)
            last = (self.log.read().strip().splitlines() or ["no message"])[-1]
            self.close()
            warn(f"warning: not tracked: the tracking process ended with status {self.proc.returncode} ({last}); the "
                 "command's results are complete")
            return None
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None and not self.asked:  # the command ended before its work was done: nothing to log
            self.proc.kill()
            self.proc.wait()
        # Every answer came after its runs were complete in the store: the end of its requests lets it end by itself,
        # and the command need not wait for MLflow's own exit.
        for stream in (self.proc.stdin, self.proc.stdout, self.log):
            try:
                stream.close()
            except OSError:  # a request still buffered for a tracking process that ended
                pass


_agents: dict[str, Agent] = {}


def _store(target: str | Path | None, runs_root: str | Path | None, tracking_uri: str | None) -> tuple[str, Path]:
    """The store a step of `target` goes to (the runs root's, unless a URI is given) and the outbox beside it."""
    from l1ml.track.store import OUTBOX, resolve_uri, runs_root_of

    if runs_root is None:
        runs_root = runs_root_of(target) if target is not None and (Path(target) / "run.json").is_file() else DEFAULT_RUNS
    return resolve_uri(tracking_uri, runs_root), Path(runs_root) / OUTBOX


def _tracking(no_tracking: bool) -> bool:
    from l1ml.track.store import tracking_off

    return not (no_tracking or tracking_off())


def start_tracking(tracking_uri: str | None, no_tracking: bool, *, target: str | Path | None = None,
                   runs_root: str | Path | None = None, registry: bool = False) -> None:
    """Before a command's work: get the tracking of its store ready meanwhile (see the module's text)."""
    if not _tracking(no_tracking):
        return
    uri, outbox = _store(target, runs_root, tracking_uri)
    if uri not in _agents:
        _agents[uri] = Agent(uri, outbox, registry)


def track_step(step: str, target: str | Path, tracking_uri: str | None, no_tracking: bool,
               runs_root: str | Path | None = None, register: bool = False) -> list[str] | None:
    """Log `step` of `target` (a run folder, an --out folder, a delivery package) to MLflow (and register a delivery
    with `register`); the MLflow run ids, or None when tracking is off or failed. The default store is the runs
    root's (`runs_root`, else the run's own, else ./runs)."""
    if not _tracking(no_tracking):
        return None
    uri, outbox = _store(target, runs_root, tracking_uri)
    if uri not in _agents:
        _agents[uri] = Agent(uri, outbox, register)
    answer = _agents[uri].ask({"step": step, "target": str(Path(target).resolve()), "register": register})
    if answer is None:
        return None
    for line in answer["warnings"]:
        warn(line)
    if answer.get("registered"):
        warn(f"registered {answer['registered']} in the model registry")
    return answer["ids"]


def runs_root_of_run(run_dir: str | Path) -> Path:
    """The runs root of a training run folder (./runs for a folder converted with --out)."""
    from l1ml.track.store import runs_root_of

    return runs_root_of(run_dir) if (Path(run_dir) / "run.json").is_file() else DEFAULT_RUNS


def track_delivery(package: Path, run_dir: str | Path, tracking_uri: str | None, no_tracking: bool) -> None:
    """Log a delivery (a nested run of its training run) and register it as a version of its model in the registry."""
    track_step("deliver", package, tracking_uri, no_tracking, runs_root=runs_root_of_run(run_dir), register=True)
