"""Training plots (PNG, mplhep CMS style): training curves, score distributions, ROC curves float vs quantised."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1ml.metrics.rates import roc_curve


def style():
    import matplotlib  # heavy: imported only where needed

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: imported only where needed
    import mplhep as hep  # heavy: imported only where needed

    hep.style.use("CMS")
    return plt, hep


def training_curves(histories: dict[str, dict[str, list[float]]], path: Path, ylabel: str = "loss") -> Path:
    plt, hep = style()
    fig, ax = plt.subplots(figsize=(9, 7))
    for phase, h in histories.items():
        epochs = np.arange(1, len(h["loss"]) + 1)
        ax.plot(epochs, h["loss"], label=f"{phase} train")
        ax.plot(epochs, h["val_loss"], "--", label=f"{phase} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.legend(fontsize=14)
    hep.cms.label(data=False, ax=ax, loc=0, fontsize=16, rlabel="")
    return save(fig, plt, path)


def score_distributions(background: np.ndarray, signals: dict[str, np.ndarray], thresholds: dict[float, float], path: Path,
                        title: str) -> Path:
    plt, hep = style()
    fig, ax = plt.subplots(figsize=(9, 7))
    everything = np.concatenate([background, *signals.values()])
    lo, hi = np.quantile(everything, [0.0, 0.999])
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 60)
    for name, values in {"background": background, **signals}.items():
        counts, edges = np.histogram(np.clip(values, bins[0], bins[-1]), bins=bins)
        hep.histplot(counts / max(len(values), 1), edges, ax=ax, label=name)
    for rate, thr in thresholds.items():
        ax.axvline(thr, color="grey", linestyle=":", linewidth=1)
        ax.text(thr, 0.5, f" {rate:g} kHz", rotation=90, fontsize=11, color="grey",
                transform=ax.get_xaxis_transform())
    ax.set_yscale("log")
    ax.set_xlabel(f"anomaly score ({title})")
    ax.set_ylabel("fraction of events")
    ax.legend(fontsize=13)
    hep.cms.label(data=False, ax=ax, loc=0, fontsize=16, rlabel="")
    return save(fig, plt, path)


def roc_curves(background: dict[str, np.ndarray], signals: dict[str, dict[str, np.ndarray]], bx_rate_khz: float,
               path: Path) -> Path:
    """ROC per signal, float (solid) vs quantised (dashed); x axis as trigger rate."""
    plt, hep = style()
    fig, ax = plt.subplots(figsize=(9, 7))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(next(iter(signals.values()))):
        for flavour, line in (("float", "-"), ("quantized", "--")):
            fpr, tpr = roc_curve(background[flavour], signals[flavour][name])
            keep = fpr > 0
            ax.plot(fpr[keep] * bx_rate_khz, tpr[keep], line, color=colours[i % len(colours)],
                    label=f"{name} ({flavour})")
    ax.set_xscale("log")
    ax.set_xlabel("trigger rate [kHz]")
    ax.set_ylabel("signal efficiency")
    ax.legend(fontsize=11)
    hep.cms.label(data=False, ax=ax, loc=0, fontsize=16, rlabel="")
    return save(fig, plt, path)


def save(fig, plt, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path
