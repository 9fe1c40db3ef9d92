"""The verification report: `verify/report.json` with one entry per check, a one-line summary per check, and plots."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from l1ml.documents import VerifyReport
from l1ml.metrics.plots import save, style
from l1ml.runs import git_state, tool_versions


@dataclass
class Check:
    """A check that is not an event-by-event comparison (physics, thresholds, tools)."""

    name: str
    passed: bool
    details: dict = field(default_factory=dict)
    message: str = ""
    events: int = 0
    mismatches: int = 0

    def summary(self) -> str:
        return f"{self.name}: {'passed' if self.passed else 'FAILED'}" + (f", {self.message}" if self.message else "")

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "events": self.events, "mismatches": self.mismatches,
                "message": self.message, **self.details}


@dataclass
class Report:
    target: Path
    firmware: Path
    checks: list = field(default_factory=list)  # Comparison or Check
    info: dict = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)  # written beside report.json

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    def summary_lines(self) -> list[str]:
        return [c.summary() for c in self.checks]

    def write(self, out_dir: Path) -> Path:
        path = out_dir / "report.json"
        VerifyReport(
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), target=str(self.target),
            firmware=str(self.firmware), passed=self.passed, failed_checks=self.failed,
            checks=[c.to_dict() for c in self.checks], **self.info, l1ml_git=git_state(), tools=tool_versions(),
        ).write(path)
        return path


def plots(firmware: np.ndarray, reference: np.ndarray, reference_name: str, out_dir: Path) -> list[Path]:
    """Firmware score against the reference model's score, and the residuals."""

    plt, hep = style()
    firmware, reference = np.ravel(firmware), np.ravel(reference)
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.plot(reference, firmware, ".", markersize=2, alpha=0.5)
    lo, hi = float(min(reference.min(), firmware.min())), float(max(reference.max(), firmware.max()))
    ax.plot([lo, hi], [lo, hi], "k:", linewidth=1)
    ax.set_xlabel(f"{reference_name} score")
    ax.set_ylabel("firmware (C-simulation) score")
    hep.cms.label(data=False, ax=ax, loc=0, fontsize=16, rlabel="")
    scatter = save(fig, plt, out_dir / "firmware_vs_float.png")
    fig, ax = plt.subplots(figsize=(9, 7))
    residual = firmware - reference
    ax.hist(residual, bins=80, histtype="step", linewidth=1.5)
    ax.set_yscale("log")
    ax.set_xlabel(f"firmware - {reference_name} score")
    ax.set_ylabel("events")
    hep.cms.label(data=False, ax=ax, loc=0, fontsize=16, rlabel="")
    return [scatter, save(fig, plt, out_dir / "residuals.png")]
