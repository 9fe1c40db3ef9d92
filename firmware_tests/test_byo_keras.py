"""Bring your own model: the QKeras classifiers from hls4ml's example models (../shared/fixtures/models) convert and verify."""

from __future__ import annotations

import json

import numpy as np
import pytest

from l1ml.verify.run import VerifyOptions, verify

from helpers import SHARED

MODELS = SHARED / "fixtures" / "models"
pytestmark = pytest.mark.skipif(not MODELS.is_dir(), reason=f"fixtures not found at {MODELS}")


def _files(name):
    return MODELS / f"exmodels__{name}.json", MODELS / f"exmodels__{name}_weights.h5"


@pytest.fixture(scope="module")
def three_layer(tmp_path_factory):
    from click.testing import CliRunner

    from l1ml.cli import cli

    arch, weights = _files("qkeras_3layer")
    out = tmp_path_factory.mktemp("byo") / "qkeras_3layer"
    result = CliRunner().invoke(cli, ["convert", "--keras", str(arch), "--weights", str(weights), "--out", str(out),
                                      "--target", "vu9p"])
    assert result.exit_code == 0, result.output
    return out


def test_layout_and_record(three_layer):
    info = json.loads((three_layer / "byo.json").read_text())
    assert info["kind"] == "keras" and info["softmax"] and info["n_features"] == 16 and info["n_outputs"] == 5
    assert not info["model_quantizes_inputs"] and info["input_type"] == "ap_fixed<16,6,AP_RND_CONV,AP_SAT>"
    fw = three_layer / "firmware" / "vitis"
    for path in ("hls4ml_config.yaml", "convert.json", "emulator.json", "hls4ml_prj/firmware/l1ml_model.cpp",
                 "logits/hls4ml_prj/firmware/l1ml_model.cpp"):
        assert (fw / path).is_file(), path
    assert json.loads((fw / "convert.json").read_text())["part"].startswith("xcvu9p")


def test_logits_bit_exact_softmax_within_tolerance(three_layer, tmp_path):
    inputs = np.random.Generator(np.random.PCG64(3)).uniform(-40, 40, size=(3000, 16))  # beyond the input range too
    np.save(tmp_path / "x.npy", inputs)
    report = verify(three_layer, VerifyOptions(data=tmp_path / "x.npy", random=3000), log=lambda m: None)
    assert report.passed, report.summary_lines()
    names = [c.name for c in report.checks]
    assert names[0].startswith("bit_exact (C-simulation vs QKeras logits")
    softmax = report.checks[2]
    assert softmax.name.startswith("softmax") and softmax.tolerance == 0.01 and 0 < softmax.max_abs_diff < 0.01
    data = json.loads((three_layer / "verify" / "report.json").read_text())
    assert data["sample"]["by_category"]["data"] == 3000 and data["checks"][0]["by_category"]["adversarial:ties"]["mismatches"] == 0


def test_verify_needs_inputs_for_byo(three_layer, tmp_path):
    from l1ml.errors import L1mlError

    with pytest.raises(L1mlError, match="--random N"):
        verify(three_layer, VerifyOptions(), log=lambda m: None)
    np.save(tmp_path / "bad.npy", np.zeros((5, 15)))
    with pytest.raises(L1mlError, match=r"bad.npy, key '--data': expected an \(events x 16\) array, got shape \(5, 15\)"):
        verify(three_layer, VerifyOptions(data=tmp_path / "bad.npy"), log=lambda m: None)


def test_po2_kernels_are_rewritten_without_changing_the_model():
    from l1ml.firmware.byo import input_type_of, prepare_keras
    from l1ml.models.keras import load_keras

    model = load_keras(*_files("qkeras_mnist_dense"))
    new, rewritten = prepare_keras(model, input_type_of(model, None), _files("qkeras_mnist_dense")[0])
    assert rewritten == ["q_dense_2: kernel (quantized_po2(4,1)) as quantized_bits(10,1,alpha=1)"]
    quantizer = new.get_layer("q_dense_2").get_config()["kernel_quantizer"]
    assert quantizer["class_name"] == "quantized_bits" and (quantizer["config"]["bits"], quantizer["config"]["integer"]) == (10, 1)
    x = np.random.Generator(np.random.PCG64(1)).uniform(0, 1, size=(256, 784)).astype(np.float32)
    assert np.array_equal(model.predict(x, verbose=0), new.predict(x, verbose=0))


def test_mnist_with_po2_kernels_converts_and_verifies(tmp_path):
    """784 inputs, a quantized_relu input quantiser and po2 kernels: logits bit for bit after the rewrite."""
    from l1ml.firmware.byo import convert_keras

    out = tmp_path / "mnist"
    convert_keras(*_files("qkeras_mnist_dense"), out, input_type=None, target="vu9p", backend="vitis", reuse_factor=1,
                  clock_period_ns=None)
    info = json.loads((out / "byo.json").read_text())
    assert info["rewritten"] == ["q_dense_2: kernel (quantized_po2(4,1)) as quantized_bits(10,1,alpha=1)"]
    assert info["model_quantizes_inputs"]
    report = verify(out, VerifyOptions(random=2000), log=lambda m: None)
    assert report.passed, report.summary_lines()
    assert [c.name.split(" ")[0] for c in report.checks] == ["bit_exact", "emulator", "softmax"]
