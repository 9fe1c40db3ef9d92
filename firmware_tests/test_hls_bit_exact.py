"""hls4ml C-simulation (g++) of the converted networks equals the QKeras models bit for bit, and the check can fail."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from l1ml.data.events import list_samples, read_sample
from l1ml.documents import NormalisationRecord, read
from l1ml.verify.bitexact import adversarial_inputs, compare


@pytest.fixture(scope="module", params=["dense_ae", "vae_encoder"])
def compiled(request, trained_runs, small_events):
    """(hls4ml model compiled with g++, QKeras score model, firmware inputs) for one trained run."""
    from l1ml.firmware.convert import convert_run
    from l1ml.models.keras import load_model

    run_dir = trained_runs[request.param]
    result = convert_run(run_dir)
    hls_model = result.project.model
    hls_model.compile()
    norm = read(run_dir / "normalisation.json", NormalisationRecord).normalisation()
    events = np.concatenate([read_sample(small_events, s).features() for s in list_samples(small_events)])
    huge = events[:20].copy()
    huge[:, 0::3] = 1e5  # every pT far beyond the input range: saturates in the normalisation
    inputs = np.vstack([norm.apply_quantized(np.vstack([events, huge])),
                        adversarial_inputs(norm.type, events.shape[1])]).astype(np.float32)
    return hls_model, load_model(run_dir / "model" / "quantized"), inputs, result.out_dir, norm


def test_project_layout(compiled):
    _, _, _, out_dir, norm = compiled
    info = json.loads((out_dir / "convert.json").read_text())
    assert info["part"] == "xcvu13p-flga2577-2-e" and info["types"] == {"input": norm.input_type}
    assert (out_dir / "hls4ml_config.yaml").exists() and (out_dir / "manifest.json").exists()
    defines = (out_dir / "hls4ml_prj" / "firmware" / "defines.h").read_text()
    assert f"typedef {norm.input_type.replace(',AP_SAT>', ',AP_SAT,0>')} input_t;" in defines


def test_csim_equals_qkeras_bit_for_bit(compiled):
    hls_model, qmodel, inputs, _, _ = compiled
    firmware = hls_model.predict(inputs)
    model = qmodel.predict(inputs, verbose=0)
    result = compare("csim vs qkeras", firmware, model, inputs)
    assert result.passed, result.summary() + f"\n{result.first}"
    assert result.events == len(inputs) > 1000 and len(np.unique(model)) > 20


def test_input_scaling_off_by_one_bit_is_caught(compiled):
    hls_model, qmodel, inputs, _, norm = compiled
    doubled = norm.type.quantize(inputs.astype(np.float64) * 2).astype(np.float32)  # a shift one bit short
    result = compare("csim vs qkeras", hls_model.predict(doubled), qmodel.predict(inputs, verbose=0))
    assert not result.passed and result.mismatches > 100


def test_one_lsb_in_one_firmware_weight_is_caught(tmp_path, trained_runs, small_events):
    """Change the first non-zero weight of the first layer by one LSB in the generated C++, recompile: the check fails."""
    from l1ml.config.hw import load_target
    from l1ml.firmware.hls import convert
    from l1ml.models.keras import load_model

    run_dir = trained_runs["dense_ae"]
    norm = read(run_dir / "normalisation.json", NormalisationRecord).normalisation()
    qmodel = load_model(run_dir / "model" / "quantized")
    project = convert(qmodel, norm.input_type, tmp_path / "fw", load_target("vu9p"))
    weights_dir = project.out_dir / "hls4ml_prj" / "firmware" / "weights"
    lsb = 2.0 ** -6  # the default weight type ap_fixed<8,2>
    for name in ("w3.txt", "w3.h"):
        path = weights_dir / name
        text = path.read_text()
        match = re.search(r"(?<![\w.])(-?\d+\.\d+(?:e-?\d+)?)", text[text.index("{") + 1:] if "{" in text else text)
        assert match, name
        offset = text.index("{") + 1 if "{" in text else 0
        start, end = match.start(1) + offset, match.end(1) + offset
        path.write_text(text[:start] + repr(float(match.group(1)) + lsb) + text[end:])
    project.model._compile()  # rebuild the C++ as it is on disk, without writing the project again
    events = norm.apply_quantized(read_sample(small_events, "background").features()).astype(np.float32)
    result = compare("csim vs qkeras", project.model.predict(events), qmodel.predict(events, verbose=0))
    assert not result.passed, "a one-LSB weight change went unnoticed"


def test_hls4ml_own_precisions_are_not_exact(tmp_path, trained_runs, small_events):
    """Why the recipe exists: with hls4ml's own precisions the same model does not match QKeras."""
    from l1ml.config.hw import load_target
    from l1ml.firmware.hls import convert
    from l1ml.models.keras import load_model

    run_dir = trained_runs["dense_ae"]
    norm = read(run_dir / "normalisation.json", NormalisationRecord).normalisation()
    qmodel = load_model(run_dir / "model" / "quantized")
    project = convert(qmodel, norm.input_type, tmp_path / "fw", load_target("vu9p"), exact=False)
    project.model.compile()
    events = norm.apply_quantized(read_sample(small_events, "background").features()).astype(np.float32)
    assert not compare("csim vs qkeras", project.model.predict(events), qmodel.predict(events, verbose=0)).passed
