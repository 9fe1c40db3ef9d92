"""`l1ml deliver` of a run converted with `--rtl`: the RTL-only firmware delivery (`--no-synthesis`), the RTL in a
firmware release, and the gate's refusals: RTL that verify did not check, whose check failed, or that changed since."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from l1ml.deliver.gate import DeliveryRefused
from l1ml.deliver.package import DeliverOptions, deliver
from l1ml.verify.run import VerifyOptions, verify

from helpers import SHARED, copy_run, recorded_synthesis

FAST = VerifyOptions(min_events=3000)
QUIET = {"log": lambda m: None}
RTL_PHRASE = "RTL from da4ml, verified with Verilator bit for bit on {events} events; not synthesised by Vivado"


def _l1ml(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "l1ml", *map(str, args)], capture_output=True, text=True, timeout=900,
                          cwd=cwd)


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "verify" / "report.json").read_text())


def _rtl_check(run_dir: Path) -> dict:
    return next(c for c in _report(run_dir)["checks"] if c["name"].startswith("rtl"))


def _refusal(run_dir: Path, **kw) -> list[str]:
    options = DeliverOptions("1.0.0", run_dir.parent / "deliveries", test_events=50, synthesis=False, **kw)
    with pytest.raises(DeliveryRefused) as info:
        deliver(run_dir, options, **QUIET)
    assert not options.out.exists(), "a refusal writes nothing"
    return info.value.problems


@pytest.fixture(scope="module")
def rtl_converted(trained_runs, tmp_path_factory):
    """The small trained autoencoder converted with `l1ml convert RUN --rtl`: its hls4ml project and da4ml's RTL."""
    run_dir = copy_run(trained_runs["dense_ae"], tmp_path_factory.mktemp("rtl_converted"))
    shutil.rmtree(run_dir / "firmware", ignore_errors=True)
    done = _l1ml("convert", run_dir, "--rtl")
    assert done.returncode == 0, done.stderr
    assert (run_dir / "firmware" / "rtl" / "da4ml_prj" / "verilog" / "src").is_dir()
    return run_dir


@pytest.fixture(scope="module")
def rtl_run(rtl_converted, tmp_path_factory):
    """The converted run with the Verilator binder built in its project (as `make` in sim/ leaves it: obj_dir/ and
    the library), then verified with `l1ml verify`, whose rtl check runs the RTL in Verilator."""
    from l1ml.firmware.rtl import simulate_rtl

    run_dir = copy_run(rtl_converted, tmp_path_factory.mktemp("rtl_run"))
    rtl = run_dir / "firmware" / "rtl"
    n_inputs = json.loads((rtl / "convert.json").read_text())["n_features"]
    _, info = simulate_rtl(rtl, np.zeros((1, n_inputs)))  # Verilator's build, cached in $L1ML_CACHE for verify too
    sim = rtl / "da4ml_prj" / "verilog" / "sim"
    for library in (Path(info["library"]) / "verilog" / "sim").glob("lib*.so"):
        shutil.copyfile(library, sim / library.name)
    (sim / "obj_dir").mkdir()
    (sim / "obj_dir" / "Vl1ml_rtl_wrapper__ALL.a").write_bytes(b"!<arch>\n")
    done = _l1ml("verify", run_dir, "--min-events", 3000)
    assert done.returncode == 0, done.stdout + done.stderr
    check = _rtl_check(run_dir)
    assert check["passed"] and check["events"] > 0 and check["mismatches"] == 0
    return run_dir


@pytest.fixture(scope="module")
def rtl_delivery(rtl_run, tmp_path_factory):
    """`l1ml deliver RUN --version next --no-synthesis`: (the version folder, the delivery's stderr)."""
    out = tmp_path_factory.mktemp("rtl_deliveries")
    done = _l1ml("deliver", rtl_run, "--version", "next", "--no-synthesis", "--out", out, "--test-events", 100)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1]), done.stderr


# ------------------------------------------------------------------------------------------------ RTL-only delivery


def test_rtl_only_delivery_carries_the_verified_rtl(rtl_run, rtl_delivery):
    package, log = rtl_delivery
    check = _rtl_check(rtl_run)
    summary = json.loads((rtl_run / "firmware" / "rtl" / "rtl.json").read_text())
    phrase = RTL_PHRASE.format(events=check["events"])
    assert package.name == "0.1.0" and "(RTL only: not synthesised)" in log and "(firmware (RTL only))" in log

    m = json.loads((package / "manifest.json").read_text())
    assert m["kind"] == "firmware" and m["firmware_release"] is True
    s = m["synthesis"]
    assert "job" not in s and s["none"].startswith("RTL-only firmware delivery") and phrase in s["none"]
    rtl = s["rtl"]
    assert rtl["folder"] == "firmware/rtl" and rtl["tool"] == "da4ml" and rtl["tool_version"] == summary["tools"]["da4ml"]
    assert rtl["latency_cycles"] == summary["latency_cycles"] and rtl["synthesised_by_vivado"] is False
    assert (rtl["events"], rtl["mismatches"]) == (check["events"], 0) and rtl["checks"][0]["name"] == check["name"]
    assert m["lineage"]["tools"]["rtl"] == summary["tools"]
    assert m["verify"]["fingerprint"] == _report(rtl_run)["fingerprint"] and "firmware/rtl/" in m["verify"]["fingerprint"]
    assert m["emulator"]["self_test"]["passed"]

    readme = (package / "README.md").read_text()
    assert readme.splitlines()[2] == f"**RTL-ONLY FIRMWARE DELIVERY: {phrase}.**"
    assert f"latency {summary['latency_cycles']} cycles" in readme and f"da4ml {summary['tools']['da4ml']}" in readme
    assert f"0 of {check['events']} events differ" in readme
    assert "EMULATOR-ONLY" not in readme and "synthesised with" not in readme and "within the budgets" not in readme

    # the RTL as verified, without the binder's build output; no HLS project, synthesis or IP
    fw = package / "firmware"
    assert sorted(p.name for p in fw.iterdir()) == ["rtl"]
    src = rtl_run / "firmware" / "rtl" / "da4ml_prj" / "verilog" / "src"
    verilog = sorted(p.relative_to(src) for p in src.rglob("*.v"))
    assert len(verilog) > 3
    assert all((fw / "rtl" / "verilog" / "src" / v).read_bytes() == (src / v).read_bytes() for v in verilog)
    assert (fw / "rtl" / "vhdl" / "src" / "l1ml_rtl.vhd").is_file() and (fw / "rtl" / "tb" / "inputs.txt").is_file()
    assert {p.name for p in fw.glob("rtl/l1ml_*.json")} == {"l1ml_convert.json", "l1ml_rtl.json", "l1ml_emulator.json"}
    assert not [p for p in package.rglob("*") if p.name == "obj_dir" or p.suffix in (".so", ".a", ".o")]
    assert sorted(m["files"]) == sorted(str(p.relative_to(package)) for p in package.rglob("*")
                                        if p.is_file() and p.name != "manifest.json")


def test_rtl_only_delivery_passes_its_check_and_lists_as_rtl_only(rtl_delivery):
    package, _ = rtl_delivery
    archive = package.parent / f"{package.name}.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert f"{package.name}/firmware/rtl/verilog/src/l1ml_rtl.v" in names
    assert not [n for n in names if "obj_dir" in n or n.endswith(".so")]
    for target in (package, archive):
        checked = _l1ml("deliver", "--check", target)
        out = checked.stdout.rstrip()
        assert checked.returncode == 0 and "(firmware (RTL only))" in out and out.endswith(": ok"), out + checked.stderr
    listed = _l1ml("deliver", "--list", "--out", package.parents[1])
    assert listed.returncode == 0 and "firmware (RTL only)" in listed.stdout.splitlines()[1], listed.stdout


# ------------------------------------------------------------------------------------------------ the gate


def test_refused_when_the_verilog_changed_after_verify(rtl_run, tmp_path):
    run_dir = copy_run(rtl_run, tmp_path)
    stage = sorted((run_dir / "firmware" / "rtl" / "da4ml_prj" / "verilog" / "src").glob("*_stage*.v"))[0]
    stage.write_text(stage.read_text() + "// edited after verify\n")
    problems = _refusal(run_dir)
    assert len(problems) == 1 and "changed since it was verified (firmware/rtl/)" in problems[0], problems
    assert f"`l1ml verify {run_dir}`" in problems[0]


def test_refused_when_the_rtl_was_added_after_verify(rtl_converted, tmp_path):
    """A run verified before `l1ml convert --rtl` (or by an l1ml without the rtl check) has unchecked RTL: refused,
    with one message naming the run and what to run."""
    run_dir = copy_run(rtl_converted, tmp_path)
    rtl = run_dir / "firmware" / "rtl"
    shutil.move(rtl, tmp_path / "rtl_aside")
    assert verify(run_dir, FAST, **QUIET).passed
    assert not [c for c in _report(run_dir)["checks"] if c["name"].startswith("rtl")]
    shutil.move(tmp_path / "rtl_aside", rtl)
    problems = _refusal(run_dir)
    assert len(problems) == 1, problems
    assert problems[0] == (f"the run has RTL (firmware/rtl/) that its latest verification did not check with Verilator "
                           f"(no 'rtl' check in {run_dir / 'verify' / 'report.json'}): run `l1ml verify {run_dir}`")
    result = _l1ml("deliver", run_dir, "--version", "1.0.0", "--no-synthesis", "--out", tmp_path / "out")
    assert result.returncode == 6 and "did not check with Verilator" in result.stderr, result.stderr


def test_refused_when_the_rtl_check_failed(rtl_converted, tmp_path):
    """One adder of the Verilog turned into a subtractor: verify's rtl check fails (Verilator builds it anew), and the
    refusal is one message about the RTL, not also the generic one about the failed verification."""
    run_dir = copy_run(rtl_converted, tmp_path)
    stage0 = run_dir / "firmware" / "rtl" / "da4ml_prj" / "verilog" / "src" / "l1ml_rtl_stage0.v"
    text = stage0.read_text()
    adder = re.search(r"shift_adder #\([^)]*, ([01])\) op_", text)  # da4ml's last parameter: subtract instead of add
    assert adder, "da4ml's first stage is made of shift_adders"
    stage0.write_text(text[:adder.start(1)] + str(1 - int(adder.group(1))) + text[adder.end(1):])
    report = verify(run_dir, FAST, **QUIET)
    assert report.failed == [_rtl_check(run_dir)["name"]] and _rtl_check(run_dir)["mismatches"] > 0
    problems = _refusal(run_dir)
    assert len(problems) == 1 and problems[0].startswith("the RTL (firmware/rtl/) failed its check"), problems
    assert "events differ" in problems[0] and f"`l1ml convert {run_dir} --rtl`" in problems[0]


# ------------------------------------------------------------------------------------------------ a firmware release


def test_firmware_release_carries_the_rtl_beside_the_hls_project(rtl_run, rtl_delivery, tmp_path):
    """With a synthesis, the release carries the HLS project and the RTL, and says what each is (the gate's budget
    condition is left out: the recorded report is not of this target)."""
    from l1ml.config.loader import load_config
    from l1ml.config.train import TrainConfig
    from l1ml.deliver.firmware import write_firmware
    from l1ml.deliver.gate import Gate, Synthesis, _rtl_condition, _verify_condition
    from l1ml.deliver.package import _manifest, _readme
    from l1ml.deliver.vectors import Vectors, load_vectors
    from l1ml.quantize.fixedpoint import parse_fixed
    from l1ml.synth.db import JobDB
    from l1ml.synth.jobs import read_job

    run_dir = copy_run(rtl_run, tmp_path)
    db = JobDB(tmp_path / "state")
    job = db.get(recorded_synthesis(run_dir, db, SHARED / "fixtures" / "hls-reports" / "nrp__myproject_csynth.xml"))
    problems: list[str] = []
    report, projects = _verify_condition(run_dir, problems)
    _rtl_condition(run_dir, report, problems)
    assert not problems and [p.backend for p in projects] == ["vitis", "rtl"]
    gate = Gate(run_dir, report, projects, Synthesis(job.id, Path(job.job_dir), job.recorded_result(), read_job(job.job_dir)))
    assert gate.kind == "firmware" and gate.released == projects

    info, inputs, outputs = load_vectors(rtl_delivery[0] / "test_vectors")
    vectors = Vectors(inputs, outputs, parse_fixed(info.inputs.type), parse_fixed(info.outputs.type), [],
                      np.zeros((0, inputs.shape[1])))
    fw = tmp_path / "pkg" / "firmware"
    written = write_firmware(fw, gate, vectors)
    assert sorted(p.name for p in fw.iterdir()) == ["hls", "rtl", "synthesis"] and written["job"] == job.id
    assert (fw / "hls" / "tb_data" / "tb_input_features.dat").is_file() and not (fw / "rtl" / "tb_data").exists()
    assert (fw / "rtl" / "verilog" / "src" / "l1ml_rtl.v").is_file() and not list(fw.rglob("obj_dir"))

    _, cfg = load_config(run_dir / "config.yaml", TrainConfig)
    m = _manifest(gate, cfg, "1.0.0", "x_v1_0_0", vectors, written, json.loads((run_dir / "metrics.json").read_text()))
    s = m["synthesis"]
    assert m["kind"] == "firmware" and s["job"] == job.id and "none" not in s
    assert s["rtl"]["folder"] == "firmware/rtl" and s["rtl"]["events"] == _rtl_check(run_dir)["events"]
    readme = _readme(m)
    assert readme.splitlines()[2].startswith("Firmware release: synthesised") and "RTL-ONLY" not in readme
    assert "RTL (`firmware/rtl/`, top `l1ml_rtl`)" in readme and "timing not checked by Vivado" in readme
