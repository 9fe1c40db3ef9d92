"""Validation before work: what a config rules out is refused by `l1ml config check` (and so at the start of every
command), in one line naming file, key and value, instead of failing after minutes of training or generation."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from l1ml.config.loader import load_config
from l1ml.config.train import TrainConfig

from helpers import ROOT, SMALL_CONFIG, assert_one_line_error, run, write_yaml

# the small data config: 400 background events, so 160 test events; 10 events above threshold need >= 1788 kHz
AE = """\
name: t
seed: 1
data:
  events: data.yaml
  signals: [Ato4l]
model:
  kind: dense_ae
  encoder: [{units: 8}]
  latent: 2
evaluation:
  rates_khz: [3000, 6000]
"""
BDT = AE.replace("""  kind: dense_ae
  encoder: [{units: 8}]
  latent: 2
""", """  kind: bdt
  n_estimators: 5
""")


@pytest.fixture
def folder(tmp_path):
    """A folder holding the small data config as data.yaml, which the train configs name."""
    shutil.copy(SMALL_CONFIG, tmp_path / "data.yaml")
    return tmp_path


def refused(folder, kind: str, text: str, *fragments: str) -> None:
    path = write_yaml(folder / "c.yaml", text)
    assert_one_line_error(run("config", "check", kind, path), str(path), *fragments)


def accepted(folder, kind: str, text: str) -> str:
    path = write_yaml(folder / "c.yaml", text)
    r = run("config", "check", kind, path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    return r.stderr


def with_types(text: str, **types: str) -> str:
    return text + "quantization:\n" + "".join(f"  {k}: {v}\n" for k, v in types.items())


def in_model(text: str, line: str) -> str:
    return text.replace("model:\n", f"model:\n  {line}\n")


# ---------------------------------------------------------------- fixed-point types


def test_negative_integer_bits_in_a_network(folder):
    # QKeras computes 2**(I-1) as an integer power: TensorFlow refused it in the first training step
    refused(folder, "train", with_types(AE, input="ap_fixed<12,-4>"), "key 'quantization.input'", "'ap_fixed<12,-4>'", "I >= 1")
    refused(folder, "train", with_types(AE, result="ap_fixed<12,0>"), "key 'quantization.result'", "I >= 1")
    refused(folder, "train", with_types(AE, score="ap_ufixed<12,-1>"), "key 'quantization.score'", "I >= 0")
    accepted(folder, "train", with_types(AE, input="ap_fixed<12,1>", score="ap_ufixed<12,0>"))


def test_wide_network_input(folder):
    # 64 bits trained, then failed with an internal error; QKeras quantises in float32, exact up to 24 bits
    refused(folder, "train", with_types(AE, input="ap_fixed<64,32>"), "key 'quantization.input'", "'ap_fixed<64,32>'",
            "at most 24 bits", "float32")
    refused(folder, "train", AE.replace("{units: 8}", "{units: 8, weight: 'ap_fixed<25,2>'}"), "key 'model.encoder.0.weight'",
            "at most 24 bits")
    accepted(folder, "train", with_types(AE, input="ap_fixed<24,8>"))


def test_one_bit_signed_network_type(folder):
    # QKeras' quantized_bits(1, 0) quantises to +-1, not to the values -1, 0 of ap_fixed<1,1>
    refused(folder, "train", with_types(AE, weight="ap_fixed<1,1>"), "key 'quantization.weight'", "W >= 2")


def test_network_types_qkeras_cannot_train(folder):
    refused(folder, "train", with_types(AE, weight="ap_fixed<8,3,AP_TRN,AP_SAT>"), "key 'quantization.weight'", "round to nearest even")
    refused(folder, "train", with_types(AE, bias="ap_int<8>"), "key 'quantization.bias'", "ap_fixed/ap_ufixed")


def test_bdt_types(folder):
    # xgboost compares float32 inputs: a 32-bit input type failed the leaf-by-leaf verification
    refused(folder, "train", in_model(BDT, "input: ap_fixed<30,10>"), "key 'model.input'", "at most 24 bits", "xgboost")
    refused(folder, "train", in_model(BDT, "input_bits: 32"), "key 'model.input_bits'", "32")
    # the emulator quantises in int64: a 64-bit score failed after training with an internal error
    refused(folder, "train", in_model(BDT, "score: ap_fixed<64,32>"), "key 'model.score'", "at most 62 bits")
    accepted(folder, "train", in_model(in_model(BDT, "input: ap_fixed<24,-4>"), "score: ap_fixed<62,8>"))


# ---------------------------------------------------------------- rates


def test_rate_above_the_bunch_crossing_rate(folder):
    # trained without a word and reported efficiency 1.0
    refused(folder, "train", AE.replace("[3000, 6000]", "[3000, 40000]"), "key 'evaluation.rates_khz.1'", "40000",
            "28608.8 kHz")
    refused(folder, "train", AE.replace("[3000, 6000]", "[0]"), "key 'evaluation.rates_khz.0'", "greater than 0")
    many_bunches = AE.replace("  rates_khz: [3000, 6000]", "  bunches: 3564\n  rates_khz: [3000, 40000]")
    accepted(folder, "train", many_bunches)  # 3564 x 11.2456 kHz = 40080 kHz


def test_rate_the_sample_cannot_resolve(folder):
    refused(folder, "train", AE.replace("[3000, 6000]", "[500, 6000]"), "key 'evaluation.rates_khz.0'", "500",
            "160 test background events", "1788 kHz")
    capped = AE.replace("  signals:", "  max_events: 200\n  signals:")  # 80 test events resolve 3576 kHz
    refused(folder, "train", capped, "key 'evaluation.rates_khz.0'", "80 test background events")
    stderr = accepted(folder, "train", AE)
    assert "warning: rate 3000 kHz: only 17 background events above threshold" in stderr


def write_events(folder, **sizes: int) -> None:
    """events.h5 in the layout `l1ml data generate` writes: one group per sample, with its events in `Particles`."""
    import h5py

    with h5py.File(folder / "events.h5", "w") as f:
        for name, n in sizes.items():
            f.create_dataset(f"{name}/Particles", data=np.zeros((n, 19, 4), dtype=np.float32))


def test_rates_against_an_event_file(folder):
    write_events(folder, background=1000, Ato4l=10)
    on_file = AE.replace("events: data.yaml", "events: events.h5")
    refused(folder, "train", on_file.replace("[3000, 6000]", "[500]"), "key 'evaluation.rates_khz.0'", "400 test background events")
    refused(folder, "train", on_file.replace("[Ato4l]", "[Ato4l, LQ_btau]"), "key 'data.signals.1'", "'LQ_btau'", "it holds: Ato4l, background")
    accepted(folder, "train", on_file)


def test_empty_background_sample(folder):
    write_events(folder, background=0, Ato4l=10)
    refused(folder, "train", AE.replace("events: data.yaml", "events: events.h5"), "key 'data.background'", "no test background events")


def test_samples_must_be_in_the_data_config(folder):
    refused(folder, "train", AE.replace("  signals:", "  background: bkg\n  signals:"), "key 'data.background'", "'bkg'",
            "it holds: background, Ato4l")


def test_missing_data_file_is_left_to_training(folder):
    stderr = accepted(folder, "train", AE.replace("events: data.yaml", "events: none.yaml"))
    assert "none.yaml" in stderr and "not checked" in stderr


def test_invalid_data_config_is_reported_by_the_train_check(folder):
    write_yaml(folder / "data.yaml", SMALL_CONFIG.read_text().replace("sqrt_s_tev: 13.6", "sqrt_s_tev: 1e6"))
    assert_one_line_error(run("config", "check", "train", write_yaml(folder / "c.yaml", AE)), str(folder / "data.yaml"),
                          "key 'sqrt_s_tev'")


# ---------------------------------------------------------------- hw target


def test_unknown_target(folder):
    # found only by `l1ml convert`, after training, and its message named neither file nor key
    refused(folder, "train", AE + "firmware:\n  target: vu99p\n", "key 'firmware.target'", "'vu99p'", "vu13p, vu9p, vx690t")


def test_target_given_by_path(folder):
    shutil.copy(ROOT / "hw" / "vu9p.yaml", folder / "board.yaml")
    accepted(folder, "train", AE + "firmware:\n  target: board.yaml\n")  # relative to the config file
    refused(folder, "train", AE + "firmware:\n  target: other.yaml\n", "key 'firmware.target'", "'other.yaml'", "no such hw target file")


# ---------------------------------------------------------------- physics ranges


def test_sqrt_s_outside_the_lhc_range(folder):
    # Pythia failed to initialise in every generator job, an internal error
    text = SMALL_CONFIG.read_text()
    refused(folder, "data", text.replace("sqrt_s_tev: 13.6", "sqrt_s_tev: 1e6"), "key 'sqrt_s_tev'", "1000000.0", "0.9 to 14 TeV")
    refused(folder, "data", text.replace("sqrt_s_tev: 13.6", "sqrt_s_tev: 0.1"), "key 'sqrt_s_tev'", "0.9 to 14 TeV")
    accepted(folder, "data", text.replace("sqrt_s_tev: 13.6", "sqrt_s_tev: 0.9"))


def test_eta_acceptance_beyond_the_event_files(folder):
    # generated, then every reader refused the file: |eta| > 5
    refused(folder, "data", SMALL_CONFIG.read_text() + "l1:\n  muon: {eta_max: 8}\n", "key 'l1.muon.eta_max'", "8",
            "less than or equal to 5")


# ---------------------------------------------------------------- YAML


def test_boolean_where_a_number_is_wanted(folder):
    text = SMALL_CONFIG.read_text()
    refused(folder, "data", text.replace("events: 400", "events: true"), "key 'samples.background.events'", "value True",
            "valid integer", "booleans")
    refused(folder, "data", text.replace("sqrt_s_tev: 13.6", "sqrt_s_tev: on"), "key 'sqrt_s_tev'", "value True")
    refused(folder, "train", AE.replace("[3000, 6000]", "[3000, yes]"), "key 'evaluation.rates_khz.1'", "value True")


def test_text_where_a_number_is_wanted(folder):
    refused(folder, "data", SMALL_CONFIG.read_text().replace("events: 400", "events: '400'"), "key 'samples.background.events'",
            "'400'")


def test_exponent_notation_is_a_number(folder):
    # YAML 1.1 reads 1e-3 as text; l1ml reads it as the number it means (as YAML 1.2 does)
    path = write_yaml(folder / "c.yaml", AE + "training:\n  learning_rate: 1e-3\n  batch_size: 256\n")
    assert load_config(path, TrainConfig)[1].training.learning_rate == 0.001


def test_duplicated_key(folder):
    text = SMALL_CONFIG.read_text()
    refused(folder, "data", text.replace("seed: 7\n", "seed: 7\nseed: 8\n"), "duplicate key 'seed'", "line 4", "first given at line 3")
    nested = text.replace("    events: 400\n", "    events: 400\n    events: 4000\n")
    refused(folder, "data", nested, "duplicate key 'events'")


# ---------------------------------------------------------------- what is valid stays valid


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_demo_configs_pass(path):
    r = run("config", "check", path.parent.name, path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "error" not in r.stderr
