"""The tracking process a command starts (`l1ml.track.agent`) and the command's side of it (`l1ml.cli.tracking`):
each request gets one answer, a step that cannot be tracked is a warning, and a tracking process that died is one
warning for the command, never an error."""

from __future__ import annotations

import json

from l1ml.cli.tracking import Agent
from l1ml.track.agent import serve
from l1ml.track.store import local_uri


def test_a_tracking_process_that_died_is_one_warning(tmp_path, tracking, capsys):
    agent = Agent(local_uri(tmp_path / "mlflow"), tmp_path / "outbox", registry=False)
    agent.proc.kill()
    assert agent.ask({"step": "verify", "target": str(tmp_path)}) is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: not tracked: the tracking process ended with status -9"), lines
    agent.close()  # again, as at exit: nothing raised


def test_each_request_is_answered_and_a_step_that_cannot_be_read_is_a_warning(tmp_path, tracking):
    answers: list[str] = []
    requests = [json.dumps({"step": "verify", "target": str(tmp_path)}) + "\n", "\n",
                json.dumps({"step": "nonsense", "target": str(tmp_path)}) + "\n"]
    serve(local_uri(tmp_path / "mlflow"), "", False, requests, answers.append)
    first, second = (json.loads(a) for a in answers)
    for answer in (first, second):
        assert answer["ids"] is None and answer["registered"] is None
        assert len(answer["warnings"]) == 1 and answer["warnings"][0].startswith("warning: not tracked: could not read"), answer
    assert "verify" in first["warnings"][0] or "report" in first["warnings"][0], first
