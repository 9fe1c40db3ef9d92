"""What `l1ml verify` checks: a firmware project, its C-simulation, its emulator and the models it must agree with.

A subject is built from a training run (`RUN_DIR`) or from a brought-your-own conversion (`--out DIR` of
`l1ml convert --keras/--xgboost/--conifer`). Every subject provides the firmware's input type and the
outputs of the models on firmware inputs; a training run also provides its test events, the float
model and the recorded thresholds, for the physics checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1ml.config.loader import load_config
from l1ml.config.train import BdtModel, TrainConfig
from l1ml.data.training import load_run
from l1ml.documents import Metrics, NormalisationRecord, read
from l1ml.firmware.project import FirmwareProject
from l1ml.models.bdt import load_booster, xgboost_margin
from l1ml.quantize.fixedpoint import FixedType, parse_fixed
from l1ml.runfolder import require_trained
from l1ml.verify.bdt import bdt_subject
from l1ml.verify.rtl import add_rtl_check
from l1ml.verify.subject import RunContext, Subject, verified_project


def from_run(run_dir: Path, backend: str | None = None) -> Subject:
    require_trained(run_dir, "verify", check_events=False)  # load_run checks them as it reads them
    _, cfg = load_config(run_dir / "config.yaml", TrainConfig)
    metrics = read(run_dir / "metrics.json", Metrics)
    data = load_run(run_dir, cfg)
    tests = {"background": data.background.test, **{name: s.test for name, s in data.signals.items()}}
    if isinstance(cfg.model, BdtModel):
        return _bdt_run_subject(run_dir, cfg, metrics, tests, backend)
    return _network_run_subject(run_dir, cfg, metrics, tests, backend)


def _bdt_run_subject(run_dir: Path, cfg, metrics: Metrics, tests: dict, backend: str | None) -> Subject:
    booster = load_booster(run_dir / "model" / "xgboost.json")
    subject = bdt_subject(run_dir, backend, booster=booster, vhdl_events=cfg.verify.vhdl_events)
    subject.run = RunContext(cfg, metrics, parse_fixed(metrics.score_type), tests, subject.input_type.quantize,
                             lambda raw: xgboost_margin(booster, raw))
    return subject


def _network_run_subject(run_dir: Path, cfg, metrics: Metrics, tests: dict, backend: str | None) -> Subject:
    from l1ml.models.keras import load_model  # heavy: imported only where needed

    project = verified_project(run_dir, backend)
    norm = read(run_dir / "normalisation.json", NormalisationRecord).normalisation()
    quantized = load_model(run_dir / "model" / "quantized")
    float_model = load_model(run_dir / "model" / "float")

    def float_score(raw: np.ndarray) -> np.ndarray:
        return _keras_predict(float_model, norm.apply(raw))[:, 0]

    context = RunContext(cfg, metrics, parse_fixed(metrics.score_type), tests, norm.apply_quantized, float_score)
    subject = network_subject(run_dir, project, quantized, norm.type)
    subject.run = context
    return subject


def network_subject(target: Path, project: FirmwareProject, model, input_type: FixedType, model_name: str = "QKeras",
                    quantize_inputs: bool = False) -> Subject:
    """`quantize_inputs`: the model has no input quantiser of its own, so it is given the inputs as the firmware's
    input type holds them (otherwise it sees the raw values, and its own quantiser must agree with the firmware's)."""
    emulator, note = project.emulator()
    subject = Subject(
        kind="network", target=target, firmware_dir=project.folder, input_type=input_type,
        n_features=int(model.input_shape[-1]), model_name=model_name,
        model_output=(lambda x: _keras_predict(model, input_type.quantize(x))) if quantize_inputs else (lambda x: _keras_predict(model, x)),
        csim_sources=project.csim_sources, emulator=emulator, emulator_note=note)
    add_rtl_check(subject)  # where the network was converted with --rtl
    return subject


def _keras_predict(model, x: np.ndarray) -> np.ndarray:
    # on the input grid, float32 holds every input exactly (input types are at most 24 bits wide)
    return model.predict(np.asarray(x, dtype=np.float32), batch_size=8192, verbose=0).astype(np.float64)
