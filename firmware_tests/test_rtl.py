"""The open RTL path: `l1ml convert --rtl` writes da4ml's Verilog/VHDL of the network's exact arithmetic, and `l1ml
verify` proves it equal, under Verilator, to the C-simulation and the emulator; a one-constant change fails."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from l1ml.documents import RtlSummary, read
from l1ml.emulate.network import NetworkEmulator
from l1ml.firmware import rtl
from l1ml.quantize.fixedpoint import parse_fixed
from l1ml.verify.run import VerifyOptions, verify

from helpers import assert_one_line_error, copy_run, find_check, run

CHECK = "rtl (Verilator"


@pytest.fixture(scope="module")
def ae_with_rtl(trained_runs, tmp_path_factory):
    """The small trained AE of the suite, converted with --rtl and verified."""
    run_dir = copy_run(trained_runs["dense_ae"], tmp_path_factory.mktemp("rtl"))
    r = run("convert", run_dir, "--rtl")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(run_dir / "firmware" / "vitis"), str(run_dir / "firmware" / "rtl")]
    return run_dir


def test_rtl_of_a_trained_ae_equals_the_csimulation_bit_for_bit(ae_with_rtl):
    folder = ae_with_rtl / "firmware" / "rtl"
    summary = read(folder / rtl.SUMMARY, RtlSummary)
    assert summary.latency_cycles >= 1 and summary.tools["da4ml"] == "0.6.0"
    assert sorted(p.name for p in (folder / "da4ml_prj").iterdir()) == ["tb", "verilog", "vhdl"]
    assert (folder / "da4ml_prj" / "vhdl" / "src" / f"{rtl.TOP}.vhd").is_file()
    report = verify(ae_with_rtl, VerifyOptions(), log=lambda *_: None)
    check = find_check(report, CHECK)
    assert report.passed and check.passed, check.message
    assert check.events > 1000 and check.mismatches == 0
    assert check.details["vs_csim"]["by_category"]["adversarial:edges"]["mismatches"] == 0
    assert str(folder) in json.loads((ae_with_rtl / "verify" / "report.json").read_text())["checked_firmware"]


def test_the_testbench_vectors_are_what_the_emulator_computes(ae_with_rtl):
    folder = ae_with_rtl / "firmware" / "rtl"
    summary = read(folder / rtl.SUMMARY, RtlSummary)
    t = parse_fixed(json.loads((folder / "convert.json").read_text())["types"]["input"])
    codes = np.loadtxt(folder / "da4ml_prj" / "tb" / "inputs.txt", dtype=np.int64)
    expected = np.loadtxt(folder / "da4ml_prj" / "tb" / "expected.txt", dtype=np.int64).reshape(len(codes), -1)
    emulated = NetworkEmulator.load(folder / rtl.SPEC).predict(np.ldexp(codes.astype(np.float64), -t.fractional))
    assert np.array_equal(np.ldexp(emulated, summary.output_kif[2]), expected)
    simulated, _ = rtl.simulate_rtl(folder, np.ldexp(codes.astype(np.float64), -t.fractional))
    assert np.array_equal(np.ldexp(simulated, summary.output_kif[2]), expected)


def test_a_one_constant_change_in_the_verilog_fails_the_rtl_check(ae_with_rtl, tmp_path):
    run_dir = copy_run(ae_with_rtl, tmp_path)
    src = run_dir / "firmware" / "rtl" / "da4ml_prj" / "verilog" / "src"
    changed = _flip_one_constant(src)
    report = verify(run_dir, VerifyOptions(), log=lambda *_: None)
    check = find_check(report, CHECK)
    assert not check.passed and check.mismatches > 0, changed
    assert CHECK in " ".join(report.failed)
    assert find_check(report, "bit_exact").passed  # the HLS firmware is untouched: only the RTL is wrong


def _flip_one_constant(src: Path) -> str:
    """Flip the top bit of the first constant operand of an adder, in the first pipeline stage that has one (a bias or
    a rounding offset of the first layers, which every event goes through)."""
    stages = sorted(src.glob(f"{rtl.TOP}_stage*.v"), key=lambda p: int(p.stem.rsplit("stage", 1)[1]))
    for stage in stages:
        text = stage.read_text()
        m = re.search(r"shift_adder #\([^)]*\) \w+ \([^;]*?\d+'b([01]+)", text)
        if m:
            bits = m.group(1)
            flipped = ("0" if bits[0] == "1" else "1") + bits[1:]
            stage.write_text(text[: m.start(1)] + flipped + text[m.end(1):])
            return f"{stage.name}: 'b{bits} -> 'b{flipped}"
    raise AssertionError("no constant operand in any stage")


def test_a_brought_keras_network_goes_through_the_rtl_path(tmp_path):
    h5 = _small_qkeras(tmp_path / "net.h5")
    out = tmp_path / "byo"
    r = run("convert", "--keras", h5, "--out", out, "--rtl")
    assert r.returncode == 0, r.stderr
    r = run("verify", out, "--random", 2000)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"rtl \(Verilator vs C-simulation and emulator\): passed, equal bit for bit on \d+ of", r.stderr + r.stdout)


def test_a_cast_the_rtl_cannot_build_is_refused_by_layer_name(tmp_path):
    spec = {"format": "l1ml-emulator-network/1", "inputs": ["in"], "outputs": ["out"], "layers": [
        {"class": "Input", "name": "in", "inputs": ["input"], "output": "in", "result_type": "ap_fixed<8,3>"},
        {"class": "Dense", "name": "dense_zero_rounding", "inputs": ["in"], "output": "out",
         "result_type": "ap_fixed<6,3,AP_RND_ZERO,AP_SAT>", "input_type": "ap_fixed<8,3>", "weight_type": "ap_fixed<4,1>",
         "bias_type": "ap_fixed<4,1>", "accum_type": "ap_fixed<16,6>", "weight_codes": [[3], [-2]], "bias_codes": [1]}]}
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(rtl.RtlRefused, match="layer 'dense_zero_rounding' needs AP_RND_ZERO rounding"):
        rtl.write_rtl(path, tmp_path / "rtl", part="xcvu13p-flga2577-2-e", clock_period_ns=4.16, target=None, source={})
    assert not (tmp_path / "rtl").exists() and not list(tmp_path.glob(".rtl*"))  # nothing half-written


@pytest.mark.parametrize("mode", ["AP_RND_CONV,AP_SAT", "AP_RND,AP_SAT", "AP_TRN,AP_WRAP", "AP_RND_CONV,AP_SAT_SYM"])
def test_every_input_through_each_cast_equals_the_emulator(tmp_path, mode):
    """Exhaustive: all 2**10 inputs of a cast that drops 3 fractional bits (ties included) and overflows."""
    spec = {"format": "l1ml-emulator-network/1", "inputs": ["in"], "outputs": ["out"], "layers": [
        {"class": "Input", "name": "in", "inputs": ["input"], "output": "in", "result_type": "ap_fixed<10,4>"},
        {"class": "Dense", "name": "d", "inputs": ["in"], "output": "d", "result_type": "ap_fixed<16,8>",
         "input_type": "ap_fixed<10,4>", "weight_type": "ap_fixed<4,2>", "bias_type": "ap_fixed<4,2>",
         "accum_type": "ap_fixed<16,8>", "weight_codes": [[6]], "bias_codes": [1]},
        {"class": "Activation", "name": "cast", "inputs": ["d"], "output": "out", "activation": "linear",
         "result_type": f"ap_fixed<6,3,{mode}>"}]}
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(spec))
    folder = rtl.write_rtl(path, tmp_path / "rtl", part="xcvu13p-flga2577-2-e", clock_period_ns=4.16, target=None,
                           source={})
    x = np.ldexp(np.arange(-512, 512, dtype=np.float64), -6).reshape(-1, 1)
    got, _ = rtl.simulate_rtl(folder, x)
    expected = NetworkEmulator.load(path).predict(x)
    assert np.array_equal(got, expected), np.flatnonzero(got != expected)[:5]
    assert len(np.unique(expected)) > 20  # the cast is exercised over its whole range


def test_without_the_rtl_environment_convert_says_how_to_build_it(trained_runs, tmp_path, monkeypatch):
    run_dir = copy_run(trained_runs["dense_ae"], tmp_path)
    monkeypatch.setenv("L1ML_RTL_PYTHON", str(tmp_path / "missing" / "python"))
    r = run("convert", run_dir, "--rtl")
    assert_one_line_error(r, "make rtl-env", "missing")


def _small_qkeras(path: Path) -> Path:
    """A two-layer QKeras regressor (no softmax) saved as a full-model .h5."""
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((6,))
    h = QDense(5, kernel_quantizer=quantized_bits(6, 1, alpha=1), bias_quantizer=quantized_bits(6, 1, alpha=1))(inp)
    h = QActivation(quantized_relu(8, 3))(h)
    out = QDense(2, kernel_quantizer=quantized_bits(6, 1, alpha=1), bias_quantizer=quantized_bits(6, 1, alpha=1))(h)
    model = keras.Model(inp, out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras calls HDF5 "legacy"; it is a format users bring
        model.save(path)
    return path
