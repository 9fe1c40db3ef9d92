"""Annotated types shared by config models."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from l1ml.quantize.fixedpoint import FLOAT32_EXACT_WIDTH, MAX_EMULATED_WIDTH, check_width, parse_fixed
from l1ml.quantize.qkeras_types import qkeras_type


def _check_fixed(text: str) -> str:
    t = check_width(parse_fixed(text), MAX_EMULATED_WIDTH, "l1ml emulates the firmware's arithmetic in 64-bit integers")
    return str(t)  # ValueError carries the reason; pydantic reports it with the key


def _check_network(text: str) -> str:
    t = parse_fixed(text)
    qkeras_type(t)  # also within the emulated widths
    return str(t)


def _check_bdt_input(text: str) -> str:
    why = "xgboost compares inputs as float32, which holds every value of a type only up to 24 bits wide"
    return str(check_width(parse_fixed(text), FLOAT32_EXACT_WIDTH, why))


FixedTypeStr = Annotated[str, AfterValidator(_check_fixed)]
"""An HLS fixed-point type string such as `ap_fixed<16,6>`, validated, normalised and at most 62 bits wide (emulated)."""

NetworkTypeStr = Annotated[str, AfterValidator(_check_network)]
"""A fixed-point type of a QKeras network: also within what a QKeras quantiser holds exactly."""

BdtInputTypeStr = Annotated[str, AfterValidator(_check_bdt_input)]
"""The input type of a BDT: every value a float32, as xgboost's trees compare them."""

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]
"""A name used in file and directory names: letters, digits, '_', '.', '-', starting with a letter."""


def parse_duration(text: str) -> int:
    """'8h', '90m', '1d', '3600' (s), '2:30:00' -> seconds."""
    text = str(text).strip()
    if ":" in text:
        parts = [int(p) for p in text.split(":")]
        while len(parts) < 3:
            parts.insert(0, 0)
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    m = re.fullmatch(r"([\d.]+)\s*([smhd]?)", text, re.I)
    if not m:
        raise ValueError(f"not a duration: {text!r} (examples: 8h, 90m, 2:30:00)")
    return int(float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2).lower()])
