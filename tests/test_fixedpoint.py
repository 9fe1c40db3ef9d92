"""Fixed-point types: parsing, and quantisation checked against the HLS ap_fixed headers compiled with g++."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from l1ml.quantize.fixedpoint import OVERFLOW_MODES, ROUNDING_MODES, FixedType, parse_fixed


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
        ("fixed<8,3>", "not an HLS type"),
        ("ap_fixed<2000,3>", "between 1 and 1024"),
    ],
)
def test_parse_invalid(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_fixed(text)


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
