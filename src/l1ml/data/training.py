"""The events a training run uses: background and signal samples, split into train, validation and test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from l1ml.config.loader import resolve_path
from l1ml.config.train import TrainConfig
from l1ml.data.events import list_samples, read_sample
from l1ml.data.generate import generate
from l1ml.data.layout import feature_names
from l1ml.errors import L1mlError
from l1ml.runfolder import events_file


@dataclass
class Split:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


@dataclass
class TrainingData:
    events_file: Path
    features: list[str]
    background: Split
    signals: dict[str, Split] = field(default_factory=dict)


def resolve_events_file(cfg: TrainConfig, config_path: str | Path) -> tuple[Path, Path | None]:
    """The event file named by `data.events` (relative to the config file), and the data config that made it: the
    given .h5, or the (cached) output of the given data config. Only training calls this; later steps read the file
    the run recorded (`l1ml.runfolder.events_file`)."""
    source = resolve_path(config_path, cfg.data.events)
    is_config = source.suffix in (".yaml", ".yml")
    if not source.is_file():
        what = "data config" if is_config else "event file or data config"
        raise L1mlError(f"no such {what}: {source} (paths in a config are relative to the config file's folder)",
                        path=config_path, key="data.events", value=cfg.data.events)
    if is_config:

        return generate(source).path, source
    return source, None


def load_run(run_dir: Path, cfg: TrainConfig) -> TrainingData:
    """The data of a finished run, from the events file it recorded (checked by hash; never regenerated)."""

    return load(cfg, run_dir / "config.yaml", events_file(run_dir))


def split(x: np.ndarray, fractions: dict[str, float], seed: int) -> Split:
    """A seeded shuffle, then consecutive train/validation/test blocks."""
    order = np.random.Generator(np.random.PCG64(seed)).permutation(len(x))
    n_train = int(round(fractions["train"] * len(x)))
    n_val = int(round(fractions["validation"] * len(x)))
    x = x[order]
    return Split(x[:n_train], x[n_train : n_train + n_val], x[n_train + n_val :])


def load(cfg: TrainConfig, config_path: str | Path, path: Path) -> TrainingData:
    """The samples of events file `path` that `cfg` (read from `config_path`) names, split."""
    available = list_samples(path)
    wanted = {"data.background": cfg.data.background, **{f"data.signals.{i}": s for i, s in enumerate(cfg.data.signals)}}
    for key, name in wanted.items():
        if name not in available:
            raise L1mlError(f"no such sample in {path}; it holds: {', '.join(available)}", path=config_path, key=key, value=name)

    def features(name: str, salt: int) -> Split:
        x = read_sample(path, name, stop=cfg.data.max_events).features().astype(np.float64)
        return split(x, cfg.data.split, cfg.seed * 1000 + salt)

    return TrainingData(
        events_file=path,
        features=feature_names(),
        background=features(cfg.data.background, 0),
        signals={name: features(name, i + 1) for i, name in enumerate(cfg.data.signals)},
    )
