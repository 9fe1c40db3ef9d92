"""hls4ml projects for the quantised networks of `l1ml train`, with every precision set so that the
C-simulation equals the QKeras model bit for bit.

The recipe (checked by firmware_tests/ on trained models, test events and adversarial inputs):
- the input type is the run's input type, not hls4ml's default `ap_fixed<16,6>`;
- a linear `QActivation(quantized_bits)` right after a dense layer is removed by hls4ml's optimisers
  without its type being carried over, so the dense layer's result type is set to it (and that of the linear
  activation hls4ml splits off the dense layer, else ap_fixed<16,6>);
- a QActivation's type is l1ml's reading of its quantiser (`l1ml.quantize.qkeras_types.activation_type`): hls4ml
  reads `keep_negative=False` and `symmetric` as if they were not given;
- every other type is what `config_from_keras_model(granularity="name")` reads off the QKeras
  quantisers: `ap_fixed<W,I,AP_RND_CONV,AP_SAT>` / `ap_ufixed<...>`, with accumulators wide enough
  for the exact sums of the layers l1ml builds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from l1ml.config.hw import HwTarget
from l1ml.documents import CONVERT, ConvertInfo, EmulatorSpec
from l1ml.errors import L1mlError
from l1ml.firmware.emulator_spec import EmulatorUnsupported, spec_from_hls4ml
from l1ml.firmware.keras_forms import qactivation_type

BACKENDS = {"vitis": "Vitis", "vivado": "Vivado"}
PROJECT = "l1ml_model"
EMULATOR = "emulator.json"


@dataclass
class HlsProject:
    model: object  # hls4ml ModelGraph
    out_dir: Path
    config: dict


def hls4ml_config(model, *, backend: str, reuse_factor: int) -> dict:
    """hls4ml's own configuration of `model`, as `config_from_keras_model(granularity="name")` gives it."""
    import hls4ml  # heavy: imported only where needed

    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=BACKENDS[backend])
    cfg["Model"]["ReuseFactor"] = reuse_factor
    cfg["Model"]["Strategy"] = "Latency"
    return cfg


def exact_config(model, input_type: str, *, backend: str, reuse_factor: int) -> dict:
    """hls4ml's configuration with the precisions that make the C-simulation equal QKeras (see the module doc)."""

    cfg = hls4ml_config(model, backend=backend, reuse_factor=reuse_factor)
    layers = cfg["LayerName"]
    layers[model.input_names[0]]["Precision"]["result"] = input_type  # the input layer (Sequential models hide it)
    for layer in model.layers:
        if is_softmax(layer):
            layers[layer.name].update(_softmax_config(int(layer.output_shape[-1])))
        if type(layer).__name__ != "QActivation":
            continue
        layers[layer.name]["Precision"]["result"] = str(qactivation_type(layer))  # hls4ml ignores keep_negative, symmetric
        if not str(layer.activation).startswith("quantized_bits"):
            continue
        source = layer.inbound_nodes[0].inbound_layers
        if type(source).__name__ in ("QDense", "Dense"):  # with the linear activation hls4ml splits off it (else ap_fixed<16,6>)
            for name in (source.name, f"{source.name}_linear"):
                layers.get(name, {}).setdefault("Precision", {})["result"] = layers[layer.name]["Precision"]["result"]
    return cfg


def is_softmax(layer) -> bool:
    """A Softmax layer, or an Activation("softmax") layer."""
    name = type(layer).__name__
    return name == "Softmax" or (name == "Activation" and getattr(layer.activation, "__name__", "") == "softmax")


def _softmax_config(n_classes: int) -> dict:
    """hls4ml's 'stable' softmax with 4096-entry tables whose types fit its value ranges (exp of x - max lies in (0, 1],
    the sum of n exps in [1, n]). With hls4ml's defaults (1024 entries, ap_fixed<18,8> everywhere) the fixture
    classifiers' probabilities were off by up to 0.2; with these, by less than 0.005 (firmware_tests measure it)."""
    sum_bits = max(1, math.ceil(math.log2(n_classes + 1))) + 1
    return {
        "TableSize": 4096,
        "exp_table_t": "ap_fixed<18,2,AP_RND,AP_SAT>", "inv_table_t": "ap_fixed<18,2,AP_RND,AP_SAT>",
        "inv_inp_t": f"ap_ufixed<18,{sum_bits},AP_RND,AP_SAT>",
        # x_max - x indexes the exp table by its top 12 bits: in [0, 16), saturated (exp(-16) < 1e-6), that is 1/256 steps;
        # hls4ml's default keeps the logits' integer bits (1/16 steps for 9-bit logits: probabilities off by 0.015)
        "inp_norm_t": "ap_ufixed<18,4,AP_RND,AP_SAT>",
        "Precision": {"accum": f"ap_fixed<18,{sum_bits + 1},AP_RND,AP_SAT>", "result": "ap_ufixed<16,0,AP_RND_CONV,AP_SAT>"},
    }


def convert(model, input_type: str, out_dir: Path, target: HwTarget, *, backend: str = "vitis", reuse_factor: int = 1,
            clock_period_ns: float | None = None, exact: bool = True) -> HlsProject:
    """Write the hls4ml project for `model` to `out_dir` (replaced as a whole) and return it.

    `exact=False` keeps hls4ml's own precisions: only to measure what the exact recipe changes.
    """
    from l1ml.models.keras import quiet_qkeras_serialisation  # heavy: imported only where needed

    if backend not in BACKENDS:
        raise L1mlError(f"unknown backend; choose one of: {', '.join(BACKENDS)}", key="--backend", value=backend)
    with quiet_qkeras_serialisation():
        return _convert(model, input_type, out_dir, target, backend, reuse_factor, clock_period_ns, exact)


def _convert(model, input_type, out_dir, target, backend, reuse_factor, clock_period_ns, exact) -> HlsProject:
    import hls4ml  # heavy: imported only where needed

    if exact:
        cfg = exact_config(model, input_type, backend=backend, reuse_factor=reuse_factor)
    else:
        cfg = hls4ml_config(model, backend=backend, reuse_factor=reuse_factor)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    clock = clock_period_ns or target.default_clock_ns
    try:
        hls_model = hls4ml.converters.convert_from_keras_model(
            model, hls_config=cfg, output_dir=str(tmp / "hls4ml_prj"), project_name=PROJECT, backend=BACKENDS[backend],
            io_type="io_parallel", part=target.part, clock_period=clock)
        hls_model.write()
        _write_emulator(hls_model, tmp / EMULATOR)
        (tmp / "hls4ml_config.yaml").write_text(yaml.safe_dump(_plain(cfg), sort_keys=False))
        info = ConvertInfo(tool="hls4ml", tool_version=str(hls4ml.__version__), backend=BACKENDS[backend],
                           project=PROJECT, part=target.part, clock_period_ns=clock, target=target.name,
                           n_features=int(model.input_shape[-1]), n_outputs=int(model.output_shape[-1]),
                           types={"input": input_type},
                           details={"io_type": "io_parallel", "strategy": "Latency", "reuse_factor": reuse_factor})
        info.write(tmp / CONVERT)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    hls_model.config.config["OutputDir"] = str(out_dir / "hls4ml_prj")
    return HlsProject(hls_model, out_dir, cfg)


def _write_emulator(hls_model, path: Path) -> None:
    """The emulator specification of the converted graph, or the reason why there is none."""

    try:
        spec = spec_from_hls4ml(hls_model)
    except EmulatorUnsupported as exc:
        spec = EmulatorSpec(unsupported=str(exc))
    spec.write(path)


def _plain(value):
    """The config as plain YAML types (hls4ml keeps a few numpy and tuple values)."""
    return json.loads(json.dumps(value, default=str))
