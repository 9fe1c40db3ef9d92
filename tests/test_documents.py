"""Versioned documents: committed schemas are current, and every way a document can be wrong is one named error."""

from __future__ import annotations

import json

import pytest

from l1ml.documents import DOCUMENTS, RunState, read, schema_text
from l1ml.errors import L1mlError

from helpers import ROOT

STATE = {"format": "l1ml-run/1", "config_hash": "ab" * 32, "status": "finished", "started": "2026-12-01T00:00:00+00:00"}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_committed_schemas_are_current(name):
    committed = ROOT / "schemas" / "documents" / f"{name}.schema.json"
    assert committed.exists(), "run `make schemas` and commit schemas/"
    assert json.loads(committed.read_text()) == json.loads(schema_text(name)), "run `make schemas` and commit schemas/"
    schema = json.loads(committed.read_text())
    assert schema["properties"]["format"]["const"] == DOCUMENTS[name].format_name()
    assert schema["additionalProperties"] is False, "the top level of a document is strict"


def test_a_document_reads_back_what_was_written(tmp_path):
    state = RunState.model_validate(STATE)
    assert read(state.write(tmp_path / "run.json"), RunState) == state


@pytest.mark.parametrize(("content", "fragments"), [
    (None, ["missing: the folder has no run.json"]),
    ("{not json", ["not a readable JSON document"]),
    ({k: v for k, v in STATE.items() if k != "format"}, ["key 'format'", "format None, expected 'l1ml-run/1'", "older l1ml"]),
    ({**STATE, "format": "l1ml-run/0"}, ["key 'format'", "format 'l1ml-run/0'", "older l1ml"]),
    ({**STATE, "format": "l1ml-metrics/1"}, ["key 'format'", "not this kind of l1ml document"]),
    ({**STATE, "status": "done"}, ["key 'status'", "damaged"]),
    ({**STATE, "surprise": 1}, ["key 'surprise'", "damaged"]),
    ({k: v for k, v in STATE.items() if k != "started"}, ["key 'started'", "damaged"]),
])
def test_every_way_a_document_is_wrong_is_named(tmp_path, content, fragments):
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(L1mlError) as e:
        read(path, RunState)
    message = str(e.value)
    assert str(tmp_path) in message and all(f in message for f in fragments), message


def test_step_manifests_read_back_as_documents(small_events, tmp_path):
    """What `l1ml data generate` and `l1ml data inspect` write is a StepManifest (train and convert: firmware_tests)."""
    from l1ml.data.inspect import inspect_file
    from l1ml.documents import StepManifest

    generated = read(small_events.with_suffix(".manifest.json"), StepManifest)
    assert generated.step == "data generate" and generated.outputs["events"]["path"] == str(small_events)
    assert generated.samples["background"]["events"] == 400
    inspected = inspect_file(small_events, out_dir=tmp_path / "inspect")
    assert read(inspected.manifest, StepManifest).inputs["events"]["sha256"] == generated.outputs["events"]["sha256"]
