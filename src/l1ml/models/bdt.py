"""Boosted decision trees for the trigger: xgboost training, the types of their firmware, its emulation.

The firmware (conifer's) compares inputs of one input type with thresholds moved to the input grid, and
sums leaves in one score type, with no sigmoid (the trigger cuts on the raw sum, the margin). Types not given
in the config are chosen from the data: enough integer bits for the largest |input| seen in training,
and for the largest possible |sum of leaves|. Model files are read with `load_booster`, which checks them first.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from l1ml.config.train import BdtModel
from l1ml.documents import BdtInfo
from l1ml.emulate.bdt import BdtEmulator
from l1ml.emulate.ensemble import check_finite, firmware_thresholds, from_xgboost_json, threshold_type_for
from l1ml.emulate.tree_json import check_xgboost_json
from l1ml.errors import L1mlError
from l1ml.quantize.fixedpoint import FixedType, parse_fixed

OBJECTIVES = {"classification": "binary:logistic", "regression": "reg:squarederror"}


def firmware_emulator(booster, input_type: FixedType, score_type: FixedType):
    """The bit-exact emulator of the firmware l1ml writes for `booster` (thresholds moved to the input grid)."""
    ensemble = firmware_thresholds(from_booster(booster), input_type)
    return BdtEmulator(ensemble, input_type, threshold_type_for(input_type), score_type)


def integer_bits_for(max_abs: float) -> int:
    """Integer bits (sign included) of a signed type that holds +-max_abs."""
    return max(1, math.floor(math.log2(max_abs)) + 2) if max_abs > 0 else 1


def choose_types(cfg: BdtModel, x_train: np.ndarray, max_abs_score: float) -> tuple[FixedType, FixedType]:
    if cfg.input:
        input_type = parse_fixed(cfg.input)
    else:
        input_type = FixedType(cfg.input_bits, integer_bits_for(float(np.abs(x_train).max())), rounding="AP_RND_CONV",
                               overflow="AP_SAT")
    if cfg.score:
        score_type = parse_fixed(cfg.score)
    else:
        score_type = FixedType(cfg.score_bits, integer_bits_for(max_abs_score), rounding="AP_RND_CONV",
                               overflow="AP_SAT")
    return input_type, score_type


def train(cfg: BdtModel, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, seed: int):
    """Train; return the xgboost booster and the per-round training and validation loss."""
    import xgboost as xgb  # heavy: imported only where needed

    params = {
        "objective": OBJECTIVES[cfg.task],
        "max_depth": cfg.max_depth,
        "eta": cfg.learning_rate,
        "tree_method": "hist",
        "seed": seed,
        "nthread": 2,
    }

    check_finite(x, "training events")
    evals_result: dict = {}
    train_set = xgb.DMatrix(x.astype(np.float32), label=y)
    val_set = xgb.DMatrix(x_val.astype(np.float32), label=y_val)
    booster = xgb.train(params, train_set, num_boost_round=cfg.n_estimators, evals=[(train_set, "train"), (val_set, "validation")],
                        evals_result=evals_result, verbose_eval=False)
    metric = next(iter(evals_result["train"]))
    return booster, {"loss": evals_result["train"][metric], "val_loss": evals_result["validation"][metric], "metric": metric}


def xgboost_margin(booster, x: np.ndarray) -> np.ndarray:
    import xgboost as xgb  # heavy: imported only where needed

    return booster.predict(xgb.DMatrix(np.asarray(x, dtype=np.float32)), output_margin=True).astype(np.float64)


def save(booster, out_dir: Path, input_type: FixedType, score_type: FixedType, cfg: BdtModel, features: list[str]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path, info_path = out_dir / "xgboost.json", out_dir / "bdt.json"
    booster.save_model(str(model_path))
    BdtInfo(task=cfg.task, objective=OBJECTIVES[cfg.task], score="raw margin (sum of leaves + base), no sigmoid",
            input_type=str(input_type), score_type=str(score_type), features=features, n_trees=cfg.n_estimators,
            max_depth=cfg.max_depth).write(info_path)
    return {"model": model_path, "info": info_path}


# reading model files ----------------------------------------------------------------------------------------


def load_booster(path: str | Path):
    """An xgboost booster from a model file (JSON or UBJSON, as `save_model` writes them). A missing file, a JSON model
    without what l1ml reads from it (see `check_xgboost_json`) or a file xgboost refuses is an L1mlError naming it."""
    import xgboost as xgb  # heavy: imported only where needed

    path = Path(path)
    if not path.is_file():
        raise L1mlError("no such file", path=path)
    if path.suffix == ".json":
        check_xgboost_json(_read_json(path), path)
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        reason = re.sub(r"^\[[^\]]*\]\s*\S+:\d+:\s*", "", str(exc).splitlines()[0])  # drop xgboost's time and source line
        raise L1mlError(f"not an xgboost model: {reason}", path=path) from None
    return booster


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise L1mlError(f"not an xgboost model: not valid JSON ({exc})", path=path) from None


def from_booster(booster) -> dict:
    return from_xgboost_json(json.loads(booster.save_raw("json")), source="booster")


def from_xgboost_file(path: Path) -> tuple[dict, object]:
    """(ensemble, booster) of an xgboost model file (.json or .ubj, as saved by `save_model`)."""
    booster = load_booster(path)
    return from_xgboost_json(json.loads(booster.save_raw("json")), source=path), booster
