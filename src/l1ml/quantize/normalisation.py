"""Input normalisation that firmware applies exactly: subtract a per-feature offset, then shift by a power of two.

x_norm = (x - offset) * 2**-shift, then the input type's quantiser. The offset sits on a 2**-8
grid (exact in any fixed-point input with at least 8 fractional bits) and the shift is an integer,
so the firmware needs one subtraction and one shift per feature.

It is written to and read from a run's `normalisation.json` as `l1ml.documents.NormalisationRecord`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from l1ml.quantize.fixedpoint import FixedType, parse_fixed

OFFSET_GRID = 2.0**-8
COVERAGE = 0.999  # the fraction of training values that must fit the input type without saturating


@dataclass
class Normalisation:
    features: list[str]
    offset: np.ndarray
    shift: np.ndarray
    input_type: str

    @classmethod
    def fit(cls, x: np.ndarray, features: list[str], input_type: str) -> Normalisation:
        t = parse_fixed(input_type)
        offset = np.round(np.mean(x, axis=0) / OFFSET_GRID) * OFFSET_GRID
        spread = np.quantile(np.abs(x - offset), COVERAGE, axis=0)
        # the smallest shift that brings the spread inside the type's range (a constant feature gets shift 0)
        ratio = np.where(spread > 0, spread / t.max_value, 1.0)
        shift = np.ceil(np.log2(ratio)).astype(np.int64)
        return cls(list(features), offset.astype(np.float64), shift, str(t))

    @property
    def type(self) -> FixedType:
        return parse_fixed(self.input_type)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalised inputs before rounding (float64), saturated to the input type's range as the firmware input is."""
        t = self.type
        return np.clip(np.ldexp(np.asarray(x, dtype=np.float64) - self.offset, -self.shift), t.min_value, t.max_value)

    def apply_quantized(self, x: np.ndarray) -> np.ndarray:
        """Normalised inputs on the firmware's input grid."""
        return self.type.quantize(self.apply(x))
