"""`l1ml data inspect`: event counts, object multiplicities and pT/eta/phi distributions of an event file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from l1ml.data.events import EventSample, list_samples, read_sample
from l1ml.data.layout import BLOCKS, ETA, LABELS, PHI, PT, block, multiplicity
from l1ml.runs import write_atomic, write_json_atomic, write_manifest


@dataclass
class InspectOutcome:
    summary: str
    out_dir: Path | None = None  # None: only the summary was asked for
    plots: list[Path] = field(default_factory=list)
    manifest: Path | None = None


def summarise(samples: list[EventSample]) -> str:
    lines = []
    for s in samples:
        lines.append(f"sample {s.name}: {len(s)} events  ({s.source})")
        if s.process_id is not None and s.process_names:
            counts = np.bincount(s.process_id.astype(np.int64), minlength=len(s.process_names))
            mix = ", ".join(f"{n} {c} ({c / len(s):.1%})" for n, c in zip(s.process_names, counts))
            lines.append(f"  processes: {mix}")
        for what, n in s.clipped.items():
            lines.append(f"  clipped: {n} values with {what}")
        lines.append(f"  {'object':<8}{'mean n':>8}{'n=0':>8}{'pT mean':>10}{'pT median':>11}{'pT max':>10}{'|eta| max':>11}")
        for kind in BLOCKS:
            b = block(s.particles, kind)
            present = b[:, :, PT] > 0
            pt = b[:, :, PT][present]
            n = multiplicity(s.particles, kind)
            eta_max = np.abs(b[:, :, ETA][present]).max() if pt.size else 0.0
            stats = (f"{pt.mean():10.1f}{np.median(pt):11.1f}{pt.max():10.1f}" if pt.size else f"{'-':>10}{'-':>11}{'-':>10}")
            lines.append(f"  {LABELS[kind]:<8}{n.mean():8.2f}{np.mean(n == 0):8.1%}{stats}{eta_max:11.2f}")
    return "\n".join(lines)


def plot(samples: list[EventSample], out_dir: Path) -> list[Path]:
    import matplotlib  # heavy: imported only where needed

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: imported only where needed
    import mplhep as hep  # heavy: imported only where needed
    from matplotlib.ticker import MaxNLocator  # heavy: imported only where needed

    hep.style.use("CMS")
    paths = []
    variables = {
        "multiplicity": ("objects per event", None),
        "pt": ("$p_T$ [GeV]", PT),
        "eta": (r"$\eta$", ETA),
        "phi": (r"$\phi$", PHI),
    }
    for var, (xlabel, col) in variables.items():
        kinds = [k for k in BLOCKS if not (k == "met" and var in ("multiplicity", "eta"))]
        fig, axes = plt.subplots(1, len(kinds), figsize=(7 * len(kinds), 6.5))
        for ax, kind in zip(np.atleast_1d(axes), kinds):
            bins = _bins(var, kind, samples, col)
            for s in samples:
                values = _values(s, kind, col)
                counts, edges = np.histogram(values, bins=bins)
                hep.histplot(counts / max(len(values), 1), edges, ax=ax, label=s.name)
            ax.set_xlabel(f"{LABELS[kind]} {xlabel}")
            ax.set_ylabel("fraction")
            if var == "pt":
                ax.set_yscale("log")
            if var == "multiplicity":
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            hep.cms.label(data=False, ax=ax, loc=0, fontsize=14, rlabel="")
            ax.legend(fontsize=11)
        fig.tight_layout()
        path = out_dir / f"{var}.png"
        fig.savefig(path, dpi=72)
        plt.close(fig)
        paths.append(path)
    return paths


def _values(s: EventSample, kind: str, col: int | None) -> np.ndarray:
    if col is None:
        return multiplicity(s.particles, kind)
    b = block(s.particles, kind)
    return b[:, :, col][b[:, :, PT] > 0]


def _bins(var: str, kind: str, samples: list[EventSample], col: int | None) -> np.ndarray:
    if var == "multiplicity":
        return np.arange(BLOCKS[kind][1] + 2) - 0.5
    if var == "eta":
        return np.linspace(-5, 5, 51)
    if var == "phi":
        return np.linspace(-np.pi, np.pi, 37)
    top = max((_values(s, kind, col).max(initial=0.0) for s in samples), default=0.0)
    return np.linspace(0, max(50.0, float(np.ceil(top / 50) * 50)), 51)


def inspect_file(path: str | Path, *, out_dir: str | Path | None = None, sample: str | None = None,
                 clip: bool = False) -> InspectOutcome:
    """The summary of an event file; with `out_dir`, also written there with the plots and a manifest. Nothing is
    written beside the input: data areas are often read-only, and shared."""
    path = Path(path)
    names = [sample] if sample else list_samples(path)
    samples = [read_sample(path, n, clip=clip) for n in names]
    text = summarise(samples)
    if out_dir is None:
        return InspectOutcome(text)
    return _write(Path(out_dir), path, samples, text)


def _write(out: Path, path: Path, samples: list[EventSample], text: str) -> InspectOutcome:
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "summary.txt", text + "\n")
    write_json_atomic(out / "summary.json", {s.name: _stats(s) for s in samples})
    plots = plot(samples, out)
    manifest = out / "manifest.json"
    write_manifest(manifest, step="data inspect", inputs={"events": path},
                   outputs={p.name: p for p in [out / "summary.txt", out / "summary.json", *plots]})
    return InspectOutcome(text, out, plots, manifest)


def _stats(s: EventSample) -> dict:
    stats = {"events": len(s), "clipped": s.clipped}
    for kind in BLOCKS:
        pt = block(s.particles, kind)[:, :, PT]
        stats[kind] = {
            "mean_multiplicity": float(multiplicity(s.particles, kind).mean()),
            "mean_pt": float(pt[pt > 0].mean()) if (pt > 0).any() else None,
        }
    return stats
