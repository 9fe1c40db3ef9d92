"""`l1ml convert RUN_DIR`: the firmware project of a training run, under RUN_DIR/firmware/<backend>/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from l1ml.config.hw import load_target
from l1ml.config.loader import load_config
from l1ml.config.train import BdtModel, TrainConfig
from l1ml.documents import CONVERT, BdtInfo, NormalisationRecord, read
from l1ml.errors import L1mlError
from l1ml.firmware.conifer_project import BDT_BACKENDS, convert_for_firmware
from l1ml.firmware.hls import EMULATOR, convert
from l1ml.firmware.rtl import SUMMARY, convert_beside
from l1ml.models.bdt import from_xgboost_file
from l1ml.quantize.fixedpoint import parse_fixed
from l1ml.runfolder import require_trained
from l1ml.runs import write_manifest


@dataclass
class ConvertOutcome:
    out_dir: Path  # the (first) project folder
    project: object  # HlsProject, or the list of conifer project folders
    rtl_dir: Path | None = None  # the network's RTL (--rtl)


def convert_run(run_dir: str | Path, *, target: str | None = None, backend: str | None = None,
                reuse_factor: int | None = None, rtl: bool = False) -> ConvertOutcome:
    from l1ml.models.keras import load_model  # heavy: imported only where needed

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    require_trained(run_dir, "convert")
    text, cfg = load_config(config_path, TrainConfig)
    fw = cfg.firmware
    hw = load_target(target or fw.target)
    if isinstance(cfg.model, BdtModel):
        if rtl:
            raise L1mlError("the RTL path (--rtl) is for networks; a BDT's RTL is conifer's VHDL (--backend vhdl)",
                            path=config_path, key="model.kind", value=cfg.model.kind)
        return _convert_bdt_run(run_dir, cfg, text, hw, backend or fw.backend, fw.clock_period_ns)
    backend = backend or fw.backend or "vitis"
    if backend not in ("vitis", "vivado"):
        raise L1mlError("networks convert with hls4ml: vitis or vivado", key="--backend", value=backend)
    model_dir = run_dir / "model" / "quantized"
    norm = read(run_dir / "normalisation.json", NormalisationRecord).normalisation()
    project = convert(load_model(model_dir), norm.input_type, run_dir / "firmware" / backend, hw, backend=backend,
                      reuse_factor=reuse_factor or fw.reuse_factor, clock_period_ns=fw.clock_period_ns)
    write_manifest(project.out_dir / "manifest.json", step="convert", config_path=config_path, config_text=text,
                   resolved=cfg.model_dump(mode="json"), seed=cfg.seed,
                   inputs={"architecture": model_dir / "model.json", "weights": model_dir / "weights.h5",
                           "normalisation": run_dir / "normalisation.json"},
                   outputs={"hls4ml_config": project.out_dir / "hls4ml_config.yaml", "convert": project.out_dir / "convert.json"})
    rtl_dir = None
    if rtl:
        rtl_dir = convert_beside(project.out_dir, source={"kind": "emulator specification", "run": str(run_dir.resolve())})
        write_manifest(rtl_dir / "manifest.json", step="convert", config_path=config_path, config_text=text,
                       resolved=cfg.model_dump(mode="json"), seed=cfg.seed, inputs={"emulator": project.out_dir / EMULATOR},
                       outputs={"rtl": rtl_dir / SUMMARY, "convert": rtl_dir / CONVERT})
    return ConvertOutcome(project.out_dir, project, rtl_dir)


def _convert_bdt_run(run_dir: Path, cfg, config_text: str, hw, backend: str | None, clock_ns: float | None) -> ConvertOutcome:
    if backend is not None and backend not in BDT_BACKENDS:
        raise L1mlError("BDTs convert with conifer: xilinxhls or vhdl", key="--backend", value=backend)
    model_path, info_path = run_dir / "model" / "xgboost.json", run_dir / "model" / "bdt.json"
    info = read(info_path, BdtInfo)
    ensemble, _ = from_xgboost_file(model_path)
    clock = clock_ns or hw.default_clock_ns
    dirs = convert_for_firmware(ensemble, parse_fixed(info.input_type), parse_fixed(info.score_type),
                                run_dir / "firmware", backends=(backend,) if backend else BDT_BACKENDS, hw=hw,
                                clock_period_ns=clock, source={"kind": "xgboost", "run": str(run_dir)})
    for d in dirs:
        write_manifest(d / "manifest.json", step="convert", config_path=run_dir / "config.yaml", config_text=config_text,
                       resolved=cfg.model_dump(mode="json"), seed=cfg.seed,
                       inputs={"xgboost": model_path, "bdt": info_path},
                       outputs={"ensemble": d / "ensemble.json", "convert": d / "convert.json"})
    return ConvertOutcome(dirs[0], dirs)
