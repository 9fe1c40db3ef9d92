"""`l1ml estimate`: operation counts checked by hand on tiny networks and BDTs built here, the estimate.json they make,
and the command's table, JSON and errors."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from l1ml.config.hw import load_target
from l1ml.documents import ConvertInfo, EmulatorSpec, Ensemble, EstimateFigures, EstimateReport, read
from l1ml.errors import L1mlError
from l1ml.estimate import counts
from l1ml.estimate import run as estimate_run
from l1ml.quantize.fixedpoint import parse_fixed
from l1ml.runs import sha256_file

from helpers import assert_one_line_error, run

X6 = "ap_fixed<6,2>"
W4 = "ap_fixed<4,1>"
RELU = "ap_ufixed<6,2>"


def dense(name, src, weights, bias, x=X6, w=W4, acc="ap_fixed<16,6>"):
    return {"class": "Dense", "name": name, "inputs": [src], "output": name, "result_type": acc, "input_type": x,
            "weight_type": w, "bias_type": w, "accum_type": acc, "weight_codes": weights, "bias_codes": bias}


def layer(kind, name, inputs, result, **extra):
    return {"class": kind, "name": name, "inputs": inputs, "output": name, "result_type": result, **extra}


def network(*layers, x=X6):
    return EmulatorSpec.model_validate({"inputs": ["x"], "outputs": [layers[-1]["output"]],
                                        "layers": [layer("Input", "x", ["input"], x), *layers]})


# the brief's example: 2 inputs x 2 outputs, weight codes [[1, 0], [3, -2]] (inputs x outputs), bias codes [0, 1]
HAND = network(dense("d", "x", [[1, 0], [3, -2]], [0, 1]))


def test_dense_counted_by_hand():
    figures = counts.count_network(HAND)
    (row,) = figures.details["layers"]
    # output 0 sums 1*x0 + 3*x1 (bias 0): 2 multiplications, 2 terms -> 1 adder
    # output 1 sums -2*x1 + bias 1 (the zero weight is no multiplication): 1 multiplication, 2 terms -> 1 adder
    assert row["multiplications"] == {"6x4": 3}  # 6-bit inputs times 4-bit weights
    assert row["shift_only"] == 2  # 1 = 2**0 and -2 = -2**1; 3 is not a power of two
    assert row["adders"] == 2 and row["zero_weights"] == 1 and row["accumulator_width"] == 16
    # BOPs = n_mult * b_x * b_w + n_adders * (b_x + b_w + ceil(log2 n_in)) = 3 * 6 * 4 + 2 * (6 + 4 + 1) = 72 + 22
    assert row["bops"] == 94 and figures.bops == 94
    assert figures.details["multiplications"] == 3 and figures.details["adders"] == 2
    assert figures.details["multiplications_by_width"] == {"6x4": 3}
    assert (figures.tool, figures.lut, figures.ff, figures.dsp, figures.carry) == ("l1ml counts", None, None, None, None)


def test_zero_weights_are_not_counted():
    # 3 inputs x 2 outputs: output 0 has no weight, only its bias (1 term -> no adder, never -1); output 1 has two
    spec = network(dense("d", "x", [[0, 5], [0, 0], [0, 7]], [2, 0]))
    (row,) = counts.count_network(spec).details["layers"]
    assert row["multiplications"] == {"6x4": 2} and row["adders"] == 1 and row["zero_weights"] == 4
    assert row["shift_only"] == 0  # 5 and 7
    assert row["bops"] == 2 * 6 * 4 + 1 * (6 + 4 + 2)  # ceil(log2 3) = 2
    pruned = network(dense("d", "x", [[0, 0], [0, 0], [0, 0]], [0, 0]))
    assert counts.count_network(pruned).bops == 0


def test_merges_and_activations():
    # x (4 elements, ap_fixed<6,2>) and a = linear(x) in ap_fixed<5,3>
    layers = [layer("Activation", "a", ["x"], "ap_fixed<5,3>", activation="linear"),
              layer("Merge", "m", ["x", "a"], "ap_fixed<11,5>", op="multiply"),
              layer("Merge", "s", ["x", "a"], "ap_fixed<8,4>", op="subtract")]
    figures = counts.count_network(network(*layers), n_features=4)
    act, mul, sub = figures.details["layers"]
    assert (act["elements"], act["bops"], act["adders"]) == (4, 0, 0)
    assert mul["multiplications"] == {"6x5": 4} and mul["bops"] == 4 * 6 * 5
    # x - a exactly: integer bits max(2, 3) + 1 carry, fraction max(4, 2): 8 bits, one adder per element
    assert sub["adders"] == 4 and sub["adder_width"] == 8 and sub["bops"] == 4 * 8
    assert figures.bops == 120 + 32 and figures.details["multiplications"] == 4 and figures.details["adders"] == 4
    with pytest.raises(L1mlError, match="cannot tell how many elements"):
        counts.count_network(network(*layers))  # no Dense reads x, and no size given


def test_input_size_from_the_dense_reading_it():
    spec = network(dense("d", "x", [[1], [1], [1]], [0]), layer("Merge", "sq", ["x", "x"], "ap_fixed<12,4>", op="multiply"))
    assert counts.count_network(spec).details["layers"][1]["elements"] == 3


def test_unsupported_network_is_an_error():
    with pytest.raises(L1mlError, match="Softmax"):
        counts.count_network(EmulatorSpec(unsupported="layer 'softmax' of class Softmax"))


def _tree(feature, children_left, children_right, n_features=2):
    n = len(feature)
    return {"feature": feature, "threshold": [0.5 if f >= 0 else -2.0 for f in feature], "value": [0.1] * n,
            "children_left": children_left, "children_right": children_right,
            "weight": [[int(f == i) for i in range(n_features)] for f in feature]}


FULL_2 = _tree([0, 1, 1, -2, -2, -2, -2], [1, 3, 5, -1, -1, -1, -1], [2, 4, 6, -1, -1, -1, -1])  # depth 2
STUMP = _tree([0, -2, -2], [1, -1, -1], [2, -1, -1])  # depth 1
LEAF = _tree([-2], [-1], [-1])  # depth 0


def ensemble(trees, n_classes=2, init=(0.5,)):
    return Ensemble(max_depth=2, n_trees=len(trees), n_classes=n_classes, n_features=2, trees=trees,
                    init_predict=list(init), norm=1.0, library="xgboost", splitting_convention="<",
                    feature_map={"a": 0, "b": 1})


BDT_TYPES = {"input": "ap_fixed<12,6>", "threshold": "ap_fixed<13,7>", "score": "ap_fixed<18,8>",
             "weight": "ap_int<2>"}


def test_bdt_counted_by_hand():
    figures = counts.count_bdt(ensemble([[FULL_2], [STUMP], [LEAF]]), {k: parse_fixed(v) for k, v in BDT_TYPES.items()})
    d = figures.details
    assert [(t["nodes"], t["leaves"], t["depth"], t["comparators"]) for t in d["trees"]] == [(7, 4, 2, 3), (3, 2, 1, 1),
                                                                                             (1, 1, 0, 0)]
    assert (d["nodes"], d["leaves"], d["max_depth"]) == (11, 7, 2)
    assert d["comparators"] == {"13": 4}  # one per internal node, as wide as the threshold type
    # 3 trees into one score: 2 adders, ceil(log2 3) = 2 deep, 18 bits; the offset 0.5 is one adder more
    assert d["adder_tree"] == {"adders_per_score": 2, "depth": 2, "width": 18}
    assert (d["offset_adders"], d["adders"], d["n_scores"]) == (1, 3, 1)
    assert figures.bops is None and figures.lut is None


def test_multiclass_bdt_adders():
    # 2 rounds of 3 classes: one adder per class, no offsets
    trees = [[STUMP, STUMP, LEAF], [FULL_2, LEAF, STUMP]]
    d = counts.count_bdt(ensemble(trees, n_classes=3, init=(0, 0, 0)),
                         {k: parse_fixed(v) for k, v in BDT_TYPES.items()}).details
    assert (d["n_trees"], d["n_scores"], d["adders"], d["offset_adders"]) == (2, 3, 3, 0)
    assert d["adder_tree"]["depth"] == 1 and d["comparators"] == {"13": 1 + 1 + 3 + 1}
    assert [(t["round"], t["class"]) for t in d["trees"]][-1] == (1, 2)


def _dense_bops(n_in, n_out, x="ap_fixed<12,4>", w="ap_fixed<8,2>", seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 100, size=(n_in, n_out)) * rng.choice([-1, 1], size=(n_in, n_out))  # no zero weights
    return counts.count_network(network(dense("d", "x", codes.tolist(), [1] * n_out, x=x, w=w), x=x)).bops


def test_rank_agreement_wider_layers_never_count_less():
    sizes = [1, 2, 3, 4, 8, 16, 32, 57]
    by_outputs = [_dense_bops(16, n, seed=n) for n in sizes]
    by_inputs = [_dense_bops(n, 16, seed=n) for n in sizes]
    by_bits = [_dense_bops(16, 16, x=f"ap_fixed<{b},4>", w=f"ap_fixed<{b},2>") for b in (4, 6, 8, 12, 16)]
    for series in (by_outputs, by_inputs, by_bits):
        assert series == sorted(series) and len(set(series)) == len(series), series


def _demo_ae(seed=1):
    """57-32-16-3-16-32-57 with ReLUs between, random 8-bit weight codes (some zero)."""
    rng = np.random.default_rng(seed)
    sizes, layers, src = [57, 32, 16, 3, 16, 32, 57], [], "x"
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        codes = rng.integers(-128, 128, size=(n_in, n_out))
        layers.append(dense(f"d{i}", src, codes.tolist(), rng.integers(-128, 128, n_out).tolist(),
                            x="ap_fixed<12,4>" if i == 0 else "ap_ufixed<11,4>", w="ap_fixed<8,2>", acc="ap_fixed<27,13>"))
        layers.append(layer("Activation", f"a{i}", [f"d{i}"], "ap_ufixed<11,4>", activation="relu"))
        src = f"a{i}"
    return network(*layers, x="ap_fixed<12,4>"), sizes


def test_demo_sized_network_in_well_under_a_second():
    spec, sizes = _demo_ae()
    start = time.perf_counter()
    figures = counts.count_network(spec, n_features=57)
    assert time.perf_counter() - start < 0.5
    nonzero = sum(int(np.count_nonzero(layer.weight_codes)) for layer in spec.layers if layer.kind == "Dense")
    assert figures.details["multiplications"] == nonzero
    assert figures.details["weights"] == sum(a * b for a, b in zip(sizes, sizes[1:]))


# ------------------------------------------------------------------------------------------------ estimate.json


def converted_network(root, spec=HAND, target="vu9p"):
    """A folder as `l1ml convert --out` leaves it, with only what the counts read: convert.json and emulator.json."""
    folder = root / "firmware" / "vitis"
    folder.mkdir(parents=True)
    ConvertInfo(tool="hls4ml", backend="Vitis", tool_version="1.3.0", project="l1ml_model", part="xcvu9p-flga2104-2L-e",
                clock_period_ns=4.0, target=target, n_features=2, n_outputs=2, types={"input": X6}).write(
        folder / "convert.json")
    spec.write(folder / "emulator.json")
    return root


def converted_bdt(root):
    """A BDT's two conifer projects: HLS types and the VHDL's one type."""
    for backend, types in (("xilinxhls", BDT_TYPES), ("vhdl", dict.fromkeys(BDT_TYPES, "ap_fixed<20,9>"))):
        folder = root / "firmware" / backend
        folder.mkdir(parents=True)
        ConvertInfo(tool="conifer", backend=backend, tool_version="1.5", project="l1ml_bdt", part="xcvu13p-flga2577-2-e",
                    clock_period_ns=4.16, target="vu13p", n_features=2, n_outputs=1, types=types).write(
            folder / "convert.json")
        ensemble([[FULL_2], [STUMP]]).write(folder / "ensemble.json")
    return root


def quiet(message):
    pass


def test_estimate_of_a_network(tmp_path):
    root = converted_network(tmp_path / "own")
    report = estimate_run.estimate(root, log=quiet)
    path = root / "estimate" / "estimate.json"
    assert read(path, EstimateReport) == report
    assert report.kind == "network" and report.methods["counts"].bops == 94
    assert report.failed == {} and report.methods["rtl"].lut > 0  # da4ml and Yosys on the hand-made network
    assert (report.target, report.part, report.clock_period_ns) == ("vu9p", load_target("vu9p").part, 4.0)
    assert report.device["lut"] == load_target("vu9p").resources.lut
    emulator = root / "firmware" / "vitis" / "emulator.json"
    assert report.source["file"] == str(emulator.absolute()) and report.source["sha256"] == sha256_file(emulator)
    assert report.source["project"] == str((root / "firmware" / "vitis").absolute())
    counts_only = estimate_run.estimate(root, hw_target="vu13p", methods=("counts",), log=quiet)
    assert counts_only.target == "vu13p" and counts_only.failed == {} and list(counts_only.methods) == ["counts"]


def test_a_network_without_emulator_spec_fails_counts_only(tmp_path):
    root = converted_network(tmp_path / "own", spec=EmulatorSpec(unsupported="layer 'softmax' of class Softmax"))
    report = estimate_run.estimate(root, log=quiet)
    assert report.methods == {} and "Softmax" in report.failed["counts"] and "Softmax" in report.failed["rtl"]


def test_the_rtl_method_is_called_and_compared_with_the_target(tmp_path, monkeypatch):
    seen = {}

    def fake_rtl(project, spec, hw, workdir):  # only what the method returns is compared with the target here
        seen.update(project=project.folder, hw=hw.name, workdir=workdir)
        return EstimateFigures(tool="fake", seconds=0.5, lut=17280, ff=100, dsp=3, carry=40, latency_cycles=3)

    monkeypatch.setattr("l1ml.estimate.rtl_method.estimate_rtl", fake_rtl)
    root = converted_network(tmp_path / "own", target="vu13p")
    rtl = estimate_run.estimate(root, log=quiet).methods["rtl"]
    assert seen == {"project": (root / "firmware" / "vitis").absolute(), "hw": "vu13p",
                    "workdir": (root / "estimate" / "rtl").absolute()}
    assert rtl.fraction_of_device == {"lut": 0.01, "ff": 100 / 3456000, "dsp": 3 / 12288}  # carry: no device figure
    assert rtl.latency_ns == pytest.approx(3 * 4.0) and rtl.within_budget is True


def test_against_target():
    hw = load_target("vu13p")  # 1 728 000 LUTs, latency budget 50 ns

    def judged(**figures):
        return estimate_run.against_target(EstimateFigures(tool="t", seconds=0, **figures), hw, 4.16)

    assert judged(lut=1728000, latency_ns=50.0).within_budget is True
    assert judged(lut=1728001, latency_ns=10.0).within_budget is False
    assert judged(lut=10, latency_cycles=13).within_budget is False  # 13 x 4.16 ns = 54.08 ns
    assert judged(lut=10).within_budget is None  # no latency: cannot tell
    assert judged(latency_ns=10.0).within_budget is None  # no resource: cannot tell
    assert judged(bops=5).fraction_of_device == {} and judged(bops=5).within_budget is None


def test_estimate_of_a_bdt(tmp_path):
    root = converted_bdt(tmp_path / "bdt")
    report = estimate_run.estimate(root, log=quiet)
    bdt = report.methods["bdt"]  # no conifer_prj/ here: GHDL has nothing to read, conifer's estimator is used
    assert report.kind == "bdt" and not report.failed and bdt.tool.startswith("conifer") and "GHDL" in bdt.note
    assert report.source["backend"] == "vhdl"  # the project open-source tools synthesise
    assert report.source["other_projects"] == [str((root / "firmware" / "xilinxhls").absolute())]
    d = report.methods["counts"].details
    assert d["comparators"] == {"20": 4} and d["adders"] == 2 and d["threshold_type"] == "ap_fixed<20,9>"


def test_unknown_method_and_bad_folders(tmp_path):
    with pytest.raises(L1mlError, match="unknown estimate method"):
        estimate_run.estimate(tmp_path, methods=("vivado",), log=quiet)
    with pytest.raises(L1mlError, match="run `l1ml convert` first"):
        estimate_run.estimate(tmp_path, log=quiet)


# ------------------------------------------------------------------------------------------------ the command


@pytest.fixture(scope="module")
def own_network(tmp_path_factory):
    return converted_network(tmp_path_factory.mktemp("estimate") / "own")


def test_cli_json_is_the_file(own_network):
    r = run("estimate", own_network, "--json")
    assert r.returncode == 0, r.stderr
    written = (own_network / "estimate" / "estimate.json").read_text()
    assert r.stdout == written and json.loads(r.stdout)["methods"]["counts"]["bops"] == 94


def test_cli_table(own_network):
    r = run("estimate", own_network, "--counts-only", "--target", "vu13p")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == str(own_network / "estimate" / "estimate.json")
    assert lines[-2] == "These are open-source estimates (l1ml counts, da4ml, Yosys, GHDL), not Vivado results."
    assert lines[1].split() == ["METHOD", "OPERATIONS", "LUT", "FF", "DSP", "CARRY", "BOPs", "DEPTH", "LATENCY", "%",
                                "DEVICE", "BUDGET"]
    assert lines[2].split() == ["counts", "3", "mult,", "2", "add", "-", "-", "-", "-", "94", "-", "-", "-", "-"]
    layer_row = next(line for line in lines if line.startswith("d "))
    assert layer_row.split() == ["d", "Dense", "2x2", "3", "6x4", "2", "2", "16", "94"]
    assert "vu13p" in lines[0] and "did not run" not in r.stdout


def test_cli_errors(tmp_path):
    empty = tmp_path / "not_converted"
    empty.mkdir()
    assert_one_line_error(run("estimate", empty), str(empty), "run `l1ml convert` first")
    assert_one_line_error(run("estimate", tmp_path / "missing"), "missing", "no such folder")
    converted = converted_network(tmp_path / "own")
    assert_one_line_error(run("estimate", converted, "--target", "vu99p"), "'vu99p'", "known targets", "vu13p")
