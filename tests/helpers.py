"""Paths and small helpers the tests share."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SMALL_CONFIG = ROOT / "configs" / "data" / "small.yaml"


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
