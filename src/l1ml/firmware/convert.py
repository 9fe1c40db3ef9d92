"""`l1ml convert RUN_DIR`: the firmware project of a training run, under RUN_DIR/firmware/<backend>/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from l1ml.config.hw import load_target
from l1ml.config.loader import load_config
from l1ml.config.train import BdtModel, TrainConfig
from l1ml.errors import L1mlError


@dataclass
class ConvertOutcome:
    out_dir: Path
    project: object  # HlsProject


def convert_run(run_dir: str | Path, *, target: str | None = None, backend: str | None = None,
                reuse_factor: int | None = None) -> ConvertOutcome:
    from l1ml.firmware.hls import convert
    from l1ml.quantize.normalisation import Normalisation
    from l1ml.runs import write_manifest
    from l1ml.train.network import load_model

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file() or not (run_dir / "metrics.json").is_file():
        raise L1mlError("not a finished training run (no config.yaml or metrics.json); run or resume `l1ml train` first",
                        path=run_dir)
    text, cfg = load_config(config_path, TrainConfig)
    if isinstance(cfg.model, BdtModel):
        raise L1mlError("BDT conversion (conifer) is not implemented yet; only networks convert today", path=run_dir)
    fw = cfg.firmware
    hw = load_target(target or fw.target)
    backend = backend or fw.backend
    model_dir = run_dir / "model" / "quantized"
    norm = Normalisation.load(run_dir / "normalisation.json")
    project = convert(load_model(model_dir), norm.input_type, run_dir / "firmware" / backend, hw, backend=backend,
                      reuse_factor=reuse_factor or fw.reuse_factor, clock_period_ns=fw.clock_period_ns)
    write_manifest(project.out_dir / "manifest.json", step="convert", config_path=config_path, config_text=text,
                   resolved=cfg.model_dump(mode="json"), seed=cfg.seed,
                   inputs={"architecture": model_dir / "model.json", "weights": model_dir / "weights.h5",
                           "normalisation": run_dir / "normalisation.json"},
                   outputs={"hls4ml_config": project.out_dir / "hls4ml_config.yaml", "convert": project.out_dir / "convert.json"})
    return ConvertOutcome(project.out_dir, project)
