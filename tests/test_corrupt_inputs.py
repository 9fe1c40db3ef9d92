"""Corrupt inputs give one L1mlError naming the file (and the key or dataset) and what is wrong: never an internal
error, a C++ backtrace, the wrong file or a nan."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from l1ml.data.events import read_sample
from l1ml.data.layout import CLASS, PT, SLOT_CLASS
from l1ml.errors import L1mlError

TREES = "learner.gradient_booster.model.trees"


def l1ml(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "l1ml", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 1 and one line naming what is wrong: no traceback, no internal error, no nan."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    for bad in ("Traceback", "internal error", "nan%", "Stack trace"):
        assert bad not in output, output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def assert_raises(call, *fragments: str) -> str:
    with pytest.raises(L1mlError) as e:
        call()
    message = str(e.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "Stack trace" not in message and "[bt]" not in message, message
    return message


# events files --------------------------------------------------------------------------------------------------


def events(n: int, seed: int = 0) -> np.ndarray:
    p = np.zeros((n, 19, 4), dtype=np.float32)
    p[:, :, PT] = np.random.default_rng(seed).uniform(1, 100, size=(n, 19))
    p[:, :, CLASS] = SLOT_CLASS
    return p


def write_events(path, samples: dict[str, np.ndarray]):
    """A file in the layout `l1ml data generate` writes, in chunks of 50 events."""
    with h5py.File(path, "w") as f:
        for name, particles in samples.items():
            g = f.create_group(name)
            g.create_dataset("Particles", data=particles, compression="gzip", shuffle=True, chunks=(50, 19, 4),
                             maxshape=(None, 19, 4))
            ids = np.random.default_rng(1).integers(0, 4, size=len(particles))
            g.create_dataset("ProcessID", data=ids, compression="gzip", chunks=(50,), maxshape=(None,))
            g.create_dataset("Process_Names", data=np.array([b"W_lnu", b"QCD", b"Z_ll", b"ttbar"]))
    return path


def damage_chunk(path, dataset: str, chunk: int = 1) -> None:
    """Flip bytes in the middle of one stored (compressed) chunk of a dataset."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 4)
        data = fh.read(min(16, info.size // 2))
        fh.seek(info.byte_offset + info.size // 4)
        fh.write(bytes(b ^ 0xFF for b in data))


@pytest.mark.parametrize("dataset", ["background/Particles", "background/ProcessID"])
def test_damaged_chunk_names_file_and_dataset(tmp_path, dataset):
    path = write_events(tmp_path / "events.h5", {"background": events(200)})
    assert len(read_sample(path, "background")) == 200
    damage_chunk(path, dataset)
    assert_raises(lambda: read_sample(path, "background"), str(path), f"key '{dataset}'", "damaged")


def test_damaged_chunk_through_the_cli(tmp_path):
    path = write_events(tmp_path / "events.h5", {"background": events(200)})
    damage_chunk(path, "background/Particles")
    assert_user_error(l1ml("data", "inspect", path, "--out", tmp_path / "inspect"), str(path), "background/Particles",
                      "damaged")


def test_sample_without_events(tmp_path):
    path = write_events(tmp_path / "events.h5", {"background": events(100), "Ato4l": events(0)})
    assert_raises(lambda: read_sample(path, "Ato4l"), str(path), "key 'Ato4l/Particles'", "no events")
    assert_raises(lambda: read_sample(path, "background", start=100), str(path), "key 'background/Particles'", "no events")
    result = l1ml("data", "inspect", path, "--out", tmp_path / "inspect")
    assert_user_error(result, str(path), "Ato4l/Particles", "no events")
    assert not (tmp_path / "inspect" / "summary.txt").exists()


# xgboost and conifer models ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xgboost_json(tmp_path_factory) -> dict:
    """A 4-tree depth-2 xgboost model on 4 features, as its JSON."""
    import xgboost as xgb

    x = np.random.default_rng(0).normal(0, 10, size=(2000, 4)).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1, "seed": 1},
                        xgb.DMatrix(x, label=(x[:, 0] > 1).astype(int)), 4)
    return json.loads(booster.save_raw("json"))


def damaged_model(model: dict, damage) -> dict:
    model = copy.deepcopy(model)
    damage(model["learner"], model["learner"]["gradient_booster"]["model"]["trees"][1])
    return model


DAMAGES = {
    "missing parameter": (lambda learner, tree: learner["learner_model_param"].pop("num_feature"),
                          "learner.learner_model_param.num_feature", "missing"),
    "base score not a number": (lambda learner, tree: learner["learner_model_param"].__setitem__("base_score", "[0.5a]"),
                                 "learner.learner_model_param.base_score", "expected a number"),
    "missing node array": (lambda learner, tree: tree.pop("left_children"), f"{TREES}.1.left_children", "missing"),
    "child out of range": (lambda learner, tree: tree["left_children"].__setitem__(0, 99), f"{TREES}.1.left_children.0",
                           "child 99"),
    "feature out of range": (lambda learner, tree: tree["split_indices"].__setitem__(0, 9), f"{TREES}.1.split_indices.0",
                             "split on feature 9 of a model with 4 features"),
    "arrays of different lengths": (lambda learner, tree: tree["split_conditions"].pop(), f"{TREES}.1.split_conditions",
                                    "4 entries where left_children has 5"),
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_damaged_xgboost_json_names_file_and_key(tmp_path, xgboost_json, damage):
    from l1ml.models.bdt import from_xgboost_file

    change, key, what = DAMAGES[damage]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(damaged_model(xgboost_json, change)))
    assert_raises(lambda: from_xgboost_file(path), str(path), f"key '{key}'", what)


def test_cycle_in_a_tree_through_the_cli(tmp_path, xgboost_json):
    """Node 1 as its own child: xgboost loads it, and a tree walk would never end."""
    path = tmp_path / "model.json"
    path.write_text(json.dumps(damaged_model(xgboost_json, lambda learner, tree: tree["left_children"].__setitem__(1, 1))))
    result = l1ml("convert", "--xgboost", path, "--out", tmp_path / "out", timeout=120)
    assert_user_error(result, str(path), f"{TREES}.1.left_children.1", "reached twice")


def test_bdt_run_without_its_model(tmp_path):
    from l1ml.verify.subjects import _bdt_run_subject

    (tmp_path / "model").mkdir()
    model = tmp_path / "model" / "xgboost.json"
    assert_raises(lambda: _bdt_run_subject(tmp_path, None, {}, {}, None), str(model), "no such file")
    model.write_text(json.dumps({"learner": {"gradient_booster": {"name": "gbtree"}}}))
    assert_raises(lambda: _bdt_run_subject(tmp_path, None, {}, {}, None), str(model), "key 'learner.objective'", "missing")


def test_conifer_child_out_of_range(tmp_path):
    from l1ml.emulate.ensemble import from_conifer_json

    tree = {"feature": [0, -2, -2], "threshold": [0.5, 0, 0], "value": [0, -1.0, 1.0], "children_left": [1, -1, -1],
            "children_right": [7, -1, -1]}
    path = tmp_path / "conifer.json"
    path.write_text(json.dumps({"n_features": 1, "n_classes": 2, "init_predict": [0.0], "trees": [[tree]],
                                "config": {"Precision": "ap_fixed<16,6>"}}))
    assert_raises(lambda: from_conifer_json(path), str(path), "key 'trees.0.0.children_right.0'", "child 7")


# Keras models --------------------------------------------------------------------------------------------------


def test_damaged_architecture_is_blamed_on_itself(tmp_path):
    import tensorflow as tf

    from l1ml.models.keras import load_model, save_model

    model = tf.keras.Sequential([tf.keras.layers.Input((4,)), tf.keras.layers.Dense(2)])
    files = save_model(model, tmp_path / "model")
    architecture, weights = files["architecture"], files["weights"]
    good = architecture.read_text()
    for damaged in (good[: len(good) // 2], "[1, 2]"):
        architecture.write_text(damaged)
        message = assert_raises(lambda: load_model(tmp_path / "model"), str(architecture), "architecture")
        assert str(weights) not in message
    architecture.write_text(good)
    weights.write_bytes(weights.read_bytes()[:1000])
    message = assert_raises(lambda: load_model(tmp_path / "model"), str(weights), "weights")
    assert str(architecture) not in message
