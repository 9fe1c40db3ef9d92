"""`l1ml verify` on converted networks: every check passes on a good project, and each one fails when it should."""

from __future__ import annotations

import json
import re

import pytest

from l1ml.verify.run import VerifyOptions, verify

from helpers import copy_run, find_check

FAST = VerifyOptions(min_events=3000)


@pytest.fixture(scope="module")
def converted(trained_runs):
    from l1ml.firmware.convert import convert_run

    for run_dir in trained_runs.values():
        convert_run(run_dir)
    return trained_runs




@pytest.mark.parametrize("kind", ["dense_ae", "vae_encoder"])
def test_verify_passes_and_reports(converted, kind):
    run_dir = converted[kind]
    report = verify(run_dir, FAST, log=lambda m: None)
    assert report.passed, report.summary_lines()
    names = [c.name.split(" ")[0] for c in report.checks]
    assert names == ["bit_exact", "emulator", "thresholds", "physics"]
    data = json.loads((run_dir / "verify" / "report.json").read_text())
    assert data["passed"] and data["failed_checks"] == []
    by_cat = data["checks"][0]["by_category"]
    for category in ("test:background", "adversarial:edges", "adversarial:ties", "adversarial:empty_event",
                     "adversarial:huge_pt", "random"):
        assert by_cat[category]["events"] > 0 and by_cat[category]["mismatches"] == 0, category
    assert data["sample"]["events"] >= 3000
    assert (run_dir / "verify" / "firmware_vs_float.png").stat().st_size > 1000
    assert (run_dir / "verify" / "residuals.png").stat().st_size > 1000
    again = verify(run_dir, FAST, log=lambda m: None)
    assert again.info["csim"]["cached"] and again.info["csim"]["key"] == report.info["csim"]["key"]


def test_one_lsb_in_one_header_weight_fails(converted, tmp_path):
    run_dir = copy_run(converted["dense_ae"], tmp_path)
    header = run_dir / "firmware" / "vitis" / "hls4ml_prj" / "firmware" / "weights" / "w3.h"
    text = header.read_text()
    body = text.index("= {") + 3
    m = re.compile(r"-?\d+\.\d+").search(text, body)
    lsb = 2.0**-6  # weights are ap_fixed<8,2>
    header.write_text(text[:m.start()] + f"{float(m.group()) + lsb:.6f}" + text[m.end():])
    report = verify(run_dir, FAST, log=lambda m: None)
    assert not report.passed
    assert find_check(report, "bit_exact").mismatches > 0 and find_check(report, "emulator").mismatches > 0


def test_input_scaling_off_by_one_bit_fails(converted, tmp_path):
    run_dir = copy_run(converted["dense_ae"], tmp_path)
    path = run_dir / "normalisation.json"
    norm = json.loads(path.read_text())
    norm["shift"] = [s - 1 for s in norm["shift"]]
    path.write_text(json.dumps(norm))
    report = verify(run_dir, FAST, log=lambda m: None)
    assert "thresholds" in report.failed, report.summary_lines()


def test_threshold_off_by_one_lsb_fails(converted, tmp_path):
    run_dir = copy_run(converted["dense_ae"], tmp_path)
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["thresholds"]["quantized"][0]["threshold_bits"] += 1
    path.write_text(json.dumps(metrics))
    report = verify(run_dir, FAST, log=lambda m: None)
    assert report.failed == ["thresholds"]
    assert "recorded" in find_check(report, "thresholds").message


def test_cli_exit_status_and_summary(converted, tmp_path):
    from click.testing import CliRunner

    from l1ml.cli import cli

    run_dir = converted["vae_encoder"]
    ok = CliRunner().invoke(cli, ["verify", str(run_dir), "--min-events", "2000"])
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.strip().endswith("report.json") and "bit_exact" in ok.stderr
    bad_dir = copy_run(run_dir, tmp_path)
    metrics = json.loads((bad_dir / "metrics.json").read_text())
    metrics["thresholds"]["quantized"][0]["threshold_bits"] -= 1
    (bad_dir / "metrics.json").write_text(json.dumps(metrics))
    bad = CliRunner().invoke(cli, ["verify", str(bad_dir), "--min-events", "2000"])
    assert bad.exit_code == 4 and "verification FAILED: thresholds" in bad.stderr
