"""Fixed-point types: parsing, and quantisation checked against the HLS ap_fixed headers compiled with g++."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from l1ml.quantize.fixedpoint import (
    OVERFLOW_MODES,
    ROUNDING_MODES,
    FixedType,
    fraction_bits,
    holding_type,
    parse_fixed,
    parse_precision,
    range_type,
)
from l1ml.quantize.qkeras_types import activation_type


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ap_fixed<16,6>", FixedType(16, 6)),
        ("ap_fixed< 8 , 3 , AP_RND , AP_SAT >", FixedType(8, 3, True, "AP_RND", "AP_SAT")),
        ("ap_ufixed<10,0,AP_RND_CONV>", FixedType(10, 0, False, "AP_RND_CONV")),
        ("ap_fixed<8,3,AP_TRN,AP_WRAP,0>", FixedType(8, 3)),
        ("ap_int<12>", FixedType(12, 12, True, "AP_TRN_ZERO", is_int=True)),
        ("ap_uint<1>", FixedType(1, 1, False, "AP_TRN_ZERO", is_int=True)),
        ("ap_fixed<8,-2>", FixedType(8, -2)),
    ],
)
def test_parse_valid(text, expected):
    assert parse_fixed(text) == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        ("ap_fixed<0,0>", "width W=0"),
        ("ap_fixed<8,9>", "exceed the total width"),
        ("ap_fixed<8>", "takes W, I"),
        ("ap_fixed<8,3,AP_ROUND>", "rounding mode 'AP_ROUND'"),
        ("ap_fixed<8,3,AP_RND,AP_CLIP>", "overflow mode 'AP_CLIP'"),
        ("ap_fixed<8,3,AP_RND,AP_SAT,2>", "saturation bits"),
        ("ap_fixed<a,3>", "W='a'"),
        ("ap_int<4,2>", "one parameter"),
        ("ac_fixed<8,3,true>", "not an HLS type"),
        ("auto", "hls4ml infers it during conversion"),
        ("fixed<8,3,RND,SAT,2>", "saturation bits"),
        ("ap_fixed<2000,3>", "between 1 and 1024"),
    ],
)
def test_parse_invalid(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_fixed(text)


@pytest.mark.parametrize(
    "text, expected",
    [  # hls4ml's own spellings: str() of its precision objects, and what its backends parse
        ("fixed<14,7,RND_CONV,SAT,0>", FixedType(14, 7, True, "AP_RND_CONV", "AP_SAT")),
        ("ufixed<8,3,RND,SAT_SYM,0>", FixedType(8, 3, False, "AP_RND", "AP_SAT_SYM")),
        ("fixed<16,6>", FixedType(16, 6)),
        ("ufixed<10,0,TRN,WRAP,0>", FixedType(10, 0, False)),
        ("int<5>", FixedType(5, 5, True, "AP_TRN_ZERO", is_int=True)),
        ("uint<3>", FixedType(3, 3, False, "AP_TRN_ZERO", is_int=True)),
        ("ap_fixed<8,3,rnd_conv,sat>", FixedType(8, 3, True, "AP_RND_CONV", "AP_SAT")),
        ("ap_ufixed<6,2,AP_RND_ZERO,AP_SAT_ZERO,0>", FixedType(6, 2, False, "AP_RND_ZERO", "AP_SAT_ZERO")),
    ],
)
def test_parse_hls4ml_spellings(text, expected):
    assert parse_precision(text) == parse_fixed(text) == expected


def test_parse_hls4ml_precision_objects():
    """hls4ml's precision objects, every rounding and saturation mode, and NamedType: the same FixedType as their text,
    and hls4ml's own parser reads l1ml's spelling back to the same object."""
    types = pytest.importorskip("hls4ml.model.types")
    from hls4ml.backends.fpga.fpga_backend import FPGABackend

    objects = [types.FixedPrecisionType(w, i, signed, rnd, sat) for (w, i, signed) in [(14, 7, True), (8, 0, False), (6, -2, True)]
               for rnd in types.RoundingMode for sat in types.SaturationMode]
    objects += [types.IntegerPrecisionType(12), types.IntegerPrecisionType(4, signed=False), types.FixedPrecisionType()]
    for precision in objects:
        t = parse_precision(precision)
        assert t == parse_precision(str(precision)) == parse_precision(types.NamedType("layer2_t", precision)), precision
        assert (t.width, t.integer, t.signed) == (precision.width, precision.integer, precision.signed)
        assert FPGABackend.convert_precision_string(str(t)) == precision, (precision, str(t))


def test_unknown_precisions_are_named():
    types = pytest.importorskip("hls4ml.model.types")
    refused = [(types.ExponentPrecisionType(5), r"int<5> \(ExponentPrecisionType\) .*exponents of power-of-two values"),
               (types.XnorPrecisionType(), r"uint<1> \(XnorPrecisionType\) .*-1 and \+1"),
               (types.FloatPrecisionType(), "floating-point"), (types.StandardFloatPrecisionType(), "floating-point"),
               (3.5, r"3.5 \(float\) .*not a fixed-point or integer precision"), (None, "not a fixed-point"),
               ("auto", "'auto' is not an HLS type: hls4ml infers it"), ("float", "'float' is not an HLS type")]
    for value, why in refused:
        with pytest.raises(ValueError, match=why):
            parse_precision(value)
    with pytest.raises(ValueError, match="expected a string"):
        parse_fixed(types.FixedPrecisionType())


def test_holding_and_range_types():
    rng = np.random.default_rng(0)
    for _ in range(50):  # random values on a random grid: held exactly, and not by a type one bit narrower
        f, span = int(rng.integers(0, 8)), int(rng.integers(1, 10))
        values = rng.integers(-(2**span), 2**span, size=20) / 2.0**f
        t = holding_type(values)
        assert np.array_equal(t.quantize(values), values) and t.integer >= 1 and t.fractional == fraction_bits(values)
        if t.integer > 1:
            narrower = FixedType(t.width - 1, t.integer - 1)
            assert not np.array_equal(narrower.quantize(values), values), (values, t)
    assert str(range_type(4, 0.0, 7.9375, signed=False)) == "ap_ufixed<7,3>"
    with pytest.raises(ValueError, match="need a 26-bit type"):
        holding_type([2.0**-20, 31.0])
    with pytest.raises(ValueError, match="NaN"):
        fraction_bits([np.nan])


@pytest.mark.parametrize(
    "name, config, expected",
    [
        ("quantized_bits", {"bits": 8, "integer": 3, "alpha": 1}, "ap_fixed<8,4,AP_RND_CONV,AP_SAT>"),
        ("quantized_bits", {"bits": 8, "integer": 3, "keep_negative": False}, "ap_ufixed<8,3,AP_RND_CONV,AP_SAT>"),
        ("quantized_bits", {"bits": 9, "integer": 2, "symmetric": 1, "alpha": 1}, "ap_fixed<9,3,AP_RND_CONV,AP_SAT_SYM>"),
        ("quantized_relu", {"bits": 6, "integer": 2}, "ap_ufixed<6,2,AP_RND_CONV,AP_SAT>"),
        ("quantized_relu", {"bits": 8, "integer": 2, "negative_slope": 0.25}, "ap_fixed<8,3,AP_RND_CONV,AP_SAT>"),
    ],
)
def test_activation_types(name, config, expected):
    assert str(activation_type(name, config)) == expected


@pytest.mark.parametrize(
    "name, config, why",
    [
        ("quantized_bits", {"bits": 8, "integer": 3, "alpha": "auto"}, "alpha='auto' scales an activation"),
        ("quantized_bits", {"bits": 1, "integer": 0}, "binary"),
        ("quantized_bits", {"bits": 8, "use_stochastic_rounding": True}, "stochastic rounding is random"),
        ("quantized_bits", {"bits": 30, "integer": 3, "alpha": 1}, "at most 24 bits"),
        ("quantized_relu", {"bits": 6, "use_sigmoid": 1}, "use_sigmoid"),
        ("quantized_relu", {"bits": 6, "negative_slope": 2.0}, "above 1"),
        ("quantized_tanh", {"bits": 8}, "hls4ml computes quantized_tanh with an approximation"),
    ],
)
def test_activation_types_refused(name, config, why):
    with pytest.raises(ValueError, match=why):
        activation_type(name, config)


def test_str_round_trip():
    for text in ["ap_fixed<16,6>", "ap_ufixed<8,0,AP_RND>", "ap_fixed<8,3,AP_RND_CONV,AP_SAT_SYM>", "ap_uint<7>"]:
        assert str(parse_fixed(text)) == text


def test_half_lsb_ties():
    half = 1 / 32  # half an LSB of ap_fixed<8,4>
    expected = {  # mode: (quantised +half, quantised -half) in LSBs
        "AP_TRN": (0, -1), "AP_TRN_ZERO": (0, 0), "AP_RND": (1, 0), "AP_RND_ZERO": (0, 0),
        "AP_RND_INF": (1, -1), "AP_RND_MIN_INF": (0, -1), "AP_RND_CONV": (0, 0),
    }
    for mode, (up, down) in expected.items():
        t = FixedType(8, 4, rounding=mode)
        assert t.to_codes([half, -half]).tolist() == [up, down], mode


def test_overflow_modes():
    assert FixedType(4, 4).quantize([9, -9]).tolist() == [-7, 7]
    assert FixedType(4, 4, overflow="AP_SAT").quantize([9, -9]).tolist() == [7, -8]
    assert FixedType(4, 4, overflow="AP_SAT_ZERO").quantize([9, -9, 3]).tolist() == [0, 0, 3]
    assert FixedType(4, 4, overflow="AP_SAT_SYM").quantize([9, -9]).tolist() == [7, -7]
    assert FixedType(4, 4, signed=False).quantize([17, -1]).tolist() == [1, 15]
    assert FixedType(8, 3).to_bits([-1.0, 0.03125]).tolist() == [0xE0, 0x01]


def test_nan_rejected():
    with pytest.raises(ValueError, match="NaN"):
        FixedType(8, 3).quantize([np.nan])


# ---------------------------------------------------------------- against the HLS headers

AP_TYPES = Path(__import__("hls4ml").__file__).parent / "templates" / "vivado" / "ap_types"
TYPES = [
    f"ap_fixed<{w},{i},{q},{o}>" for (w, i) in [(8, 3), (6, 0), (10, 12 - 2)] for q in ROUNDING_MODES for o in OVERFLOW_MODES
] + [f"ap_ufixed<7,2,{q},{o}>" for q in ROUNDING_MODES for o in OVERFLOW_MODES] + ["ap_fixed<5,-1>"]
# ap_int/ap_uint are left out: these headers convert doubles in (-1, 0) to ap_int oddly (-0.1 -> 1), and
# l1ml never converts a double to ap_int; firmware values are ap_fixed.


@pytest.fixture(scope="module")
def hls_quantised(tmp_path_factory):
    """For each type in TYPES, the bit patterns that the real ap_fixed headers give for a grid of doubles."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed (make test installs it)")
    values = np.concatenate([np.linspace(-40, 40, 2561), np.linspace(-1, 1, 257) / 7, [0.0, 1e-9, -1e-9]])
    work = tmp_path_factory.mktemp("apfixed")
    lines = ['#include <cstdio>', '#include "ap_fixed.h"', '#include "ap_int.h"', "int main() {"]
    lines.append(f"  static const double v[] = {{{', '.join(repr(float(x)) for x in values)}}};")
    for t in TYPES:
        lines.append(f'  for (double x : v) {{ {t} q = x; printf("%llu ", (unsigned long long)q.range().to_uint64()); }}')
        lines.append('  printf("\\n");')
    lines.append("  return 0; }")
    (work / "q.cpp").write_text("\n".join(lines))
    subprocess.run(["g++", "-O0", "-std=c++14", f"-I{AP_TYPES}", "q.cpp", "-o", "q"], cwd=work, check=True)
    out = subprocess.run([str(work / "q")], capture_output=True, text=True, check=True).stdout.splitlines()
    return values, {t: np.array(line.split(), dtype=np.uint64) for t, line in zip(TYPES, out)}


@pytest.mark.parametrize("text", TYPES)
def test_quantize_matches_hls_headers(hls_quantised, text):
    values, expected = hls_quantised
    got = parse_fixed(text).to_bits(values)
    mismatch = np.flatnonzero(got != expected[text])
    assert mismatch.size == 0, f"{text}: {mismatch.size} values differ, first x={values[mismatch[0]]!r}"
