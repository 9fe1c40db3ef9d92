"""`l1ml.track.records`: what each step left on disk as MLflow records, on small hand-made documents (no training, no
store): params, metrics and tags equal the documents', keys stable and changing with the document, a bad or missing
document one L1mlError."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from l1ml.documents import (
    ByoRecord,
    ConvertInfo,
    DeliveryManifest,
    DeliveryRecord,
    EstimateFigures,
    EstimateReport,
    JobReports,
    Metrics,
    RunInputs,
    RunState,
    StepManifest,
    SynthJob,
    SynthResult,
    VerifyReport,
)
from l1ml.errors import L1mlError
from l1ml.runs import sha256_file, tree_hash
from l1ml.track.records import for_step, run_record
from l1ml.track.records_run import flatten

CONFIG = {"name": "toy", "seed": 3, "data": {"signals": ["Ato4l", "LQ_btau"], "max_events": None},
          "model": {"kind": "dense_ae", "encoder": [{"units": 16, "activation": "relu"}, {"units": 8, "activation": "relu"}]},
          "evaluation": {"rates_khz": [100.0, 2500.0]}, "training": {"learning_rate": 0.002, "pruning": None},
          "quantization": {"input": "ap_fixed<12,4>"}}
GIT = {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False}
TOOLS = {"l1ml": "0.1.0", "numpy": "1.26.4"}
EVENTS_SHA = "e" * 64
DATA_SHA = "d" * 64
HISTORY = {"float": {"loss": [2.5, 1.25, 0.75], "val_loss": [2.0, 1.5, 1.0]}, "quantized": {"loss": [0.5, 0.25], "val_loss": [0.6, 0.3]}}


def _metrics() -> dict:
    thresholds = {f: [{"rate_khz": r, "threshold": t + (f == "quantized"), "background_pass": 5, "achieved_rate_khz": r * 0.9,
                       "achieved_rate_err_khz": r * 0.1} for r, t in ((100.0, 31.5), (2500.0, 7.25))]
                  for f in ("float", "quantized")}
    signals = {s: {"n_test": 40, **{f: {"auc": 0.9 - i / 10 - (f == "float") / 100, "auc_err": 0.01 + i / 100,
                                       "efficiency": {"100": {"value": 0.1 + i / 10, "error": 0.02},
                                                      "2500": {"value": 0.5 + i / 10, "error": 0.05}}}
                                   for f in ("float", "quantized")}}
               for i, s in enumerate(("Ato4l", "LQ_btau"))}
    return {"bx_rate_khz": 28608.8, "n_background_test": 400, "score_type": "ap_ufixed<18,14>", "trigger": "score > threshold",
            "thresholds": thresholds, "signals": signals}


def make_run(root: Path, name: str = "toy", folder: str = "20261201-120000-abcdef01") -> Path:
    """A finished training run folder with its documents, a converted hls4ml project, a verify report and an estimate."""
    run = root / name / folder
    (run / "plots").mkdir(parents=True)
    (run / "plots" / "roc.png").write_bytes(b"\x89PNG roc")
    (run / "model" / "quantized").mkdir(parents=True)
    (run / "model" / "quantized" / "model.json").write_text("{}")
    (run / "config.yaml").write_text("name: toy\n")
    RunState(config_hash="c" * 64, status="finished", started="2026-12-01T12:00:00+00:00",
             ended="2026-12-01T12:01:00+00:00").write(run / "run.json")
    StepManifest(step="train", created="2026-12-01T12:01:00+00:00", command=["l1ml", "train"], cwd="/", host="node7",
                 l1ml_git=GIT, tools=TOOLS, seed=3, config={"path": "x.yaml", "resolved": {**CONFIG, "name": name}},
                 inputs={}, outputs={}, config_hash="c" * 64, training_seconds=12.5).write(run / "manifest.json")
    RunInputs.model_validate({"events": {"path": "/data/ev.h5", "relative_to_run": "../ev.h5", "bytes": 10, "sha256": EVENTS_SHA},
                              "data_config": {"path": "/data/d.yaml", "sha256": DATA_SHA, "as_given": "x"}}).write(run / "inputs.json")
    Metrics.model_validate(_metrics()).write(run / "metrics.json")
    for phase, history in HISTORY.items():
        (run / "checkpoints" / phase).mkdir(parents=True)
        (run / "checkpoints" / phase / "history.json").write_text(json.dumps(history))
    _firmware(run / "firmware" / "vitis")
    _verify_report(run)
    _estimate(run)
    return run


def _firmware(folder: Path, tool: str = "hls4ml", backend: str = "Vitis") -> None:
    (folder / "hls4ml_prj" / "firmware").mkdir(parents=True)
    (folder / "hls4ml_prj" / "firmware" / "model.cpp").write_text("// the project\n")
    (folder / "emulator.json").write_text('{"format": "l1ml-emulator-network/1"}')
    ConvertInfo(tool=tool, backend=backend, tool_version="1.3.0", project="l1ml_model", part="xcvu13p-flga2577-2-e",
                clock_period_ns=4.16, target="vu13p", n_features=57, n_outputs=1, types={"input": "ap_fixed<12,4>"},
                details={"strategy": "Latency", "reuse": {"default": 1}}).write(folder / "convert.json")


def _verify_report(run: Path, passed: bool = True) -> None:
    checks = [{"name": "bit_exact (C-simulation vs QKeras)", "passed": passed, "events": 5000, "mismatches": 0 if passed else 7},
              {"name": "emulator (emulator vs C-simulation)", "passed": True, "events": 5000, "mismatches": 0},
              {"name": "thresholds", "passed": True, "events": 2, "mismatches": 0, "message": "2 equal"},
              {"name": "bit_exact (again)", "passed": True, "events": 11, "mismatches": 0}]
    (run / "verify").mkdir(exist_ok=True)
    (run / "verify" / "residuals.png").write_bytes(b"\x89PNG residuals")
    VerifyReport(created="2026-12-01T13:00:00+00:00", target=str(run), firmware=str(run / "firmware" / "vitis"), passed=passed,
                 failed_checks=[] if passed else ["bit_exact (C-simulation vs QKeras)"], checks=checks, kind="network",
                 fingerprint={"config.yaml": "1" * 64, "firmware/vitis/": tree_hash(run / "firmware" / "vitis")},
                 checked_firmware=[str(run / "firmware" / "vitis")], options={"events": None, "min_events": 3000},
                 sample={"events": 5011}, csim={}, emulator={}, l1ml_git=GIT, tools=TOOLS).write(run / "verify" / "report.json")


def _estimate(run: Path) -> None:
    figures = EstimateFigures(tool="l1ml counts", seconds=0.5, lut=1200, ff=300, bops=45000, latency_cycles=6, latency_ns=24.96,
                              within_budget=True)
    EstimateReport(created="2026-12-01T14:00:00+00:00", kind="network", target="vu13p", part="xcvu13p-flga2577-2-e",
                   family="virtexuplus", clock_period_ns=4.16, latency_budget_ns=50.0, device={"lut": 1728000},
                   source={"project": str(run / "firmware" / "vitis"), "backend": "Vitis"}, methods={"counts": figures},
                   failed={"rtl": "yosys is not installed"}).write(run / "estimate" / "estimate.json")


def make_job(root: Path, target: Path, state: str = "done") -> Path:
    """A synthesis job folder that ended, with its C-synthesis report."""
    job_dir = root / "jobs" / "toy-hls-1"
    report = job_dir / "project" / "prj" / "l1ml_model_csynth.xml"
    report.parent.mkdir(parents=True)
    report.write_text("<report/>")
    SynthJob(id="toy-hls-1", kind="hls", model="toy/20261201-120000-abcdef01", target=str(target),
             project=str(target / "firmware" / "vitis" / "hls4ml_prj"), tool="vitis", part="xcvu13p-flga2577-2-e", clock_ns=4.16,
             steps=["csynth"], mem_gb=8.0, time_s=3600, cpus=1, project_hash="f" * 64).write(job_dir / "job.json")
    csynth = {"latency_worst": 9, "latency_worst_ns": 37.44, "interval_max": 1, "clock_estimated_ns": 3.9,
              "resources": {"lut": {"used": 5123, "available": 1728000}, "ff": {"used": 800, "available": 3456000},
                            "dsp": {"used": 12, "available": 12288}, "bram_18k": {"used": 0, "available": 5376},
                            "uram": {"used": 0, "available": 1280}}}
    SynthResult(id="toy-hls-1", state=state, message="", started=1000.0, ended=1090.5, host="bignode", peak_mem_gb=2.25,
                tool_version="2023.2", reports=JobReports(found=[str(report.relative_to(job_dir))], csynth=csynth),
                within_budget=True).write(job_dir / "result.json")
    return job_dir


def make_delivery(root: Path, run: Path | None, kind: str = "emulator-only") -> Path:
    """deliveries/toy/0.1.0/ with its manifest, the verify report it carries, its record and archive."""
    folder = root / "deliveries" / "toy" / "0.1.0"
    folder.mkdir(parents=True)
    shutil.copyfile(run / "verify" / "report.json" if run else _no_run_report(root), folder / "verify_report.json")
    (folder / "README.md").write_text("toy\n")
    files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in folder.iterdir()}
    if kind == "firmware":
        files["firmware/hls/x.cpp"] = {"sha256": "0" * 64, "bytes": 1000}
    lineage = {"run": {"path": str(run), "id": run.name}} if run else {"run": {"path": "/gone/toy/20261201-120000-abcdef01",
                                                                                  "id": "20261201-120000-abcdef01"}}
    manifest = DeliveryManifest(model="toy", version="0.1.0", kind=kind, firmware_release=kind == "firmware",
                                created="2026-12-01T15:00:00+00:00", lineage=lineage, verify={"passed": True},
                                synthesis={"job": "toy-hls-1"} if kind == "firmware" else {"none": "emulator-only"},
                                emulator={}, test_vectors={}, metrics={}, files=files)
    manifest.write(folder / "manifest.json")
    archive = folder.parent / "0.1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="0.1.0")
    DeliveryRecord(model="toy", version="0.1.0", kind=kind, created=manifest.created,
                   manifest_sha256=sha256_file(folder / "manifest.json"),
                   archive_sha256=sha256_file(archive)).write(folder.parent / "0.1.0.record.json")
    return folder


def _no_run_report(root: Path) -> Path:
    gone = make_run(root / "elsewhere")
    return gone / "verify" / "report.json"


def make_byo(root: Path) -> Path:
    folder = root / "own model"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.json").write_text("{}")
    ByoRecord(kind="xgboost", input_type="ap_fixed<12,6>", n_features=4, n_outputs=1, backends=["xilinxhls"],
              source={"model": {"path": "/home/me/model.json", "sha256": "a" * 64}}, model_files={"model": "model.json"},
              n_trees=4, max_depth=2).write(folder / "byo.json")
    _firmware(folder / "firmware" / "xilinxhls", tool="conifer", backend="xilinxhls")
    return folder


def metrics_of(record) -> dict[tuple[str, int], float]:
    found = {(k, s): v for k, v, s in record.metrics}
    assert len(found) == len(record.metrics), "a metric (name, step) logged twice"
    return found


def artifact_names(record) -> set[tuple[str, str | None]]:
    return {(Path(p).name, a) for p, a in record.artifacts}


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path / "runs")


# ------------------------------------------------------------------------------------------------ helpers


def test_flatten_gives_dotted_keys_indexes_and_json_values():
    assert flatten(CONFIG) == {
        "name": "toy", "seed": "3", "data.signals": '["Ato4l", "LQ_btau"]', "data.max_events": "null",
        "model.kind": "dense_ae", "model.encoder.0.units": "16", "model.encoder.0.activation": "relu",
        "model.encoder.1.units": "8", "model.encoder.1.activation": "relu", "evaluation.rates_khz": "[100.0, 2500.0]",
        "training.learning_rate": "0.002", "training.pruning": "null", "quantization.input": "ap_fixed<12,4>"}
    assert flatten({"a": {}, "b": [], "c": {"d e(f)": True}}) == {"a": "{}", "b": "[]", "c.d e_f_": "true"}


def test_every_name_is_one_mlflow_accepts(run, tmp_path):
    from mlflow.utils.validation import _validate_metric_name, _validate_param_name, _validate_tag_name

    records = [r for step in ("train", "convert", "verify", "estimate") for r in for_step(step, run)]
    records += for_step("synth", make_job(tmp_path, run)) + for_step("deliver", make_delivery(tmp_path, run))
    for record in records:
        for metric, _, _ in record.metrics:
            _validate_metric_name(metric)
        for param, value in record.params.items():
            _validate_param_name(param)
            assert isinstance(value, str)
        for tag, value in record.tags.items():
            _validate_tag_name(tag)
            assert isinstance(value, str) and value
        assert "'" not in record.key


# ------------------------------------------------------------------------------------------------ the training run


def test_run_record_holds_the_config_metrics_curves_and_lineage(run):
    record = run_record(run)
    assert (record.experiment, record.key, record.name) == ("toy", "run:toy/20261201-120000-abcdef01", "toy/20261201-120000-abcdef01")
    assert record.parent is None and record.status == "FINISHED"
    assert record.params == flatten({**CONFIG, "name": "toy"})
    doc = json.loads((run / "metrics.json").read_text())
    expected = {("training_seconds", 0): 12.5}
    for flavour, rows in doc["thresholds"].items():
        for row in rows:
            rate = f"{row['rate_khz']:g}kHz"
            expected[(f"threshold_{rate}/{flavour}", 0)] = row["threshold"]
            expected[(f"achieved_rate_{rate}/{flavour}", 0)] = row["achieved_rate_khz"]
            expected[(f"achieved_rate_err_{rate}/{flavour}", 0)] = row["achieved_rate_err_khz"]
    for signal, entry in doc["signals"].items():
        for flavour in ("float", "quantized"):
            expected[(f"auc/{flavour}/{signal}", 0)] = entry[flavour]["auc"]
            expected[(f"auc_err/{flavour}/{signal}", 0)] = entry[flavour]["auc_err"]
            for rate, eff in entry[flavour]["efficiency"].items():
                expected[(f"eff_{rate}kHz/{flavour}/{signal}", 0)] = eff["value"]
                expected[(f"eff_err_{rate}kHz/{flavour}/{signal}", 0)] = eff["error"]
    for phase, history in HISTORY.items():
        for metric, values in history.items():
            for epoch, value in enumerate(values, 1):
                expected[(f"training/{phase}/{metric}", epoch)] = value
    assert metrics_of(record) == expected
    assert metrics_of(record)[("eff_2500kHz/quantized/LQ_btau", 0)] == 0.6
    assert record.tags == {
        "l1ml.step": "train", "l1ml.run": "toy/20261201-120000-abcdef01", "l1ml.run_dir": str(run.resolve()), "l1ml.model": "toy",
        "l1ml.events_sha256": EVENTS_SHA, "l1ml.data_config_sha256": DATA_SHA, "l1ml.config_hash": "c" * 64, "l1ml.host": "node7",
        "l1ml.git_commit": GIT["commit"], "mlflow.source.git.commit": GIT["commit"], "l1ml.git_dirty": "false",
        "l1ml.tool.l1ml": "0.1.0", "l1ml.tool.numpy": "1.26.4"}
    assert artifact_names(record) == {("config.yaml", None), ("metrics.json", None), ("manifest.json", None), ("inputs.json", None),
                                      ("run.json", None), ("plots", "plots"), ("model", "model")}


def test_a_bdt_run_without_curves_and_data_config(run):
    shutil.rmtree(run / "checkpoints")
    inputs = json.loads((run / "inputs.json").read_text())
    inputs["data_config"] = None
    (run / "inputs.json").write_text(json.dumps(inputs))
    record = run_record(run)
    assert not [m for m in record.metrics if m[0].startswith("training/")]
    assert "l1ml.data_config_sha256" not in record.tags and record.tags["l1ml.events_sha256"] == EVENTS_SHA


def test_the_run_key_is_stable_and_each_step_names_its_parent(run):
    assert run_record(run).key == run_record(run).key
    for step in ("convert", "verify", "estimate"):
        (record,) = for_step(step, run)
        assert record.parent.key == run_record(run).key and record.experiment == "toy"
        assert record.tags["l1ml.step"] == step and record.tags["l1ml.run"] == "toy/20261201-120000-abcdef01"
        assert record.key.startswith(f"{step}:toy/20261201-120000-abcdef01:") and len(record.key.split(":")[-1]) == 16


def test_a_quote_in_a_folder_name_never_reaches_the_key(tmp_path):
    run = make_run(tmp_path / "runs", folder="it's-a-run")
    assert "'" not in run_record(run).key and "'" not in for_step("verify", run)[0].key


@pytest.mark.parametrize("damage", ["missing metrics", "damaged metrics", "unfinished", "damaged history", "missing figure",
                                    "text for a number"])
def test_a_bad_run_document_is_one_error_naming_it(run, damage):
    if damage == "missing metrics":
        (run / "metrics.json").unlink()
        where = "metrics.json"
    elif damage == "damaged metrics":
        (run / "metrics.json").write_text("{not json")
        where = "metrics.json"
    elif damage == "unfinished":
        state = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**state, "status": "interrupted"}))
        where = "run.json"
    elif damage == "damaged history":
        (run / "checkpoints" / "float" / "history.json").write_text(json.dumps({"loss": [1.0, "x"]}))
        where = "history.json"
    elif damage == "missing figure":
        doc = json.loads((run / "metrics.json").read_text())
        del doc["signals"]["Ato4l"]["quantized"]["auc_err"]
        (run / "metrics.json").write_text(json.dumps(doc))
        where = "signals.Ato4l.quantized.auc_err"
    else:
        doc = json.loads((run / "metrics.json").read_text())
        doc["signals"]["LQ_btau"]["float"]["efficiency"]["2500"]["value"] = "0.5"
        (run / "metrics.json").write_text(json.dumps(doc))
        where = "signals.LQ_btau.float.efficiency.2500.value"
    with pytest.raises(L1mlError, match=where.replace(".", r"\.")):
        for_step("train", run)


def test_an_unknown_step_or_a_folder_that_is_no_run(tmp_path):
    with pytest.raises(L1mlError, match="unknown step"):
        for_step("publish", tmp_path)
    (tmp_path / "firmware" / "vitis").mkdir(parents=True)
    _firmware(tmp_path / "firmware" / "vitis")
    with pytest.raises(L1mlError, match="not a training run"):
        for_step("convert", tmp_path)


# ------------------------------------------------------------------------------------------------ convert, verify, estimate


def test_convert_records_one_child_per_project_with_its_content_hash(run):
    _firmware(run / "firmware" / "vivado", backend="Vivado")
    records = for_step("convert", run)
    assert [r.name for r in records] == ["convert vitis", "convert vivado"]
    vitis = records[0]
    firmware = tree_hash(run / "firmware" / "vitis")
    assert vitis.key == f"convert:toy/20261201-120000-abcdef01:{firmware[:16]}"
    assert {k: vitis.tags[k] for k in ("l1ml.firmware_sha256", "l1ml.firmware_tool", "l1ml.backend", "l1ml.firmware_folder")} == {
        "l1ml.firmware_sha256": firmware, "l1ml.firmware_tool": "hls4ml", "l1ml.backend": "Vitis", "l1ml.firmware_folder": "vitis"}
    assert {k: vitis.params[k] for k in ("part", "clock_period_ns", "types.input", "details.strategy", "details.reuse.default")} == {
        "part": "xcvu13p-flga2577-2-e", "clock_period_ns": "4.16", "types.input": "ap_fixed<12,4>", "details.strategy": "Latency",
        "details.reuse.default": "1"}
    assert artifact_names(vitis) == {("convert.json", None), ("emulator.json", None)}  # not the HLS project
    (run / "firmware" / "vitis" / "hls4ml_prj" / "firmware" / "model.cpp").write_text("// changed\n")
    changed = for_step("convert", run)[0]
    assert changed.key != vitis.key and changed.tags["l1ml.firmware_sha256"] == tree_hash(run / "firmware" / "vitis") != firmware
    assert changed.parent.key == vitis.parent.key


def test_convert_without_firmware_or_with_a_damaged_convert_json(run):
    (run / "firmware" / "vitis" / "convert.json").write_text('{"format": "l1ml-convert/1", "tool": "hls4ml"}')
    with pytest.raises(L1mlError, match="convert.json"):
        for_step("convert", run)
    shutil.rmtree(run / "firmware")
    with pytest.raises(L1mlError, match="no converted firmware"):
        for_step("convert", run)


def test_verify_record_has_each_check_and_the_checked_firmware(run):
    (record,) = for_step("verify", run)
    assert record.name == "verify"
    assert metrics_of(record) == {("passed", 0): 1.0, ("mismatches/bit_exact", 0): 0.0, ("events/bit_exact", 0): 5000.0,
                                  ("mismatches/emulator", 0): 0.0, ("events/emulator", 0): 5000.0, ("mismatches/thresholds", 0): 0.0,
                                  ("events/thresholds", 0): 2.0, ("mismatches/bit_exact_2", 0): 0.0, ("events/bit_exact_2", 0): 11.0}
    assert record.tags["l1ml.firmware_sha256"] == tree_hash(run / "firmware" / "vitis")
    assert record.tags["l1ml.firmware_folder"] == record.tags["l1ml.checked_firmware"] == "firmware/vitis"
    assert record.tags["l1ml.verify_passed"] == "true" and "l1ml.failed_checks" not in record.tags
    assert record.params == {"options.events": "null", "options.min_events": "3000", "sample_events": "5011"}
    assert artifact_names(record) == {("report.json", None), ("residuals.png", "plots")}
    _verify_report(run, passed=False)
    (failed,) = for_step("verify", run)
    assert failed.key != record.key and failed.key.startswith("verify:toy/20261201-120000-abcdef01:")
    assert metrics_of(failed)[("passed", 0)] == 0.0 and metrics_of(failed)[("mismatches/bit_exact", 0)] == 7.0
    assert failed.tags["l1ml.failed_checks"] == "bit_exact (C-simulation vs QKeras)"


def test_verify_without_a_report_or_with_a_damaged_one(run):
    report = run / "verify" / "report.json"
    report.write_text(report.read_text().replace('"l1ml-verify-report/1"', '"l1ml-verify-report/0"'))
    with pytest.raises(L1mlError, match="report.json"):
        for_step("verify", run)
    report.unlink()
    with pytest.raises(L1mlError, match="no report.json"):
        for_step("verify", run)


def test_estimate_record_has_each_method_figure(run):
    (record,) = for_step("estimate", run)
    assert metrics_of(record) == {("counts/lut", 0): 1200.0, ("counts/ff", 0): 300.0, ("counts/bops", 0): 45000.0,
                                  ("counts/latency_cycles", 0): 6.0, ("counts/latency_ns", 0): 24.96, ("counts/seconds", 0): 0.5,
                                  ("counts/within_budget", 0): 1.0}
    assert record.tags["l1ml.estimate_failed"] == "rtl" and record.tags["l1ml.hw_target"] == "vu13p"
    assert record.tags["l1ml.firmware_folder"] == "firmware/vitis"
    assert artifact_names(record) == {("estimate.json", None)}
    assert record.key.endswith(sha256_file(run / "estimate" / "estimate.json")[:16])
    (run / "estimate" / "estimate.json").unlink()
    with pytest.raises(L1mlError, match="no estimate.json"):
        for_step("estimate", run)


# ------------------------------------------------------------------------------------------------ synthesis jobs


def test_synth_record_of_a_job_of_a_training_run(run, tmp_path):
    job_dir = make_job(tmp_path, run)
    (record,) = for_step("synth", job_dir)
    assert record.name == "synth toy-hls-1" and record.parent.key == run_record(run).key and record.status == "FINISHED"
    assert record.key == f"synth:toy/20261201-120000-abcdef01:{sha256_file(job_dir / 'result.json')[:16]}"
    assert metrics_of(record) == {("lut", 0): 5123.0, ("ff", 0): 800.0, ("dsp", 0): 12.0, ("bram_18k", 0): 0.0, ("uram", 0): 0.0,
                                  ("latency_cycles", 0): 9.0, ("latency_ns", 0): 37.44, ("interval_max", 0): 1.0,
                                  ("clock_estimated_ns", 0): 3.9, ("peak_mem_gb", 0): 2.25, ("seconds", 0): 90.5}
    assert {k: record.tags[k] for k in ("l1ml.step", "l1ml.job_id", "l1ml.job_kind", "l1ml.state", "l1ml.backend")} == {
        "l1ml.step": "synth", "l1ml.job_id": "toy-hls-1", "l1ml.job_kind": "hls", "l1ml.state": "done", "l1ml.backend": "vitis"}
    assert artifact_names(record) == {("job.json", None), ("result.json", None), ("l1ml_model_csynth.xml", "reports")}


def test_synth_record_of_a_failed_job_whose_run_is_gone(tmp_path):
    job_dir = make_job(tmp_path, tmp_path / "gone" / "toy" / "20261201-120000-abcdef01", state="out_of_memory")
    (record,) = for_step("synth", job_dir)
    assert record.parent is None and record.status == "FAILED" and record.experiment == "toy"
    assert record.tags["l1ml.run"] == "toy/20261201-120000-abcdef01" and record.key.startswith("synth:toy/20261201-120000-abcdef01:")
    (job_dir / "result.json").unlink()
    with pytest.raises(L1mlError, match="result.json"):
        for_step("synth", job_dir)


# ------------------------------------------------------------------------------------------------ deliveries


def test_deliver_record_names_the_package_and_its_run(run, tmp_path):
    folder = make_delivery(tmp_path, run)
    (record,) = for_step("deliver", folder)
    archive = folder.parent / "0.1.0.tar.gz"
    assert record.name == "deliver 0.1.0" and record.parent.key == run_record(run).key
    assert record.key == f"deliver:toy/20261201-120000-abcdef01:{sha256_file(folder / 'manifest.json')[:16]}"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert metrics_of(record) == {("size_mb", 0): sum(f["bytes"] for f in manifest["files"].values()) / 1e6,
                                  ("files", 0): float(len(manifest["files"]))}
    assert {k: v for k, v in record.tags.items() if k not in ("l1ml.run", "l1ml.run_dir", "l1ml.model")} == {
        "l1ml.step": "deliver", "l1ml.delivery": "toy/0.1.0", "l1ml.delivery_version": "0.1.0",
        "l1ml.archive_sha256": sha256_file(archive), "l1ml.archive_path": str(archive.resolve()),
        "l1ml.package_dir": str(folder.resolve()), "l1ml.kind": "emulator-only", "l1ml.verify_passed": "true"}
    assert artifact_names(record) == {("manifest.json", None), ("0.1.0.record.json", None), ("0.1.0.tar.gz", "archive")}


def test_a_firmware_delivery_carries_the_firmware_hash_of_its_convert_step(run, tmp_path):
    (record,) = for_step("deliver", make_delivery(tmp_path, run, kind="firmware"))
    assert record.tags["l1ml.firmware_sha256"] == for_step("convert", run)[0].tags["l1ml.firmware_sha256"]


def test_a_delivery_whose_run_is_gone_and_a_changed_archive(tmp_path):
    folder = make_delivery(tmp_path, None)
    (record,) = for_step("deliver", folder)
    assert record.parent is None and record.experiment == "toy" and record.tags["l1ml.run"] == "toy/20261201-120000-abcdef01"
    with open(folder.parent / "0.1.0.tar.gz", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(L1mlError, match="not the archive delivered"):
        for_step("deliver", folder)
    (folder.parent / "0.1.0.tar.gz").unlink()
    with pytest.raises(L1mlError, match="archive is missing"):
        for_step("deliver", folder)


# ------------------------------------------------------------------------------------------------ models converted with --out


def test_a_model_converted_with_out_is_a_run_of_experiment_external(tmp_path):
    folder = make_byo(tmp_path)
    (record,) = for_step("convert", folder)
    parent = record.parent
    suffix = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]
    assert (parent.experiment, parent.key) == ("external", f"run:external/own model-{suffix}")
    assert record.experiment == "external" and record.key.startswith(f"convert:external/own model-{suffix}:")
    assert parent.params["kind"] == "xgboost" and parent.params["source.model.sha256"] == "a" * 64
    assert parent.tags["l1ml.source_sha256.model"] == "a" * 64 and parent.tags["l1ml.run_dir"] == str(folder.resolve())
    assert artifact_names(parent) == {("byo.json", None), ("model", "model")}
    with pytest.raises(L1mlError, match="run.json"):
        for_step("train", folder)
