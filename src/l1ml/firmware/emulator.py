"""A vectorised, bit-exact emulator of the firmware arithmetic of hls4ml networks (io_parallel, Latency).

Values are held as float64 numbers on each type's grid. That is exact while every product and every
partial sum fits in 53 bits; `spec_from_hls4ml` checks it per layer from the types and the weights, and
refuses a layer it cannot emulate exactly. Each layer does what the hls4ml templates do:

- Dense: every product is cast to `accum_t`, the accumulator starts at `(accum_t) bias` and adds the
  products, the sum is cast to the result type. With products exact in `accum_t` and a wrapping
  accumulator, that is `wrap(bias + x @ W)`: one matrix product.
- ReLU: `x > 0 ? (res_t) x : 0`; linear: `(res_t) x`.
- Add / Subtract / Multiply: the exact result cast to the result type.
- Softmax: lookup tables in firmware; evaluated here in float (flagged as approximate).

The specification is plain JSON (weights as integer codes), written next to the project by
`l1ml convert`, so verification needs neither TensorFlow nor hls4ml. `l1ml verify` proves the emulator
equal to the C-simulation on every verified event.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from l1ml.quantize.fixedpoint import FixedType, parse_fixed

EXACT_BITS = 52  # float64 holds integers up to 2**53; one bit of margin for the rounding offsets
CHUNK = 4096  # events per block: keeps each layer's arrays in the CPU caches
SUPPORTED = ("Input", "Dense", "Activation", "Merge", "Softmax")


class EmulatorUnsupported(Exception):
    """The network has a layer or a type that the emulator does not reproduce exactly."""


def hls_type(precision) -> FixedType:
    """An hls4ml precision object as a FixedType."""
    name = type(precision).__name__
    if "IntegerPrecisionType" in name:
        return parse_fixed(f"ap_{'' if precision.signed else 'u'}int<{precision.width}>")
    if "FixedPrecisionType" not in name or getattr(precision, "saturation_bits", 0):
        raise EmulatorUnsupported(f"type {precision} ({name})")
    sign = "" if precision.signed else "u"
    return parse_fixed(f"ap_{sign}fixed<{precision.width},{precision.integer},AP_{precision.rounding_mode},AP_{precision.saturation_mode}>")


def spec_from_hls4ml(hls_model) -> dict:
    """The emulator specification of a converted hls4ml model (raises EmulatorUnsupported)."""
    layers = []
    for layer in hls_model.get_layers():
        cls = layer.class_name
        if cls not in SUPPORTED:
            raise EmulatorUnsupported(f"layer {layer.name!r} of class {cls}")
        out = hls_type(layer.get_output_variable().type.precision)
        entry = {"name": layer.name, "class": cls, "inputs": list(layer.inputs), "output": layer.outputs[0],
                 "result_type": str(out)}
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
    return {"format": "l1ml-emulator-network/1", "inputs": list(hls_model.inputs), "outputs": list(hls_model.outputs),
            "layers": layers}


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
    w = w_t.quantize(np.asarray(layer.weights["weight"].data, dtype=np.float64).reshape(layer.get_attr("n_in"), layer.get_attr("n_out")))
    n_in = w.shape[0]
    if x_t.width + w_t.width + int(np.ceil(np.log2(n_in + 1))) > EXACT_BITS:
        raise EmulatorUnsupported(f"layer {layer.name!r}: sums of {x_t} x {w_t} over {n_in} inputs exceed float64's exact range")
    b = b_t.quantize(np.asarray(layer.weights["bias"].data, dtype=np.float64).reshape(-1))
    return {"input_type": str(x_t), "weight_type": str(w_t), "bias_type": str(b_t), "accum_type": str(acc_t),
            "weight_codes": np.ldexp(w, w_t.fractional).astype(np.int64).tolist(),
            "bias_codes": np.ldexp(b, b_t.fractional).astype(np.int64).tolist()}


def save_spec(spec: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(spec, separators=(",", ":")) + "\n")


class NetworkEmulator:
    """Evaluates an emulator specification on batches of inputs (events x features, on the input grid)."""

    def __init__(self, spec: dict, threads: int | None = None):
        self.spec = spec
        self.threads = threads or len(os.sched_getaffinity(0))
        self.approximate = [layer["name"] for layer in spec["layers"] if layer["class"] == "Softmax"]
        self._steps = [self._compile(layer) for layer in spec["layers"]]

    @classmethod
    def load(cls, path: Path, threads: int | None = None) -> NetworkEmulator:
        return cls(json.loads(Path(path).read_text()), threads)

    @staticmethod
    def _compile(layer: dict):
        t = parse_fixed(layer["result_type"])
        cls = layer["class"]
        if cls == "Input":
            return lambda values, x: t.quantize_float(x)
        if cls == "Dense":
            w_t, b_t, acc_t = (parse_fixed(layer[k]) for k in ("weight_type", "bias_type", "accum_type"))
            w = np.ldexp(np.array(layer["weight_codes"], dtype=np.float64), -w_t.fractional)
            b = acc_t.quantize(np.ldexp(np.array(layer["bias_codes"], dtype=np.float64), -b_t.fractional))
            src = layer["inputs"][0]

            def dense(values, x):
                acc = values[src] @ w
                acc += b
                return t.quantize_float(acc_t.quantize_float(acc))
            return dense
        if cls == "Activation":
            src = layer["inputs"][0]
            if layer["activation"] == "relu":
                return lambda values, x: t.quantize_float(np.maximum(values[src], 0.0))
            return lambda values, x: t.quantize_float(values[src])
        if cls == "Merge":
            a, b = layer["inputs"]
            op = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply}[layer["op"]]
            return lambda values, x: t.quantize_float(op(values[a], values[b]))
        if cls == "Softmax":
            src = layer["inputs"][0]

            def softmax(values, x):
                z = values[src] - values[src].max(axis=1, keepdims=True)
                e = np.exp(z)
                return e / e.sum(axis=1, keepdims=True)
            return softmax
        raise EmulatorUnsupported(f"layer class {cls}")

    def _run_block(self, x: np.ndarray) -> np.ndarray:
        values: dict[str, np.ndarray] = {}
        for layer, step in zip(self.spec["layers"], self._steps):
            values[layer["output"]] = step(values, x)
        return values[self.spec["outputs"][0]]

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        blocks = [x[i:i + CHUNK] for i in range(0, len(x), CHUNK)] or [x]
        if self.threads > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                return np.concatenate(list(pool.map(self._run_block, blocks)))
        return np.concatenate([self._run_block(b) for b in blocks])
