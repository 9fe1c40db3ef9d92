"""A segment's data: the events its trials train and evaluate on, selected once from the config's events file and
written to the study folder (`segments/<segment>/events.h5`), so that no trial reads the whole sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from l1ml.config.search import Segment, Selection
from l1ml.data.events import list_samples, read_file_attrs, read_sample, write_samples
from l1ml.data.layout import BLOCKS, ETA, PT
from l1ml.errors import L1mlError

EVENTS = "events.h5"


@dataclass
class _Selected:
    """What `write_samples` writes of one sample."""

    particles: np.ndarray
    process_id: np.ndarray | None
    process_names: list[str]
    info: dict = field(default_factory=dict)


def keep_objects_in_eta(particles: np.ndarray, low: float, high: float) -> np.ndarray:
    """Remove every object (not the MET) with |eta| outside [low, high): its slot is emptied and each block stays
    pT-ordered and zero-padded, as the L1 layout is."""
    out = particles.copy()
    for kind, (first, n, _) in BLOCKS.items():
        if kind == "met":
            continue
        objects = out[:, first : first + n, :]
        eta = np.abs(objects[:, :, ETA])
        outside = (objects[:, :, PT] > 0) & ((eta < low) | (eta >= high))
        objects[outside] = 0.0
        order = np.argsort(objects[:, :, PT] == 0, axis=1, kind="stable")  # present objects first, in their order
        out[:, first : first + n, :] = np.take_along_axis(objects, order[:, :, None], axis=1)
    return out


def prepare(segment: Segment, source: Path, wanted: list[str], out_dir: Path, config_path: str) -> Path:
    """Write the segment's events file (once: an existing one is the one prepared before) and return it. `wanted`:
    the samples its trials use (background and signals)."""
    out = out_dir / EVENTS
    if out.is_file():
        return out
    available = list_samples(source)
    missing = [s for s in wanted if s not in available]
    if missing:
        raise L1mlError(f"no such sample in {source}; it holds: {', '.join(available)}", path=config_path,
                        key=f"segments.{segment.name}.select.signals", value=missing[0])
    selected = {name: _select(read_sample(source, name), segment.select, segment.name, config_path) for name in wanted}
    attrs = {**read_file_attrs(source), "l1ml_segment": segment.name,
             "l1ml_selection": segment.select.model_dump(mode="json", exclude_none=True), "selected_from": str(source)}
    write_samples(out, selected, attrs)
    return out


def _select(sample, selection: Selection, segment: str, config_path: str) -> _Selected:
    particles, process_id = sample.particles, sample.process_id
    if selection.events is not None:
        start, stop = selection.events
        if start >= len(particles):
            raise L1mlError(f"sample {sample.name} has {len(particles)} events: none from {start}", path=config_path,
                            key=f"segments.{segment}.select.events", value=selection.events)
        particles = particles[start:stop]
        process_id = None if process_id is None else process_id[start:stop]
    if selection.objects_eta is not None:
        particles = keep_objects_in_eta(particles, *selection.objects_eta)
    return _Selected(particles, process_id, sample.process_names, sample.attrs)
