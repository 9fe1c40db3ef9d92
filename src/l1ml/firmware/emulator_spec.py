"""The emulator specification (`emulator.json`) of an hls4ml model: its layers, types and weights as integer codes,
for `l1ml.emulate.network.NetworkEmulator`. A layer or type the emulator cannot reproduce exactly is refused."""

from __future__ import annotations

import numpy as np

from l1ml.documents import EmulatorSpec
from l1ml.emulate.network import EXACT_BITS, EmulatorUnsupported
from l1ml.quantize.fixedpoint import FixedType, parse_precision

SUPPORTED = ("Input", "Dense", "Activation", "Merge")


def hls_type(precision) -> FixedType:
    """An hls4ml precision (object or string, in any of hls4ml's spellings) as a FixedType; EmulatorUnsupported if it is
    not a fixed-point or integer type."""
    try:
        return parse_precision(precision)
    except ValueError as exc:
        raise EmulatorUnsupported(f"type {exc}") from None


def spec_from_hls4ml(hls_model) -> EmulatorSpec:
    """The emulator specification of a converted hls4ml model (raises EmulatorUnsupported)."""
    layers = []
    for layer in hls_model.get_layers():
        cls = layer.class_name
        if cls not in SUPPORTED:
            raise EmulatorUnsupported(f"layer {layer.name!r} of class {cls}")
        out = hls_type(layer.get_output_variable().type.precision)
        entry = {"name": layer.name, "class": cls, "inputs": list(layer.inputs), "output": layer.outputs[0],
                 "result_type": str(out)}  # a layer of EmulatorSpec
        if cls == "Dense":
            entry.update(_dense_spec(hls_model, layer))
        elif cls == "Activation":
            if layer.get_attr("activation") not in ("relu", "linear"):
                raise EmulatorUnsupported(f"activation {layer.get_attr('activation')!r} of layer {layer.name!r}")
            entry["activation"] = layer.get_attr("activation")
        elif cls == "Merge":
            if layer.get_attr("op") not in ("add", "subtract", "multiply"):
                raise EmulatorUnsupported(f"merge {layer.get_attr('op')!r} of layer {layer.name!r}")
            entry["op"] = layer.get_attr("op")
        layers.append(entry)
    return EmulatorSpec(inputs=list(hls_model.inputs), outputs=list(hls_model.outputs), layers=layers)


def _dense_spec(hls_model, layer) -> dict:
    backend = hls_model.config.backend
    x_t = hls_type(layer.get_input_variable().type.precision)
    w_t = hls_type(layer.weights["weight"].type.precision)
    b_t = hls_type(layer.weights["bias"].type.precision)
    acc_t = hls_type(layer.get_attr("accum_t").precision)
    product = backend.product_type(layer.get_input_variable().type.precision, layer.weights["weight"].type.precision)
    if product != "mult":
        raise EmulatorUnsupported(f"layer {layer.name!r} multiplies with {product!r} products")
    if acc_t.fractional < x_t.fractional + w_t.fractional or acc_t.overflow != "AP_WRAP":
        raise EmulatorUnsupported(f"layer {layer.name!r}: accumulator {acc_t} does not hold the exact products of {x_t} and {w_t}")
    n_in, n_out = layer.get_attr("n_in"), layer.get_attr("n_out")
    if x_t.width + w_t.width + int(np.ceil(np.log2(n_in + 1))) > EXACT_BITS:
        raise EmulatorUnsupported(f"layer {layer.name!r}: sums of {x_t} x {w_t} over {n_in} inputs exceed float64's exact range")
    return {"input_type": str(x_t), "weight_type": str(w_t), "bias_type": str(b_t), "accum_type": str(acc_t),
            "weight_codes": w_t.to_codes(np.reshape(layer.weights["weight"].data, (n_in, n_out))).tolist(),
            "bias_codes": b_t.to_codes(np.ravel(layer.weights["bias"].data)).tolist()}
