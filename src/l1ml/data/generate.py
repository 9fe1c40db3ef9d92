"""`l1ml data generate`: Pythia 8 events turned into L1 objects, written in the ADC2021 layout.

Every sample is cut into chunks of `chunk_events` events per process. A chunk has its own seed,
derived from the config seed and its name, and runs in a worker process of its own, so the events
depend on the config alone and not on how many processes share the work or in which order they
finish. Chunks are put back together in a fixed order, then each sample is shuffled with a seeded
generator, so that a background mix is not sorted by process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pythia8mc

from l1ml.config.data import DataConfig, L1Config
from l1ml.config.loader import load_config
from l1ml.data.events import particles_digest, read_file_attrs, write_samples
from l1ml.data.l1emu import emulate_event
from l1ml.data.layout import N_COLUMNS, N_SLOTS
from l1ml.data.processes import COMMON_SETTINGS, PROCESSES, check_processes
from l1ml.errors import L1mlError
from l1ml.runs import tool_versions, write_manifest

#: Bump when the emulation or the seed scheme changes what a config generates: it is part of the cache key.
GENERATOR_VERSION = 1
PYTHIA_SEED_MAX = 900_000_000  # Pythia accepts seeds up to 900 000 000
MINBIAS_SETTINGS = ["SoftQCD:nonDiffractive = on"]


@dataclass(frozen=True)
class Chunk:
    sample: str
    process_index: int
    process: str
    index: int
    events: int
    settings: tuple[str, ...]
    seed: int

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.sample, self.process_index, self.index)


@dataclass
class ChunkResult:
    chunk: Chunk
    particles: np.ndarray
    tried: int
    sigma_mb: float
    seconds: float


@dataclass
class SampleResult:
    particles: np.ndarray
    process_id: np.ndarray
    process_names: list[str]
    info: dict = field(default_factory=dict)


def process_settings(cfg: DataConfig, sample: str, i: int) -> list[str]:
    proc = cfg.samples[sample].processes[i]
    base = [] if proc.process == "custom" else PROCESSES[proc.process][1]
    return [*COMMON_SETTINGS, f"Beams:eCM = {cfg.sqrt_s_tev * 1000:g}", *base, *proc.pythia]


def derived_seed(*parts: object) -> int:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") % PYTHIA_SEED_MAX + 1


def events_per_process(total: int, fractions: list[float]) -> list[int]:
    """Split `total` by `fractions`, largest remainders first, so that the counts add up exactly."""
    exact = [total * f for f in fractions]
    counts = [int(e) for e in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def plan_chunks(cfg: DataConfig) -> list[Chunk]:
    chunks = []
    for sample, scfg in cfg.samples.items():
        counts = events_per_process(scfg.events, [p.fraction for p in scfg.processes])
        for i, (proc, n) in enumerate(zip(scfg.processes, counts)):
            settings = tuple(process_settings(cfg, sample, i))
            for c, start in enumerate(range(0, n, cfg.chunk_events)):
                seed = derived_seed(cfg.seed, sample, i, proc.process, c)
                chunks.append(Chunk(sample, i, proc.process, c, min(cfg.chunk_events, n - start), settings, seed))
    return chunks


def config_hash(cfg: DataConfig) -> str:
    """Identity of what a config generates: the resolved config, the generator version and Pythia's version."""

    payload = {"config": cfg.model_dump(mode="json"), "generator": GENERATOR_VERSION, "pythia8mc": version("pythia8mc")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def check_pythia_settings(cfg: DataConfig, config_path: str | Path) -> None:
    """Reject a setting Pythia does not know before any worker starts."""

    pythia = pythia8mc.Pythia("", False)
    for sample, scfg in cfg.samples.items():
        for i, proc in enumerate(scfg.processes):
            for j, line in enumerate(proc.pythia):
                if not pythia.readString(line):
                    raise L1mlError("Pythia 8 does not accept this setting", path=config_path,
                                    key=f"samples.{sample}.processes.{i}.pythia.{j}", value=line)


# ---------------------------------------------------------------- worker side

_LOG_FD: int | None = None


def _worker_init(log_path: str) -> None:
    """Send Pythia's console output (C++ stdout) of this worker to the run's log file.

    Ctrl-C is left to the parent, which stops the workers itself.
    """
    global _LOG_FD
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _LOG_FD = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(_LOG_FD, 1)


def _make_pythia(settings: tuple[str, ...] | list[str], seed: int):
    pythia = pythia8mc.Pythia("", False)
    for line in [*settings, f"Random:seed = {seed}"]:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise with settings {list(settings)}")
    return pythia


def _visible_final_state(pythia) -> tuple[np.ndarray, ...]:
    event = pythia.event
    rows = [(p.id(), p.px(), p.py(), p.pz()) for p in (event[i] for i in range(event.size()))
            if p.isFinal() and p.isVisible()]
    arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], arr[:, 3]


def _to_pt_eta_phi(px, py, pz) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), np.sign(pz) * 1e6))
    return pt, eta, np.arctan2(py, px)


def run_chunk(chunk: Chunk, l1_json: str, pileup_mean: float, lepton_filter_pt: float | None,
              max_tries_per_event: int) -> ChunkResult:

    start = time.perf_counter()
    l1 = L1Config.model_validate_json(l1_json)
    rng = np.random.Generator(np.random.PCG64(chunk.seed))
    pythia = _make_pythia(chunk.settings, chunk.seed)
    minbias = None
    if pileup_mean > 0:
        minbias = _make_pythia([*COMMON_SETTINGS, next(s for s in chunk.settings if s.startswith("Beams:eCM")),
                                *MINBIAS_SETTINGS], derived_seed(chunk.seed, "pileup"))
    out = np.zeros((chunk.events, N_SLOTS, N_COLUMNS), dtype=np.float32)
    kept = tried = failures = 0
    max_tries = max_tries_per_event * chunk.events
    while kept < chunk.events:
        if tried >= max_tries:
            raise L1mlError(
                f"the lepton filter kept {kept} of {tried} events of process {chunk.process!r} in sample "
                f"{chunk.sample!r}: lower 'lepton_filter_pt' or raise 'max_tries_per_event'")
        if not pythia.next():
            failures += 1
            if failures > 100:
                raise RuntimeError(f"Pythia failed 100 times generating {chunk.process}")
            continue
        tried += 1
        parts = [_visible_final_state(pythia)]
        if minbias is not None:
            for _ in range(rng.poisson(pileup_mean)):
                while not minbias.next():
                    pass
                parts.append(_visible_final_state(minbias))
        pid = np.concatenate([p[0] for p in parts])
        pt, eta, phi = _to_pt_eta_phi(*(np.concatenate([p[k] for p in parts]) for k in (1, 2, 3)))
        event = emulate_event(pid, pt, eta, phi, l1, rng)
        if lepton_filter_pt is not None and max(event[1, 0], event[5, 0]) < lepton_filter_pt:
            continue
        out[kept] = event
        kept += 1
    sigma = float(pythia.infoPython().sigmaGen())
    return ChunkResult(chunk, out, tried, sigma, time.perf_counter() - start)


# ---------------------------------------------------------------- parent side

Progress = Callable[[int, int, float], None]


def generate_samples(cfg: DataConfig, *, jobs: int, log_path: Path, progress: Progress | None = None) -> dict[str, SampleResult]:
    """Generate every sample of `cfg` with `jobs` worker processes."""
    chunks = plan_chunks(cfg)
    total = sum(c.events for c in chunks)
    l1_json = cfg.l1.model_dump_json()
    tasks = [(c, l1_json, cfg.pileup.mean, cfg.samples[c.sample].lepton_filter_pt, cfg.max_tries_per_event) for c in chunks]
    results: dict[tuple, ChunkResult] = {}
    done = 0
    t0 = time.perf_counter()
    pool = get_context("spawn").Pool(processes=jobs, initializer=_worker_init, initargs=(str(log_path),))
    if progress:
        progress(0, total, 0.0)
    try:
        for res in pool.imap_unordered(_run_task, tasks):
            results[res.chunk.key] = res
            done += res.chunk.events
            if progress:
                progress(done, total, time.perf_counter() - t0)
        pool.close()
    except BaseException:
        pool.terminate()  # an error or an interrupt: stop the other workers now, not after their chunks
        raise
    finally:
        pool.join()
    return {name: _assemble(cfg, name, [results[c.key] for c in chunks if c.sample == name]) for name in cfg.samples}


def _run_task(task: tuple) -> ChunkResult:
    return run_chunk(*task)


def _assemble(cfg: DataConfig, name: str, results: list[ChunkResult]) -> SampleResult:
    scfg = cfg.samples[name]
    particles = np.concatenate([r.particles for r in results])
    process_id = np.concatenate([np.full(len(r.particles), r.chunk.process_index, dtype=np.int8) for r in results])
    order = np.random.Generator(np.random.PCG64(derived_seed(cfg.seed, name, "shuffle"))).permutation(len(particles))
    info = {"processes": []}
    for i, proc in enumerate(scfg.processes):
        mine = [r for r in results if r.chunk.process_index == i]
        tried = sum(r.tried for r in mine)
        kept = sum(len(r.particles) for r in mine)
        sigma = float(np.mean([r.sigma_mb for r in mine])) if mine else 0.0
        info["processes"].append({
            "process": proc.process,
            "fraction": proc.fraction,
            "events": kept,
            "events_tried": tried,
            "filter_efficiency": kept / tried if tried else None,
            "sigma_gen_mb": sigma,
            "seconds": sum(r.seconds for r in mine),
            "pythia_settings": list(process_settings(cfg, name, i)),
        })
    return SampleResult(particles[order], process_id[order], [p.process for p in scfg.processes], info)


# ---------------------------------------------------------------- the step


@dataclass
class GenerateOutcome:
    path: Path
    manifest: Path
    reused: bool
    events: dict[str, int]
    seconds: float


def default_output(cfg: DataConfig, digest: str) -> Path:
    return Path("runs") / "data" / cfg.name / digest[:12] / "events.h5"


def _manifest_path(out: Path) -> Path:
    return out.with_name("manifest.json") if out.name == "events.h5" else out.with_suffix(".manifest.json")


def _cached(out: Path, digest: str) -> bool:
    if not out.exists():
        return False
    attrs = read_file_attrs(out)
    if "config_hash" not in attrs:
        raise L1mlError("exists and was not written by 'l1ml data generate'; refusing to overwrite it (use --force)",
                        path=out)
    return attrs["config_hash"] == digest and _manifest_path(out).exists()


def generate(config_path: str | Path, *, out: str | Path | None = None, jobs: int | None = None, force: bool = False,
             progress: Progress | None = None) -> GenerateOutcome:
    """Generate the samples of a data config into one HDF5 file, or reuse the file an identical config made."""

    text, cfg = load_config(config_path, DataConfig)
    check_processes(cfg, config_path)
    digest = config_hash(cfg)
    out = Path(out) if out is not None else default_output(cfg, digest)
    if out.suffix not in (".h5", ".hdf5"):
        raise L1mlError("the output must be an HDF5 file ending in .h5 or .hdf5", key="--out", value=str(out))
    if not force and _cached(out, digest):
        return GenerateOutcome(out, _manifest_path(out), True, {}, 0.0)
    check_pythia_settings(cfg, config_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_suffix(".generate.log")
    log_path.unlink(missing_ok=True)
    n_chunks = len(plan_chunks(cfg))
    jobs = max(1, min(jobs or os.cpu_count() or 1, n_chunks))
    t0 = time.perf_counter()
    samples = generate_samples(cfg, jobs=jobs, log_path=log_path, progress=progress)
    seconds = time.perf_counter() - t0
    resolved = cfg.model_dump(mode="json")
    file_attrs = {
        "generator": "l1ml data generate",
        "generator_version": GENERATOR_VERSION,
        "config_hash": digest,
        "config": resolved,
        "seed": cfg.seed,
        "sqrt_s_tev": cfg.sqrt_s_tev,
        "tools": tool_versions(("l1ml", "pythia8mc", "numpy")),
    }
    write_samples(out, samples, file_attrs)
    write_manifest(
        _manifest_path(out), step="data generate", config_path=config_path, config_text=text, resolved=resolved,
        inputs={}, outputs={"events": out}, seed=cfg.seed,
        extra={
            "config_hash": digest,
            "jobs": jobs,
            "seconds": round(seconds, 2),
            "samples": {
                name: {"events": len(s.particles), "particles_sha256": particles_digest(s.particles), **s.info}
                for name, s in samples.items()
            },
        },
    )
    return GenerateOutcome(out, _manifest_path(out), False, {k: len(v.particles) for k, v in samples.items()}, seconds)
