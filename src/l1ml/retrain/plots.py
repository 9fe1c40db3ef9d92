"""Per signal: the champion's and challenger's ROC curves as efficiency against trigger rate, and their efficiencies at
each target rate with binomial error bars; one figure of the efficiencies at the rule's rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1ml.metrics.plots import save, style
from l1ml.metrics.rates import roc_curve
from l1ml.retrain.compare import BACKGROUND
from l1ml.retrain.document import ModelResult

COLOURS = {"champion": "#5790fc", "challenger": "#e42536"}
LINES = {"champion": "--", "challenger": "-"}  # dashed over solid: identical curves stay visible


def overlays(scores: dict[str, dict[str, np.ndarray]], results: dict[str, ModelResult], bx_rate_khz: float, rate_khz: float,
             out_dir: Path) -> list[Path]:
    """`scores` and `results` by role ("champion", "challenger"); one roc_<signal>.png per signal and efficiency.png."""
    signals = [name for name in results["challenger"].signals]
    made = [_signal(name, scores, results, bx_rate_khz, rate_khz, out_dir / f"roc_{name}.png") for name in signals]
    made.append(_at_rate(signals, results, rate_khz, out_dir / "efficiency.png"))
    return made


def _signal(name: str, scores, results, bx_rate_khz: float, rate_khz: float, path: Path) -> Path:
    plt, hep = style()
    fig, ax = plt.subplots(figsize=(9, 7))
    for role, result in results.items():
        fpr, tpr = roc_curve(scores[role][BACKGROUND], scores[role][name])
        keep = fpr > 0
        ax.plot(fpr[keep] * bx_rate_khz, tpr[keep], LINES[role], color=COLOURS[role], linewidth=1.5, zorder=3 if role == "champion" else 2,
                label=f"{role} (AUC {result.signals[name].auc.value:.3f} ± {result.signals[name].auc.error:.3f})")
        rows = [(row.achieved_rate_khz, result.signals[name].efficiency[f"{row.rate_khz:g}"]) for row in result.thresholds]
        ax.errorbar([max(r, 1e-3) for r, _ in rows], [e.value for _, e in rows], yerr=[e.error for _, e in rows], fmt="o",
                    color=COLOURS[role], capsize=4, markersize=6)
    ax.axvline(rate_khz, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("trigger rate [kHz]")
    ax.set_ylabel(f"{name} efficiency")
    ax.legend(fontsize=13, title="points: the target rates, binomial errors", title_fontsize=11)
    hep.cms.label(data=False, ax=ax, loc=0, fontsize=16, rlabel="")
    return save(fig, plt, path)


def _at_rate(signals: list[str], results: dict[str, ModelResult], rate_khz: float, path: Path) -> Path:
    plt, hep = style()
    fig, ax = plt.subplots(figsize=(9, 7))
    x = np.arange(len(signals))
    for i, (role, result) in enumerate(results.items()):
        effs = [result.signals[s].efficiency[f"{rate_khz:g}"] for s in signals]
        ax.errorbar(x + (i - 0.5) * 0.2 * (len(results) - 1), [e.value for e in effs], yerr=[e.error for e in effs], fmt="o",
                    color=COLOURS[role], capsize=4, label=role)
    ax.set_xticks(x, signals, fontsize=13)
    ax.set_ylabel(f"efficiency at {rate_khz:g} kHz")
    ax.legend(fontsize=13)
    hep.cms.label(data=False, ax=ax, loc=0, fontsize=16, rlabel="")
    return save(fig, plt, path)
