"""Annotated types shared by config models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from l1ml.quantize.fixedpoint import parse_fixed


def _check_fixed(text: str) -> str:
    return str(parse_fixed(text))  # ValueError carries the reason; pydantic reports it with the key


FixedTypeStr = Annotated[str, AfterValidator(_check_fixed)]
"""An HLS fixed-point type string such as `ap_fixed<16,6>`, validated and normalised."""

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]
"""A name used in file and directory names: letters, digits, '_', '.', '-', starting with a letter."""
