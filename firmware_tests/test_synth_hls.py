"""A real C-synthesis of a trained network through `l1ml synth` (local queue). Needs Vitis HLS or Vivado HLS on the
PATH (or L1ML_HLS_SETTINGS): skipped where they are not installed, never imitated."""

from __future__ import annotations

import shutil

import pytest

HLS_TOOLS = ("vitis_hls", "vitis-run", "vivado_hls")
pytestmark = [pytest.mark.vivado, pytest.mark.skipif(not any(shutil.which(t) for t in HLS_TOOLS),
                                                      reason="no Vitis HLS / Vivado HLS here (vitis_hls, vitis-run, vivado_hls)")]


def test_csynth_of_the_trained_autoencoder(trained_runs, tmp_path, monkeypatch):
    from l1ml.firmware.convert import convert_run
    from l1ml.synth.db import JobDB
    from l1ml.synth.queue import SubmitOptions, submit, wait

    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))
    run_dir = trained_runs["dense_ae"]
    convert_run(run_dir)
    db = JobDB()
    job = submit(run_dir, SubmitOptions(kind="hls", steps=("csynth",), time_s=4 * 3600), db)
    ended = wait([job.id], db, timeout_s=4 * 3600, poll_s=10)[0]
    assert ended.state == "done", ended.message
    csynth = ended.recorded_result().reports.csynth
    assert csynth["latency_worst"] > 0 and csynth["resources"]["lut"]["used"] > 0
    assert ended.recorded_result().tool_version


def test_firmware_delivery_after_synthesis_and_export(trained_runs, tmp_path, monkeypatch):
    """The whole flow on a host with the tools: verify, C-synthesis and IP export, then a firmware delivery with the IP
    (or, if the design misses the target's budgets, a refusal that names them)."""
    from l1ml.deliver.gate import DeliveryRefused
    from l1ml.deliver.package import DeliverOptions, deliver
    from l1ml.firmware.convert import convert_run
    from l1ml.synth.db import JobDB
    from l1ml.synth.queue import SubmitOptions, submit, wait
    from l1ml.verify.run import VerifyOptions, verify

    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))
    run_dir = trained_runs["dense_ae"]
    convert_run(run_dir)
    assert verify(run_dir, VerifyOptions(min_events=3000), log=lambda m: None).passed
    db = JobDB()
    job = submit(run_dir, SubmitOptions(kind="hls", steps=("csynth", "export"), time_s=4 * 3600, force=True), db)
    ended = wait([job.id], db, timeout_s=4 * 3600, poll_s=10)[0]
    assert ended.state == "done", ended.message
    options = DeliverOptions("1.0.0", tmp_path / "deliveries", test_events=100)
    if not ended.recorded_result().within_budget:
        with pytest.raises(DeliveryRefused, match="over the hw target's budgets"):
            deliver(run_dir, options, db=db, log=lambda m: None)
        return
    delivery = deliver(run_dir, options, db=db, log=lambda m: None)
    m = delivery.manifest
    assert m.kind == "firmware" and m.synthesis["job"] == job.id and m.lineage["tools"]["synthesis"]
    assert m.synthesis["ip"] and all((delivery.path / p).is_file() for p in m.synthesis["ip"])
    assert (delivery.path / "firmware" / "hls" / "build_prj.tcl").is_file()
