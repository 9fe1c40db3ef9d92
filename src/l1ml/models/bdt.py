"""Boosted decision trees for the trigger: xgboost training, the trees as arrays, and their fixed-point emulation.

The firmware evaluates a BDT as conifer does: inputs and thresholds in one input type, leaves and
their sum in one score type, no sigmoid (the trigger cuts on the raw sum, the margin). Types not given
in the config are chosen from the data: enough integer bits for the largest |input| seen in training,
and for the largest possible |sum of leaves|.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ml.config.train import BdtModel
from l1ml.quantize.fixedpoint import FixedType, parse_fixed

OBJECTIVES = {"classification": "binary:logistic", "regression": "reg:squarederror"}


@dataclass
class Trees:
    """xgboost trees as flat arrays: per tree, node arrays of feature, threshold, children and value."""

    feature: list[np.ndarray]
    threshold: list[np.ndarray]
    left: list[np.ndarray]
    right: list[np.ndarray]
    value: list[np.ndarray]
    base_margin: float

    @classmethod
    def from_booster(cls, booster) -> Trees:
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        trees = learner["gradient_booster"]["model"]["trees"]
        base = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        objective = learner["objective"]["name"]
        base_margin = math.log(base / (1 - base)) if objective == "binary:logistic" else base
        return cls(
            feature=[np.array(t["split_indices"], dtype=np.int64) for t in trees],
            threshold=[np.array(t["split_conditions"], dtype=np.float32) for t in trees],
            left=[np.array(t["left_children"], dtype=np.int64) for t in trees],
            right=[np.array(t["right_children"], dtype=np.int64) for t in trees],
            value=[np.array(t["split_conditions"], dtype=np.float64) for t in trees],  # a leaf keeps its value here
            base_margin=base_margin,
        )

    def leaves(self, x: np.ndarray, threshold_type: FixedType | None = None) -> np.ndarray:
        """Leaf index reached in each tree, shape (events, trees); go left when x < threshold, as xgboost does."""
        out = np.empty((len(x), len(self.feature)), dtype=np.int64)
        for t, (feat, thr, left, right) in enumerate(zip(self.feature, self.threshold, self.left, self.right)):
            thr_t = thr.astype(np.float64) if threshold_type is None else threshold_type.quantize(thr.astype(np.float64))
            node = np.zeros(len(x), dtype=np.int64)
            while True:
                inner = left[node] != -1
                if not inner.any():
                    break
                n = node[inner]
                go_left = x[np.flatnonzero(inner), feat[n]] < thr_t[n]
                node[inner] = np.where(go_left, left[n], right[n])
            out[:, t] = node
        return out

    def margin(self, x: np.ndarray) -> np.ndarray:
        """Float evaluation (float32 inputs and thresholds, as xgboost compares them)."""
        leaves = self.leaves(np.asarray(x, dtype=np.float32))
        return self.base_margin + sum(self.value[t][leaves[:, t]] for t in range(leaves.shape[1]))

    def margin_fixed(self, x: np.ndarray, input_type: FixedType, score_type: FixedType) -> np.ndarray:
        """Fixed-point evaluation: inputs and thresholds in `input_type`, base, leaves and sum in `score_type`."""
        leaves = self.leaves(input_type.quantize(x), input_type)
        total = score_type.quantize(self.base_margin) + sum(
            score_type.quantize(self.value[t])[leaves[:, t]] for t in range(leaves.shape[1]))
        return score_type.quantize(total)

    def max_abs_margin(self) -> float:
        leaf_max = [np.abs(v[left == -1]).max() for v, left in zip(self.value, self.left)]
        return abs(self.base_margin) + float(np.sum(leaf_max))


def integer_bits_for(max_abs: float) -> int:
    """Integer bits (sign included) of a signed type that holds +-max_abs."""
    return max(1, math.floor(math.log2(max_abs)) + 2) if max_abs > 0 else 1


def choose_types(cfg: BdtModel, x_train: np.ndarray, trees: Trees) -> tuple[FixedType, FixedType]:
    if cfg.input:
        input_type = parse_fixed(cfg.input)
    else:
        input_type = FixedType(cfg.input_bits, integer_bits_for(float(np.abs(x_train).max())), rounding="AP_RND_CONV",
                               overflow="AP_SAT")
    if cfg.score:
        score_type = parse_fixed(cfg.score)
    else:
        score_type = FixedType(cfg.score_bits, integer_bits_for(trees.max_abs_margin()), rounding="AP_RND_CONV",
                               overflow="AP_SAT")
    return input_type, score_type


def train(cfg: BdtModel, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, seed: int):
    """Train; return the xgboost booster and the per-round training and validation loss."""
    import xgboost as xgb

    params = {
        "objective": OBJECTIVES[cfg.task],
        "max_depth": cfg.max_depth,
        "eta": cfg.learning_rate,
        "tree_method": "hist",
        "seed": seed,
        "nthread": 2,
    }
    evals_result: dict = {}
    train_set = xgb.DMatrix(x.astype(np.float32), label=y)
    val_set = xgb.DMatrix(x_val.astype(np.float32), label=y_val)
    booster = xgb.train(params, train_set, num_boost_round=cfg.n_estimators, evals=[(train_set, "train"), (val_set, "validation")],
                        evals_result=evals_result, verbose_eval=False)
    metric = next(iter(evals_result["train"]))
    return booster, {"loss": evals_result["train"][metric], "val_loss": evals_result["validation"][metric], "metric": metric}


def xgboost_margin(booster, x: np.ndarray) -> np.ndarray:
    import xgboost as xgb

    return booster.predict(xgb.DMatrix(np.asarray(x, dtype=np.float32)), output_margin=True).astype(np.float64)


def save(booster, out_dir: Path, input_type: FixedType, score_type: FixedType, cfg: BdtModel, features: list[str]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path, info_path = out_dir / "xgboost.json", out_dir / "bdt.json"
    booster.save_model(str(model_path))
    info_path.write_text(json.dumps({
        "task": cfg.task,
        "objective": OBJECTIVES[cfg.task],
        "score": "raw margin (sum of leaves + base), no sigmoid",
        "input_type": str(input_type),
        "score_type": str(score_type),
        "features": features,
        "n_trees": cfg.n_estimators,
        "max_depth": cfg.max_depth,
    }, indent=1) + "\n")
    return {"model": model_path, "info": info_path}
