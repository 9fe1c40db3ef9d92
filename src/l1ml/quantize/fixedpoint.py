"""Vivado/Vitis HLS arbitrary-precision types (`ap_fixed`, `ap_ufixed`, `ap_int`, `ap_uint`).

`FixedType.quantize` reproduces the HLS conversion of a real number to the type, rounding and
overflow mode included, so that a value computed here and the same value in C-simulation have the
same bit pattern.

>>> t = parse_fixed("ap_fixed<8,3,AP_RND,AP_SAT>")
>>> t.lsb, t.min_value, t.max_value
(0.03125, -4.0, 3.96875)
>>> t.quantize([0.015625, 5.0, -0.02]).tolist()
[0.03125, 3.96875, -0.03125]
>>> str(parse_fixed("ap_fixed<16, 6>"))
'ap_fixed<16,6>'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

ROUNDING_MODES = ("AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_INF", "AP_RND_MIN_INF", "AP_RND_CONV")
OVERFLOW_MODES = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")
MAX_WIDTH = 1024  # AP_INT_MAX_W, the default limit of the HLS headers
MAX_EMULATED_WIDTH = 62  # quantize() works in int64
FLOAT32_EXACT_WIDTH = 24  # float32 (24-bit significand) holds every value of a type up to this wide


@dataclass(frozen=True)
class FixedType:
    """An HLS fixed-point type: `width` bits in all, `integer` of them left of the binary point (sign included)."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "AP_TRN"
    overflow: str = "AP_WRAP"
    is_int: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"width W={self.width} must be between 1 and {MAX_WIDTH} (AP_INT_MAX_W, the HLS headers' limit)")
        if self.integer > self.width:
            raise ValueError(f"integer bits I={self.integer} exceed the total width W={self.width}")
        if self.integer < -self.width:
            raise ValueError(f"integer bits I={self.integer} below -W={-self.width} leave no representable bit")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding mode {self.rounding!r} is not one of {', '.join(ROUNDING_MODES)}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"overflow mode {self.overflow!r} is not one of {', '.join(OVERFLOW_MODES)}")

    @property
    def fractional(self) -> int:
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.fractional

    @property
    def min_code(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min_value(self) -> float:
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_code * self.lsb

    def __str__(self) -> str:
        if self.is_int:
            return f"{'ap_int' if self.signed else 'ap_uint'}<{self.width}>"
        name = "ap_fixed" if self.signed else "ap_ufixed"
        args = [str(self.width), str(self.integer)]
        if self.rounding != "AP_TRN" or self.overflow != "AP_WRAP":
            args.append(self.rounding)
        if self.overflow != "AP_WRAP":
            args.append(self.overflow)
        return f"{name}<{','.join(args)}>"

    def to_codes(self, values: np.ndarray | list[float] | float) -> np.ndarray:
        """The integer codes (value / lsb) that the type stores for `values`, after rounding and overflow."""
        if self.width > MAX_EMULATED_WIDTH:
            raise ValueError(f"{self}: emulation supports widths up to {MAX_EMULATED_WIDTH} bits")
        x = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{self}: cannot quantise NaN or infinite values")
        scaled = np.ldexp(x, self.fractional)  # exact: a power-of-two scaling
        codes = _round(scaled, self.rounding)
        return _overflow(codes, self)

    def quantize(self, values: np.ndarray | list[float] | float) -> np.ndarray:
        """`values` converted to this type, as float64 (exact for widths up to 53 bits)."""
        return np.ldexp(self.to_codes(values).astype(np.float64), -self.fractional)

    def quantize_float(self, x: np.ndarray) -> np.ndarray:
        """`quantize` computed in float64 without integer conversions, for the emulator's speed.

        Exact for finite values whose scaled magnitude stays below 2**52 (the caller checks the bounds).
        Returns a new array.
        """
        f = self.fractional
        r = x * 2.0**f
        if self.rounding == "AP_RND_CONV":
            np.rint(r, out=r)
        elif self.rounding == "AP_TRN":
            np.floor(r, out=r)
        else:
            r = _round(r, self.rounding).astype(np.float64)
        lo, hi = float(self.min_code), float(self.max_code)
        if self.overflow == "AP_WRAP":
            modulus = 2.0**self.width
            r -= lo
            np.mod(r, modulus, out=r)
            r += lo
        elif self.overflow == "AP_SAT_ZERO":
            r[(r < lo) | (r > hi)] = 0.0
        else:
            np.clip(r, -hi if (self.overflow == "AP_SAT_SYM" and self.signed) else lo, hi, out=r)
        r *= 2.0**-f
        return r

    def to_bits(self, values: np.ndarray | list[float] | float) -> np.ndarray:
        """The raw `width`-bit patterns (two's complement for signed types) as unsigned integers."""
        codes = self.to_codes(values)
        return (codes & ((1 << self.width) - 1)).astype(np.uint64)


def check_width(t: FixedType, limit: int, why: str) -> FixedType:
    """`t` if it is at most `limit` bits wide, else ValueError saying which limit and `why` it holds.

    >>> check_width(parse_fixed("ap_fixed<30,4>"), FLOAT32_EXACT_WIDTH, "float32 inputs")
    Traceback (most recent call last):
    ...
    ValueError: ap_fixed<30,4> is 30 bits wide; at most 24 bits here: float32 inputs
    """
    if t.width > limit:
        raise ValueError(f"{t} is {t.width} bits wide; at most {limit} bits here: {why}")
    return t


def _round(scaled: np.ndarray, mode: str) -> np.ndarray:
    if mode == "AP_TRN":
        r = np.floor(scaled)
    elif mode == "AP_TRN_ZERO":
        r = np.trunc(scaled)
    elif mode == "AP_RND":
        r = np.floor(scaled + 0.5)
    elif mode == "AP_RND_MIN_INF":
        r = np.ceil(scaled - 0.5)
    elif mode == "AP_RND_ZERO":
        r = np.where(scaled >= 0, np.ceil(scaled - 0.5), np.floor(scaled + 0.5))
    elif mode == "AP_RND_INF":
        r = np.where(scaled >= 0, np.floor(scaled + 0.5), np.ceil(scaled - 0.5))
    else:  # AP_RND_CONV: ties to even
        r = np.rint(scaled)
    return r.astype(np.int64)


def _overflow(codes: np.ndarray, t: FixedType) -> np.ndarray:
    lo, hi = t.min_code, t.max_code
    if t.overflow == "AP_WRAP":
        modulus = 1 << t.width
        wrapped = np.mod(codes, modulus)
        return np.where(wrapped > hi, wrapped - modulus, wrapped) if t.signed else wrapped
    if t.overflow == "AP_SAT_ZERO":
        return np.where((codes < lo) | (codes > hi), 0, codes)
    if t.overflow == "AP_SAT_SYM" and t.signed:
        lo = -hi
    return np.clip(codes, lo, hi)


def parse_fixed(text: str) -> FixedType:
    """Parse an HLS type string in any spelling `parse_precision` reads. Raises ValueError with the reason if it is not
    a valid type."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an HLS type: expected a string such as \"ap_fixed<16,6>\"")
    return parse_precision(text)


def parse_precision(value) -> FixedType:
    """The one parser of fixed-point precisions: an HLS type string or one of hls4ml's precision objects.

    Strings: `ap_fixed<W,I[,Q[,O[,N]]]>`, `ap_ufixed<...>`, `ap_int<W>`, `ap_uint<W>`, and hls4ml's own spellings without
    the `ap_` prefix and modes (`fixed<14,7,RND_CONV,SAT,0>`, `ufixed<...>`, `int<W>`, `uint<W>`). Objects:
    hls4ml's `FixedPrecisionType` and `IntegerPrecisionType` (by class name, so that this module needs no hls4ml),
    or a `NamedType` holding one. Anything else is a ValueError naming the form.

    >>> str(parse_precision("fixed<14,7,RND_CONV,SAT,0>")), str(parse_precision("uint<3>"))
    ('ap_fixed<14,7,AP_RND_CONV,AP_SAT>', 'ap_uint<3>')
    """
    if isinstance(value, str):
        return _parse_type_string(value)
    classes = [c.__name__ for c in type(value).__mro__]
    if "NamedType" in classes:
        return parse_precision(value.precision)
    refused = next((c for c in classes if c in _NOT_FIXED_POINT), None)
    if refused is None and ("FixedPrecisionType" in classes or "IntegerPrecisionType" in classes):
        return _parse_type_string(str(value))
    why = _NOT_FIXED_POINT.get(refused, "not a fixed-point or integer precision")
    raise ValueError(f"{value} ({type(value).__name__}) is not an HLS type l1ml can use: {why}")


# hls4ml precision classes whose str() looks like an integer type but whose values are something else
_NOT_FIXED_POINT = {
    "ExponentPrecisionType": "it holds the exponents of power-of-two values, not the values",
    "XnorPrecisionType": "its one bit encodes -1 and +1 (binary networks)",
    "FloatPrecisionType": "a floating-point type",
    "StandardFloatPrecisionType": "a floating-point type",
}
_TYPE_RE = re.compile(r"^\s*(?:ap_)?(u?)(fixed|int)\s*<\s*([^<>]*)>\s*$")
_FORMS = "expected ap_fixed<W,I[,Q[,O[,N]]]>, ap_ufixed<...>, ap_int<W> or ap_uint<W> (hls4ml's fixed<...>, ufixed<...>, int<W>, uint<W> too)"


def _parse_type_string(text: str) -> FixedType:
    m = _TYPE_RE.match(text)
    if not m and "<" in text and ">" not in text:
        raise ValueError(f"{text!r} is cut short: inside YAML braces or brackets a comma ends the value, "
                         f"so write the type in quotes, e.g. \"ap_fixed<16,6>\"")
    if not m:
        hint = ": hls4ml infers it during conversion" if text.strip().lower() == "auto" else ""
        raise ValueError(f"{text!r} is not an HLS type{hint}: {_FORMS}")
    signed, kind = not m.group(1), f"ap_{m.group(1)}{m.group(2)}"
    args = [a.strip() for a in m.group(3).split(",")]
    if m.group(2) == "int":
        if len(args) != 1:
            raise ValueError(f"{text!r}: {kind} takes one parameter, the width")
        width = _int_arg(args[0], "W", text)
        # a double converts to ap_int as in C: truncated toward zero, then wrapped
        return FixedType(width, width, signed, rounding="AP_TRN_ZERO", is_int=True)
    if not 2 <= len(args) <= 5:
        raise ValueError(f"{text!r}: {kind} takes W, I and optionally the rounding and overflow modes")
    width, integer = _int_arg(args[0], "W", text), _int_arg(args[1], "I", text)
    rounding = _mode(args[2]) if len(args) > 2 else "AP_TRN"
    overflow = _mode(args[3]) if len(args) > 3 else "AP_WRAP"
    if len(args) == 5 and _int_arg(args[4], "N", text) != 0:
        raise ValueError(f"{text!r}: saturation bits N other than 0 are not supported")
    return FixedType(width, integer, signed, rounding, overflow)


def _mode(text: str) -> str:
    """A rounding or overflow mode as the HLS headers name it: hls4ml writes RND_CONV for AP_RND_CONV."""
    mode = text.upper()
    return mode if mode.startswith("AP_") else f"AP_{mode}"


def _int_arg(s: str, name: str, text: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise ValueError(f"{text!r}: {name}={s!r} is not an integer") from None


def fraction_bits(values) -> int:
    """The fewest fractional bits F >= 0 with which every one of `values` is exact (every value x 2**F an integer).

    >>> fraction_bits([0.75, -2.0, 0.125]), fraction_bits([3.0, 0.0])
    (3, 0)
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)):
        raise ValueError("NaN or infinite values have no fixed-point type")
    mantissa, exponent = np.frexp(v[v != 0])
    codes = np.ldexp(mantissa, 53).astype(np.int64)  # every float64 is an integer code times 2**(exponent - 53)
    trailing = np.log2((codes & -codes).astype(np.float64)).astype(np.int64)  # of the lowest set bit, a power of two
    return max(int(np.max(53 - exponent - trailing)), 0) if codes.size else 0


def range_type(fractional: int, lo: float, hi: float, *, signed: bool = True, max_width: int = FLOAT32_EXACT_WIDTH) -> FixedType:
    """The narrowest type with `fractional` fractional bits that holds every multiple of its LSB in [lo, hi]: signed
    (I >= 1, W >= 2, as QKeras' quantized_bits needs), or unsigned (I >= 0) for lo >= 0 with signed=False. ValueError
    if it would be wider than `max_width` bits.

    >>> str(range_type(2, -3.0, 5.75)), str(range_type(3, 0.0, 1.5, signed=False))
    ('ap_fixed<6,4>', 'ap_ufixed<4,1>')
    """
    top, bottom = math.floor(math.ldexp(hi, fractional)), math.ceil(math.ldexp(lo, fractional))
    if not signed and bottom < 0:
        raise ValueError(f"an unsigned type cannot hold {lo}")
    sign = 1 if signed else 0
    width = max(top.bit_length() + sign if top > 0 else 1, (-bottom - 1).bit_length() + 1 if bottom < 0 else 1)
    integer = width - fractional
    if integer < sign:  # QKeras' quantized_bits(W, I-1) fails on a negative power of 2
        width, integer = width + sign - integer, sign
    width = max(width, 1 + sign)
    name = "ap_fixed" if signed else "ap_ufixed"
    if width > max_width:
        raise ValueError(f"the values need a {width}-bit type ({name}<{width},{integer}>) to be held exactly; at most "
                         f"{max_width} bits here")
    return FixedType(width, integer, signed)


def holding_type(values, max_width: int = FLOAT32_EXACT_WIDTH) -> FixedType:
    """The narrowest signed `ap_fixed` (with I >= 1, W >= 2) that holds every one of `values` exactly; ValueError if it
    would be wider than `max_width` bits.

    >>> str(holding_type([0.75, -2.0, 0.125])), str(holding_type([-4.0]))
    ('ap_fixed<5,2>', 'ap_fixed<3,3>')
    """
    v = np.asarray(values, dtype=np.float64)
    return range_type(fraction_bits(v), float(v.min()) if v.size else 0.0, float(v.max()) if v.size else 0.0, max_width=max_width)
