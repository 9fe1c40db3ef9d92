"""`search:` and `segments:` sections: validated by name before anything runs; the parameters applied to a train config;
the Pareto front; a segment's η selection. No jobs here (tests/test_search.py runs searches)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from l1ml.errors import L1mlError

from helpers import ROOT, assert_one_line_error, run, write_yaml

BASE = f"""
name: cfg_test
seed: 3
data: {{events: {ROOT / 'configs' / 'data' / 'small.yaml'}, signals: [Ato4l, LQ_btau]}}
model: {{kind: dense_ae, encoder: [{{units: 16}}, {{units: 8}}], latent: 3}}
evaluation: {{rates_khz: [1000, 3000]}}
"""
SEARCH = """
search:
  parameters:
    model.encoder.0.units: {choices: [8, 16, 32]}
    model.encoder.length: {int: [1, 3]}
    training.learning_rate: {float: [0.0005, 0.01], log: true}
  objectives:
    - {metric: efficiency, direction: maximize, rate_khz: 3000}
    - {metric: bops, direction: minimize}
  budget: {trials: 4, trial_time: 10m}
"""


def _load(tmp_path, text):
    from l1ml.search.steer import load_search_config

    return load_search_config(write_yaml(tmp_path / "s.yaml", text))


def test_a_good_config_loads_with_its_budget_parsed(tmp_path):
    _data, cfg = _load(tmp_path, BASE + SEARCH)
    assert cfg.search.budget.trial_time == 600
    assert [o.label for o in cfg.search.objectives] == ["efficiency@3000kHz", "bops (counts)"]


@pytest.mark.parametrize("change, key, fragment", [
    ("search.parameters.model.encoder.0.units: {choices: [8], colour: red}", "colour", "unknown key"),
    ("search.parameters.model.max_width: {int: [4, 2]}", "model.max_width", "empty"),
    ("search.parameters.training.learning_rate: {float: [0, 0.1], log: true}", "learning_rate", "above 0"),
    ("search.parameters.model.encoder.0.units: {choices: [[8, 8]]}", "choices", "single values"),
    ("search.parameters.seed: {int: [1, 5]}", "search.parameters.seed", "dotted path"),
    ("search.parameters.data.max_events: {int: [10, 50]}", "search.parameters.data.max_events", "not searched"),
    ("search.parameters.model.encoder.0.units: {int: [1, 8], choices: [2]}", "encoder.0.units", "exactly one"),
    ("search.objectives.0.rate_khz: 250", "rate_khz", "not one of evaluation.rates_khz"),
    ("search.objectives.1.method: bdt", "method", "does not apply"),
    ("search.objectives.1.metric: speed", "metric", "Input should be"),
    ("search.budget.trial_time: soon", "trial_time", "not a duration"),
    ("search.sampler: grid", "sampler", "Input should be"),
])
def test_bad_search_sections_are_rejected_by_name(tmp_path, change, key, fragment):
    data = yaml.safe_load(BASE + SEARCH)
    path, value = change.split(": ", 1)
    node = data
    parts = path.split(".")
    # the first two parts are sections; a parameter's dotted name is one key
    if parts[1] == "parameters":
        node = node["search"]["parameters"]
        name = ".".join(parts[2:])
        node[name] = yaml.safe_load(value)
    elif parts[1] == "objectives":
        node["search"]["objectives"][int(parts[2])][parts[3]] = yaml.safe_load(value)
    else:
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = yaml.safe_load(value)
    config = write_yaml(tmp_path / "bad.yaml", yaml.safe_dump(data))
    from l1ml.search.steer import load_search_config

    with pytest.raises(L1mlError) as err:
        load_search_config(config)
    assert key in str(err.value) and fragment in str(err.value), str(err.value)
    assert str(config) in str(err.value)


def test_a_choice_that_makes_an_invalid_train_config_is_named(tmp_path):
    text = BASE + SEARCH.replace("model.encoder.length: {int: [1, 3]}", "model.encoder.1.activation: {choices: [relu, tanh]}")
    with pytest.raises(L1mlError) as err:
        _load(tmp_path, text)
    assert "search.parameters.model.encoder.1.activation" in str(err.value) and "'tanh'" in str(err.value)


def test_a_path_outside_the_config_is_named(tmp_path):
    with pytest.raises(L1mlError) as err:
        _load(tmp_path, BASE + SEARCH.replace("model.encoder.0.units", "model.encoder.5.units"))
    assert "search.parameters.model.encoder.5.units" in str(err.value) and "2 entries" in str(err.value)


def test_segments_need_unique_names_and_known_signals(tmp_path):
    seg = "segments:\n  - {name: a}\n  - {name: a}\n"
    with pytest.raises(L1mlError, match="given twice"):
        _load(tmp_path, BASE + SEARCH + seg)
    seg = "segments:\n  - {name: a, select: {objects_eta: [2.0, 1.0]}}\n"
    with pytest.raises(L1mlError, match="objects_eta"):
        _load(tmp_path, BASE + SEARCH + seg)
    seg = "segments:\n  - {name: a, overrides: {training.epochs: 0}}\n"
    with pytest.raises(L1mlError, match="segments.a.overrides"):
        _load(tmp_path, BASE + SEARCH + seg)


def test_the_cli_gives_one_line_for_a_bad_search_section(tmp_path):
    config = write_yaml(tmp_path / "bad.yaml", BASE + SEARCH.replace("budget:", "budgett:"))
    r = run("search", config, cwd=tmp_path)
    assert_one_line_error(r, "budgett", "did you mean 'budget'", str(config))
    assert not (tmp_path / "runs").exists()  # nothing written for a config that is refused


def test_parameters_set_paths_and_lengths():
    from l1ml.config.search import apply

    base = yaml.safe_load(BASE + SEARCH)
    out = apply(base, {"model.encoder.length": 3, "model.encoder.2.units": 4, "training.learning_rate": 0.003})
    assert [layer["units"] for layer in out["model"]["encoder"]] == [16, 8, 4]
    assert out["training"] == {"learning_rate": 0.003} and "search" not in out
    assert [layer["units"] for layer in apply(base, {"model.encoder.length": 1})["model"]["encoder"]] == [16]
    assert base["model"]["encoder"] == [{"units": 16}, {"units": 8}]  # the config itself is not changed


def test_the_config_as_written_is_the_first_point_when_it_lies_in_the_space():
    from l1ml.search.space import base_values
    from l1ml.search.steer import SearchConfig

    data = yaml.safe_load(BASE + SEARCH)
    params = SearchConfig.model_validate(data).search.parameters
    assert base_values(data, params) is None  # training.learning_rate is not written: not a point
    data["training"] = {"learning_rate": 0.002}
    assert base_values(data, params) == {"model.encoder.0.units": 16, "model.encoder.length": 2, "training.learning_rate": 0.002}
    data["model"]["encoder"][0]["units"] = 12
    assert base_values(data, params) is None


def test_front_keeps_the_non_dominated_points():
    from l1ml.search.front import front

    points = {0: [0.5, 100], 1: [0.6, 200], 2: [0.4, 150], 3: [0.6, 100], 4: [0.7, 300]}
    assert front(points, ["maximize", "minimize"]) == [3, 4]
    assert front({0: [1.0], 1: [2.0], 2: [2.0]}, ["minimize"]) == [0]


def test_an_eta_window_removes_objects_outside_it_and_keeps_blocks_packed():
    from l1ml.search.segments import keep_objects_in_eta

    p = np.zeros((1, 19, 4), dtype=np.float32)
    p[0, 0] = [30, 0, 0.1, 1]  # MET
    p[0, 1] = [50, 2.0, 0.1, 2]  # e/γ outside |eta| < 1.5
    p[0, 2] = [40, -0.5, 0.2, 2]  # inside
    p[0, 9] = [80, 1.49, 0.3, 4]  # jet inside
    p[0, 10] = [70, -1.5, 0.3, 4]  # jet at the upper edge: outside
    out = keep_objects_in_eta(p, 0.0, 1.5)
    assert out[0, 0].tolist() == p[0, 0].tolist()
    assert out[0, 1].tolist() == p[0, 2].tolist() and not out[0, 2].any()
    assert out[0, 9].tolist() == p[0, 9].tolist() and not out[0, 10].any()
