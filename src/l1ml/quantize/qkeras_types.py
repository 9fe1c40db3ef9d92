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
