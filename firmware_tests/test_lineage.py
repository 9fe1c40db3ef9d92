"""Run folders stand alone and the delivery gate checks the whole lineage: every step on a moved run from another
working folder, events that changed or vanished, a data config edited after verify, interrupted training, and
tamper evidence that covers the manifest itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from l1ml.deliver.gate import DeliveryRefused
from l1ml.deliver.package import DeliverOptions, deliver
from l1ml.errors import L1mlError
from l1ml.runs import sha256_file
from l1ml.verify.run import VerifyOptions, verify

from helpers import write_yaml

FAST = VerifyOptions(min_events=2000)
QUIET = {"log": lambda m: None}

DATA = """name: lineage
seed: 7
chunk_events: 150
samples:
  background:
    events: 300
    processes: [{process: W_lnu, fraction: 0.5}, {process: QCD, fraction: 0.5}]
  Ato4l:
    events: 150
    processes: [{process: A_4l}]
"""

BDT = """name: lineage_bdt
seed: 5
data: {events: data.yaml, signals: [Ato4l]}
model: {kind: bdt, n_estimators: 5, max_depth: 3}
evaluation: {rates_khz: [3000, 6000]}
verify: {auc_tolerance: 0.2, efficiency_tolerance: 0.4, vhdl_events: 40}
"""


def _l1ml(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "l1ml", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A team's folder: a data config, a train config naming it by a relative path, the events generated from it under
    runs/data/, one BDT run trained, converted and verified there."""
    from l1ml.firmware.convert import convert_run
    from l1ml.train.run import train

    root = tmp_path_factory.mktemp("lineage")
    (root / "configs").mkdir()
    write_yaml(root / "configs" / "data.yaml", DATA)
    config = write_yaml(root / "configs" / "bdt.yaml", BDT)
    here = Path.cwd()
    os.chdir(root)  # data configs write their events under ./runs/data/
    try:
        run_dir = train(Path("configs/bdt.yaml"), runs_root=Path("runs"), log=None).run_dir.resolve()
    finally:
        os.chdir(here)
    convert_run(run_dir)
    assert verify(run_dir, FAST, **QUIET).passed
    return {"root": root, "config": config, "run": run_dir}


def _moved(run_dir: Path, where: Path) -> Path:
    moved = where / "moved" / run_dir.name
    shutil.copytree(run_dir, moved)
    return moved


def test_inputs_are_recorded_by_path_relative_path_and_hash(project):
    from l1ml.runfolder import read_inputs

    run_dir = project["run"]
    inputs = read_inputs(run_dir)
    events = Path(inputs.events.path)
    assert events.is_absolute() and events.is_file() and events.parent.parent.parent.name == "data"
    assert (run_dir / inputs.events.relative_to_run).resolve() == events
    assert inputs.events.sha256 == sha256_file(events) and inputs.events.bytes == events.stat().st_size
    assert inputs.data_config.path == str(project["root"] / "configs" / "data.yaml")
    assert inputs.data_config.as_given == DATA


def test_every_step_on_a_moved_run_from_another_folder(project, tmp_path):
    """convert, verify, deliver, a verify job and train --resume of a run copied elsewhere, run from a folder that has no
    configs/: nothing is regenerated, and the run's relative `data.events` (which means nothing there) is never read."""
    moved = _moved(project["run"], tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["convert", moved], ["verify", moved, "--events", "50"], ["verify", moved]):
        done = _l1ml(*args, cwd=elsewhere)
        assert done.returncode == 0, done.stderr
    delivered = _l1ml("deliver", moved, "--version", "1.0.0", "--no-synthesis", "--test-events", "50", cwd=elsewhere)
    assert delivered.returncode == 0, delivered.stderr
    package = Path(delivered.stdout.strip().splitlines()[-1])
    assert package == elsewhere / "deliveries" / "lineage_bdt" / "1.0.0"
    assert _l1ml("deliver", "--check", package, cwd=tmp_path).returncode == 0
    state = {"L1ML_STATE": str(tmp_path / "state"), "L1ML_CACHE": os.environ.get("L1ML_CACHE", str(tmp_path / "cache"))}
    submitted = _l1ml("synth", "submit", moved, "--kind", "verify", "--mem", "2G", cwd=elsewhere, env=state)
    assert submitted.returncode == 0, submitted.stderr
    waited = _l1ml("synth", "wait", cwd=tmp_path, env=state)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    run_sh = next((tmp_path / "state").rglob("run.sh")).read_text()
    assert str(elsewhere) not in run_sh and str(moved) in run_sh, "the job names the run by absolute path, no working folder"
    resumed = _l1ml("train", moved / "config.yaml", "--resume", moved, "--quiet", cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    assert not (elsewhere / "runs").exists() and not (tmp_path / "moved" / "runs").exists(), "nothing was generated"


def test_a_run_moved_with_its_events_finds_them_relative_to_itself(project, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(project["root"], copy)
    events = Path(json.loads((project["run"] / "inputs.json").read_text())["events"]["path"])
    hidden = events.with_name("events.h5.away")
    events.rename(hidden)  # the original is gone: only the copy beside the moved run is there
    try:
        moved = copy / project["run"].relative_to(project["root"])
        assert verify(moved, VerifyOptions(events=20, min_events=0), **QUIET).passed
        with pytest.raises(L1mlError, match="events file the run was trained on is missing"):
            verify(project["run"], FAST, **QUIET)
    finally:
        hidden.rename(events)


def test_changed_events_are_refused_by_every_step_naming_the_file(project, tmp_path):
    from l1ml.synth.queue import SubmitOptions, submit

    moved = _moved(project["run"], tmp_path)
    inputs = json.loads((moved / "inputs.json").read_text())
    recorded = inputs["events"]["sha256"]
    events = tmp_path / "events.h5"
    shutil.copyfile(inputs["events"]["path"], events)
    inputs["events"]["path"] = str(events)
    (moved / "inputs.json").write_text(json.dumps(inputs))
    assert verify(moved, FAST, **QUIET).passed  # a copy of the same bytes is the same events
    with open(events, "r+b") as f:  # then they change: an HDF5 attribute-sized edit near the end of the file
        f.seek(-8, os.SEEK_END)
        f.write(b"\0" * 8)
    out = tmp_path / "deliveries"
    with pytest.raises(DeliveryRefused) as refused:
        deliver(moved, DeliverOptions("1.0.0", out, synthesis=False, test_events=20), **QUIET)
    assert f"the events file {events} has changed since training (recorded SHA-256 {recorded[:12]}" in str(refused.value)
    assert "l1ml data generate" in str(refused.value), "says which command makes them again"
    assert not out.exists(), "a refusal writes nothing: no model folder, no lock"
    for step in (lambda: verify(moved, FAST, **QUIET), lambda: submit(moved, SubmitOptions(kind="verify", force=True)),
                 lambda: _train_resume(moved)):
        with pytest.raises(L1mlError, match="has changed since training"):
            step()


def _train_resume(run_dir: Path):
    from l1ml.train.run import train

    return train(run_dir / "config.yaml", resume=run_dir, log=None)


def test_data_config_edited_after_verify_delivers_the_verified_events(project, tmp_path):
    """The defect: editing the data config after verify used to regenerate the events silently at delivery and ship
    them as test vectors under the old hash. Now the run's recorded events are delivered, with their true hash."""
    data_config = project["root"] / "configs" / "data.yaml"
    original = data_config.read_text()
    data_config.write_text(original.replace("seed: 7", "seed: 8"))
    try:
        done = deliver(project["run"], DeliverOptions("1.0.0", tmp_path / "d", synthesis=False, test_events=30), **QUIET)
    finally:
        data_config.write_text(original)
    inputs = json.loads((project["run"] / "inputs.json").read_text())
    lineage = done.manifest.lineage["data"]
    assert lineage["events"]["sha256"] == inputs["events"]["sha256"] == sha256_file(inputs["events"]["path"])
    assert done.manifest.verify["fingerprint"]["events"] == inputs["events"]["sha256"]
    assert len(list((project["root"] / "runs" / "data" / "lineage").iterdir())) == 1, "nothing was generated again"


@pytest.mark.parametrize("damage", ["interrupted", "running", "no manifest", "old run.json"])
def test_unfinished_training_is_refused_by_every_later_step(project, tmp_path, damage):
    from l1ml.runfolder import end_run
    from l1ml.synth.queue import SubmitOptions, submit

    moved = _moved(project["run"], tmp_path)
    if damage in ("interrupted", "running"):
        end_run(moved, damage)
        expected = f"training did not finish (status {damage})"
    elif damage == "no manifest":
        (moved / "manifest.json").unlink()
        expected = "manifest.json is missing"
    else:
        (moved / "run.json").write_text(json.dumps({"config_hash": "0" * 64, "status": "finished"}))
        expected = "format None, expected 'l1ml-run/1': written by an older l1ml"
    steps = {"convert": ["convert", moved], "verify": ["verify", moved], "deliver": ["deliver", moved, "--version", "1.0.0",
                                                                                     "--no-synthesis"]}
    for name, args in steps.items():
        done = _l1ml(*args, cwd=tmp_path)
        assert done.returncode == 1 and expected in done.stderr and "Traceback" not in done.stderr, (name, done.stderr)
    with pytest.raises(L1mlError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        submit(moved, SubmitOptions(kind="verify", force=True))
    assert not (tmp_path / "deliveries").exists()


# ------------------------------------------------------------------------------------------------ tamper evidence


@pytest.fixture(scope="module")
def delivered(project, tmp_path_factory):
    out = tmp_path_factory.mktemp("lineage_deliveries")
    return deliver(project["run"], DeliverOptions("2.0.0", out, synthesis=False, test_events=20), **QUIET)


def _copy_model(delivered, tmp_path) -> Path:
    model = tmp_path / "lineage_bdt"
    shutil.copytree(delivered.path.parent, model)
    return model


def test_record_covers_the_manifest(delivered, tmp_path):
    from l1ml.deliver.manifest import check

    model = _copy_model(delivered, tmp_path)
    record = json.loads((model / "2.0.0.record.json").read_text())
    assert record["manifest_sha256"] == sha256_file(model / "2.0.0" / "manifest.json")
    assert record["archive_sha256"] == sha256_file(model / "2.0.0.tar.gz")
    assert check(model / "2.0.0").ok and check(model / "2.0.0.tar.gz").ok
    # relabelled as a firmware release: the content has no firmware/, and the record says otherwise
    manifest_path = model / "2.0.0" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "kind": "firmware", "firmware_release": True}))
    result = check(model / "2.0.0")
    assert not result.ok and any("has no firmware/ folder" in p for p in result.inconsistent)
    assert any("manifest.json is not the one delivered" in p for p in result.inconsistent)
    assert any("2.0.0.record.json says 'emulator-only'" in p for p in result.inconsistent)
    # a whitespace-only edit of the manifest still breaks its hash
    manifest_path.write_text(json.dumps(manifest, indent=2))
    result = check(model / "2.0.0")
    assert [p for p in result.inconsistent if "not the one delivered" in p] and not result.changed


def test_versions_of_folder_manifest_archive_and_record_must_agree(delivered, tmp_path):
    from l1ml.deliver.manifest import check

    model = _copy_model(delivered, tmp_path)
    (model / "2.0.0").rename(model / "2.0.1")
    result = check(model / "2.0.1")
    assert "the manifest says version '2.0.0', the folder is '2.0.1'" in result.inconsistent
    assert any("2.0.1.record.json" in m for m in result.missing), "no record for a version never delivered"
    (model / "2.0.0.tar.gz").rename(model / "2.0.1.tar.gz")
    archive = check(model / "2.0.1.tar.gz")
    assert "the archive 2.0.1.tar.gz holds version folder '2.0.0'" in archive.inconsistent
    cli = _l1ml("deliver", "--check", model / "2.0.1.tar.gz", cwd=tmp_path)
    assert cli.returncode == 7 and "inconsistent: the archive 2.0.1.tar.gz" in cli.stderr


def test_a_changed_archive_is_named(delivered, tmp_path):
    from l1ml.deliver.manifest import check

    model = _copy_model(delivered, tmp_path)
    archive = model / "2.0.0.tar.gz"
    subprocess.run(["gzip", "-d", "-f", "-k", str(archive)], check=True)
    subprocess.run(["gzip", "-9", "-n", "-f", str(model / "2.0.0.tar")], check=True)  # same content, other bytes
    result = check(archive)
    assert result.changed == ["2.0.0.tar.gz (not the archive delivered: its SHA-256 differs from 2.0.0.record.json)"]
