"""A vectorised, bit-exact emulator of the firmware arithmetic of hls4ml networks (io_parallel, Latency).

Values are held as float64 numbers on each type's grid. That is exact while every product and every
partial sum fits in 53 bits; `spec_from_hls4ml` checks it per layer from the types and the weights, and
refuses a layer it cannot emulate exactly (`l1ml.firmware.emulator_spec` writes the specification). Each layer does what the hls4ml templates do:

- Dense: every product is cast to `accum_t`, the accumulator starts at `(accum_t) bias` and adds the
  products, the sum is cast to the result type. With products exact in `accum_t` and a wrapping
  accumulator, that is `wrap(bias + x @ W)`: one matrix product.
- ReLU: `x > 0 ? (res_t) x : 0`; linear: `(res_t) x`.
- Add / Subtract / Multiply: the exact result cast to the result type.
Anything else (a softmax's lookup tables, say) is refused: the emulator is exact or absent.

The specification (`l1ml.documents.EmulatorSpec`) is plain JSON, weights as integer codes, written next to the
project by `l1ml convert`, so verification needs neither TensorFlow nor hls4ml. `l1ml verify` proves the emulator
equal to the C-simulation on every verified event.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ml.documents import ActivationLayer, DenseLayer, EmulatorLayer, EmulatorSpec, InputLayer, read
from l1ml.quantize.fixedpoint import FixedType, parse_fixed

EXACT_BITS = 52  # float64 holds integers up to 2**53; one bit of margin for the rounding offsets
CHUNK = 4096  # events per block: keeps each layer's arrays in the CPU caches


class EmulatorUnsupported(Exception):
    """The network has a layer or a type that the emulator does not reproduce exactly."""


@dataclass(frozen=True)
class Bounds:
    """What a value can be: within [lo, hi], on a grid of 2**-frac."""

    lo: float
    hi: float
    frac: int


def _contains(t: FixedType, b: Bounds) -> bool:
    return b.frac <= t.fractional and b.lo >= t.min_value and b.hi <= t.max_value


def _cast(t: FixedType, b: Bounds):
    """(function casting a value within b to t, bounds of the result); the identity when t holds every such value."""
    if _contains(t, b):
        return (lambda v: v), b
    if t.overflow == "AP_WRAP":
        return t.quantize_float, Bounds(t.min_value, t.max_value, t.fractional)
    return t.quantize_float, Bounds(max(b.lo, t.min_value), min(b.hi, t.max_value), t.fractional)


class NetworkEmulator:
    """Evaluates an emulator specification on batches of inputs (events x features).

    Each cast is skipped where the value's bounds (tracked layer by layer from the types and the
    weights) show that it cannot change the value.
    """

    def __init__(self, spec: EmulatorSpec, threads: int | None = None):
        if spec.unsupported is not None:
            raise EmulatorUnsupported(spec.unsupported)
        self.spec = spec
        self.threads = threads or len(os.sched_getaffinity(0))
        bounds: dict[str, Bounds] = {}
        self._steps = []
        for layer in spec.layers:
            step, bounds[layer.output] = self._compile(layer, bounds)
            self._steps.append(step)

    @classmethod
    def load(cls, path: Path, threads: int | None = None) -> NetworkEmulator:
        """The emulator of an `emulator.json`; an older, foreign or damaged one is an L1mlError naming it."""
        return cls(read(path, EmulatorSpec), threads)

    @staticmethod
    def _compile(layer: EmulatorLayer, bounds: dict[str, Bounds]):
        t = parse_fixed(layer.result_type)
        src = layer.inputs[0]
        if isinstance(layer, InputLayer):
            cast, out = _cast(t, Bounds(-np.inf, np.inf, 10**6))
            return (lambda values, x: cast(x)), out
        if isinstance(layer, DenseLayer):
            w_t, b_t, acc_t = (parse_fixed(k) for k in (layer.weight_type, layer.bias_type, layer.accum_type))
            w = np.ldexp(np.array(layer.weight_codes, dtype=np.float64), -w_t.fractional)
            b = acc_t.quantize(np.ldexp(np.array(layer.bias_codes, dtype=np.float64), -b_t.fractional))
            x_b = bounds[src]
            lo = b + np.minimum(w * x_b.lo, w * x_b.hi).sum(axis=0)
            hi = b + np.maximum(w * x_b.lo, w * x_b.hi).sum(axis=0)
            acc_cast, acc_b = _cast(acc_t, Bounds(float(lo.min()), float(hi.max()), max(x_b.frac + w_t.fractional, acc_t.fractional)))
            cast, out = _cast(t, acc_b)

            def dense(values, x):
                acc = values[src] @ w
                acc += b
                return cast(acc_cast(acc))
            return dense, out
        if isinstance(layer, ActivationLayer) and layer.activation == "relu":
            x_b = bounds[src]
            cast, out = _cast(t, Bounds(max(x_b.lo, 0.0), max(x_b.hi, 0.0), x_b.frac))
            if not t.signed and t.overflow != "AP_WRAP":  # a saturating unsigned cast already maps negatives to 0
                return (lambda values, x: t.quantize_float(values[src])), out
            return (lambda values, x: cast(np.maximum(values[src], 0.0))), out
        if isinstance(layer, ActivationLayer):
            cast, out = _cast(t, bounds[src])
            return (lambda values, x: cast(values[src])), out
        a, b_name = layer.inputs  # a Merge
        p, q = bounds[a], bounds[b_name]
        if layer.op == "multiply":
            corners = [p.lo * q.lo, p.lo * q.hi, p.hi * q.lo, p.hi * q.hi]
            exact = Bounds(min(corners), max(corners), p.frac + q.frac)
        elif layer.op == "add":
            exact = Bounds(p.lo + q.lo, p.hi + q.hi, max(p.frac, q.frac))
        else:
            exact = Bounds(p.lo - q.hi, p.hi - q.lo, max(p.frac, q.frac))
        op = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply}[layer.op]
        cast, out = _cast(t, exact)
        return (lambda values, x: cast(op(values[a], values[b_name]))), out

    def _run_block(self, x: np.ndarray) -> np.ndarray:
        values: dict[str, np.ndarray] = {}
        for layer, step in zip(self.spec.layers, self._steps):
            values[layer.output] = step(values, x)
        return values[self.spec.outputs[0]]

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        blocks = [x[i:i + CHUNK] for i in range(0, len(x), CHUNK)] or [x]
        if self.threads > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                return np.concatenate(list(pool.map(self._run_block, blocks)))
        return np.concatenate([self._run_block(b) for b in blocks])
