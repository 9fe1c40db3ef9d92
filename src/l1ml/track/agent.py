"""`python -m l1ml.track.agent URI OUTBOX [--registry]`: tracking made ready while a command works.

Importing MLflow and opening a store take two seconds, as long as some commands themselves. A command that tracks
starts this process first (`l1ml.cli.tracking`); it imports MLflow and opens the store on the other core meanwhile,
then logs each step the command names on its stdin, one JSON request per line:
`{"step": "verify", "target": "/abs/run"}` (and `"register": true` for a delivery, which is then registered in the
model registry), and answers each with one JSON line: `{"ids": [...] or null, "warnings": [...], "registered": ...}`.
It ends at the end of its input: when the command ends, whether it succeeded or not.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from l1ml.track.log import track
from l1ml.track.records import for_step
from l1ml.track.store import client


def serve(uri: str, outbox: str, registry: bool, requests, answer) -> None:
    try:
        mlflow_client = client(uri)
        mlflow_client.search_experiments(max_results=1)  # MLflow opens (and checks) the store at its first use
        if registry:
            mlflow_client.search_registered_models(max_results=1)
    except Exception:  # noqa: BLE001 - track() below tries again and says what failed, as the command's warning
        mlflow_client = None
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        warnings: list[str] = []
        target = Path(request["target"])
        ids = track(lambda step=request["step"], target=target: for_step(step, target), uri, outbox=outbox or None,
                    warn=warnings.append, mlflow_client=mlflow_client)
        registered = None
        if ids and request.get("register"):
            registered = _register(mlflow_client or client(uri), target, ids[0], warnings)
        answer(json.dumps({"ids": ids, "warnings": warnings, "registered": registered}))


def _register(mlflow_client, package: Path, deliver_run_id: str, warnings: list[str]) -> str | None:
    from l1ml.track.registry import register_delivery

    try:
        version = register_delivery(mlflow_client, package, deliver_run_id)
    except Exception as exc:  # noqa: BLE001 - tracking never fails a command whose work succeeded
        warnings.append(f"warning: the delivery is tracked but not registered as a model version ({type(exc).__name__}: {exc})")
        return None
    return f"{version.name} version {version.version}"


def main() -> None:
    uri, outbox = sys.argv[1], sys.argv[2]
    os.nice(10)  # the command it waits for comes first: it gets ready in the command's idle time

    def answer(text: str) -> None:
        print(text, flush=True)

    serve(uri, outbox, "--registry" in sys.argv[3:], sys.stdin, answer)


if __name__ == "__main__":
    main()
