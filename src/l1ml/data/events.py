"""Reading and writing L1 event files in the ADC2021 layout.

Two shapes of file are read the same way:
- an ADC2021 file as published: a dataset `Particles` (N, 19, 4) at the top level; the sample is
  named after the file;
- a file of `l1ml data generate`: one group per sample, each holding `Particles` in the same layout,
  `Particles_Names`, `Particles_Classes`, `ProcessID` (index into the group's `Process_Names`),
  and the generator settings as attributes.

What is read is checked: the dataset and its shape, NaN or infinite values, class codes that do not
belong to their slot, negative pT, |eta| beyond the acceptance and phi outside [-pi, pi]. The last
three may instead be clipped with `clip=True`; every clipped value is counted in `EventSample.clipped`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from l1ml.config.data import ETA_ACCEPTANCE
from l1ml.data.layout import CLASS, ETA, N_COLUMNS, N_SLOTS, PARTICLES_CLASSES, PARTICLES_NAMES, PHI, PT, SLOT_CLASS, to_features
from l1ml.errors import L1mlError
from l1ml.runs import atomic_path

DATASET = "Particles"
DEFAULT_ETA_MAX = ETA_ACCEPTANCE  # the generator's object acceptances are at most this (config.data)
_PHI_TOLERANCE = 1e-5  # float32 rounding of ±pi


@dataclass
class EventSample:
    """One sample of events: `particles` (N, 19, 4) float32 in the ADC2021 layout."""

    name: str
    source: Path
    particles: np.ndarray
    process_id: np.ndarray | None = None
    process_names: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    clipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.particles)

    def features(self) -> np.ndarray:
        return to_features(self.particles)


def _open(path: Path):
    if not path.exists():
        raise L1mlError("no such file", path=path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise L1mlError(f"not a readable HDF5 file ({e})", path=path) from None


def list_samples(path: str | Path) -> list[str]:
    """Sample names in an event file."""
    path = Path(path)
    with _open(path) as f:
        return _sample_names(f, path)


def _sample_names(f, path: Path) -> list[str]:
    if DATASET in f:
        return [path.stem]
    names = [k for k, v in f.items() if isinstance(v, h5py.Group) and DATASET in v]
    if not names:
        found = ", ".join(sorted(f.keys())) or "nothing"
        raise L1mlError(f"no dataset '{DATASET}' at the top level or in any group (found: {found})", path=path)
    return names


def read_sample(path: str | Path, sample: str | None = None, *, start: int = 0, stop: int | None = None,
                clip: bool = False, eta_max: float = DEFAULT_ETA_MAX) -> EventSample:
    """Read and check one sample. `sample` may be omitted when the file holds only one. A sample without events, and
    data that cannot be read (a damaged file), are errors naming the file and the dataset."""
    path = Path(path)
    with _open(path) as f:
        sample = _choose_sample(f, path, sample)
        group = f if DATASET in f else f[sample]
        prefix = "" if group is f else f"{sample}/"
        particles = _read_particles(group[DATASET], path, f"{prefix}{DATASET}", start, stop)
        process_id = _read(group, "ProcessID", slice(start, stop), path, prefix)
        names = _read(group, "Process_Names", (), path, prefix)
        process_names = [] if names is None else [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        attrs = {k: _attr(v) for k, v in group.attrs.items()}
    clipped = check_particles(particles, path=path, key=f"{prefix}{DATASET}", clip=clip, eta_max=eta_max, first_event=start)
    return EventSample(sample, path, particles, process_id, process_names, attrs, clipped)


def _choose_sample(f, path: Path, sample: str | None) -> str:
    names = _sample_names(f, path)
    if sample is None:
        if len(names) > 1:
            raise L1mlError(f"the file holds several samples ({', '.join(names)}); choose one", path=path)
        return names[0]
    if sample not in names:
        raise L1mlError(f"no such sample; the file holds: {', '.join(names)}", path=path, key="sample", value=sample)
    return sample


def _read_particles(ds, path: Path, where: str, start: int, stop: int | None) -> np.ndarray:
    if ds.ndim != 3 or ds.shape[1:] != (N_SLOTS, N_COLUMNS):
        raise L1mlError(f"shape {ds.shape}, expected (N, {N_SLOTS}, {N_COLUMNS})", path=path, key=where)
    if ds.dtype.kind not in "fiu":
        raise L1mlError(f"dtype {ds.dtype} is not numeric", path=path, key=where)
    if not len(ds):
        raise L1mlError("the sample holds no events", path=path, key=where)
    particles = np.asarray(_read_data(ds, slice(start, stop), path, where), dtype=np.float32)
    if not len(particles):
        raise L1mlError(f"no events with start={start}, stop={stop} (the sample holds {len(ds)})", path=path, key=where)
    return particles


def _read(group, name: str, selection, path: Path, prefix: str) -> np.ndarray | None:
    """group[name][selection], or None if the group has no such dataset."""
    return np.asarray(_read_data(group[name], selection, path, f"{prefix}{name}")) if name in group else None


def _read_data(ds, selection, path: Path, where: str) -> np.ndarray:
    """ds[selection]; h5py raises OSError (or RuntimeError) where a chunk does not decompress: the file is damaged."""
    try:
        return ds[selection]
    except (OSError, RuntimeError) as exc:
        raise L1mlError(f"cannot read the data, the file is damaged ({exc})", path=path, key=where) from None


def _attr(v):
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v.item() if isinstance(v, np.generic) else v


def check_particles(particles: np.ndarray, *, path: Path, key: str, clip: bool, eta_max: float,
                    first_event: int = 0) -> dict[str, int]:
    """Validate (and with `clip`, repair in place) an (N, 19, 4) array. Returns the clipped counts."""

    def fail(what: str, mask: np.ndarray, hint: str = "") -> None:
        events = np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))
        first = int(events[0]) + first_event
        raise L1mlError(f"{what} in {len(events)} events (first: event {first}){hint}", path=path, key=key)

    bad = ~np.isfinite(particles)
    if bad.any():
        fail("NaN or infinite values", bad)
    cls = particles[:, :, CLASS]
    bad = (cls != 0) & (cls != SLOT_CLASS[None, :])
    if bad.any():
        fail("class codes that do not match their slot (MET 1, e/gamma 2, muon 3, jet 4, empty 0)", bad)

    clipped: dict[str, int] = {}
    hint = "; pass clip=True (CLI: --clip) to clip them"
    checks = [
        ("negative pT", PT, particles[:, :, PT] < 0, 0.0, np.inf),
        (f"|eta| > {eta_max:g}", ETA, np.abs(particles[:, :, ETA]) > eta_max, -eta_max, eta_max),
        ("phi outside [-pi, pi]", PHI, np.abs(particles[:, :, PHI]) > np.pi + _PHI_TOLERANCE, -np.pi, np.pi),
    ]
    for what, column, mask, lo, hi in checks:
        if mask.any():
            if not clip:
                fail(what, mask, hint)
            clipped[what] = int(mask.sum())
            np.clip(particles[:, :, column], lo, hi, out=particles[:, :, column])
    return clipped


def write_samples(path: str | Path, samples: dict, file_attrs: dict) -> None:
    """Write samples (name -> SampleResult) as one group each, atomically."""
    with _atomic_h5(path) as f:
        _write_attrs(f, file_attrs)
        for name, s in samples.items():
            _write_sample(f.create_group(name), s.particles, s.process_id, s.process_names, s.info)


def export_sample(path: str | Path, sample: str | None, out: str | Path) -> EventSample:
    """Write one sample of `path` as a file in the published ADC2021 layout (`Particles` at the top level)."""
    s = read_sample(path, sample)
    out = Path(out)
    if out.resolve() == Path(path).resolve():
        raise L1mlError("the export would overwrite its own input", path=out)
    with _atomic_h5(out) as f:
        _write_attrs(f, {**read_file_attrs(path), "sample": s.name, "exported_from": str(path)})
        _write_sample(f, s.particles, s.process_id, s.process_names, s.attrs)
    return s


@contextlib.contextmanager
def _atomic_h5(path: str | Path):
    """An HDF5 file open for writing under a temporary name, renamed into place only when complete."""

    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        yield f


def _write_attrs(obj, attrs: dict) -> None:
    for k, v in attrs.items():
        obj.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v, sort_keys=True)


def _write_sample(group, particles, process_id, process_names, attrs) -> None:
    group.create_dataset(DATASET, data=particles, compression="gzip", shuffle=True)
    group.create_dataset("Particles_Names", data=PARTICLES_NAMES)
    group.create_dataset("Particles_Classes", data=PARTICLES_CLASSES)
    if process_id is not None:
        group.create_dataset("ProcessID", data=process_id, compression="gzip")
        group.create_dataset("Process_Names", data=np.array([n.encode() for n in process_names]))
    _write_attrs(group, attrs)


def read_file_attrs(path: str | Path) -> dict:
    path = Path(path)
    with _open(path) as f:
        return {k: _attr(v) for k, v in f.attrs.items()}


def particles_digest(particles: np.ndarray) -> str:
    """SHA-256 of an array's bytes, dtype and shape: equal digests mean byte-identical arrays."""

    h = hashlib.sha256(f"{particles.dtype.str}{particles.shape}".encode())
    h.update(np.ascontiguousarray(particles).tobytes())
    return h.hexdigest()
