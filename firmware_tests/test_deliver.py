"""`l1ml deliver`: each gate refusal, atomicity under kill, tamper detection, listing, and the CMSSW emulator library
built from a package with g++, reproducing the test vectors bit for bit (and failing on one LSB)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from l1ml.deliver.gate import DeliveryRefused
from l1ml.deliver.package import DeliverOptions, deliver
from l1ml.errors import L1mlError
from l1ml.verify.run import VerifyOptions, verify

from helpers import SHARED, copy_run, recorded_synthesis, trained_and_converted

FAST = VerifyOptions(min_events=3000)
QUIET = {"log": lambda m: None}
EMULATOR_ONLY = {"synthesis": False, "test_events": 100}

BDT_RUN = """
name: dlv_bdt
seed: 5
data: {{events: {events}, signals: [Ato4l]}}
model: {{kind: bdt, n_estimators: 6, max_depth: 3}}
evaluation: {{rates_khz: [2000, 4000]}}
verify: {{auc_tolerance: 0.2, efficiency_tolerance: 0.4, vhdl_events: 60}}
"""


@pytest.fixture(scope="module")
def ae_run(trained_runs, tmp_path_factory):
    """A converted and verified copy of the small trained autoencoder."""
    from l1ml.firmware.convert import convert_run

    run_dir = copy_run(trained_runs["dense_ae"], tmp_path_factory.mktemp("dlv_ae"))
    shutil.rmtree(run_dir / "firmware", ignore_errors=True)
    convert_run(run_dir)
    assert verify(run_dir, FAST, **QUIET).passed
    return run_dir


@pytest.fixture(scope="module")
def bdt_run(small_events, tmp_path_factory):
    run_dir = trained_and_converted(BDT_RUN.format(events=small_events), tmp_path_factory.mktemp("dlv_bdt"))
    assert verify(run_dir, FAST, **QUIET).passed
    return run_dir


@pytest.fixture(scope="module")
def ae_delivery(ae_run, tmp_path_factory):
    from l1ml.synth.db import JobDB

    out = tmp_path_factory.mktemp("deliveries")
    return deliver(ae_run, DeliverOptions("1.0.0", out, **EMULATOR_ONLY), db=JobDB(out / "state"), **QUIET)


def _cli(*args, env=None):
    from click.testing import CliRunner

    from l1ml.cli import cli

    return CliRunner().invoke(cli, list(args), env=env)


def _l1ml(*args):
    """The installed command, for what reaches the user: one line and the exit status."""
    return subprocess.run([sys.executable, "-m", "l1ml", *map(str, args)], capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------------------------------------ the package


def test_emulator_only_package(ae_run, ae_delivery, tmp_path):
    from l1ml.deliver.manifest import check
    from l1ml.deliver.vectors import load_vectors

    d, m = ae_delivery.path, ae_delivery.manifest
    assert d.name == "1.0.0" and d.parent.name == "fw_dense_ae" and ae_delivery.archive.name == "1.0.0.tar.gz"
    assert m.kind == "emulator-only" and not m.firmware_release and "not a firmware release" in m.synthesis["none"]
    assert not (d / "firmware").exists(), "an emulator-only delivery carries no firmware"
    assert (d / "README.md").read_text().splitlines()[2].startswith("**EMULATOR-ONLY DELIVERY")
    assert m.emulator["self_test"]["passed"] and all(" 0 differ" in line for line in m.emulator["self_test"]["summary"])
    assert m.lineage["data"]["events"]["sha256"] and m.lineage["run"]["id"] == ae_run.name
    assert m.lineage["tools"]["delivery"]["hls4ml"] == "1.3.0" and m.verify["passed"]
    listed = set(m.files)
    on_disk = {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == on_disk and {"scaling.json", "thresholds.json", "verify_report.json", "emulator/Makefile"} <= listed
    assert check(d).ok and check(ae_delivery.archive).ok

    metrics = json.loads((ae_run / "metrics.json").read_text())
    thresholds = json.loads((d / "thresholds.json").read_text())["thresholds"]
    assert [t["code"] for t in thresholds] == [r["threshold_bits"] for r in metrics["thresholds"]["quantized"]]
    scaling = json.loads((d / "scaling.json").read_text())
    norm = json.loads((ae_run / "normalisation.json").read_text())
    assert scaling["shift"] == norm["shift"] and np.array_equal(np.array(scaling["offset_code"]) * 2.0**-8, norm["offset"])
    from l1ml.deliver.vectors import read_hex
    from l1ml.quantize.fixedpoint import parse_fixed

    (tmp_path / "offsets.hex").write_text(" ".join(scaling["offset_hex"]) + "\n")
    assert read_hex(tmp_path / "offsets.hex", parse_fixed(scaling["offset_type"]))[0].tolist() == scaling["offset_code"]

    info, inputs, outputs = load_vectors(d / "test_vectors")
    assert np.array_equal(inputs, np.load(d / "test_vectors" / "inputs.npy"))
    assert np.array_equal(outputs, np.load(d / "test_vectors" / "outputs.npy"))
    categories = {b.category for b in info.blocks}
    assert {"test:background", "adversarial:edges", "adversarial:ties", "adversarial:huge_pt"} <= categories


def _make(folder: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(folder), *targets], capture_output=True, text=True, timeout=900)


def test_emulator_library_reproduces_the_vectors_and_fails_on_one_lsb(ae_delivery, tmp_path):
    from l1ml.deliver.vectors import load_vectors, read_hex
    from l1ml.quantize.fixedpoint import parse_fixed

    package = tmp_path / "pkg"
    shutil.copytree(ae_delivery.path, package)
    emulator = package / "emulator"
    built = _make(emulator, "test")
    assert built.returncode == 0, built.stdout + built.stderr
    name = ae_delivery.manifest.emulator["library"][:-3]
    assert (emulator / name / f"{name}.so").is_file() and " 0 differ" in built.stdout
    # only the loader's two entry points are exported (and the standard library's std::any helpers): the firmware's
    # top function and weight arrays cannot clash with another model's in the same process
    symbols = subprocess.run(["nm", "-D", "--defined-only", "-C", str(emulator / name / f"{name}.so")], capture_output=True,
                             text=True, check=True).stdout.splitlines()
    exported = {line.split(None, 2)[2] for line in symbols if line.strip()}
    assert {s for s in exported if not s.startswith(("std::", "void* std::"))} == {"create_model", "destroy_model"}, exported
    # the library's outputs, through its C++ interface, read back here and compared code by code
    info, inputs, expected = load_vectors(package / "test_vectors")
    out = tmp_path / "out.hex"
    run = subprocess.run([str(emulator / "test" / "run_vectors"), str(emulator / name / name),
                          str(package / "test_vectors" / "inputs.hex"), str(package / "test_vectors" / "outputs.hex"),
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert np.array_equal(read_hex(out, parse_fixed(info.outputs.type)), expected)

    # one weight of the packaged firmware one LSB off: make test must fail and name the events that differ
    header = next(p for p in sorted((emulator / name / "firmware" / "weights").glob("w*.h")))
    text = header.read_text()
    m = re.compile(r"-?\d+\.\d+").search(text, text.index("= {") + 3)
    header.write_text(text[:m.start()] + f"{float(m.group()) + 2.0**-6:.6f}" + text[m.end():])
    broken = _make(emulator, "test")
    assert broken.returncode != 0 and re.search(r"[1-9]\d* differ", broken.stdout), broken.stdout + broken.stderr


def test_the_emulator_built_inside_a_delivered_package_is_no_damage(ae_delivery, tmp_path):
    """`make`, `make test` and `make install` in the package's emulator/ leave --check ok (their products are named as
    ignored); a changed source file or any other added file is still damage."""
    model_root = tmp_path / ae_delivery.path.parent.name
    shutil.copytree(ae_delivery.path.parent, model_root)  # the version folder with its record and archive
    package = model_root / ae_delivery.path.name
    for target in ("test", "install"):
        built = _make(package / "emulator", target)
        assert built.returncode == 0, built.stdout + built.stderr
    name = ae_delivery.manifest.emulator["library"][:-3]
    checked = _l1ml("deliver", "--check", package)
    assert checked.returncode == 0 and checked.stdout.rstrip().endswith(": ok"), checked.stdout + checked.stderr
    assert sorted(line.split()[1] for line in checked.stderr.splitlines() if line.startswith("ignored: ")) == [
        f"emulator/{name}/{name}.so", f"emulator/lib64/{name}.so", "emulator/test/run_vectors"]

    source = package / "emulator" / name / "emulator.cc"
    source.write_text(source.read_text() + "// edited after delivery\n")
    (package / "emulator" / "notes.txt").write_text("added after delivery\n")
    damaged = _l1ml("deliver", "--check", package)
    assert damaged.returncode == 7 and "DAMAGED: 1 changed, 1 extra" in damaged.stdout, damaged.stdout + damaged.stderr
    assert f"changed: emulator/{name}/emulator.cc" in damaged.stderr and "extra: emulator/notes.txt" in damaged.stderr


@pytest.fixture(scope="module")
def bdt_delivery(bdt_run, tmp_path_factory):
    from l1ml.synth.db import JobDB

    out = tmp_path_factory.mktemp("bdt_deliveries")
    return deliver(bdt_run, DeliverOptions("0.1.0", out, **EMULATOR_ONLY), db=JobDB(out / "state"), **QUIET)


def test_bdt_emulator_only_delivery_builds_and_matches(bdt_delivery, tmp_path):
    delivery = bdt_delivery
    scaling = json.loads((delivery.path / "scaling.json").read_text())
    assert scaling["shift"] == [0] * 57 and "BDT" in scaling["note"]
    blocks = delivery.manifest.test_vectors["blocks"]
    assert blocks["adversarial:thresholds"] > 0, "the threshold probes of verify are in the vectors"
    package = tmp_path / "pkg"
    shutil.copytree(delivery.path, package)
    built = _make(package / "emulator", "test")
    assert built.returncode == 0 and built.stdout.count(" 0 differ") == 2, built.stdout + built.stderr
    install = _make(package / "emulator", "install", f"PREFIX={tmp_path / 'cmssw'}")
    assert install.returncode == 0 and (tmp_path / "cmssw" / "lib64" / "dlv_bdt_v0_1_0.so").is_file()


@pytest.mark.skipif(shutil.which("ghdl") is None, reason="GHDL is not installed (make test installs it)")
def test_vhdl_testbench_vectors_of_a_firmware_delivery(bdt_run, bdt_delivery, tmp_path):
    """A BDT firmware release carries the vectors in the VHDL testbench's format: GHDL, fed SimulationInput.txt,
    writes SimulationExpected.txt."""
    from l1ml.deliver.vectors import Vectors, load_vectors
    from l1ml.firmware import ghdl
    from l1ml.quantize.fixedpoint import parse_fixed

    info, inputs, outputs = load_vectors(bdt_delivery.path / "test_vectors")
    pick = np.r_[0:60, len(inputs) - 60:len(inputs)]  # test events and the last adversarial block (threshold probes)
    vectors = Vectors(inputs[pick], outputs[pick], parse_fixed(info.inputs.type), parse_fixed(info.outputs.type),
                      [], np.zeros((0, inputs.shape[1])))
    vhdl = bdt_run / "firmware" / "vhdl"
    vectors.write_vhdl_testbench_data(tmp_path, parse_fixed(json.loads((vhdl / "convert.json").read_text())["types"]["input"]))
    codes = np.loadtxt(tmp_path / "SimulationInput.txt", dtype=np.int64, ndmin=2)
    expected = np.loadtxt(tmp_path / "SimulationExpected.txt", dtype=np.int64, ndmin=2)
    assert np.array_equal(ghdl.simulate(vhdl / "conifer_prj", codes, expected.shape[1]), expected)


# ------------------------------------------------------------------------------------------------ the gate


def _refusal(run_dir, version="2.0.0", out=None, **kw) -> list[str]:
    options = DeliverOptions(version, out or run_dir.parent / "deliveries", test_events=50, **kw)
    before = sorted(options.out.rglob("*")) if options.out.exists() else []
    with pytest.raises(DeliveryRefused) as info:
        deliver(run_dir, options, db=_db_for(run_dir), **QUIET)
    assert (sorted(options.out.rglob("*")) if options.out.exists() else []) == before, "a refusal writes nothing"
    return info.value.problems


def _db_for(run_dir):
    from l1ml.synth.db import JobDB

    return JobDB(run_dir.parent / "state")


def test_refused_when_never_verified(ae_run, tmp_path):
    run_dir = copy_run(ae_run, tmp_path)
    shutil.rmtree(run_dir / "verify")
    problems = _refusal(run_dir, synthesis=False)
    assert len(problems) == 1 and "never verified" in problems[0]


def test_refused_when_the_latest_verify_failed(ae_run, tmp_path):
    run_dir = copy_run(ae_run, tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["thresholds"]["quantized"][0]["threshold_bits"] += 1
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    assert not verify(run_dir, FAST, **QUIET).passed
    problems = _refusal(run_dir, synthesis=False)
    assert len(problems) == 1 and "latest verification failed (thresholds)" in problems[0]


def test_refused_when_verified_on_part_of_the_test_events(ae_run, tmp_path):
    run_dir = copy_run(ae_run, tmp_path)
    assert verify(run_dir, VerifyOptions(events=20, min_events=500), **QUIET).passed
    problems = _refusal(run_dir, synthesis=False)
    assert len(problems) == 1 and "--events 20" in problems[0]


@pytest.mark.parametrize("change", ["weight header", "normalisation", "config"])
def test_refused_when_the_run_changed_since_verify(ae_run, tmp_path, change):
    run_dir = copy_run(ae_run, tmp_path)
    path = {"weight header": run_dir / "firmware" / "vitis" / "hls4ml_prj" / "firmware" / "weights" / "b3.h",
            "normalisation": run_dir / "normalisation.json", "config": run_dir / "config.yaml"}[change]
    path.write_text(path.read_text() + " ")
    problems = _refusal(run_dir, synthesis=False)
    changed = {"weight header": "firmware/vitis/", "normalisation": "normalisation.json", "config": "config.yaml"}[change]
    assert len(problems) == 1 and f"changed since it was verified ({changed})" in problems[0]


def test_refused_without_synthesis_and_every_problem_named_at_once(ae_run, ae_delivery, tmp_path):
    run_dir = copy_run(ae_run, tmp_path)
    (run_dir / "metrics.json").write_text((run_dir / "metrics.json").read_text() + "\n")
    problems = _refusal(run_dir, version="1.0.0", out=ae_delivery.path.parents[1])
    assert len(problems) == 3
    assert "changed since it was verified (metrics.json)" in problems[0]
    assert "no synthesis of this firmware project" in problems[1] and "--no-synthesis" in problems[1]
    assert "1.0.0 of fw_dense_ae was already delivered" in problems[2]


def test_refused_when_synthesis_is_over_budget(ae_run, tmp_path):
    run_dir = copy_run(ae_run, tmp_path)
    # Vivado HLS 2019.2, hls4ml tutorial model: 13 cycles at 5 ns = 65 ns, over the 50 ns budget of the target
    job = recorded_synthesis(run_dir, _db_for(run_dir), SHARED / "fixtures" / "hls-reports" / "hector_m1__myproject_csynth.xml")
    problems = _refusal(run_dir)
    assert len(problems) == 1 and f"synthesis job {job} is over the hw target's budgets: latency (ns) 65 > 50" in problems[0]


def _gate_withrecorded_synthesis(run_dir: Path):
    """The gate's findings for a verified run with a recorded synthesis, the budget condition left out."""
    from l1ml.deliver.gate import Gate, Synthesis, _verify_condition
    from l1ml.synth.jobs import read_job

    db = _db_for(run_dir)
    job = db.get(recorded_synthesis(run_dir, db, SHARED / "fixtures" / "hls-reports" / "nrp__myproject_csynth.xml"))
    problems: list[str] = []
    report, firmware = _verify_condition(run_dir, problems)
    assert not problems
    return Gate(run_dir, report, firmware, Synthesis(job.id, Path(job.job_dir), job.recorded_result(), read_job(job.job_dir)))


def test_packaging_of_a_synthesised_bdt(bdt_run, bdt_delivery, tmp_path):
    """A BDT firmware release: conifer's HLS project and its VHDL, each with the test vectors its testbench reads."""
    from l1ml.deliver.firmware import write_firmware
    from l1ml.deliver.vectors import Vectors, load_vectors
    from l1ml.quantize.fixedpoint import parse_fixed

    gate = _gate_withrecorded_synthesis(copy_run(bdt_run, tmp_path))
    info, inputs, outputs = load_vectors(bdt_delivery.path / "test_vectors")
    vectors = Vectors(inputs, outputs, parse_fixed(info.inputs.type), parse_fixed(info.outputs.type), [],
                      np.zeros((0, inputs.shape[1])))
    fw = tmp_path / "firmware"
    write_firmware(fw, gate, vectors)
    assert (fw / "hls" / "build_hls.tcl").is_file() and (fw / "hls" / "firmware" / "parameters.h").is_file()
    assert (fw / "vhdl" / "firmware" / "BDTTop.vhd").is_file() and (fw / "vhdl" / "l1ml_convert.json").is_file()
    rows = (fw / "vhdl" / "SimulationInput.txt").read_text().splitlines()
    assert len(rows) == len(inputs) == len((fw / "vhdl" / "SimulationExpected.txt").read_text().splitlines())
    assert len((fw / "hls" / "tb_data" / "tb_input_features.dat").read_text().splitlines()) == len(inputs)


def test_packaging_of_a_synthesised_run(ae_run, tmp_path):
    """What a firmware delivery takes from the synthesis job: the HLS project and build Tcl, the job's result and
    reports, and a summary in the manifest (the gate is bypassed: the recorded report misses this target's budget)."""
    from l1ml.deliver.firmware import write_firmware
    from l1ml.deliver.package import _manifest, _readme

    run_dir = copy_run(ae_run, tmp_path)
    gate = _gate_withrecorded_synthesis(run_dir)
    job = gate.synthesis
    from l1ml.deliver.vectors import Vectors
    from l1ml.quantize.fixedpoint import parse_fixed

    t = parse_fixed("ap_fixed<8,3>")
    vectors = Vectors(np.array([[3] * 57]), np.array([[-5]]), t, t, [("test:background", 0, 1)], np.zeros((1, 57)))
    out = tmp_path / "pkg"
    written = write_firmware(out / "firmware", gate, vectors)
    tb = out / "firmware" / "hls" / "tb_data"
    assert (tb / "tb_input_features.dat").read_text() == " ".join(["0.09375"] * 57) + "\n"
    assert (tb / "tb_output_predictions.dat").read_text() == "-0.15625\n"
    assert (out / "firmware" / "hls" / "build_prj.tcl").is_file() and (out / "firmware" / "hls" / "firmware" / "l1ml_model.cpp").is_file()
    assert not list((out / "firmware" / "hls").glob("*_prj")), "no HLS build output in a delivery"
    assert (out / "firmware" / "synthesis" / "l1ml_model_csynth.xml").read_bytes() == \
        (SHARED / "fixtures" / "hls-reports" / "nrp__myproject_csynth.xml").read_bytes()
    assert written == {"job": job.job_id, "ip": []}

    from l1ml.config.loader import load_config
    from l1ml.config.train import TrainConfig

    _, cfg = load_config(run_dir / "config.yaml", TrainConfig)
    m = _manifest(gate, cfg, "1.0.0", "x_v1_0_0", vectors, written, json.loads((run_dir / "metrics.json").read_text()))
    s = m["synthesis"]
    assert m["kind"] == "firmware" and m["firmware_release"] and s["job"] == job.job_id
    assert (s["latency_worst_cycles"], s["clock_estimated_ns"]) == (15, 3.636) and s["resources"]["dsp"]["used"] == 2557
    assert s["within_budget"] is False and s["hw_target"] == "vu13p"
    assert "Firmware release: synthesised" in _readme(m)


def test_refused_when_no_synthesis_of_this_project_finished(ae_run, tmp_path):
    run_dir = copy_run(ae_run, tmp_path)
    db = _db_for(run_dir)
    recorded_synthesis(run_dir, db, SHARED / "fixtures" / "hls-reports" / "hector_m1__myproject_csynth.xml")
    job = db.jobs()[-1]
    db.update(job.id, state="out_of_memory", message="out of memory at 8 GB")
    problems = _refusal(run_dir)
    assert len(problems) == 1 and f"{job.id} out_of_memory (out of memory at 8 GB)" in problems[0]


def test_bad_version_is_a_user_error(ae_run, tmp_path):
    for bad in ("1.0", "v1.0.0", "1.0.0-rc1", "01.0.0"):
        with pytest.raises(L1mlError, match=r"key '--version'"):
            deliver(ae_run, DeliverOptions(bad, tmp_path, synthesis=False), **QUIET)
    result = _l1ml("deliver", ae_run, "--version", "1.2", "--no-synthesis", "--out", tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error: key '--version', value '1.2'"), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_cli_refusal_exit_status(ae_run, tmp_path):
    env = {"L1ML_STATE": str(tmp_path / "state")}
    result = _cli("deliver", str(ae_run), "--version", "3.0.0", "--out", str(tmp_path), env=env)
    assert result.exit_code == 6 and "delivery refused:" in result.stderr and "no synthesis" in result.stderr
    assert not (tmp_path / "fw_dense_ae" / "3.0.0").exists()


# ------------------------------------------------------------------------------------------------ atomicity


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_delivery_leaves_no_version(ae_run, tmp_path, sig):
    out = tmp_path / "out"
    env = {**os.environ, "L1ML_STATE": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "l1ml", "deliver", str(ae_run), "--version", "1.0.0", "--no-synthesis",
                             "--out", str(out), "--test-events", "50"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    model = out / "fw_dense_ae"
    deadline = time.time() + 300
    while not any(model.glob(".1.0.0.tmp-*/emulator/Makefile")):  # mid-way: the package is written, the emulator builds
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 143)
    assert not (model / "1.0.0").exists() and not (model / "1.0.0.tar.gz").exists()
    left = list(model.glob(".*tmp-*"))
    assert left if sig == signal.SIGKILL else not left, "SIGTERM cleans up at once; after SIGKILL the next delivery does"
    if sig == signal.SIGTERM:
        assert not model.exists(), "the first delivery of a model, stopped, leaves no model folder and no lock"
    done = deliver(ae_run, DeliverOptions("1.0.0", out, synthesis=False, test_events=50), db=_db_for(tmp_path / "x"), **QUIET)
    assert done.path.is_dir() and not list(model.glob(".*tmp-*"))


# ------------------------------------------------------------------------------------------------ --check and --list


def test_tamper_detection(ae_delivery, tmp_path):
    from l1ml.deliver.manifest import check

    shutil.copytree(ae_delivery.path.parent, tmp_path / "model")
    package = tmp_path / "model" / "1.0.0"
    assert check(package).ok
    target = package / "test_vectors" / "outputs.hex"
    data = bytearray(target.read_bytes())
    data[0] ^= 0x01  # one byte of one file
    target.write_bytes(bytes(data))
    result = check(package)
    assert not result.ok and result.changed == ["test_vectors/outputs.hex"] and not result.missing and not result.extra
    cli = _cli("deliver", "--check", str(package))
    assert cli.exit_code == 7 and "changed: test_vectors/outputs.hex" in cli.stderr and "DAMAGED: 1 changed" in cli.stdout
    (package / "scaling.json").unlink()
    (package / "emulator" / "notes.txt").write_text("added")
    result = check(package)
    assert result.missing == ["scaling.json"] and result.extra == ["emulator/notes.txt"]
    assert _cli("deliver", "--check", str(ae_delivery.archive)).exit_code == 0


def test_list_shows_versions_and_their_status(ae_delivery, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(ae_delivery.path.parents[1], root, ignore=shutil.ignore_patterns("state"))
    model = root / "fw_dense_ae"
    shutil.copytree(model / "1.0.0", model / "1.1.0")
    (model / "1.1.0" / "thresholds.json").write_text("{}")
    shutil.copytree(model / "1.0.0", model / "1.2.0")
    result = _cli("deliver", "--list", "fw_dense_ae", "--out", str(root))
    assert result.exit_code == 0, result.stderr
    rows = [line.split(None, 4) for line in result.stdout.splitlines()[1:]]
    # 1.1.0 and 1.2.0 are copies of 1.0.0 that were never delivered: their manifests say 1.0.0 and they have no record
    assert [(r[1], r[2], r[4]) for r in rows] == [("1.0.0", "emulator-only", "ok"),
                                                   ("1.1.0", "emulator-only", "DAMAGED: 1 changed, 1 missing, 1 inconsistent"),
                                                   ("1.2.0", "emulator-only", "DAMAGED: 1 missing, 1 inconsistent")]
    (model / "1.0.0.tar.gz").unlink()
    result = _cli("deliver", "--list", "fw_dense_ae", "--out", str(root))
    assert result.stdout.splitlines()[1].split(None, 4)[4] == "ok, no archive"
    missing = _l1ml("deliver", "--list", "nope", "--out", root)
    assert missing.returncode == 1 and missing.stderr.strip() == "error: key 'MODEL', value 'nope': no deliveries of this model under " + str(root)


def test_next_version(ae_run, ae_delivery):
    from l1ml.deliver.package import next_version

    assert next_version(ae_delivery.path.parent) == "1.0.1"
    assert next_version(ae_delivery.path.parent / "none") == "0.1.0"
