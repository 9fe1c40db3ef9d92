"""The Keras/QKeras layer forms `l1ml convert --keras` converts bit for bit, and the rewrites that bring a model into them.

hls4ml reads the firmware's types off a QKeras model's quantisers, and gives every other value a default type. Where
that would not give QKeras' values, the model is first rewritten into an equivalent one that hls4ml reads right (its
outputs are checked unchanged), and a form that cannot be made exact is refused by name (layer, quantiser, what is
wrong, what to do). The rewrites follow the exact value grid (LSB and range) of every layer's output through the model,
from the firmware's input type:

- the activation of a Dense/QDense layer becomes a layer of its own, the form l1ml's type recipe
  (`l1ml.firmware.hls.exact_config`) handles;
- a (Q)BatchNormalization right after a dense layer is folded into it when it scales every channel by a power of two;
  any other normalisation is refused (the firmware cannot multiply by QKeras' float32 scales);
- every dense kernel and bias that hls4ml's type would not hold exactly gets a `quantized_bits(W, I, alpha=1)` quantiser
  that holds its quantised values: power-of-two (`quantized_po2`) kernels, power-of-two `alpha` scales ('auto_po2', and
  QDense turns a kernel's alpha=None into 'auto_po2'), `keep_negative=False`, float weights on a grid of at most 24 bits.
  hls4ml would use truncating shift products, a rescaling layer, a type one bit too coarse, or ap_fixed<16,6>;
- a Keras relu becomes a `quantized_relu` that holds its input's grid (hls4ml would give it ap_fixed<16,6>), a linear
  activation layer is dropped;
- a `quantized_relu` with a negative slope gets a saturating `quantized_bits` before it when its input can fall below
  -2**I: QKeras clips the negative side at -slope * 2**I, the firmware's type at -2**I.

Activations that convert: QKeras quantized_bits and quantized_relu (`l1ml.quantize.qkeras_types.activation_type`),
Keras relu and linear, and a softmax as the last layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ml.errors import L1mlError
from l1ml.quantize.fixedpoint import FLOAT32_EXACT_WIDTH, FixedType, fraction_bits, holding_type, range_type
from l1ml.quantize.qkeras_types import activation_type, quantizer

DENSE = ("Dense", "QDense")
NORMALISATION = ("BatchNormalization", "QBatchNormalization")
SUPPORTED = ("InputLayer", *DENSE, *NORMALISATION, "QActivation", "Activation", "ReLU", "Softmax")
FORMS = ("Dense/QDense (kernel and bias: quantized_bits, quantized_po2, or float values on a grid of at most 24 bits), "
         "QActivation(quantized_bits | quantized_relu), Activation('linear' | 'relu'), ReLU(), a (Q)BatchNormalization "
         "right after a dense layer that scales by powers of two, and a softmax as the last layer")


@dataclass(frozen=True)
class Grid:
    """The values a layer's output can take: multiples of 2**-fractional in [lo, hi]."""

    fractional: int
    lo: float
    hi: float

    @classmethod
    def of(cls, t: FixedType) -> Grid:
        return cls(t.fractional, t.min_value, t.max_value)

    def relu(self) -> Grid:
        return Grid(self.fractional, max(self.lo, 0.0), max(self.hi, 0.0))


def prepare(model, input_type: FixedType, probe: np.ndarray, source: Path):
    """(the model in forms hls4ml converts bit for bit, notes on what was rewritten); `model` itself if nothing was.
    `probe` inputs (on the input type's grid) check that a rewritten model gives exactly the same outputs. Refused forms
    raise L1mlError."""
    from l1ml.models.keras import rebuild  # heavy: imported only where needed

    forms = _Forms(model, Grid.of(input_type), source)
    plan = {layer.name: forms.replacement(layer) for layer in model.layers}
    if all(pieces is None for pieces in plan.values()):
        return model, []
    new = rebuild(model, lambda layer: plan[layer.name])
    if not np.array_equal(model.predict(probe, verbose=0), new.predict(probe, verbose=0)):
        raise L1mlError(f"rewriting the model for hls4ml ({'; '.join(forms.notes)}) changed its outputs", path=source)
    return new, forms.notes


def qactivation_type(layer) -> FixedType:
    """The type of a QActivation layer's output (see `activation_type`)."""
    from l1ml.models.keras import quantiser_config  # heavy: imported only where needed

    return activation_type(*quantiser_config(layer.quantizer))


class _Forms:
    """The checks and rewrites of one model's layers, in the model's (topological) layer order."""

    def __init__(self, model, input_grid: Grid, source: Path):
        self.model, self.source, self.notes = model, source, []
        self.grids = {id(t): input_grid for t in model.inputs}  # output tensor -> its value grid

    def refuse(self, layer, what: str) -> L1mlError:
        return L1mlError(f"layer {layer.name!r} ({type(layer).__name__}): {what}", path=self.source)

    def replacement(self, layer) -> list | None:
        """The (layer, weights) pieces that replace `layer` (None: kept as it is; []: dropped, its input passed on)."""
        cls = type(layer).__name__
        if cls == "InputLayer":
            return None
        if cls not in SUPPORTED:
            raise self.refuse(layer, f"l1ml converts these forms bit for bit: {FORMS}")
        grid = self.grids[id(layer.input)]
        if cls in DENSE:
            pieces, grid = self._dense(layer, grid)
        elif cls in NORMALISATION:
            self._folded_into(layer)  # by _dense, which already gave the folded grid
            pieces = []
        else:
            pieces, grid = self._activation_layer(layer, cls, grid)
        self.grids[id(layer.output)] = grid
        return pieces

    # activations -------------------------------------------------------------------------------------------------

    def _activation_layer(self, layer, cls: str, grid: Grid) -> tuple[list | None, Grid]:
        """(the pieces that compute an activation layer exactly in the firmware, None if it does as it is; their output's
        grid)."""
        if cls == "QActivation" and hasattr(layer.quantizer, "get_config"):  # a quantiser, not a function such as relu
            t = self._quantiser_type(layer, layer.quantizer)
            clip = self._clip_before_leaky(layer, layer.quantizer, t, grid)
            return (clip + [(type(layer).from_config(layer.get_config()), None)] if clip else None), Grid.of(t)
        activation = layer.quantizer if cls == "QActivation" else layer if cls in ("ReLU", "Softmax") else layer.activation
        name = self._keras_activation(layer, cls, activation)
        if name == "softmax":
            return None, grid
        if name == "linear":
            self.notes.append(f"{layer.name}: linear activation dropped")
            return [], grid
        return self._exact_relu(layer, grid, layer.name)

    def _dense_activation(self, layer, grid: Grid) -> tuple[list, Grid]:
        """The pieces that compute a dense layer's activation argument as a layer of its own, and their output's grid."""
        import tensorflow as tf  # heavy: imported only where needed
        from qkeras import QActivation  # heavy: imported only where needed

        activation, name = layer.activation, f"{layer.name}_activation"
        if hasattr(activation, "get_config"):  # a QKeras quantiser
            t = self._quantiser_type(layer, activation)
            self.notes.append(f"{layer.name}: activation {_describe(activation)} as layer {name}")
            return self._clip_before_leaky(layer, activation, t, grid) + [(QActivation(_copy(activation), name=name), None)], Grid.of(t)
        keras_name = self._keras_activation(layer, "Activation", activation)
        if keras_name == "linear":
            return [], grid
        if keras_name == "softmax":
            self.notes.append(f"{layer.name}: softmax as layer {name}")
            return [(tf.keras.layers.Activation("softmax", name=name), None)], grid
        return self._exact_relu(layer, grid, name)

    def _quantiser_type(self, layer, activation) -> FixedType:
        try:
            return activation_type(*_quantiser_config(activation))
        except ValueError as exc:
            raise self.refuse(layer, f"{_describe(activation)}: {exc}") from None

    def _keras_activation(self, layer, cls: str, activation) -> str:
        """The name of a Keras activation that converts (linear, relu, or softmax as the last layer); refused otherwise."""
        name, config = _quantiser_config(activation)
        if cls == "ReLU":
            if config.get("max_value") is not None or config.get("negative_slope") or config.get("threshold"):
                raise self.refuse(layer, "a ReLU with max_value, negative_slope or threshold has no exact firmware form: use "
                                         "QActivation(quantized_relu(W, I)) or a plain ReLU()")
            name = "relu"
        name = "softmax" if cls == "Softmax" else name
        if name == "softmax" and layer.output is not self.model.outputs[0]:
            raise self.refuse(layer, "a softmax converts only as the model's last layer")
        if name not in ("linear", "relu", "softmax"):
            raise self.refuse(layer, f"activation {name!r} is computed by hls4ml with lookup tables or approximations, not bit "
                                     "for bit: use relu or linear, or a QActivation(quantized_relu | quantized_bits)")
        return name

    def _clip_before_leaky(self, layer, activation, t: FixedType, grid: Grid) -> list:
        """A quantized_relu with a negative slope s clips at -s * 2**I in QKeras; the firmware's type saturates at -2**I,
        so an input below -2**I is first saturated there, without rounding, by a quantized_bits on the input's grid."""
        from qkeras import QActivation  # heavy: imported only where needed

        if not t.signed or type(activation).__name__ != "quantized_relu" or grid.lo >= t.min_value:
            return []
        try:
            clip = range_type(grid.fractional, t.min_value, -t.min_value - 2.0 ** -grid.fractional)
        except ValueError as exc:
            raise self.refuse(layer, f"{_describe(activation)} clips its negative side, which needs its input saturated at "
                                     f"{t.min_value} on the input's grid first: {exc}; put a QActivation(quantized_bits(W, "
                                     f"{t.integer - 1})) of at most 24 bits before it") from None
        piece = QActivation(quantizer(clip), name=f"{layer.name}_clip")
        self.notes.append(f"{layer.name}: negative side clipped at {t.min_value} first ({piece.name}: {quantizer(clip)})")
        return [(piece, None)]

    def _exact_relu(self, layer, grid: Grid, name: str) -> tuple[list, Grid]:
        """A Keras relu as a quantized_relu whose type holds the input's non-negative values exactly."""
        from qkeras import QActivation  # heavy: imported only where needed

        out = grid.relu()
        try:
            t = range_type(out.fractional, 0.0, out.hi, signed=False)
        except ValueError as exc:
            raise self.refuse(layer, f"its relu's input needs an exact type: {exc}, as QKeras computes in float32; use a "
                                     "QActivation(quantized_relu(W, I)) of at most 24 bits instead") from None
        relu = QActivation(quantizer(t), name=name)
        self.notes.append(f"{layer.name}: relu as {quantizer(t)}, which holds its input's values")
        return [(relu, None)], out

    # dense layers ------------------------------------------------------------------------------------------------

    def _dense(self, layer, grid: Grid) -> tuple[list | None, Grid]:
        kernel, bias = _quantised_weights(layer)
        norm = self._normalisation_after(layer)
        if norm is not None:
            kernel, bias = self._fold(norm, kernel, bias)
            self.notes.append(f"{norm.name}: folded into {layer.name}")
        quantisers = {role: self._weight_quantiser(layer, role, values, refit=norm is not None)
                      for role, values in (("kernel", kernel), ("bias", bias))}
        self._check_float32_sums(layer, grid, kernel, bias)
        activation, out = self._dense_activation(layer, _dense_grid(grid, kernel, bias))
        if norm is None and not activation and not any(quantisers.values()):
            return None, out
        from qkeras import QDense  # heavy: imported only where needed

        keep = {role: _copy(getattr(layer, f"{role}_quantizer_internal", None)) for role in quantisers}
        dense = QDense(int(layer.units), name=layer.name, **{f"{role}_quantizer": quantisers[role] or keep[role] for role in quantisers})
        return [(dense, [kernel.astype(np.float32), bias.astype(np.float32)]), *activation], out

    def _check_float32_sums(self, layer, grid: Grid, kernel: np.ndarray, bias: np.ndarray) -> None:
        """QKeras computes a dense layer in float32, exact only while every partial sum fits its 24-bit significand
        (in units of the sum's LSB); the firmware is exact, so a layer whose sums can need more bits is refused."""
        bits = _sum_bits(grid, kernel, bias)
        if bits <= FLOAT32_EXACT_WIDTH:
            return
        hint = ("give a narrower --input-type or quantise the inputs (a QActivation(quantized_bits(W, I)) first)"
                if layer.input is self.model.inputs[0] else "quantise its input to fewer bits, or its weights")
        raise self.refuse(layer, f"its sums can need {bits} bits (inputs on a grid of 2**-{grid.fractional} in [{grid.lo:g}, "
                                 f"{grid.hi:g}]), but QKeras computes them in float32, which holds {FLOAT32_EXACT_WIDTH}: "
                                 f"QKeras would round where the firmware does not; {hint}")

    def _weight_quantiser(self, layer, role: str, values: np.ndarray, refit: bool) -> str | None:
        """A quantized_bits(alpha=1) quantiser string holding `values` exactly, or None when hls4ml's reading of the
        layer's own quantiser already does."""
        q = getattr(layer, f"{role}_quantizer_internal", None)
        if not refit and q is not None and _read_exactly(q, values):
            return None
        self._check_scale(layer, role, q)
        given = _describe(q) if q is not None else "not quantised"
        try:
            t = holding_type(values)
        except ValueError as exc:
            raise self.refuse(layer, f"its {role} ({given}): {exc}, as QKeras computes in float32; quantise it with "
                                     "quantized_bits(W, I, alpha=1) of at most 24 bits") from None
        self.notes.append(f"{layer.name}: {role} ({given}) as {quantizer(t)}")
        return quantizer(t)

    def _check_scale(self, layer, role: str, q) -> None:
        """A quantiser's alpha scale (set when it last quantised the weights) must be a power of two in every channel."""
        alpha = getattr(q, "alpha", None)
        if alpha in (None, 1, 1.0):
            return
        scale = np.ravel(np.asarray(q.scale, dtype=np.float64))
        bad = scale[~_powers_of_two(scale)]
        if bad.size:
            raise self.refuse(layer, f"its {role} quantiser {_describe(q)} scales by {bad[0]:.6g}, not a power of two, which no "
                                     f"fixed-point {role} holds exactly: give alpha=1 or alpha='auto_po2'")

    # batch normalisation -----------------------------------------------------------------------------------------

    def _normalisation_after(self, layer):
        users = self._users(layer)
        if len(users) == 1 and type(users[0]).__name__ in NORMALISATION:
            self._folded_into(users[0])
            return users[0]
        return None

    def _folded_into(self, norm) -> None:
        """Refuse a normalisation that does not directly follow a dense layer with a linear output."""
        sources = _inbound(norm)
        source = sources[0] if len(sources) == 1 else None
        if source is None or type(source).__name__ not in DENSE or self._users(source) != [norm]:
            raise self.refuse(norm, "only a batch normalisation right after a dense layer (its only user) folds into the "
                                    "firmware: move it after a Dense/QDense layer or remove it")
        if getattr(source.activation, "__name__", None) != "linear":
            raise self.refuse(norm, f"it normalises the output of {source.name!r} after its activation, which does not fold: "
                                    "give the dense layer no activation and put the activation after the normalisation")

    def _fold(self, norm, kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The dense layer's kernel and bias with the normalisation y * inv + offset folded in, inv and offset computed as
        TensorFlow's batch_normalization computes them (in float32)."""
        inv, offset = _normalisation_affine(norm)
        bad = np.flatnonzero(~_powers_of_two(inv))
        if bad.size:
            value = inv[bad[0]]
            nearest = 2.0 ** np.round(np.log2(abs(value))) if value else 0.0
            close = bool(nearest) and abs(value / nearest - 1) < 1e-6
            why = (f" (TensorFlow's float32 rsqrt on this CPU is an approximation: {nearest:g} exactly on paper, {value:.9g} in "
                   "TensorFlow's own inference here)" if close else "")
            raise self.refuse(norm, f"it scales channel {bad[0]} by gamma/sqrt(variance + epsilon) = {value:.{9 if close else 6}g}, not a power "
                                    f"of two{why}, so the firmware cannot reproduce it bit for bit: fold it into the "
                                    "preceding layer before quantisation-aware training, or remove it")
        return kernel * inv[None, :], bias * inv + offset

    def _users(self, layer) -> list:
        return [user for user in self.model.layers if any(source is layer for source in _inbound(user))]


def _dense_grid(grid: Grid, kernel: np.ndarray, bias: np.ndarray) -> Grid:
    """The grid of x @ kernel + bias for every x on `grid`: exact products and sums, bounds by interval arithmetic."""
    lo = np.minimum(kernel * grid.lo, kernel * grid.hi).sum(axis=0) + bias
    hi = np.maximum(kernel * grid.lo, kernel * grid.hi).sum(axis=0) + bias
    fractional = max(grid.fractional + fraction_bits(kernel), fraction_bits(bias))
    return Grid(fractional, float(lo.min()), float(hi.max()))


def _sum_bits(grid: Grid, kernel: np.ndarray, bias: np.ndarray) -> int:
    """The most magnitude bits, in units of its output's LSB, that a partial sum of one output of x @ kernel + bias can
    need for x on `grid`."""
    magnitude = max(abs(grid.lo), abs(grid.hi))
    bits = [math.ceil(math.log2(math.ldexp(float(np.abs(column).sum() * magnitude + abs(b)),
                                           max(grid.fractional + fraction_bits(column), fraction_bits(b))) + 1))
            for column, b in zip(kernel.T, bias)]
    return max(bits, default=0)


def _inbound(layer) -> list:
    import tensorflow as tf  # heavy: imported only where needed

    return tf.nest.flatten(layer.inbound_nodes[0].inbound_layers) if layer.inbound_nodes else []


def _quantiser_config(quantiser) -> tuple[str, dict]:
    from l1ml.models.keras import quantiser_config  # heavy: imported only where needed

    return quantiser_config(quantiser)


def _copy(quantiser):
    return None if quantiser is None else type(quantiser).from_config(quantiser.get_config())


def _describe(quantiser) -> str:
    text = str(quantiser)
    return text if "(" in text else getattr(quantiser, "__name__", type(quantiser).__name__)


def _quantised_weights(layer) -> tuple[np.ndarray, np.ndarray]:
    """The kernel and bias a dense layer computes with (its quantisers applied), as float64."""
    def values(role):
        weight = getattr(layer, role)
        q = getattr(layer, f"{role}_quantizer_internal", None)
        return np.asarray(q(weight) if q is not None else weight, dtype=np.float64)

    kernel = values("kernel")
    bias = values("bias") if layer.use_bias else np.zeros(kernel.shape[1])
    return kernel, bias


def _read_exactly(q, values: np.ndarray) -> bool:
    """hls4ml reads quantized_bits(W, I) with alpha 1 as ap_fixed<W,I+1>: does that type hold the quantised values?"""
    name, config = _quantiser_config(q)
    if name != "quantized_bits" or config.get("alpha") not in (None, 1, 1.0) or not config.get("keep_negative", True):
        return False
    t = FixedType(int(config["bits"]), int(config["integer"]) + 1)
    return bool(np.array_equal(t.quantize(values), values))


def _powers_of_two(x: np.ndarray) -> np.ndarray:
    mantissa, _ = np.frexp(np.abs(x))
    return (mantissa == 0.5) | (x == 0)


def _normalisation_affine(norm) -> tuple[np.ndarray, np.ndarray]:
    """(inv, offset) per channel of a (Q)BatchNormalization at inference: y = x * inv + offset, with its quantisers
    applied to gamma, beta, mean and variance, in float32 as tf.nn.batch_normalization computes them."""
    import tensorflow as tf  # heavy: imported only where needed

    def parameter(name, quantiser):
        value = getattr(norm, name)
        q = getattr(norm, f"{quantiser}_quantizer_internal", None)
        return None if value is None else tf.cast(q(value) if q is not None else value, tf.float32)

    gamma, beta = parameter("gamma", "gamma"), parameter("beta", "beta")
    mean, variance = parameter("moving_mean", "mean"), parameter("moving_variance", "variance")
    inv = tf.math.rsqrt(variance + norm.epsilon)
    if gamma is not None:
        inv *= gamma
    offset = beta - mean * inv if beta is not None else -mean * inv
    return np.asarray(inv, dtype=np.float64), np.asarray(offset, dtype=np.float64)
