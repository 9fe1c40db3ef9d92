"""Paths and small helpers the tests share."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SMALL_CONFIG = ROOT / "configs" / "data" / "small.yaml"


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of a run folder, for tests that damage it."""
    import shutil

    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def find_check(report, prefix: str):
    """The check of a verify report whose name starts with `prefix`."""
    return next(c for c in report.checks if c.name.startswith(prefix))
