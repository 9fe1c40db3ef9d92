"""`l1ml synth submit --kind vivado-rtl`: Vivado's logic synthesis of a network's RTL alone. The job folder is checked
on a real RTL project (da4ml, `l1ml.firmware.rtl`); through the local queue on a host without Vivado the job ends as
tool_missing; the synthesis itself runs only where Vivado is installed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from l1ml.documents import EmulatorSpec, RtlSummary
from l1ml.errors import L1mlError

from helpers import SHARED, assert_one_line_error, run

TIMING = SHARED / "fixtures" / "hls-reports" / "hector_m3pynq__design_1_wrapper_timing_summary_routed.rpt"
PART = "xcvu13p-flga2577-2-e"


def _dense(name, src, weights, bias):
    return {"class": "Dense", "name": name, "inputs": [src], "output": name, "result_type": "ap_fixed<16,6>",
            "input_type": "ap_fixed<6,2>", "weight_type": "ap_fixed<4,1>", "bias_type": "ap_fixed<4,1>",
            "accum_type": "ap_fixed<16,6>", "weight_codes": weights, "bias_codes": bias}


@pytest.fixture(scope="module")
def rtl_target(tmp_path_factory):
    """A folder with a tiny network's RTL (3 inputs x 3 outputs) written by `l1ml.firmware.rtl`, as `convert --rtl` does."""
    from l1ml.firmware import rtl

    try:
        rtl.rtl_python()
    except L1mlError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("vivado_rtl")
    spec = EmulatorSpec.model_validate({"inputs": ["x"], "outputs": ["d"], "layers": [
        {"class": "Input", "name": "x", "inputs": ["input"], "output": "x", "result_type": "ap_fixed<6,2>"},
        _dense("d", "x", [[1, 0, 5], [3, -2, 7], [2, 2, -3]], [0, 1, 2])]})
    spec.write(root / "emulator.json")
    target = root / "net"
    rtl.write_rtl(root / "emulator.json", target / "firmware" / "rtl", part=PART, clock_period_ns=4.0, target="vu13p", source={})
    return target


@pytest.fixture
def state(tmp_path, monkeypatch):
    from l1ml.synth.db import JobDB

    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))
    db = JobDB()
    db.set_setting("local.mem_budget_gb", "10")
    db.set_setting("local.cores", "2")
    return db


def _spec(target, **kw):
    from l1ml.synth.jobs import spec_for

    options = {"kind": "vivado-rtl", "backend": None, "steps": ["csynth"], "mem_gb": None, "time_s": 3600, "cpus": 1,
               "floor_gb": 8.0, "settings": None, "container": None, **kw}
    return spec_for(target, **options)


def test_the_job_folder_synthesises_the_rtl_alone(rtl_target, tmp_path):
    from l1ml.synth.jobs import create_job_dir

    project = rtl_target / "firmware" / "rtl" / "da4ml_prj"
    (project / "verilog" / "output_l1ml_rtl").mkdir(exist_ok=True)  # what da4ml's own Vivado script leaves
    (project / "verilog" / "output_l1ml_rtl" / "l1ml_rtl_post_synth.dcp").write_text("x")
    spec = _spec(rtl_target)
    assert (spec.kind, spec.tool, spec.steps, spec.part, spec.clock_ns) == ("vivado-rtl", "vivado", ["vsynth"], PART, 4.0)
    assert spec.project == str(project) and spec.extra.hw_target == "vu13p"
    job_id, job_dir = create_job_dir(tmp_path / "jobs", spec)

    assert {"job.json", "run.sh", "synth.tcl", "project", "rtl.json", "emulator.json"} == {p.name for p in job_dir.iterdir()}
    assert not (job_dir / "project" / "verilog" / "output_l1ml_rtl").exists(), "build outputs are not copied"
    tcl = (job_dir / "synth.tcl").read_text()
    assert "set top {l1ml_rtl}" in tcl and f"set part {{{PART}}}" in tcl
    src = job_dir / "project" / "verilog" / "src"
    verilog = sorted(str(p.relative_to(job_dir / "project")) for p in [*src.glob("*.v"), *src.glob("static/*.v")])
    assert verilog and all(f"{{{v}}}" in tcl for v in verilog), "every Verilog module is read"
    assert "read_xdc -mode out_of_context [in_project {verilog/src/l1ml_rtl.xdc}]" in tcl
    assert "synth_design -top $top -part $part -mode out_of_context\nopt_design\n" in tcl
    assert "report_utilization -file [file join $project vivado_synth.rpt]" in tcl
    assert "report_timing_summary -file [file join $project vivado_timing.rpt]" in tcl
    assert "read_mem" not in tcl, "this network has no lookup tables"
    assert "vivado -mode batch -nojournal -log vivado.log -source synth.tcl" in (job_dir / "run.sh").read_text()
    assert json.loads((job_dir / "job.json").read_text())["id"] == job_id


def test_memory_files_are_read_where_the_rtl_has_them(rtl_target, tmp_path):
    from l1ml.synth.jobs import create_job_dir

    memfiles = rtl_target / "firmware" / "rtl" / "da4ml_prj" / "verilog" / "src" / "memfiles"
    (memfiles / "table_0.mem").write_text("00\n01\n")
    try:
        _, job_dir = create_job_dir(tmp_path / "jobs", _spec(rtl_target))
    finally:
        (memfiles / "table_0.mem").unlink()
    tcl = (job_dir / "synth.tcl").read_text()
    assert "read_mem [in_project {\n  {verilog/src/memfiles/table_0.mem}\n}]" in tcl
    assert tcl.index("read_mem") < tcl.index("synth_design")


@pytest.mark.parametrize(("luts", "gb"), [(0.0, 3.0), (53.0, 3.5), (79851.5, 4.0), (250_000.0, 5.5)])
def test_memory_rule_3_gb_and_1_gb_per_100k_luts_of_da4ml(luts, gb):
    from l1ml.synth.vivado_rtl import memory_gb

    summary = RtlSummary(top="t", part=PART, clock_period_ns=4.0, latency_cutoff=4.0, latency_cycles=3, reg_bits=10,
                         da4ml_lut_estimate=luts, n_inputs=1, n_outputs=1, input_kif=[1, 1, 4], output_kif=[1, 3, 7],
                         tools={}, seconds=0.1)
    assert memory_gb(summary) == gb


def test_memory_request_is_the_rule_unless_given(rtl_target):
    assert _spec(rtl_target).mem_gb == 3.5  # 53 LUTs of da4ml's estimate: 3 GB, rounded up to 0.5 GB
    assert _spec(rtl_target, mem_gb=12.0).mem_gb == 12.0


def test_hls_steps_are_refused(rtl_target):
    with pytest.raises(L1mlError, match="Vivado's logic synthesis alone") as refused:
        _spec(rtl_target, steps=["csynth", "cosim"])
    assert refused.value.key == "--steps"


def test_a_target_without_rtl_says_to_convert_with_rtl(tmp_path):
    (tmp_path / "firmware" / "vhdl").mkdir(parents=True)
    (tmp_path / "firmware" / "vhdl" / "convert.json").write_text(json.dumps({
        "format": "l1ml-convert/1", "tool": "conifer", "backend": "vhdl", "tool_version": "1.6", "project": "p", "part": PART,
        "clock_period_ns": 4.0, "n_features": 4, "n_outputs": 1, "types": {"input": "ap_fixed<12,6>"}}))
    r = run("synth", "submit", tmp_path, "--kind", "vivado-rtl")
    assert_one_line_error(r, "no RTL project here", "run `l1ml convert RUN --rtl` first")
    with pytest.raises(L1mlError, match=r"the vhdl project is not RTL for Vivado .*run `l1ml convert RUN --rtl`"):
        _spec(tmp_path, backend="vhdl")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run("synth", "submit", empty, "--kind", "vivado-rtl"), "run `l1ml convert RUN --rtl` first")


def test_without_vivado_the_job_ends_as_tool_missing(rtl_target, state, monkeypatch):
    from l1ml.synth.queue import SubmitOptions, submit, wait

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no Vivado here in any case
    job = submit(rtl_target, SubmitOptions(kind="vivado-rtl", force=True), state)
    assert job.mem_gb == 3.5
    ended = wait([job.id], state, timeout_s=120, poll_s=0.3)[0]
    assert ended.state == "tool_missing", ended.message
    assert ended.message == f"l1ml: no FPGA tool: Vivado (vivado) is not on the PATH of {ended.host}"


@pytest.mark.skipif(not TIMING.is_file(), reason=f"fixtures not found at {TIMING}")
def test_the_timing_summary_is_parsed():
    from l1ml.synth.reports import parse_timing_summary

    timing = parse_timing_summary(TIMING)
    assert (timing.version, timing.wns_ns, timing.tns_ns, timing.failing_endpoints, timing.whs_ns) == \
        ("2019.2", 0.385, 0.0, 0, 0.015)
    assert timing.clocks == {"clk_fpga_0": 10.0} and timing.met


@pytest.mark.vivado
@pytest.mark.skipif(shutil.which("vivado") is None, reason="no Vivado here (vivado is not on the PATH)")
def test_vivado_synthesises_the_rtl(rtl_target, tmp_path, monkeypatch):
    from l1ml.synth.db import JobDB
    from l1ml.synth.queue import SubmitOptions, submit, wait

    monkeypatch.setenv("L1ML_STATE", str(tmp_path / "state"))
    db = JobDB()
    job = submit(rtl_target, SubmitOptions(kind="vivado-rtl", force=True, time_s=3600), db)
    ended = wait([job.id], db, timeout_s=3600, poll_s=5)[0]
    assert ended.state == "done", ended.message
    result = ended.recorded_result()
    vsynth = result.reports.vsynth
    assert vsynth["device"] and vsynth["resources"]["lut"]["used"] > 0 and vsynth["resources"]["ff"]["used"] > 0
    assert vsynth["timing"]["clocks"] and vsynth["timing"]["wns_ns"] is not None
    assert result.tool_version and Path(ended.job_dir, "project", "vivado_timing.rpt").is_file()
    shown = run("synth", "report", ended.job_dir)
    assert shown.returncode == 0 and "timing (" in shown.stdout, shown.stderr
