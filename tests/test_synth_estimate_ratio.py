"""`l1ml synth report` shows Vivado's figures of a finished job beside `l1ml estimate`'s open-source estimate of the
same firmware, and records the ratios in the estimate's document. The jobs are finished here without Vivado: real
Vivado reports (../shared/fixtures) placed where a job writes them; the estimate is built by hand."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from l1ml.documents import EmulatorSpec, EstimateFigures, EstimateReport, RtlSummary, read
from l1ml.runs import sha256_file

from helpers import SHARED, run

REPORTS = SHARED / "fixtures" / "hls-reports"
UTILIZATION = REPORTS / "hector_prunedcnn__vivado_synth.rpt"  # LUT 123948, FF 43435, DSP 5386 (Vivado 2020.1)
TIMING = REPORTS / "hector_m3pynq__design_1_wrapper_timing_summary_routed.rpt"  # WNS 0.385 ns: met
CSYNTH = REPORTS / "nrp__myproject_csynth.xml"
pytestmark = pytest.mark.skipif(not REPORTS.is_dir(), reason=f"fixtures not found at {REPORTS}")
PART = "xcvu13p-flga2577-2-e"
CYCLES, CLOCK = 19, 4.16

NETWORK = EmulatorSpec.model_validate({"inputs": ["x"], "outputs": ["x"], "layers": [
    {"class": "Input", "name": "x", "inputs": ["input"], "output": "x", "result_type": "ap_fixed<6,2>"}]})


def _rtl_job(target: Path, spec_file: Path) -> Path:
    """A vivado-rtl job of target's RTL, finished: Vivado's utilisation and timing reports where synth.tcl writes them."""
    from l1ml.documents import JobExtra, SynthJob
    from l1ml.synth.runner import finish

    job_dir = target.parent / "jobs" / "rtl-job"
    (job_dir / "project").mkdir(parents=True)
    started = time.time()
    shutil.copyfile(UTILIZATION, job_dir / "project" / "vivado_synth.rpt")
    shutil.copyfile(TIMING, job_dir / "project" / "vivado_timing.rpt")
    shutil.copyfile(spec_file, job_dir / "emulator.json")
    RtlSummary(top="l1ml_rtl", part=PART, clock_period_ns=CLOCK, latency_cutoff=CLOCK, latency_cycles=CYCLES, reg_bits=100,
               da4ml_lut_estimate=1e5, n_inputs=1, n_outputs=1, input_kif=[1, 1, 4], output_kif=[1, 1, 4], tools={},
               seconds=1.0).write(job_dir / "rtl.json")
    (job_dir / "tool_version.txt").write_text("Vivado v2020.1 (64-bit)\n")
    spec = SynthJob(id="rtl-job", kind="vivado-rtl", model="net", target=str(target),
                    project=str(target / "firmware" / "rtl" / "da4ml_prj"), tool="vivado", part=PART, clock_ns=CLOCK,
                    steps=["vsynth"], mem_gb=4, time_s=3600, cpus=1, project_hash="0" * 64, extra=JobExtra(hw_target="vu13p"))
    spec.write(job_dir / "job.json")
    finish(job_dir, spec, exit_code=0, killed_for=None, peak_bytes=None, started=started).write(job_dir / "result.json")
    return job_dir


def _estimate(target: Path, spec_file: Path, **rtl) -> Path:
    """TARGET/estimate/estimate.json of the network of `spec_file`, with the rtl method's figures `rtl` (none: it failed)."""
    methods = {"counts": EstimateFigures(tool="l1ml counts", seconds=0.01, bops=1000)}
    failed = {}
    if rtl:
        methods["rtl"] = EstimateFigures(tool="da4ml 0.6.0 + yosys 0.23 synth_xilinx -family xcup", seconds=2.0, **rtl)
    else:
        failed["rtl"] = "yosys is not installed"
    path = target / "estimate" / "estimate.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    EstimateReport(created="2026-12-02T00:00:00+00:00", kind="network", target="vu13p", part=PART, family="virtexuplus",
                   clock_period_ns=CLOCK, latency_budget_ns=100.0, device={"lut": 1728000}, methods=methods, failed=failed,
                   source={"target": str(target), "project": str(target / "firmware" / "vitis"), "tool": "hls4ml",
                           "backend": "Vitis", "file": str(spec_file), "sha256": sha256_file(spec_file)}).write(path)
    return path


@pytest.fixture
def target(tmp_path) -> Path:
    target = tmp_path / "net"
    (target / "firmware" / "vitis").mkdir(parents=True)
    NETWORK.write(target / "firmware" / "vitis" / "emulator.json")
    return target


def test_vivado_beside_the_rtl_estimate_and_the_ratios_recorded_once(target):
    spec_file = target / "firmware" / "vitis" / "emulator.json"
    estimate = _estimate(target, spec_file, lut=100000, ff=50000, dsp=0, latency_cycles=CYCLES, latency_ns=CYCLES * CLOCK)
    job_dir = _rtl_job(target, spec_file)

    shown = run("synth", "report", job_dir)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "open-source estimate, which is not a Vivado result" in out and "estimate (rtl)" in out
    table = out.splitlines()
    header = next(i for i, line in enumerate(table) if "ratio Vivado/estimate" in line)
    assert [line.split()[0] for line in table[header + 1:header + 5]] == ["LUT", "FF", "DSP", "latency"]
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["LUT"][1:] == ["123948", "100000", "1.239"]
    assert lines["FF"][1:] == ["43435", "50000", "0.869"]
    assert lines["DSP"][1:] == ["5386", "0", "-"], "no ratio to an estimate of none"
    assert "79.04" in next(line for line in out.splitlines() if "latency (ns)" in line)  # timing met: 19 cycles at 4.16 ns
    assert "timing (clk_fpga_0 10 ns): WNS 0.385 ns, met" in out
    assert f"ratios recorded in {estimate}" in out

    (entry,) = read(estimate, EstimateReport).vivado
    assert (entry["job"], entry["kind"], entry["tool_version"], entry["part"]) == ("rtl-job", "vivado-rtl",
                                                                                   "Vivado v2020.1 (64-bit)", PART)
    assert entry["figures"] == {"lut": 123948, "ff": 43435, "dsp": 5386, "latency_ns": 79.04}
    assert entry["ratios"] == {"rtl": {"lut": 1.239, "ff": 0.869, "dsp": None, "latency_ns": 1.0}}
    assert entry["time"].endswith("+00:00") and entry["design_state"] == "Synthesized"

    again = run("synth", "report", job_dir, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["estimate"]["recorded"] is False
    assert len(read(estimate, EstimateReport).vivado) == 1, "the same job is recorded once"


def test_a_new_estimate_replaces_the_jobs_entry(target):
    spec_file = target / "firmware" / "vitis" / "emulator.json"
    estimate = _estimate(target, spec_file, lut=100000)
    job_dir = _rtl_job(target, spec_file)
    assert run("synth", "report", job_dir).returncode == 0
    report = read(estimate, EstimateReport)
    other = {"job": "older-job", "kind": "vivado-rtl", "ratios": {}}
    report.model_copy(update={"vivado": [other, *report.vivado],
                              "methods": {**report.methods, "rtl": report.methods["rtl"].model_copy(update={"lut": 123948})}}
                      ).write(estimate)
    assert run("synth", "report", job_dir).returncode == 0
    entries = read(estimate, EstimateReport).vivado
    assert [e["job"] for e in entries] == ["older-job", "rtl-job"]
    assert entries[1]["ratios"] == {"rtl": {"lut": 1.0}}


def test_an_estimate_of_another_network_is_not_compared(target, tmp_path):
    spec_file = target / "firmware" / "vitis" / "emulator.json"
    estimate = _estimate(target, spec_file, lut=100000)
    other = tmp_path / "other_emulator.json"
    EmulatorSpec(unsupported="another network").write(other)
    job_dir = _rtl_job(target, other)
    shown = run("synth", "report", job_dir)
    assert shown.returncode == 0, shown.stderr
    assert "estimate not compared" in shown.stdout and "another network than the one this RTL was traced from" in shown.stdout
    assert read(estimate, EstimateReport).vivado == []


def test_a_failed_rtl_method_is_named(target):
    spec_file = target / "firmware" / "vitis" / "emulator.json"
    _estimate(target, spec_file)
    shown = run("synth", "report", _rtl_job(target, spec_file))
    assert shown.returncode == 0, shown.stderr
    assert "no estimate method has a figure to compare (compared: rtl) (did not run: rtl: yosys is not installed)" in shown.stdout


def test_an_hls_job_is_compared_with_the_estimate_of_its_project_but_not_with_the_rtl(target):
    from l1ml.documents import SynthJob
    from l1ml.synth.estimate_ratio import compare_and_record
    from l1ml.synth.jobs import read_result
    from l1ml.synth.runner import finish

    spec_file = target / "firmware" / "vitis" / "emulator.json"
    estimate = _estimate(target, spec_file, lut=100000)
    job_dir = target.parent / "jobs" / "hls-job"
    report_dir = job_dir / "project" / "myproject_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    started = time.time()
    shutil.copyfile(CSYNTH, report_dir / "myproject_csynth.xml")
    shutil.copyfile(UTILIZATION, job_dir / "project" / "vivado_synth.rpt")
    spec = SynthJob(id="hls-job", kind="hls", model="net", target=str(target),
                    project=str(target / "firmware" / "vitis" / "hls4ml_prj"), tool="vitis", part=PART, clock_ns=CLOCK,
                    steps=["csynth", "vsynth"], mem_gb=8, time_s=3600, cpus=1, project_hash="0" * 64)
    spec.write(job_dir / "job.json")
    finish(job_dir, spec, exit_code=0, killed_for=None, peak_bytes=None, started=started).write(job_dir / "result.json")

    comparison = compare_and_record(job_dir, read_result(job_dir))
    assert comparison.rows == {} and "compared: counts, bdt" in comparison.problem, "the rtl method estimates da4ml's RTL"
    report = read(estimate, EstimateReport)
    report.model_copy(update={"kind": "bdt", "methods": {"bdt": EstimateFigures(tool="conifer", seconds=0.1, lut=61974)}}
                      ).write(estimate)
    comparison = compare_and_record(job_dir, read_result(job_dir))
    assert [(r.figure, r.ratio) for r in comparison.rows["bdt"]] == [("lut", 2.0)] and comparison.recorded
    assert read(estimate, EstimateReport).vivado[0]["figures"] == {"lut": 123948, "ff": 43435, "dsp": 5386}


def test_a_negative_slack_lengthens_the_latency(target, tmp_path):
    from l1ml.synth.estimate_ratio import _rtl_latency_ns
    from l1ml.synth.jobs import read_job

    job_dir = _rtl_job(target, target / "firmware" / "vitis" / "emulator.json")
    spec = read_job(job_dir)
    assert _rtl_latency_ns(job_dir, spec, {"wns_ns": 0.2}) == round(CYCLES * CLOCK, 3)
    assert _rtl_latency_ns(job_dir, spec, {"wns_ns": -0.5}) == round(CYCLES * (CLOCK + 0.5), 3)
    assert _rtl_latency_ns(job_dir, spec, {"wns_ns": None}) is None and _rtl_latency_ns(job_dir, spec, None) is None
