"""`l1ml train CONFIG`: one function that turns L1 events into a float and a quantised model, thresholds and metrics.

Run directory `runs/<name>/<YYYYmmdd-HHMMSS>-<config hash>/`:
    config.yaml            the config as given        run.json        config hash, status
    normalisation.json     (networks) offset/shift    model/float/, model/quantized/  (networks: model.json + weights.h5)
    model/xgboost.json, model/bdt.json (BDTs)         metrics.json    thresholds, AUC, efficiencies
    plots/*.png            checkpoints/               manifest.json
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from l1ml.config.checks import check_train_config
from l1ml.config.loader import load_config
from l1ml.config.train import BdtModel, TrainConfig
from l1ml.data.training import TrainingData, load, resolve_events_file
from l1ml.documents import Metrics, NormalisationRecord
from l1ml.emulate.ensemble import max_abs_score
from l1ml.errors import L1mlError
from l1ml.metrics import plots
from l1ml.metrics.rates import auc, check_resolvable, efficiency, threshold_for_rate
from l1ml.models import bdt
from l1ml.models.bdt import from_booster
from l1ml.quantize.fixedpoint import FixedType
from l1ml.quantize.normalisation import Normalisation
from l1ml.quantize.qkeras_types import qkeras_type
from l1ml.runfolder import RUN, end_run, events_file, read_state, record_inputs, start_run
from l1ml.runs import write_json_atomic, write_manifest

if TYPE_CHECKING:
    from l1ml.train.network import EpochProgress

FLAVOURS = ("float", "quantized")
Log = Callable[[str], None]


@dataclass
class TrainOutcome:
    run_dir: Path
    metrics: dict
    seconds: float
    plots: list[Path] = field(default_factory=list)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def config_hash(cfg: TrainConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _new_run_dir(cfg: TrainConfig, digest: str, runs_root: Path) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = runs_root / cfg.name / f"{stamp}-{digest[:8]}"
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def _check_resumable(run_dir: Path, digest: str) -> None:
    """Before any work: the run exists, was made by this config, and its recorded events are still there."""
    if not (run_dir / RUN).is_file():
        raise L1mlError("not a training run directory (no run.json)", path=run_dir)
    state = read_state(run_dir)
    if state.config_hash != digest:
        raise L1mlError("was trained with a different config; resume it with that config (its copy is config.yaml in "
                        "the run) or start a new run", path=run_dir)
    events_file(run_dir)


def train(config_path: str | Path, *, resume: str | Path | None = None, runs_root: str | Path = "runs",
          log: Log | None = _stderr, progress: EpochProgress | None = None) -> TrainOutcome:
    """Train the model of `config_path`. `log` gets messages, and a line per epoch unless `progress` takes the epochs."""
    text, cfg = load_config(config_path, TrainConfig)
    digest = config_hash(cfg)
    say = log or (lambda _m: None)
    if resume is None:
        check_train_config(cfg, config_path)  # before minutes of generation; its rate warnings are given on the real events
    if resume is not None:
        run_dir = Path(resume)
        _check_resumable(run_dir, digest)
        data = load(cfg, config_path, events_file(run_dir))
    else:
        events, data_config = resolve_events_file(cfg, config_path)
        data = load(cfg, config_path, events)
    warnings = check_resolvable(cfg.evaluation.rates_khz, len(data.background.test), cfg.evaluation.bx_rate_khz,
                                cfg.evaluation.min_background_events, str(config_path))
    if resume is None:
        run_dir = _new_run_dir(cfg, digest, Path(runs_root))
        start_run(run_dir, digest)
        record_inputs(run_dir, events, data_config)
    else:
        end_run(run_dir, "running")
    (run_dir / "config.yaml").write_text(text)
    try:
        outcome = _train_in(run_dir, cfg, config_path, text, digest, data, warnings, say, progress or _epoch_progress(say),
                            resumed=resume is not None)
    except KeyboardInterrupt:
        end_run(run_dir, "interrupted")
        say(f"interrupted; the run folder is {run_dir}; continue it with: l1ml train {config_path} --resume {run_dir}")
        raise
    except BaseException as exc:
        end_run(run_dir, "failed", f"{type(exc).__name__}: {exc}"[:500])
        raise
    end_run(run_dir, "finished")
    return outcome


def _train_in(run_dir: Path, cfg: TrainConfig, config_path, text: str, digest: str, data: TrainingData, warnings: list[str],
              say: Log, progress: EpochProgress, resumed: bool) -> TrainOutcome:
    for w in warnings:
        say(f"warning: {w}")
    t0 = time.perf_counter()
    if isinstance(cfg.model, BdtModel):
        scores, score_type, histories, outputs, model_info = _train_bdt(cfg, data, run_dir)
    else:
        scores, score_type, histories, outputs, model_info = _train_network(cfg, data, run_dir, progress)
    seconds = time.perf_counter() - t0
    metrics = {**evaluate(cfg, scores, score_type, warnings), "model": model_info}
    Metrics.model_validate(metrics).write(run_dir / "metrics.json")
    made = _plots(cfg, scores, histories, metrics, run_dir)
    write_manifest(
        run_dir / "manifest.json", step="train", config_path=Path(config_path).resolve(), config_text=text,
        resolved=cfg.model_dump(mode="json"), inputs={"events": data.events_file}, seed=cfg.seed,
        outputs={**outputs, "metrics": run_dir / "metrics.json", **{p.stem: p for p in made}},
        extra={"config_hash": digest, "training_seconds": round(seconds, 2), "resumed": resumed},
    )
    return TrainOutcome(run_dir, metrics, seconds, made)


# ---------------------------------------------------------------- networks


def _train_network(cfg: TrainConfig, data: TrainingData, run_dir: Path, progress: EpochProgress):
    from l1ml.models.keras import save_model, strip_pruning  # heavy: imported only where needed
    from l1ml.models.networks import build  # heavy: imported only where needed
    from l1ml.train.network import copy_weights, fit, make_deterministic, sparsity  # heavy: imported only where needed

    make_deterministic(cfg.seed)
    t = cfg.training
    input_type = qkeras_type(cfg.quantization.input)
    norm = Normalisation.fit(data.background.train, data.features, str(input_type))
    NormalisationRecord.of(norm).write(run_dir / "normalisation.json")
    x, x_val = norm.apply(data.background.train), norm.apply(data.background.validation)
    n = x.shape[1]
    common = {"batch_size": t.batch_size, "learning_rate": t.learning_rate, "seed": cfg.seed, "progress": progress}

    nets = {"float": build(cfg.model, cfg.quantization, n, quantized=False, seed=cfg.seed)}
    histories = {"float": fit(nets["float"], x, x, x_val, x_val, phase="float", epochs=t.float_epochs or t.epochs,
                              checkpoint_dir=run_dir / "checkpoints" / "float", **common)}
    steps = math.ceil(len(x) / t.batch_size)
    nets["quantized"] = build(cfg.model, cfg.quantization, n, quantized=True, seed=cfg.seed, pruning=t.pruning,
                              steps_per_epoch=steps)
    if t.init_from_float:
        copy_weights(nets["float"].train_model, nets["quantized"].train_model)
    xq, xq_val = input_type.quantize(x), input_type.quantize(x_val)
    histories["quantized"] = fit(nets["quantized"], x, xq, x_val, xq_val, phase="quantized", epochs=t.epochs,
                                 checkpoint_dir=run_dir / "checkpoints" / "quantized", **common)
    outputs = {"normalisation": run_dir / "normalisation.json"}
    for flavour in FLAVOURS:
        for kind, path in save_model(nets[flavour].score_model, run_dir / "model" / flavour).items():
            outputs[f"{flavour}_{kind}"] = path

    def score(flavour: str, events: np.ndarray) -> np.ndarray:
        # the quantised model gets inputs on the firmware's input grid, exactly as the firmware receives them
        inputs = (norm.apply_quantized(events) if flavour == "quantized" else norm.apply(events)).astype(np.float32)
        return nets[flavour].score_model.predict(inputs, batch_size=4096, verbose=0)[:, 0].astype(np.float64)

    scores = {f: {"background": score(f, data.background.test), **{s: score(f, v.test) for s, v in data.signals.items()}}
              for f in FLAVOURS}
    extra = {"sparsity": sparsity(strip_pruning(nets["quantized"].score_model))}
    return scores, qkeras_type(cfg.quantization.score), histories, outputs, extra


def _epoch_progress(say: Log):
    def show(phase: str, epoch: int, epochs: int, logs: dict, seconds_per_epoch: float) -> None:
        losses = "  ".join(f"{k} {v:.4g}" for k, v in logs.items())
        say(f"[{phase}] epoch {epoch}/{epochs}  {losses}  ETA {seconds_per_epoch * (epochs - epoch):.0f} s")

    return show


# ---------------------------------------------------------------- BDTs


def _train_bdt(cfg: TrainConfig, data: TrainingData, run_dir: Path):
    trained_on = data.signals[cfg.data.signals[0]]

    def labelled(b: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate([b, s]), np.concatenate([np.zeros(len(b)), np.ones(len(s))])

    x, y = labelled(data.background.train, trained_on.train)
    x_val, y_val = labelled(data.background.validation, trained_on.validation)
    booster, history = bdt.train(cfg.model, x, y, x_val, y_val, cfg.seed)
    write_json_atomic(run_dir / "checkpoints" / "bdt" / "history.json", history)  # per round, as networks keep per epoch
    input_type, score_type = bdt.choose_types(cfg.model, x, max_abs_score(from_booster(booster)))
    outputs = bdt.save(booster, run_dir / "model", input_type, score_type, cfg.model, data.features)
    firmware = bdt.firmware_emulator(booster, input_type, score_type)

    def score(flavour: str, events: np.ndarray) -> np.ndarray:
        if flavour == "float":
            return bdt.xgboost_margin(booster, events)
        return firmware.predict(events)[:, 0]

    samples = {"background": data.background.test, **{s: v.test for s, v in data.signals.items()}}
    scores = {f: {name: score(f, events) for name, events in samples.items()} for f in FLAVOURS}
    return scores, score_type, {"bdt": history}, outputs, {"input_type": str(input_type)}


# ---------------------------------------------------------------- evaluation


def evaluate(cfg: TrainConfig, scores: dict[str, dict[str, np.ndarray]], score_type: FixedType, warnings: list[str]) -> dict:
    ev = cfg.evaluation
    metrics: dict = {
        "format": Metrics.format_name(),
        "bx_rate_khz": ev.bx_rate_khz,
        "n_background_test": int(len(scores["float"]["background"])),
        "score_type": str(score_type),
        "trigger": "an event fires when score > threshold",
        "thresholds": {},
        "signals": {},
        "warnings": warnings,
    }
    for flavour in FLAVOURS:
        rows = []
        for rate in ev.rates_khz:
            t = threshold_for_rate(scores[flavour]["background"], rate, ev.bx_rate_khz)
            row = {"rate_khz": rate, "threshold": t.threshold, "background_pass": t.n_pass,
                   "achieved_rate_khz": t.achieved_rate_khz, "achieved_rate_err_khz": t.achieved_rate_err_khz}
            if flavour == "quantized":
                row["threshold_bits"] = int(score_type.to_codes(t.threshold))
                row["threshold_hex"] = f"0x{int(score_type.to_bits(t.threshold)):0{(score_type.width + 3) // 4}x}"
            rows.append(row)
        metrics["thresholds"][flavour] = rows
    for name in cfg.data.signals:
        entry: dict = {"n_test": int(len(scores["float"][name]))}
        for flavour in FLAVOURS:
            a, a_err = auc(scores[flavour]["background"], scores[flavour][name])
            eff = {}
            for row in metrics["thresholds"][flavour]:
                value, err = efficiency(scores[flavour][name], row["threshold"])
                eff[f"{row['rate_khz']:g}"] = {"value": value, "error": err}
            entry[flavour] = {"auc": a, "auc_err": a_err, "efficiency": eff}
        metrics["signals"][name] = entry
    return metrics


def _plots(cfg: TrainConfig, scores, histories, metrics, run_dir: Path) -> list[Path]:
    out = run_dir / "plots"
    signals = {f: {k: v for k, v in scores[f].items() if k != "background"} for f in FLAVOURS}
    thresholds = {row["rate_khz"]: row["threshold"] for row in metrics["thresholds"]["quantized"]}
    ylabel = histories.get("bdt", {}).get("metric", "loss")
    return [
        plots.training_curves(histories, out / "training.png", ylabel=ylabel),
        plots.score_distributions(scores["quantized"]["background"], signals["quantized"], thresholds, out / "scores.png",
                                  "quantised"),
        plots.roc_curves({f: scores[f]["background"] for f in FLAVOURS}, signals, cfg.evaluation.bx_rate_khz, out / "roc.png"),
    ]
