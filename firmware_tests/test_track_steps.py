"""Every step of a real l1ml run (train, convert, verify, estimate, deliver) logged to a real MLflow tracking server:
what the server holds equals the run folder's documents and files, the steps are nested runs of the training run,
logging again makes no second copy, the lineage is walkable both ways, and the REST API the UI uses sees the same."""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from l1ml.runs import sha256_file, tree_hash
from l1ml.track.log import log_record, track
from l1ml.track.records import for_step
from l1ml.track.records_run import flatten

from helpers import copy_run, run

STEPS = ("convert", "verify", "estimate")


@pytest.fixture(scope="module")
def steps(trained_runs, tmp_path_factory):
    """A copy of the small trained autoencoder, converted, verified on all its test events, estimated (counts) and
    delivered emulator-only, each as the library does it for the CLI."""
    from l1ml.deliver.package import DeliverOptions, deliver
    from l1ml.estimate.run import estimate
    from l1ml.firmware.convert import convert_run
    from l1ml.synth.db import JobDB
    from l1ml.verify.run import VerifyOptions, verify

    root = tmp_path_factory.mktemp("trk")
    run_dir = copy_run(trained_runs["dense_ae"], root)
    # a folder name of its own: copies of one run are one MLflow run (`run:<name>/<folder>`), and other tests may log theirs
    run_dir = run_dir.rename(run_dir.with_name(f"{run_dir.name}-tracked"))
    shutil.rmtree(run_dir / "firmware", ignore_errors=True)
    convert_run(run_dir)
    assert verify(run_dir, VerifyOptions(min_events=0), log=lambda m: None).passed
    estimate(run_dir, methods=("counts",), log=lambda m: None)
    out = root / "deliveries"
    package = deliver(run_dir, DeliverOptions("0.1.0", out, synthesis=False, test_events=100), db=JobDB(out / "state"),
                      log=lambda m: None).path
    return run_dir, package


@pytest.fixture(scope="module")
def logged(steps, mlflow_server):
    """Each step's records logged to the server; the MLflow run ids by step."""
    from l1ml.track.store import client

    run_dir, package = steps
    c = client(mlflow_server)
    ids = {"train": [log_record(c, r) for r in for_step("train", run_dir)]}
    ids.update({step: [log_record(c, r) for r in for_step(step, run_dir)] for step in STEPS})
    ids["deliver"] = [log_record(c, r) for r in for_step("deliver", package)]
    return c, {step: found[0] for step, found in ids.items()}


def _download(c, run_id: str, path: str, dest: Path) -> bytes:
    return Path(c.download_artifacts(run_id, path, str(dest))).read_bytes()


def _expected_metrics(run_dir: Path) -> dict[str, float]:
    """metrics.json's figures by the metric names of the tracking conventions."""
    doc = json.loads((run_dir / "metrics.json").read_text())
    expected = {}
    for flavour, rows in doc["thresholds"].items():
        for row in rows:
            expected[f"threshold_{row['rate_khz']:g}kHz/{flavour}"] = row["threshold"]
            expected[f"achieved_rate_{row['rate_khz']:g}kHz/{flavour}"] = row["achieved_rate_khz"]
    for signal, entry in doc["signals"].items():
        for flavour in ("float", "quantized"):
            expected[f"auc/{flavour}/{signal}"] = entry[flavour]["auc"]
            expected[f"auc_err/{flavour}/{signal}"] = entry[flavour]["auc_err"]
            for rate, eff in entry[flavour]["efficiency"].items():
                expected[f"eff_{rate}kHz/{flavour}/{signal}"] = eff["value"]
                expected[f"eff_err_{rate}kHz/{flavour}/{signal}"] = eff["error"]
    return expected


def test_the_training_run_holds_the_config_metrics_curves_and_files(steps, logged, tmp_path):
    run_dir, _ = steps
    c, ids = logged
    run = c.get_run(ids["train"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert run.data.params == flatten(manifest["config"]["resolved"])
    expected = _expected_metrics(run_dir)
    assert {k: run.data.metrics[k] for k in expected} == expected
    assert run.data.metrics["training_seconds"] == manifest["training_seconds"]
    for phase in ("float", "quantized"):
        history = json.loads((run_dir / "checkpoints" / phase / "history.json").read_text())
        for metric, values in history.items():
            logged_curve = sorted((m.step, m.value) for m in c.get_metric_history(ids["train"], f"training/{phase}/{metric}"))
            assert logged_curve == list(enumerate(values, 1))
    inputs = json.loads((run_dir / "inputs.json").read_text())
    assert run.data.tags["l1ml.events_sha256"] == inputs["events"]["sha256"]
    assert run.data.tags["l1ml.git_commit"] == manifest["l1ml_git"]["commit"]
    assert run.data.tags["l1ml.run_dir"] == str(run_dir.resolve())
    for path in ("config.yaml", "metrics.json", "manifest.json", "inputs.json", "normalisation.json", "run.json",
                 "model/quantized/model.json", "model/quantized/weights.h5", "plots/roc.png"):
        assert _download(c, ids["train"], path, tmp_path) == (run_dir / path).read_bytes(), path


def test_each_step_is_a_nested_run_equal_to_its_documents(steps, logged, tmp_path):
    run_dir, package = steps
    c, ids = logged
    runs = {step: c.get_run(ids[step]) for step in (*STEPS, "deliver")}
    assert {step: r.data.tags["mlflow.parentRunId"] for step, r in runs.items()} == dict.fromkeys(runs, ids["train"])
    assert runs["convert"].data.tags["l1ml.firmware_sha256"] == tree_hash(run_dir / "firmware" / "vitis")
    assert runs["convert"].data.params["part"] == json.loads((run_dir / "firmware" / "vitis" / "convert.json").read_text())["part"]
    assert _download(c, ids["convert"], "convert.json", tmp_path) == (run_dir / "firmware" / "vitis" / "convert.json").read_bytes()
    assert {a.path for a in c.list_artifacts(ids["convert"])} >= {"convert.json", "emulator.json"}
    assert not [a for a in c.list_artifacts(ids["convert"]) if a.path.endswith("_prj")]

    report = json.loads((run_dir / "verify" / "report.json").read_text())
    verify_metrics = {"passed": 1.0}
    for check in report["checks"]:
        short = check["name"].split(" (")[0]
        verify_metrics |= {f"mismatches/{short}": check["mismatches"], f"events/{short}": check["events"]}
    assert runs["verify"].data.metrics == verify_metrics
    assert runs["verify"].data.tags["l1ml.firmware_sha256"] == runs["convert"].data.tags["l1ml.firmware_sha256"]
    assert _download(c, ids["verify"], "report.json", tmp_path) == (run_dir / "verify" / "report.json").read_bytes()
    assert {a.path for a in c.list_artifacts(ids["verify"], "plots")} == {"plots/firmware_vs_float.png", "plots/residuals.png"}

    counts = json.loads((run_dir / "estimate" / "estimate.json").read_text())["methods"]["counts"]
    figures = ("lut", "ff", "dsp", "carry", "bram_18k", "bops", "logic_depth", "latency_cycles", "latency_ns", "seconds",
               "within_budget")
    assert runs["estimate"].data.metrics == {f"counts/{k}": float(counts[k]) for k in figures if counts[k] is not None}
    assert runs["estimate"].data.metrics["counts/bops"] > 0

    archive = package.parent / "0.1.0.tar.gz"
    manifest = json.loads((package / "manifest.json").read_text())
    assert runs["deliver"].data.metrics == {"size_mb": sum(f["bytes"] for f in manifest["files"].values()) / 1e6,
                                           "files": len(manifest["files"])}
    assert runs["deliver"].data.tags["l1ml.archive_sha256"] == sha256_file(archive)
    downloaded = _download(c, ids["deliver"], "archive/0.1.0.tar.gz", tmp_path)
    assert hashlib.sha256(downloaded).hexdigest() == sha256_file(archive)


def test_logging_again_makes_no_second_run(steps, logged, mlflow_server, tracking):
    run_dir, package = steps
    c, ids = logged
    assert track(lambda: for_step("verify", run_dir), mlflow_server) == [ids["verify"]]
    again = {step: [log_record(c, r) for r in for_step(step, run_dir if step != "deliver" else package)]
             for step in ("train", *STEPS, "deliver")}
    assert again == {step: [ids[step]] for step in again}
    experiment = c.get_experiment_by_name("fw_dense_ae").experiment_id
    found = c.search_runs([experiment], filter_string=f"tags.`l1ml.run` = 'fw_dense_ae/{run_dir.name}'")
    assert sorted(r.info.run_id for r in found) == sorted(ids.values())


def test_lineage_walks_from_the_events_to_the_delivery_and_back(steps, logged):
    run_dir, package = steps
    c, ids = logged
    experiment = c.get_experiment_by_name("fw_dense_ae").experiment_id
    events = json.loads((run_dir / "inputs.json").read_text())["events"]["sha256"]
    trained = c.search_runs([experiment], filter_string=f"tags.`l1ml.events_sha256` = '{events}' and tags.`l1ml.step` = 'train'")
    assert [r.info.run_id for r in trained] == [ids["train"]]
    deliveries = c.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{ids['train']}' and "
                                                           "tags.`l1ml.step` = 'deliver'")
    assert [r.data.tags["l1ml.package_dir"] for r in deliveries] == [str(package.resolve())]
    back = c.get_run(c.get_run(deliveries[0].info.run_id).data.tags["mlflow.parentRunId"])
    assert back.info.run_id == ids["train"] and back.data.tags["l1ml.run_dir"] == str(run_dir.resolve())
    assert back.data.tags["l1ml.events_sha256"] == events


def test_the_rest_api_the_ui_uses_sees_the_same_run(steps, logged, mlflow_server):
    run_dir, _ = steps
    _, ids = logged

    def call(path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{mlflow_server}/api/2.0/mlflow/{path}", data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    experiment = call("experiments/get-by-name?" + urllib.parse.urlencode({"experiment_name": "fw_dense_ae"}))["experiment"]
    found = call("runs/search", {"experiment_ids": [experiment["experiment_id"]], "max_results": 50,
                                 "filter": f"tags.`l1ml.step` = 'train' and tags.`l1ml.run` = 'fw_dense_ae/{run_dir.name}'"})
    (run,) = found["runs"]
    assert run["info"]["run_id"] == ids["train"] and run["info"]["status"] == "FINISHED"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    expected = _expected_metrics(run_dir)
    assert {k: metrics[k] for k in expected} == expected
    history = call("metrics/get-history?" + urllib.parse.urlencode({"run_id": ids["train"], "metric_key": "training/float/loss"}))
    losses = json.loads((run_dir / "checkpoints" / "float" / "history.json").read_text())["loss"]
    assert sorted((m["step"], m["value"]) for m in history["metrics"]) == list(enumerate(losses, 1))


def _runs_copy(run_dir: Path, root: Path) -> Path:
    """A copy of the run in a runs root of its own (`<root>/runs/<model>/<folder>`), so its default store is new."""
    target = root / "runs" / run_dir.parent.name / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def _step_runs(c, step: str, run_dir: Path):
    experiments = [e.experiment_id for e in c.search_experiments()]
    found = c.search_runs(experiments, filter_string=f"tags.`l1ml.step` = '{step}'")
    return [r for r in found if r.data.tags.get("l1ml.run_dir") == str(run_dir.resolve())]


def test_a_command_tracks_into_its_runs_roots_store_by_default(steps, tracking, tmp_path):
    """`l1ml estimate` as a user runs it, from another folder: its step and the run land in `<runs>/mlflow/`, and
    what is logged is what estimate.json says."""
    from l1ml.documents import EstimateReport, read
    from l1ml.track.store import client, local_uri

    run_dir = _runs_copy(steps[0], tmp_path)
    r = run("estimate", run_dir, "--counts-only", cwd=tmp_path / "runs")
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr
    c = client(local_uri(tmp_path / "runs" / "mlflow"))
    [logged] = _step_runs(c, "estimate", run_dir)
    report = read(run_dir / "estimate" / "estimate.json", EstimateReport)
    assert logged.data.metrics["counts/bops"] == report.methods["counts"].bops
    parent = c.get_run(logged.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["l1ml.step"] == "train" and parent.data.tags["l1ml.run_dir"] == str(run_dir.resolve())


def test_a_dead_tracking_server_does_not_fail_the_command_and_sync_sends_it_once(steps, tracking, mlflow_server, tmp_path,
                                                                                  monkeypatch):
    """The command succeeds with one warning, its records wait in the outbox, `l1ml track sync --to` sends them, and
    a second sync sends nothing."""
    from l1ml.track.store import client

    from mlflow_server import free_port

    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))  # no job stores of anyone else among the sources
    run_dir = _runs_copy(steps[0], tmp_path)
    run_dir = run_dir.rename(run_dir.with_name(f"{run_dir.name}-outbox"))
    r = run("estimate", run_dir, "--counts-only", "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert r.returncode == 0, r.stderr
    assert (run_dir / "estimate" / "estimate.json").is_file()
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and "l1ml track sync" in warnings[0], r.stderr
    assert (tmp_path / "runs" / "mlflow-outbox" / "mlflow.db").is_file()
    for _ in range(2):
        s = run("track", "sync", "--to", mlflow_server, "--runs", tmp_path / "runs")
        assert s.returncode == 0, s.stderr
        c = client(mlflow_server)
        assert len(_step_runs(c, "estimate", run_dir)) == 1
        assert len(_step_runs(c, "train", run_dir)) == 1
    assert " 0 copied" in s.stdout, s.stdout
