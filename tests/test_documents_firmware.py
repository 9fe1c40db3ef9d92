"""The firmware and training documents (convert.json, emulator.json, ensemble.json, byo.json, normalisation.json,
model/bdt.json, metrics.json): written through their models, read back whole by the readers l1ml uses, and an older,
foreign or damaged one is one error naming the file and the key where l1ml reads it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from l1ml.documents import BdtInfo, ConvertInfo, EmulatorSpec, Metrics, NormalisationRecord, read
from l1ml.errors import L1mlError
from l1ml.firmware import project as fp

from helpers import assert_one_line_error, copy_run, run, small_converted_bdt, trained_and_converted

OLDER = ["key 'format'", "written by an older l1ml: make it again with this one"]
FOREIGN = ["key 'format'", "not this kind of l1ml document"]

BDT_RUN = """
name: docs_bdt
seed: 2
data: {{events: {events}, signals: [Ato4l]}}
model: {{kind: bdt, n_estimators: 4, max_depth: 2}}
evaluation: {{rates_khz: [3000]}}
"""


def older(document: dict) -> dict:
    """As l1ml wrote it before documents had a format."""
    return {k: v for k, v in document.items() if k != "format"}


def foreign(document: dict) -> dict:
    return {**document, "format": "l1ml-metrics/1"}


def change(path, how) -> None:
    path.write_text(json.dumps(how(json.loads(path.read_text()))))


def assert_named(excinfo, path, fragments) -> None:
    message = str(excinfo.value)
    assert message.startswith(str(path)) and all(f in message for f in fragments), message


@pytest.fixture(scope="module")
def byo_bdt(tmp_path_factory):
    """A small xgboost BDT converted with `l1ml convert --xgboost --out`: byo.json and two conifer projects."""
    return small_converted_bdt(tmp_path_factory.mktemp("docs_byo"), 1)


@pytest.fixture(scope="module")
def bdt_run(tmp_path_factory, small_events):
    """A small BDT training run, converted: metrics.json, model/bdt.json and the conifer projects."""
    return trained_and_converted(BDT_RUN.format(events=small_events), tmp_path_factory.mktemp("docs_run"))


@pytest.fixture
def byo_copy(byo_bdt, tmp_path):
    return copy_run(byo_bdt, tmp_path)


# ------------------------------------------------------------------------------------------------ round trips


def test_conifer_projects_read_back_what_the_writers_wrote(byo_bdt, tmp_path):
    from l1ml.emulate.ensemble import load, save
    from l1ml.firmware.byo import read_byo

    record = read_byo(byo_bdt)
    assert (record.kind, record.n_features, record.n_outputs, record.backends) == ("xgboost", 4, 1, ["xilinxhls", "vhdl"])
    assert (byo_bdt / "model" / record.model_files["model"]).is_file()
    assert record.types["input"] == record.input_type == "ap_fixed<12,6,AP_RND_CONV,AP_SAT>"
    vhdl, hls = fp.projects_in(byo_bdt)
    for project in (vhdl, hls):
        info = project.info
        assert (info.tool, info.target, info.n_features, info.n_outputs) == ("conifer", "vu13p", 4, 1)
        assert info == ConvertInfo.model_validate_json(info.write(tmp_path / "convert.json").read_text())
    assert hls.info.types == {**record.types, "threshold": "ap_fixed<13,7,AP_RND_CONV,AP_SAT>", "weight": "ap_int<2>"}
    assert hls.info.details == {"n_trees": 4, "n_classes": 2, "max_depth": 2, "splitting_convention": "<"}
    # the ensemble comes back whole: written again, it is the same file
    written = hls.folder / "ensemble.json"
    save(load(written), tmp_path / "ensemble.json")
    assert (tmp_path / "ensemble.json").read_bytes() == written.read_bytes()


def test_normalisation_reads_back_exactly(tmp_path):
    from l1ml.quantize.normalisation import Normalisation

    x = np.random.default_rng(3).normal([0, 40, -7], [1, 30, 0.01], size=(500, 3))
    norm = Normalisation.fit(x, ["a", "b", "c"], "ap_fixed<12,4,AP_RND_CONV,AP_SAT>")
    back = read(NormalisationRecord.of(norm).write(tmp_path / "normalisation.json"), NormalisationRecord).normalisation()
    assert back.features == norm.features and back.input_type == norm.input_type
    np.testing.assert_array_equal(back.offset, norm.offset)
    np.testing.assert_array_equal(back.shift, norm.shift)
    assert back.shift.dtype == np.int64
    np.testing.assert_array_equal(back.apply_quantized(x), norm.apply_quantized(x))


FIXED = "ap_fixed<8,3,AP_RND_CONV,AP_SAT>"
SPEC = {  # y = relu(x0 + 2 x1 + 0.5): weights and bias as codes of FIXED (5 fractional bits)
    "format": "l1ml-emulator-network/1", "inputs": ["x"], "outputs": ["y"], "layers": [
        {"class": "Input", "name": "x", "inputs": ["x"], "output": "x", "result_type": FIXED},
        {"class": "Dense", "name": "d", "inputs": ["x"], "output": "d", "result_type": "ap_fixed<16,8>",
         "input_type": FIXED, "weight_type": FIXED, "bias_type": FIXED, "accum_type": "ap_fixed<24,10,AP_TRN,AP_WRAP>",
         "weight_codes": [[32], [64]], "bias_codes": [16]},
        {"class": "Activation", "name": "y", "inputs": ["d"], "output": "y", "result_type": "ap_fixed<16,8>",
         "activation": "relu"},
    ]}


def hls4ml_project(folder) -> fp.Hls4mlProject:
    info = ConvertInfo(tool="hls4ml", tool_version="1.1.0", backend="Vitis", project="l1ml_model", part="xcvu9p",
                       clock_period_ns=5.0, n_features=2, n_outputs=1, types={"input": FIXED})
    return fp.Hls4mlProject(folder, info)


def test_the_emulator_specification_reads_back_and_emulates(tmp_path):
    from l1ml.emulate.network import NetworkEmulator

    EmulatorSpec.model_validate(SPEC).write(tmp_path / "emulator.json")
    assert json.loads((tmp_path / "emulator.json").read_text()) == {**SPEC, "unsupported": None}
    emulator, note = hls4ml_project(tmp_path).emulator()
    assert isinstance(emulator, NetworkEmulator) and note == ""
    np.testing.assert_array_equal(emulator.predict(np.array([[1.0, 1.0], [-3.0, 0.25]])), [[3.5], [0.0]])
    EmulatorSpec(unsupported="layer 'softmax' of class Softmax").write(tmp_path / "emulator.json")
    assert hls4ml_project(tmp_path).emulator() == (None, "layer 'softmax' of class Softmax")


def test_a_bdt_run_reads_back_its_model_description_and_metrics(bdt_run):
    info = read(bdt_run / "model" / "bdt.json", BdtInfo)
    (vhdl, hls) = fp.projects_in(bdt_run)
    assert (info.task, info.n_trees, info.max_depth) == ("classification", 4, 2)
    assert hls.info.types["input"] == info.input_type and hls.info.source["score_type"] == info.score_type
    metrics = read(bdt_run / "metrics.json", Metrics)
    assert metrics.score_type == info.score_type and [r.rate_khz for r in metrics.thresholds["quantized"]] == [3000]


# ------------------------------------------------------------------------------------------------ named errors


@pytest.mark.parametrize(("how", "fragments"), [
    (older, OLDER),
    (foreign, FOREIGN),
    (lambda d: {**d, "types": {"score": d["types"]["score"]}}, ["key 'types'", "damaged", "no 'input' type"]),
    (lambda d: {**d, "types": {**d["types"], "input": "ap_fixed<12>"}}, ["key 'types.input'", "damaged"]),
    (lambda d: {**d, "n_features": "four"}, ["key 'n_features'", "damaged"]),
    (lambda d: {**d, "strategy": "Latency"}, ["key 'strategy'", "damaged"]),
])
def test_convert_json(byo_copy, how, fragments):
    folder = byo_copy / "firmware" / "xilinxhls"
    change(folder / "convert.json", how)
    with pytest.raises(L1mlError) as e:
        fp.open_project(folder)
    assert_named(e, folder / "convert.json", fragments)


def test_a_missing_convert_json(byo_copy):
    folder = byo_copy / "firmware" / "vhdl"
    (folder / "convert.json").unlink()
    with pytest.raises(L1mlError) as e:
        fp.open_project(folder)
    assert_named(e, folder, ["missing: the folder has no convert.json (not a converted firmware project)"])


@pytest.mark.parametrize(("how", "fragments"), [
    (older, OLDER),
    (foreign, FOREIGN),
    (lambda d: {**d, "trees": [[{k: v for k, v in d["trees"][0][0].items() if k != "weight"}]]},
     ["key 'trees.0.0.weight'", "damaged"]),
    (lambda d: {**d, "splitting_convention": "<<"}, ["key 'splitting_convention'", "damaged"]),
])
def test_ensemble_json(byo_copy, how, fragments):
    hls = fp.open_project(byo_copy / "firmware" / "xilinxhls")
    change(hls.folder / "ensemble.json", how)
    with pytest.raises(L1mlError) as e:
        hls.emulator()
    assert_named(e, hls.folder / "ensemble.json", fragments)


@pytest.mark.parametrize(("how", "fragments"), [
    (older, OLDER),
    (foreign, FOREIGN),
    (lambda d: {**d, "layers": [*d["layers"][:2], {**d["layers"][2], "class": "Softmax"}]}, ["key 'layers.2'", "damaged"]),
    (lambda d: {**d, "layers": [d["layers"][0], {**d["layers"][1], "weight_codes": [[0.5], [1]]}]},
     ["key 'layers.1.Dense.weight_codes.0.0'", "damaged"]),
    (lambda d: {"format": d["format"], "inputs": ["x"]}, ["damaged", "either layers and outputs, or the reason"]),
])
def test_emulator_json(tmp_path, how, fragments):
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(how(SPEC)))
    with pytest.raises(L1mlError) as e:
        hls4ml_project(tmp_path).emulator()
    assert_named(e, path, fragments)


def test_an_older_byo_json_stops_verify_with_one_line(byo_copy):
    change(byo_copy / "byo.json", older)
    assert_one_line_error(run("verify", byo_copy, "--random", "100"), str(byo_copy / "byo.json"), *OLDER)


@pytest.mark.parametrize(("how", "fragments"), [
    (foreign, FOREIGN),
    (lambda d: {**d, "kind": "onnx"}, ["key 'kind'", "damaged"]),
    (lambda d: {**d, "model_files": {"architecture": "model.json"}}, ["key 'model_files'", "no 'model' file"]),
    (lambda d: {**d, "source": {"model": {"path": "model.json"}}}, ["key 'source.model.sha256'", "damaged"]),
])
def test_byo_json(byo_copy, how, fragments):
    from l1ml.verify.run import VerifyOptions, verify

    change(byo_copy / "byo.json", how)
    with pytest.raises(L1mlError) as e:
        verify(byo_copy, VerifyOptions(random=100), log=lambda m: None)
    assert_named(e, byo_copy / "byo.json", fragments)


@pytest.mark.parametrize(("how", "fragments"), [
    (older, OLDER),
    (lambda d: {**d, "shift": d["shift"][:2]}, ["damaged", "3 features, 3 offsets and 2 shifts"]),
    (lambda d: {**d, "input_type": "ap_fixed<12,4,AP_NEAREST>"}, ["key 'input_type'", "damaged"]),
])
def test_normalisation_json(tmp_path, how, fragments):
    from l1ml.quantize.normalisation import Normalisation

    norm = Normalisation(["a", "b", "c"], np.zeros(3), np.zeros(3, dtype=np.int64), "ap_fixed<12,4>")
    path = NormalisationRecord.of(norm).write(tmp_path / "normalisation.json")
    change(path, how)
    with pytest.raises(L1mlError) as e:
        read(path, NormalisationRecord)
    assert_named(e, path, fragments)


def test_an_older_bdt_json_stops_convert_and_an_older_metrics_json_stops_verify(bdt_run, tmp_path):
    copy = copy_run(bdt_run, tmp_path)
    shutil.rmtree(copy / "firmware")
    change(copy / "model" / "bdt.json", older)
    assert_one_line_error(run("convert", copy), str(copy / "model" / "bdt.json"), *OLDER)
    change(copy / "metrics.json", older)
    assert_one_line_error(run("verify", copy), str(copy / "metrics.json"), *OLDER)


def test_damaged_metrics_are_named(bdt_run, tmp_path):
    from l1ml.verify.subjects import from_run

    copy = copy_run(bdt_run, tmp_path)
    change(copy / "metrics.json", lambda d: {**d, "thresholds": {"quantized": [{"rate_khz": 3000}]}})
    with pytest.raises(L1mlError) as e:
        from_run(copy)
    assert_named(e, copy / "metrics.json", ["key 'thresholds.quantized.0.threshold'", "damaged"])
