"""Checks of a train config against the files it names, before any work: `l1ml config check train` and the start of
`l1ml train` run them.

They read only what is cheap: the data config (its samples and their sizes) or the dataset shapes of an event file,
and a target given as a YAML path. The rule for trigger rates that the test background can resolve lives here too;
training applies the same rule to the events it actually reads.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py

from l1ml.config.data import DataConfig
from l1ml.config.hw import load_target
from l1ml.config.loader import load_config, resolve_path
from l1ml.config.train import TrainConfig
from l1ml.errors import L1mlError

EVENTS_DATASET = "Particles"  # the events of a sample in an event file (l1ml.data.events.DATASET)


def check_train_config(cfg: TrainConfig, config_path: str | Path) -> list[str]:
    """Raise L1mlError, naming `config_path`, key and value, for what the named files rule out; return warnings.

    The samples named in `data` must be in the data config or event file, and the test background events (the
    background sample's size, capped by `data.max_events`, times the test fraction) must resolve every rate.
    A `data.events` file that is not there yet is left to `l1ml train` to report.
    """
    _check_target_file(cfg, config_path)
    source = resolve_path(config_path, cfg.data.events)
    sizes = _sample_sizes(source)
    if sizes is None:
        return [f"data.events: no readable {source} here; the samples and rates were not checked against it"]
    _check_samples(cfg, sizes, source, config_path)
    n_background = sizes[cfg.data.background]
    if cfg.data.max_events is not None:
        n_background = min(n_background, cfg.data.max_events)
    n_test = split_sizes(n_background, cfg.data.split)[2]
    ev = cfg.evaluation
    return check_resolvable(ev.rates_khz, n_test, ev.bx_rate_khz, ev.min_background_events, source=str(config_path))


def split_sizes(n: int, fractions: dict[str, float]) -> tuple[int, int, int]:
    """The sizes of the train, validation and test blocks that `n` events are split into (`l1ml.data.training.split`).

    >>> split_sizes(10000, {"train": 0.5, "validation": 0.1, "test": 0.4})
    (5000, 1000, 4000)
    """
    n_train = int(round(fractions["train"] * n))
    n_val = int(round(fractions["validation"] * n))
    return n_train, n_val, n - n_train - n_val


def check_resolvable(rates_khz: list[float], n_background: int, bx_rate_khz: float, min_events: int,
                     source: str | None = None) -> list[str]:
    """Raise for a rate the background sample cannot resolve; return warnings for rates it resolves poorly."""
    if n_background < 1:
        raise L1mlError("no test background events to set thresholds with (the background sample is empty)", path=source,
                        key="data.background")
    lowest = min_events / n_background * bx_rate_khz
    warnings = []
    for i, rate in enumerate(rates_khz):
        expected = rate / bx_rate_khz * n_background
        if expected < min_events:
            raise L1mlError(
                f"{n_background} test background events give {expected:.2f} events above threshold at this rate, fewer "
                f"than min_background_events={min_events}; the lowest rate they resolve is {lowest:.4g} kHz "
                f"(generate more background or raise the rate)", path=source, key=f"evaluation.rates_khz.{i}", value=rate)
        if expected < 100:
            warnings.append(f"rate {rate:g} kHz: only {expected:.0f} background events above threshold "
                            f"(statistical uncertainty on the rate {100 / math.sqrt(expected):.0f} %)")
    return warnings


def _check_target_file(cfg: TrainConfig, config_path: str | Path) -> None:
    """A target given as a YAML path (names are checked by the config model) must be there and valid."""
    target = cfg.firmware.target
    if not Path(target).suffix:
        return
    path = resolve_path(config_path, target)
    if not path.is_file():
        raise L1mlError("no such hw target file (paths in a config are relative to the config file)", path=config_path,
                        key="firmware.target", value=target)
    load_target(path)  # its errors name the target file


def _sample_sizes(source: Path) -> dict[str, int] | None:
    """Events per sample of a data config (as it will generate them) or an event file; None if it is not there."""
    if not source.is_file():
        return None
    if source.suffix in (".yaml", ".yml"):
        data = load_config(source, DataConfig)[1]  # an invalid data config is an error now, not after training starts
        return {name: sample.events for name, sample in data.samples.items()}
    return _event_file_sizes(source)


def _event_file_sizes(path: Path) -> dict[str, int] | None:
    """Events per sample of an event file, from the dataset shapes alone (a published ADC2021 file is one sample
    named after the file); None if it is not a readable HDF5 file."""

    try:
        with h5py.File(path, "r") as f:
            if EVENTS_DATASET in f:
                return {path.stem: len(f[EVENTS_DATASET])}
            return {name: len(g[EVENTS_DATASET]) for name, g in f.items() if isinstance(g, h5py.Group) and EVENTS_DATASET in g}
    except OSError:
        return None


def _check_samples(cfg: TrainConfig, sizes: dict[str, int], source: Path, config_path: str | Path) -> None:
    wanted = {"data.background": cfg.data.background, **{f"data.signals.{i}": s for i, s in enumerate(cfg.data.signals)}}
    for key, name in wanted.items():
        if name not in sizes:
            raise L1mlError(f"no such sample in {source}; it holds: {', '.join(sizes) or 'none'}", path=config_path, key=key,
                            value=name)
