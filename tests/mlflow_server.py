"""A real MLflow tracking server for the tests: SQLite backend, artifacts proxied, a free port, stopped afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on 127.0.0.1 with its database and artifacts in `folder`; returns it once /health answers."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    with open(folder / "server.log", "ab") as log:  # the server keeps its own handle
        proc = subprocess.Popen(
            [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
             "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "MLFLOW_TRACKING_URI": ""})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}: {(folder / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, uri
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"mlflow server did not answer on {uri} within 90 s: {(folder / 'server.log').read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    import signal

    try:  # uvicorn takes 10-20 s to shut down gracefully; nothing of the server's is needed after the tests
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=3)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """The URI of a tracking server shared by the session's tests (each test uses its own experiment names)."""
    proc, uri = start_server(tmp_path_factory.mktemp("mlflow_server"))
    yield uri
    stop_server(proc)
