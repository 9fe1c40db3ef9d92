"""The scores a run's firmware gives an event, from the bit-exact emulator of its converted project (`emulator.json`
of a network's hls4ml project, `ensemble.json` of a BDT's conifer project); without one, the quantised model, and
the scores say so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ml.config.loader import load_config
from l1ml.config.train import BdtModel, TrainConfig
from l1ml.documents import BdtInfo, Metrics, NormalisationRecord, read
from l1ml.errors import L1mlError
from l1ml.quantize.fixedpoint import FixedType, parse_fixed
from l1ml.verify.subject import verified_project


@dataclass
class Scorer:
    run_dir: Path
    config: TrainConfig
    score: Callable[[np.ndarray], np.ndarray]  # raw events (events x features) -> one score per event
    source: str  # what the scores come from
    firmware_exact: bool
    score_type: FixedType


def firmware_scorer(run_dir: Path) -> Scorer:
    """The scorer of a training run: its C-simulated project's emulator, else its quantised model."""
    run_dir = Path(run_dir)
    _, cfg = load_config(run_dir / "config.yaml", TrainConfig)
    score_type = parse_fixed(read(run_dir / "metrics.json", Metrics).score_type)
    bdt = isinstance(cfg.model, BdtModel)
    to_inputs = _identity if bdt else read(run_dir / "normalisation.json", NormalisationRecord).normalisation().apply_quantized
    try:
        project = verified_project(run_dir, None)
        emulator, why = project.emulator()
    except L1mlError as exc:  # not converted
        emulator, why = None, str(exc)
    if emulator is not None:
        file = "ensemble.json" if bdt else "emulator.json"
        where = project.folder.relative_to(run_dir) / file
        return Scorer(run_dir, cfg, lambda raw: emulator.predict(to_inputs(raw))[:, 0], f"firmware emulator ({where})", True,
                      score_type)
    fallback = _bdt_model(run_dir) if bdt else _keras_model(run_dir, to_inputs)
    return Scorer(run_dir, cfg, fallback, f"quantised model, not the firmware: no emulator ({why})", False, score_type)


def _identity(raw: np.ndarray) -> np.ndarray:
    return raw  # a BDT's emulator converts the inputs to the firmware's input type itself


def _bdt_model(run_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    from l1ml.models.bdt import firmware_emulator, load_booster

    info = read(run_dir / "model" / "bdt.json", BdtInfo)
    emulator = firmware_emulator(load_booster(run_dir / "model" / "xgboost.json"), parse_fixed(info.input_type),
                                 parse_fixed(info.score_type))
    return lambda raw: emulator.predict(raw)[:, 0]


def _keras_model(run_dir: Path, to_inputs) -> Callable[[np.ndarray], np.ndarray]:
    from l1ml.models.keras import load_model  # heavy: TensorFlow

    model = load_model(run_dir / "model" / "quantized")
    # on the input grid float32 holds every input exactly (input types are at most 24 bits wide)
    return lambda raw: model.predict(to_inputs(raw).astype(np.float32), batch_size=8192, verbose=0)[:, 0].astype(np.float64)
