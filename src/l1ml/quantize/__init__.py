"""Quantisation: fixed-point types shared by training, conversion and verification."""

from l1ml.quantize.fixedpoint import FixedType, parse_fixed, parse_precision

__all__ = ["FixedType", "parse_fixed", "parse_precision"]
