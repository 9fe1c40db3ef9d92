"""`l1ml estimate` with its tools: a network's RTL through Yosys, a BDT's VHDL through GHDL and Yosys, the classifier
fixtures of ../shared/fixtures counted up to their logits, and rank agreement: a larger model never gets a smaller
estimate."""

from __future__ import annotations

import json

import pytest

from l1ml.documents import EstimateReport, read
from l1ml.estimate.run import estimate

from helpers import SHARED, copy_run, run, small_converted_bdt

MODELS = SHARED / "fixtures" / "models"
QUIET = {"log": lambda *_: None}


def _ae(root, name: str, encoder: list[int]):
    """A dense AE of the demo's shape (57 inputs, the demo's types) with random QKeras weights, converted by hls4ml."""
    from l1ml.config.hw import load_target
    from l1ml.config.train import TrainConfig
    from l1ml.firmware.hls import convert
    from l1ml.models.networks import build

    cfg = TrainConfig.model_validate({
        "name": name, "seed": 1, "data": {"events": "x.h5", "signals": ["Ato4l"]}, "evaluation": {"rates_khz": [100]},
        "model": {"kind": "dense_ae", "encoder": [{"units": u, "activation": "relu"} for u in encoder], "latent": 3},
        "quantization": {"input": "ap_fixed<12,4>", "weight": "ap_fixed<8,2>", "bias": "ap_fixed<8,2>",
                         "result": "ap_fixed<12,5>"}})
    model = build(cfg.model, cfg.quantization, 57, quantized=True, seed=1).score_model
    folder = root / name
    convert(model, "ap_fixed<12,4,AP_RND_CONV,AP_SAT>", folder / "firmware" / "vitis", load_target("vu13p"))
    return folder


@pytest.fixture(scope="module")
def ae_widths(tmp_path_factory):
    root = tmp_path_factory.mktemp("widths")
    return [_ae(root, f"ae_{w[0]}", w) for w in ([4, 2], [8, 4], [16, 8])]


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """The QKeras classifiers of ../shared/fixtures, converted (their softmax has no exact emulator: the logits count)."""
    from l1ml.firmware.byo import convert_keras

    root = tmp_path_factory.mktemp("classifiers")
    folders = []
    for name in ("qkeras_3layer", "qkeras_mnist_dense"):
        convert_keras(MODELS / f"exmodels__{name}.json", MODELS / f"exmodels__{name}_weights.h5", root / name,
                      input_type=None, target="vu9p", backend="vitis", reuse_factor=1, clock_period_ns=None)
        folders.append(root / name)
    return folders


def _bops(folder) -> int:
    return estimate(folder, methods=("counts",), **QUIET).methods["counts"].bops


def test_counts_grow_with_the_ae_width_and_the_classifier_size(ae_widths, classifiers):
    widths = [_bops(f) for f in ae_widths]
    assert widths == sorted(widths) and len(set(widths)) == 3, widths
    small, large = classifiers  # qkeras_mnist_dense: every layer wider than qkeras_3layer's
    assert _bops(large) > _bops(small)
    report = read(large / "estimate" / "estimate.json", EstimateReport)
    assert "softmax" in report.methods["counts"].note and report.source["file"].endswith("logits/emulator.json")


@pytest.mark.slow
def test_rtl_estimates_rank_the_models_as_the_counts_do(ae_widths, classifiers):
    """Rank agreement: Yosys' LUTs of the RTL order the three AEs and the 3-layer classifier as their exact counts
    (BOPs) do, and a wider AE never gets fewer LUTs or flip-flops. (The MNIST classifier's 784 x 20 first layer takes
    da4ml minutes to optimise, so it is ranked by its counts only.)"""
    bops, luts, ffs = [], [], []
    for folder in [*ae_widths, classifiers[0]]:
        report = estimate(folder, methods=("counts", "rtl"), **QUIET)
        f = report.methods["rtl"]
        assert f.lut > 0 and f.ff > 0 and f.latency_cycles >= 1 and f.logic_depth >= 1, report.failed
        assert f.latency_ns == pytest.approx(f.latency_cycles * report.clock_period_ns)
        bops.append(report.methods["counts"].bops)
        luts.append(f.lut)
        ffs.append(f.ff)
    assert luts[:3] == sorted(luts[:3]) and ffs[:3] == sorted(ffs[:3]), (luts, ffs)
    assert sorted(range(4), key=bops.__getitem__) == sorted(range(4), key=luts.__getitem__), (bops, luts)


@pytest.mark.slow  # Yosys maps the whole trained AE: minutes on 2 cores
def test_rtl_estimate_of_a_converted_run_uses_its_rtl(trained_runs, tmp_path):
    run_dir = copy_run(trained_runs["dense_ae"], tmp_path)
    assert run("convert", run_dir, "--rtl").returncode == 0
    r = run("estimate", run_dir, "--json")
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    report = read(run_dir / "estimate" / "estimate.json", EstimateReport)
    assert printed == json.loads((run_dir / "estimate" / "estimate.json").read_text())
    f = report.methods["rtl"]
    assert f.details["rtl"] == str(run_dir / "firmware" / "rtl")  # the converted RTL, not a second one
    assert f.lut > 0 and f.ff > 0 and f.carry > 0
    assert set(f.fraction_of_device) >= {"lut", "ff", "dsp"} and f.within_budget is not None
    assert "not Vivado" in report.notice and "yosys" in f.tool and "da4ml 0.6.0" in f.tool


def test_bdt_estimate_goes_through_ghdl_and_yosys(tmp_path):
    folder = small_converted_bdt(tmp_path, 5)
    report = estimate(folder, **QUIET)
    b = report.methods["bdt"]
    assert b.tool.startswith("ghdl") and "yosys" in b.tool, b.note
    assert b.lut > 0 and b.ff > 0 and b.latency_cycles >= 1
    assert b.details["conifer_estimator"]["lut"] > 0  # conifer's own figure, kept beside for comparison
    assert report.methods["counts"].details["comparators_total"] > 0
    assert not report.failed
