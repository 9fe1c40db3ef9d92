"""`l1ml train`: score in the graph, BDT emulation, bad configs, reproducibility and resume after interruption."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from l1ml.config.loader import load_config
from l1ml.config.train import NetworkModel, Quantization, TrainConfig
from l1ml.errors import L1mlError
from l1ml.quantize.qkeras_types import qkeras_type

from helpers import write_yaml

AE = """
name: ae_test
seed: 3
data: {{events: {events}, signals: [Ato4l, LQ_btau]}}
model:
  kind: dense_ae
  encoder: [{{units: 16}}, {{units: 8}}]
  latent: 3
training: {{epochs: {epochs}, batch_size: 32}}
evaluation: {{rates_khz: [2000, 5000]}}
"""


def ae_config(tmp_path, events, epochs=3, name="ae.yaml"):
    return write_yaml(tmp_path / name, AE.format(events=events, epochs=epochs))


# ---------------------------------------------------------------- the score is part of the model


@pytest.fixture(scope="module")
def random_inputs():
    return np.random.default_rng(5).normal(0, 2, size=(300, 57))


@pytest.mark.parametrize("quantized", [False, True])
def test_dense_ae_score_equals_hand_computed_score(random_inputs, quantized):
    from l1ml.models.networks import build

    model = NetworkModel.model_validate({"kind": "dense_ae", "encoder": [{"units": 16}, {"units": 8}], "latent": 3})
    q = Quantization()
    nets = build(model, q, 57, quantized=quantized, seed=1)
    x = random_inputs.astype(np.float32)
    reco = nets.train_model.predict(x, verbose=0).astype(np.float64)
    score = nets.score_model.predict(x, verbose=0)[:, 0].astype(np.float64)
    if quantized:
        xq = qkeras_type(q.input).quantize(x)
        d = qkeras_type(q.score_diff).quantize(xq - reco)
        expected = qkeras_type(q.score).quantize(qkeras_type(q.score_square).quantize(d * d).sum(axis=1))
        np.testing.assert_array_equal(score, expected)  # bit for bit
        assert len(np.unique(score)) > 50
    else:
        np.testing.assert_allclose(score, ((x - reco) ** 2).sum(axis=1), rtol=1e-5)


def test_vae_score_is_sum_of_squared_latent_means(random_inputs):
    import tensorflow as tf

    from l1ml.models.networks import build

    model = NetworkModel.model_validate({"kind": "vae_encoder", "encoder": [{"units": 16}], "latent": 4})
    q = Quantization()
    nets = build(model, q, 57, quantized=True, seed=1)
    x = random_inputs.astype(np.float32)
    mu_model = tf.keras.Model(nets.score_model.input, nets.score_model.get_layer("z_mean_act").output)
    mu = mu_model.predict(x, verbose=0).astype(np.float64)
    expected = qkeras_type(q.score).quantize(qkeras_type(q.score_square).quantize(mu * mu).sum(axis=1))
    np.testing.assert_array_equal(nets.score_model.predict(x, verbose=0)[:, 0], expected)
    assert "sampling" not in [layer.name for layer in nets.score_model.layers], "only the encoder goes to firmware"


# ---------------------------------------------------------------- bad configs


def config_error(tmp_path, text: str) -> str:
    path = write_yaml(tmp_path / "bad.yaml", text)
    with pytest.raises(L1mlError) as e:
        load_config(path, TrainConfig)
    assert str(path) in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("change, fragments", [
    ("{units: 16}", ["{type: conv, units: 16}", "model.encoder.0.type", "'conv'", "'dense'"]),
    ("{units: 16}", ["{units: 16, weight: 'ap_fixed<0,0>'}", "encoder.0.weight", "W=0"]),
    ("{units: 16}", ["{units: 16, bias: 'ap_fixed<8,9>'}", "encoder.0.bias", "exceed the total width"]),
    ("{units: 16}", ["{units: 16, bias: ap_fixed<8,3>}", "encoder.0.bias", "write the type in quotes"]),
    ("{units: 16}", ["{units: 16, activation: sigmoid}", "encoder.0.activation", "lookup table"]),
    ("kind: dense_ae", ["kind: transformer", "model", "'transformer'"]),
    ("rates_khz: [2000, 5000]", ["rates_khz: [2000, -5]", "evaluation.rates_khz.1", "greater than 0"]),
])
def test_bad_network_configs(tmp_path, change, fragments):
    replacement, *expected = fragments
    msg = config_error(tmp_path, AE.format(events="x.h5", epochs=1).replace(change, replacement, 1))
    for frag in expected:
        assert frag in msg, msg


def test_qkeras_cannot_train_truncating_types():
    with pytest.raises(ValueError, match="round to nearest even and saturate"):
        qkeras_type("ap_fixed<8,3,AP_TRN,AP_SAT>")
    assert str(qkeras_type("ap_fixed<8,3>")) == "ap_fixed<8,3,AP_RND_CONV,AP_SAT>"


def test_missing_signal_sample(tmp_path, small_events):
    from l1ml.train.run import train

    cfg = write_yaml(tmp_path / "c.yaml", AE.format(events=small_events, epochs=1).replace("LQ_btau", "LQ_bmu"))
    with pytest.raises(L1mlError) as e:
        train(cfg, runs_root=tmp_path / "runs", log=None)
    assert "key 'data.signals.1'" in str(e.value) and "'LQ_bmu'" in str(e.value) and "LQ_btau" in str(e.value)
    assert not (tmp_path / "runs").exists(), "nothing is written for a config that fails"


def test_unresolvable_rate_rejected_before_training(tmp_path, small_events):
    from l1ml.train.run import train

    cfg = write_yaml(tmp_path / "c.yaml", AE.format(events=small_events, epochs=1).replace("[2000, 5000]", "[10, 5000]"))
    with pytest.raises(L1mlError, match=r"key 'evaluation.rates_khz.0', value 10.0: 160 test background events"):
        train(cfg, runs_root=tmp_path / "runs", log=None)


# ---------------------------------------------------------------- BDT


def test_bdt_trees_match_xgboost_and_fixed_point_tracks_float(tmp_path, small_events):
    from l1ml.train.run import train

    cfg = write_yaml(tmp_path / "bdt.yaml", AE.format(events=small_events, epochs=1).replace(
        "model:\n  kind: dense_ae\n  encoder: [{units: 16}, {units: 8}]\n  latent: 3\n", "model: {kind: bdt, n_estimators: 15}\n")
        .replace("training: {epochs: 1, batch_size: 32}\n", ""))
    result = train(cfg, runs_root=tmp_path / "runs", log=None)
    import xgboost as xgb

    from l1ml.data.events import read_sample
    from l1ml.emulate.bdt import Forest
    from l1ml.emulate.ensemble import max_abs_score
    from l1ml.models.bdt import firmware_emulator, from_booster, xgboost_margin
    from l1ml.quantize import parse_fixed

    booster = xgb.Booster(model_file=str(result.run_dir / "model" / "xgboost.json"))
    info = json.loads((result.run_dir / "model" / "bdt.json").read_text())
    x = read_sample(small_events, "background").features()
    ensemble = from_booster(booster)
    forest = Forest.from_ensemble(ensemble)
    x32 = x.astype(np.float32).astype(np.float64)
    float_margin = ensemble["init_predict"][0] + forest.tree_values(x32).sum(axis=1)
    np.testing.assert_allclose(float_margin, xgboost_margin(booster, x), atol=1e-5)
    input_type, score_type = parse_fixed(info["input_type"]), parse_fixed(info["score_type"])
    assert np.abs(x).max() <= input_type.max_value and max_abs_score(ensemble) <= score_type.max_value
    fixed = firmware_emulator(booster, input_type, score_type).predict(x)[:, 0]
    codes = fixed * 2.0 ** (score_type.width - score_type.integer)
    assert np.all(codes == np.round(codes)) and np.abs(codes).max() < 2 ** (score_type.width - 1), "scores on the score grid"
    assert np.mean(np.abs(fixed - float_margin) < 0.05) > 0.95
    m = result.metrics["signals"]["Ato4l"]
    assert m["float"]["auc"] > 0.8 and abs(m["float"]["auc"] - m["quantized"]["auc"]) < 0.02
    assert score_type.signed and (score_type.rounding, score_type.overflow) == ("AP_RND_CONV", "AP_SAT"), score_type
    for row in result.metrics["thresholds"]["quantized"]:
        code = fixed_code(row["threshold"], score_type.width, score_type.integer)
        assert code * 2.0 ** (score_type.integer - score_type.width) == row["threshold"], "a threshold is a score: on the grid"
        assert row["threshold_bits"] == code
        assert row["threshold_hex"] == f"0x{code % 2**score_type.width:0{-(-score_type.width // 4)}x}"


def fixed_code(value: float, width: int, integer: int) -> int:
    """The integer code of `value` in ap_fixed<width, integer, AP_RND_CONV, AP_SAT>, written out independently of
    l1ml.quantize: value * 2^(width - integer) in exact arithmetic, rounded half to even, saturated to the signed range.

    >>> [fixed_code(v, 8, 3) for v in (-1.0, 0.03125, 0.046875, 100.0, -100.0)]
    [-32, 1, 2, 127, -128]
    """
    from fractions import Fraction

    code = round(Fraction(value) * 2 ** (width - integer))  # Fraction rounds half to even
    return max(-(2 ** (width - 1)), min(2 ** (width - 1) - 1, code))


# ---------------------------------------------------------------- runs: outputs, reproducibility, resume

L1ML = [sys.executable, "-m", "l1ml"]


def run_train(cfg, runs, *extra):
    r = subprocess.run([*L1ML, "train", str(cfg), "--runs", str(runs), *map(str, extra)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    return r


def test_run_outputs_reproducibility_and_resume(tmp_path, small_events):
    cfg = ae_config(tmp_path, small_events, epochs=6)
    first = run_train(cfg, tmp_path / "a")
    run_a = tmp_path / first.stdout.strip().splitlines()[-1]  # the last line is the run directory
    for name in ("metrics.json", "manifest.json", "normalisation.json", "config.yaml", "plots/training.png",
                 "plots/scores.png", "plots/roc.png", "model/float/model.json", "model/quantized/weights.h5"):
        assert (run_a / name).exists(), name
    assert "[quantized] epoch 6/6" in first.stderr and "ETA" in first.stderr
    metrics_a = (run_a / "metrics.json").read_text()

    # the same config, data and seed: the same metrics, to the last digit
    again = run_train(cfg, tmp_path / "b", "--quiet")
    assert again.stderr == ""
    assert (tmp_path / again.stdout.strip()).joinpath("metrics.json").read_text() == metrics_a

    # stopped by SIGTERM during quantisation-aware training, then resumed: the same result as uninterrupted
    with subprocess.Popen([*L1ML, "train", str(cfg), "--runs", str(tmp_path / "c")], stderr=subprocess.PIPE,
                          text=True) as proc:
        deadline = time.monotonic() + 300
        while "[quantized] epoch 2/6" not in (line := proc.stderr.readline()) and time.monotonic() < deadline:
            assert line, "training ended before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        said = proc.stderr.read()
    run_c = next((tmp_path / "c" / "ae_test").iterdir())
    assert json.loads((run_c / "run.json").read_text())["status"] == "interrupted"
    assert f"l1ml train {cfg} --resume {run_c}" in said, "the interrupted run says how to resume it"
    assert not (run_c / "metrics.json").exists()
    refused = subprocess.run([*L1ML, "convert", str(run_c)], capture_output=True, text=True)
    assert refused.returncode == 1 and "training did not finish (status interrupted)" in refused.stderr
    resumed = run_train(cfg, tmp_path / "c", "--resume", run_c)
    assert "[float] epoch" not in resumed.stderr, "the finished float phase is not trained again"
    assert "[quantized] epoch 6/6" in resumed.stderr and "[quantized] epoch 1/6" not in resumed.stderr
    assert (run_c / "metrics.json").read_text() == metrics_a
    manifest = json.loads((run_c / "manifest.json").read_text())
    assert manifest["resumed"] is True and manifest["inputs"]["events"]["sha256"]


def test_resume_with_another_config_is_refused_before_any_work(tmp_path, monkeypatch):
    from l1ml.runfolder import start_run
    from l1ml.train.run import train

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    start_run(run_dir, "0" * 64)
    # its data config would take minutes to generate: the refusal must come first
    write_yaml(tmp_path / "data.yaml", "name: big\nseed: 1\nsamples:\n  background:\n    events: 100000\n"
                                       "    processes: [{process: QCD}]\n")
    with pytest.raises(L1mlError, match="different config"):
        train(ae_config(tmp_path, "data.yaml"), resume=run_dir, log=None)
    assert not (tmp_path / "runs").exists(), "nothing was generated"


def test_pruning_reaches_target_sparsity(tmp_path, small_events):
    from l1ml.train.run import train

    text = AE.format(events=small_events, epochs=3).replace(
        "training: {epochs: 3, batch_size: 32}", "training: {epochs: 3, batch_size: 32, init_from_float: true, "
                                                 "pruning: {sparsity: 0.5, begin_epoch: 1}}")
    result = train(write_yaml(tmp_path / "p.yaml", text), runs_root=tmp_path / "runs", log=None)
    sparsity = result.metrics["model"]["sparsity"]
    assert set(sparsity) >= {"enc_0", "enc_1", "latent", "output"}
    assert all(v == pytest.approx(0.5, abs=0.02) for v in sparsity.values())
    arch = (result.run_dir / "model" / "quantized" / "model.json").read_text()
    assert "PruneLowMagnitude" not in arch, "the exported model has no pruning wrappers"


def test_bdt_regression_from_a_data_config(tmp_path, monkeypatch):
    """`data.events` may name a data config: its events are generated (or reused) under runs/data/."""
    from l1ml.train.run import train

    monkeypatch.chdir(tmp_path)
    write_yaml(tmp_path / "data.yaml", "name: d\nseed: 2\nsamples:\n  background:\n    events: 300\n"
                                       "    processes: [{process: W_lnu, fraction: 0.5}, {process: QCD, fraction: 0.5}]\n"
                                       "  Ato4l:\n    events: 100\n    processes: [{process: A_4l}]\n")
    cfg = write_yaml(tmp_path / "bdt.yaml", "name: reg\nseed: 1\ndata: {events: data.yaml, signals: [Ato4l]}\n"
                                            "model: {kind: bdt, task: regression, n_estimators: 10}\n"
                                            "evaluation: {rates_khz: [3000]}\n")
    result = train(cfg, log=None)
    assert list((tmp_path / "runs" / "data" / "d").glob("*/events.h5"))
    assert json.loads((result.run_dir / "model" / "bdt.json").read_text())["objective"] == "reg:squarederror"
    assert result.metrics["signals"]["Ato4l"]["quantized"]["auc"] > 0.8


def test_batchnorm_layers_from_config():
    from l1ml.models.networks import build

    model = NetworkModel.model_validate({"kind": "dense_ae", "encoder": [{"units": 8, "batchnorm": True}], "latent": 2})
    names = [layer.name for layer in build(model, Quantization(), 57, quantized=True, seed=1).score_model.layers]
    assert "enc_0_bn" in names and "dec_0_bn" in names


@pytest.mark.parametrize("kind", ["dense_ae", "vae_encoder"])
def test_saved_models_load_back_and_predict_the_same(tmp_path, random_inputs, kind):
    from l1ml.models.keras import load_model, save_model
    from l1ml.models.networks import build

    model = NetworkModel.model_validate({"kind": kind, "encoder": [{"units": 8}], "latent": 2})
    x = random_inputs.astype(np.float32)
    for quantized in (False, True):
        score_model = build(model, Quantization(), 57, quantized=quantized, seed=1).score_model
        save_model(score_model, tmp_path / str(quantized))
        loaded = load_model(tmp_path / str(quantized))
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), score_model.predict(x, verbose=0))
