"""The correspondence between HLS fixed-point types and QKeras quantisers.

QKeras' `quantized_bits(W, I-1, alpha=1)` holds exactly the values of `ap_fixed<W,I>`, and
`quantized_relu(W, I)` those of `ap_ufixed<W,I>`; both round to the nearest value, ties to even, and
saturate. So a config type `ap_fixed<W,I>` means `ap_fixed<W,I,AP_RND_CONV,AP_SAT>` once it is in a
QKeras model, and that full type is what l1ml records for the firmware.
"""

from __future__ import annotations

from dataclasses import replace

from l1ml.quantize.fixedpoint import FLOAT32_EXACT_WIDTH, FixedType, check_width, parse_fixed

QKERAS_ROUNDING = "AP_RND_CONV"
QKERAS_OVERFLOW = "AP_SAT"


def qkeras_type(text: str | FixedType) -> FixedType:
    """The type a QKeras quantiser implements for a config type: same W and I, round-to-even, saturate.

    Raises ValueError for a type QKeras cannot train with: other rounding or overflow modes, and the limits of
    `check_qkeras_limits`.
    """
    t = parse_fixed(text) if isinstance(text, str) else text
    if t.is_int:
        raise ValueError(f"{t}: use ap_fixed/ap_ufixed types in a network")
    check_qkeras_limits(t)
    if (t.rounding, t.overflow) not in (("AP_TRN", "AP_WRAP"), (QKERAS_ROUNDING, QKERAS_OVERFLOW)):
        raise ValueError(f"{t}: QKeras quantisers round to nearest even and saturate; "
                         f"write ap_fixed<W,I> or ap_fixed<W,I,{QKERAS_ROUNDING},{QKERAS_OVERFLOW}>")
    return replace(t, rounding=QKERAS_ROUNDING, overflow=QKERAS_OVERFLOW)


def check_qkeras_limits(t: FixedType) -> None:
    """The types a QKeras quantiser holds exactly (ValueError otherwise):

    - integer bits I >= 1 signed, I >= 0 unsigned: quantized_bits(W, I-1) and quantized_relu(W, I) compute
      2**integer as an integer power, which TensorFlow refuses for a negative one in the first training step;
    - a signed type has at least 2 bits: quantized_bits with 1 bit is a binary +-1 quantiser, not ap_fixed<1,I>;
    - at most 24 bits: QKeras quantises in float32, which holds every value of a type only up to 24 bits wide, and
      verification compares the firmware with the Keras model bit for bit.
    """
    lowest = 1 if t.signed else 0
    if t.integer < lowest:
        quantiser = "quantized_bits(W, I-1)" if t.signed else "quantized_relu(W, I)"
        raise ValueError(f"{t}: QKeras' {quantiser} needs I >= {lowest} (it fails on a negative power of 2)")
    if t.signed and t.width < 2:
        raise ValueError(f"{t}: QKeras' quantized_bits with 1 bit is a binary +-1 quantiser; give W >= 2")
    check_width(t, FLOAT32_EXACT_WIDTH, "QKeras quantises in float32, which holds every value of a type only up to 24 bits "
                                        "wide (the firmware is compared with the Keras model bit for bit)")


def relu_type(t: FixedType) -> FixedType:
    """A ReLU's output type for a layer whose result type is `t`: the non-negative half of it, same LSB and maximum."""
    if not t.signed:
        return t
    return replace(t, width=t.width - 1, integer=t.integer - 1, signed=False)


def quantizer(t: FixedType) -> str:
    """The QKeras quantiser for `t` (signed: quantized_bits; unsigned: quantized_relu), as the string QKeras parses.

    Layers are given the string, not the quantiser object: with Keras 2.14 a QActivation built from an
    object writes JSON that Keras cannot read back, one built from a string round-trips.

    >>> quantizer(qkeras_type("ap_fixed<8,3>")), quantizer(qkeras_type("ap_ufixed<6,2>"))
    ('quantized_bits(8,2,alpha=1)', 'quantized_relu(6,2)')
    """
    if t.signed:
        return f"quantized_bits({t.width},{t.integer - 1},alpha=1)"
    return f"quantized_relu({t.width},{t.integer})"


def activation_type(name: str, config: dict) -> FixedType:
    """The HLS type whose values are exactly the outputs of a QKeras activation quantiser (`name`, `config` as its
    get_config() gives them), so that a cast to it in the firmware equals the quantiser: both round to nearest, ties to
    even, and saturate. ValueError says what has no such type and what to use instead.

    quantized_bits(W, I) holds the values of ap_fixed<W,I+1> (signed; symmetric: saturating symmetrically), and with
    keep_negative=False those of ap_ufixed<W,I>; quantized_relu(W, I) those of ap_ufixed<W,I>, and with a
    negative_slope those of ap_fixed<W,I+1> (hls4ml reads keep_negative and symmetric as if they were not given).

    >>> str(activation_type("quantized_bits", {"bits": 8, "integer": 3, "keep_negative": False}))
    'ap_ufixed<8,3,AP_RND_CONV,AP_SAT>'
    """
    common = _exact_quantiser_problem(config)
    if common:
        raise ValueError(common)
    bits, integer = int(config.get("bits", 8)), int(config.get("integer", 0))
    if name == "quantized_bits":
        return _bits_type(bits, integer, config)
    if name == "quantized_relu":
        return _relu_type(bits, integer, config)
    raise ValueError("l1ml converts the activation quantisers quantized_bits and quantized_relu bit for bit: hls4ml computes "
                     f"{name} with an approximation (or not at all)")


def _exact_quantiser_problem(config: dict) -> str | None:
    if config.get("use_stochastic_rounding"):
        return "stochastic rounding is random: give use_stochastic_rounding=False"
    if float(config.get("qnoise_factor", 1.0)) != 1.0:
        return f"qnoise_factor={config['qnoise_factor']} mixes unquantised values into the output: give qnoise_factor=1"
    return None


def _bits_type(bits: int, integer: int, config: dict) -> FixedType:
    alpha = config.get("alpha")
    if alpha not in (None, 1, 1.0):
        raise ValueError(f"alpha={alpha!r} scales an activation by a factor computed from each batch (or given), which the "
                         "firmware does not apply: give alpha=1")
    keep_negative = bool(config.get("keep_negative", True))
    if bits - keep_negative < 1:
        raise ValueError(f"with {bits} bit(s) it is a binary (sign) quantiser, not a fixed-point one: give more bits")
    if not keep_negative:
        t = FixedType(bits, integer, False, QKERAS_ROUNDING, QKERAS_OVERFLOW)
    else:
        t = FixedType(bits, integer + 1, True, QKERAS_ROUNDING, "AP_SAT_SYM" if config.get("symmetric") else QKERAS_OVERFLOW)
    return check_width(t, FLOAT32_EXACT_WIDTH, "QKeras quantises in float32")


def _relu_type(bits: int, integer: int, config: dict) -> FixedType:
    if config.get("use_sigmoid"):
        raise ValueError("use_sigmoid quantises a sigmoid of the input, which the firmware does not compute: give use_sigmoid=0")
    if config.get("relu_upper_bound") is not None and not config.get("is_quantized_clip", True):
        raise ValueError("relu_upper_bound with is_quantized_clip=False clips at a bound off the type's grid: "
                         "drop relu_upper_bound or give is_quantized_clip=True")
    slope = float(config.get("negative_slope", 0.0))
    if slope == 0:
        t = FixedType(bits, integer, False, QKERAS_ROUNDING, QKERAS_OVERFLOW)
    elif 0 < slope <= 1:
        t = FixedType(bits, integer + 1, True, QKERAS_ROUNDING, QKERAS_OVERFLOW)
    else:
        raise ValueError(f"negative_slope={slope} is above 1: the negative side leaves the type's range; give a slope <= 1")
    return check_width(t, FLOAT32_EXACT_WIDTH, "QKeras quantises in float32")
