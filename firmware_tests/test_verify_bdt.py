"""BDTs: conifer projects of a trained run and of your own xgboost models, verified against xgboost, the
fixed-point emulation, the C-simulation and GHDL; and each check fails when one LSB or one leaf changes."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from l1ml.verify.run import VerifyOptions, verify

from helpers import SHARED, copy_run, find_check, trained_and_converted

FAST = VerifyOptions(min_events=3000)
QUIET = {"log": lambda m: None}

BDT_RUN = """
name: fw_bdt
seed: 4
data: {{events: {events}, signals: [Ato4l, LQ_btau]}}
model: {{kind: bdt, n_estimators: 12, max_depth: 3}}
evaluation: {{rates_khz: [3000]}}
verify: {{auc_tolerance: 0.15, efficiency_tolerance: 0.3, vhdl_events: 120}}
"""

MODELS = SHARED / "fixtures" / "models"
needs_ghdl = pytest.mark.skipif(shutil.which("ghdl") is None, reason="GHDL is not installed (make test installs it)")


@pytest.fixture
def cli():
    from click.testing import CliRunner

    from l1ml.cli import cli as l1ml

    return lambda *args: CliRunner().invoke(l1ml, list(args))


@pytest.fixture(scope="module")
def bdt_run(tmp_path_factory, small_events):
    return trained_and_converted(BDT_RUN.format(events=small_events), tmp_path_factory.mktemp("fw_bdt"))




@needs_ghdl
def test_bdt_run_converts_to_both_backends_and_verifies(bdt_run):
    fw = bdt_run / "firmware"
    for backend in ("xilinxhls", "vhdl"):
        info = json.loads((fw / backend / "convert.json").read_text())
        assert info["tool"] == "conifer" and info["backend"] == backend and info["details"]["n_trees"] == 12
        assert (fw / backend / "conifer_config.json").is_file() and (fw / backend / "manifest.json").is_file()
    hls_types = json.loads((fw / "xilinxhls" / "convert.json").read_text())["types"]
    assert hls_types["input"] == json.loads((bdt_run / "model" / "bdt.json").read_text())["input_type"]
    report = verify(bdt_run, FAST, **QUIET)
    assert report.passed, report.summary_lines()
    names = [c.name.split(" ")[0] for c in report.checks]
    assert names == ["bit_exact", "leaves", "conversion", "vhdl", "thresholds", "physics"]
    data = json.loads((bdt_run / "verify" / "report.json").read_text())
    by_cat = data["checks"][0]["by_category"]
    for category in ("test:background", "adversarial:edges", "adversarial:ties", "adversarial:thresholds",
                     "adversarial:huge_pt", "random"):
        assert by_cat[category]["events"] > 0 and by_cat[category]["mismatches"] == 0, category
    assert find_check(report, "vhdl").events == 120


def _lsb(type_text):
    w, i = map(int, re.search(r"<(\d+),(-?\d+)", type_text).groups())
    return 2.0 ** -(w - i)


def _bump_first_tree(run_dir, field, lsb):
    """Add one LSB to the first nonzero entry of a field (2: thresholds, 3: leaf values) of tree 0 in parameters.h."""
    path = run_dir / "firmware" / "xilinxhls" / "conifer_prj" / "firmware" / "parameters.h"
    lines = path.read_text().split("\n")
    at = next(k for k, line in enumerate(lines) if "tree_0_0 = {" in line) + 1 + field
    values = lines[at].strip().rstrip(",").strip("{}").split(",")
    k = next(j for j, v in enumerate(values) if float(v) != 0)
    values[k] = repr(float(values[k]) + lsb)
    lines[at] = "    {" + ",".join(values) + "},"
    path.write_text("\n".join(lines))


def test_one_lsb_threshold_change_in_the_firmware_fails_bit_exact(bdt_run, tmp_path):
    run_dir = copy_run(bdt_run, tmp_path)
    info = json.loads((run_dir / "firmware" / "xilinxhls" / "convert.json").read_text())
    _bump_first_tree(run_dir, 2, _lsb(info["types"]["threshold"]))
    report = verify(run_dir, FAST, **QUIET)
    check = find_check(report, "bit_exact")
    assert not check.passed
    assert check.by_category["adversarial:thresholds"]["mismatches"] > 0, "the threshold probes find it"


def test_one_lsb_leaf_change_in_the_firmware_fails_bit_exact(bdt_run, tmp_path):
    run_dir = copy_run(bdt_run, tmp_path)
    _bump_first_tree(run_dir, 3, _lsb(json.loads((run_dir / "model" / "bdt.json").read_text())["score_type"]))
    report = verify(run_dir, FAST, **QUIET)
    assert not find_check(report, "bit_exact").passed
    assert not report.passed


@needs_ghdl
def test_one_changed_constant_in_the_vhdl_fails_the_vhdlfind_check(bdt_run, tmp_path):
    run_dir = copy_run(bdt_run, tmp_path)
    path = run_dir / "firmware" / "vhdl" / "conifer_prj" / "firmware" / "Arrays0.vhd"
    text = path.read_text()
    # the leaf values of tree 0 (value_int): add one LSB to every leaf so that every event sees it
    m = re.search(r"value_int : intArray2DnNodes[^:]*:= \(\(([^)]*)\)", text)
    assert m, "value_int of tree 0"
    bumped = ",".join(str(int(v) + 1) if int(v) != 0 else v for v in m.group(1).split(","))
    path.write_text(text[:m.start(1)] + bumped + text[m.end(1):])
    report = verify(run_dir, FAST, **QUIET)
    check = find_check(report, "vhdl")
    assert not check.passed and check.mismatches > 0
    assert find_check(report, "bit_exact").passed


def test_conifer_1_11_converter_fails_the_leaf_check_that_l1ml_passes(bdt_run):
    """The pitfall the conversion fixes: conifer's own converter reads 9-digit thresholds, so inputs next to a threshold
    go to a different leaf than in xgboost."""
    import conifer
    import xgboost as xgb

    from l1ml.emulate.bdt import Forest
    from l1ml.models.bdt import from_booster
    from l1ml.verify.bdt import split_nodes

    booster = xgb.Booster(model_file=str(bdt_run / "model" / "xgboost.json"))
    ours = Forest.from_ensemble(from_booster(booster))
    import logging

    logging.getLogger("conifer").setLevel(logging.ERROR)
    theirs = Forest.from_ensemble(conifer.converters.xgboost.convert(booster))
    features, thresholds = split_nodes(ours)
    thr = thresholds.astype(np.float32)
    x = np.zeros((2 * len(features), booster.num_features()), dtype=np.float32)
    for k, value in enumerate((thr, np.nextafter(thr, np.float32(np.inf)))):
        x[k * len(features) + np.arange(len(features)), features] = value
    expected = booster.predict(xgb.DMatrix(x), pred_leaf=True).astype(np.int64)
    x64 = x.astype(np.float64)
    assert np.array_equal(ours.leaves(x64), expected)
    assert np.mean(np.any(theirs.leaves(x64) != expected, axis=1)) > 0.01


def test_nan_inputs_are_refused():
    from l1ml.emulate.bdt import BdtEmulator
    from l1ml.errors import L1mlError

    ensemble = {"trees": [[{"feature": [0, -2, -2], "threshold": [0.5, 0, 0], "value": [0, -1.0, 1.0],
                            "children_left": [1, -1, -1], "children_right": [2, -1, -1], "weight": [[1], [0], [0]]}]],
                "n_classes": 2, "n_features": 1, "max_depth": 1, "init_predict": [0.0], "norm": 1,
                "splitting_convention": "<"}
    emulator = BdtEmulator(ensemble, "ap_fixed<8,4>", "ap_fixed<9,5>", "ap_fixed<8,4>")
    assert emulator.predict(np.array([[0.25], [0.5]]))[:, 0].tolist() == [-1.0, 1.0]
    with pytest.raises(L1mlError, match="NaN"):
        emulator.predict(np.array([[0.25], [np.nan]]))


# your own xgboost models ---------------------------------------------------------------------------------------


def _train_xgboost(path, objective, n_classes=2, seed=3):
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 20, size=(3000, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 10) if n_classes > 2 else (x[:, 0] + x[:, 2] > 5).astype(int)
    params = {"objective": objective, "max_depth": 3, "seed": seed, "nthread": 1}
    if n_classes > 2:
        params["num_class"] = n_classes
    xgb.train(params, xgb.DMatrix(x, label=y), 8).save_model(str(path))
    return x


@pytest.mark.parametrize("objective,n_classes", [("binary:logistic", 2), ("multi:softprob", 3)])
def test_own_xgboost_model_converts_and_verifies(tmp_path, cli, objective, n_classes):
    model = tmp_path / "model.json"
    x = _train_xgboost(model, objective, n_classes)
    np.save(tmp_path / "x.npy", x[:500].astype(np.float64))
    out = tmp_path / "own"
    result = cli("convert", "--xgboost", str(model), "--input-type", "ap_fixed<14,8,AP_RND_CONV,AP_SAT>", "--out",
                 str(out), "--backend", "xilinxhls")
    assert result.exit_code == 0, result.output + result.stderr
    assert result.output.strip().splitlines() == [str(out / "firmware" / "xilinxhls")]
    report = verify(out, VerifyOptions(data=tmp_path / "x.npy", random=2000), **QUIET)
    assert report.passed, report.summary_lines()
    assert [c.name.split(" ")[0] for c in report.checks] == ["bit_exact", "leaves", "conversion"]
    info = json.loads((out / "byo.json").read_text())
    assert info["kind"] == "xgboost" and info["n_outputs"] == (1 if n_classes == 2 else n_classes)


def test_saturating_score_type_is_emulated_in_conifers_summation_order(tmp_path, cli):
    """With a score type too narrow for the sum, partial sums saturate and their order matters."""
    model = tmp_path / "model.json"
    _train_xgboost(model, "reg:squarederror")
    out = tmp_path / "own"
    result = cli("convert", "--xgboost", str(model), "--score-type", "ap_fixed<6,1,AP_RND_CONV,AP_SAT>", "--out", str(out),
                 "--backend", "xilinxhls")
    assert result.exit_code == 0, result.output + result.stderr
    from l1ml.firmware.project import open_project

    emulator, _ = open_project(out / "firmware" / "xilinxhls").emulator()
    assert not emulator.exact_sum, "this model must exercise the saturating reduction"
    report = verify(out, VerifyOptions(random=3000), **QUIET)
    assert find_check(report, "bit_exact").passed, report.summary_lines()


def test_bad_model_files_give_one_clear_error(tmp_path):
    import subprocess
    import sys

    def l1ml(*args):
        return subprocess.run([sys.executable, "-m", "l1ml", "convert", *args], capture_output=True, text=True, timeout=300)

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = l1ml("--xgboost", str(bad), "--out", str(tmp_path / "o1"))
    assert result.returncode == 1 and f"{bad}: not an xgboost model" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    conifer_bad = tmp_path / "c.json"
    conifer_bad.write_text(json.dumps({"n_features": 2, "n_classes": 2, "init_predict": [0]}))
    result = l1ml("--conifer", str(conifer_bad), "--out", str(tmp_path / "o2"))
    assert result.returncode == 1 and f"{conifer_bad}, key 'trees'" in result.stderr
    result = l1ml("--xgboost", str(bad), "--conifer", str(conifer_bad), "--out", str(tmp_path / "o3"))
    assert result.returncode == 2 and "one model" in result.stderr
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


# CMS L1 BDTs shipped as conifer JSON ------------------------------------------------------------------------------

CMS = ["cmsdata_pf__compositeID_EB_v0", "cmsdata_pf__compositeID_EB_v1", "cmsdata_pf__compositeID_EE_v0",
       "cmsdata_pf__compositeID_EE_v1", "cmsdata_tt__L1_TrackQuality_GBDT_emulation_digitized",
       pytest.param("cmsdata_pf__multiclass_EE", marks=pytest.mark.slow)]
# the models whose input, threshold and score precisions are one type (their JSON says so): only they get conifer's VHDL
ONE_TYPE = {"cmsdata_pf__compositeID_EE_v1", "cmsdata_tt__L1_TrackQuality_GBDT_emulation_digitized"}


@needs_ghdl
@pytest.mark.skipif(not MODELS.is_dir(), reason=f"fixtures not found at {MODELS}")
@pytest.mark.parametrize("name", CMS)
def test_cms_conifer_models_convert_and_verify(tmp_path, cli, name):
    model = MODELS / f"{name}.json"
    out = tmp_path / name
    result = cli("convert", "--conifer", str(model), "--out", str(out))
    assert result.exit_code == 0, result.output + result.stderr
    info = json.loads((out / "byo.json").read_text())
    report = verify(out, VerifyOptions(random=2000), **QUIET)
    assert report.passed, report.summary_lines()
    names = [c.name.split(" ")[0] for c in report.checks]
    expected = ["xilinxhls", "vhdl"] if name in ONE_TYPE else ["xilinxhls"]
    assert info["backends"] == expected
    assert names == (["bit_exact", "vhdl"] if name in ONE_TYPE else ["bit_exact"])
