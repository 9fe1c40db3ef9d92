"""Tree ensembles in conifer's form (its `ensembleDict`), built exactly from xgboost or read from conifer JSON.

conifer 1.11's own xgboost converter reads thresholds from a text dump with 9 significant digits and
compares in float64, so with xgboost 3 a leaf can differ from xgboost's `pred_leaf` whenever an input
lies between the printed and the true threshold. Here thresholds and leaf values come from the
booster's JSON, where they are the float32 numbers xgboost itself compares against
(`float32(x) < threshold`), so the converted trees route every float32 input to xgboost's leaf.

For the firmware, `firmware_thresholds` moves each threshold up to the input grid (the smallest grid
value not below it), held in a type with one more integer bit than the input: for every input the
firmware can see, `x < grid threshold` is exactly `x < float32 threshold`, so the firmware's trees
route like xgboost's on the firmware's own inputs, with no rounding of thresholds at all.

Missing values (NaN) are not supported: conifer's firmware has no default direction; inputs are checked.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np

from l1ml.documents import Ensemble, read
from l1ml.emulate.tree_json import CONIFER_NODES, base_scores, check_tree, check_xgboost_json
from l1ml.errors import L1mlError
from l1ml.quantize.fixedpoint import FixedType, parse_fixed

# objectives whose margin starts at logit(base_score); the others start at base_score itself (xgboost >= 3 stores
# the multiclass base scores as margins)
LOGIT_BASE = ("binary:logistic", "reg:logistic")
IDENTITY_BASE = ("binary:logitraw", "reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror",
                 "multi:softprob", "multi:softmax")


def from_xgboost_json(model: dict, source: object = "model") -> dict:
    check_xgboost_json(model, source)
    learner = model["learner"]
    gbm = learner["gradient_booster"]
    objective = learner["objective"]["name"]
    if objective not in LOGIT_BASE + IDENTITY_BASE:
        raise L1mlError(f"objective not supported (supported: {', '.join(LOGIT_BASE + IDENTITY_BASE)})", path=source,
                        key="objective", value=objective)
    params = learner["learner_model_param"]
    if int(params.get("num_target", 1)) != 1:
        raise L1mlError("multi-target models are not supported", path=source, key="num_target", value=params["num_target"])
    n_groups = max(1, int(params["num_class"]))
    base = base_scores(params["base_score"])
    if objective in LOGIT_BASE:
        base = -np.log(np.float32(1) / base - np.float32(1))  # xgboost's ProbToMargin, in float32
    base = np.broadcast_to(base, (n_groups,)).astype(np.float32)

    trees, info = gbm["model"]["trees"], gbm["model"]["tree_info"]
    if any(int(t["tree_param"]["num_deleted"]) for t in trees):
        raise L1mlError("the model has pruned (deleted) tree nodes; retrain or re-save it without pruning", path=source)
    if any(any(t.get("split_type", ())) for t in trees):
        raise L1mlError("categorical splits are not supported", path=source)
    if len(trees) % n_groups or any(info[i] != i % n_groups for i in range(len(trees))):
        raise L1mlError("trees are not interleaved by class as xgboost writes them", path=source)
    rounds = [[_tree_from_xgboost(trees[r * n_groups + c]) for c in range(n_groups)] for r in range(len(trees) // n_groups)]
    n_features = int(params["num_feature"])
    names = model["learner"].get("feature_names") or [f"f{i}" for i in range(n_features)]
    ensemble = {
        "max_depth": max(1, max(_depth(t) for r in rounds for t in r)) if rounds else 1,
        "n_trees": len(rounds),
        "n_classes": 2 if n_groups == 1 else n_groups,
        "n_features": n_features,
        "trees": rounds,
        "init_predict": [float(b) for b in base],
        "norm": 1,
        "library": "xgboost",
        "splitting_convention": "<",
        "feature_map": {name: i for i, name in enumerate(names)},
    }
    return _with_weights(ensemble)


def _tree_from_xgboost(t: dict) -> dict:
    left, right = t["left_children"], t["right_children"]
    leaf = [lc == -1 for lc in left]
    cond = [float(np.float32(c)) for c in t["split_conditions"]]  # exact float32 values, as Python floats
    return {
        "feature": [-2 if is_leaf else int(f) for f, is_leaf in zip(t["split_indices"], leaf)],
        "threshold": [0.0 if is_leaf else c for c, is_leaf in zip(cond, leaf)],
        "value": [c if is_leaf else 0.0 for c, is_leaf in zip(cond, leaf)],
        "children_left": [int(c) for c in left],
        "children_right": [int(c) for c in right],
    }


def _depth(tree: dict) -> int:
    """Depth of the deepest leaf (the root alone has depth 0)."""
    deepest, stack = 0, [(0, 0)]
    left, right = tree["children_left"], tree["children_right"]
    while stack:
        node, d = stack.pop()
        if left[node] == -1:
            deepest = max(deepest, d)
        else:
            stack += [(left[node], d + 1), (right[node], d + 1)]
    return deepest


def _with_weights(ensemble: dict) -> dict:
    """conifer's trees carry a one-hot weight vector per node (its firmware computes x . weight)."""
    n = ensemble["n_features"]
    for r in ensemble["trees"]:
        for t in r:
            t["weight"] = [[1 if f == i else 0 for i in range(n)] for f in t["feature"]]
    return ensemble


# conifer JSON ----------------------------------------------------------------------------------------------


def from_conifer_json(path: Path) -> tuple[dict, dict]:
    """(ensemble, firmware precisions) of a conifer model saved as JSON, current or older schema.

    Older files (conifer <= 0.2, and files written by hand) lack `weight`, `library` and `splitting_convention`, call
    the configuration `Config` and carry extra per-node fields; some record a `max_depth` that no tree has. The
    ensemble returned has the current schema, with the depth recomputed from the trees."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise L1mlError(f"cannot read conifer JSON: {exc}", path=path) from None
    rounds = _conifer_trees(d, path)
    config = d.get("config") or d.get("Config") or {}
    convention = d.get("splitting_convention", "<=" if d.get("library") in ("sklearn", "tmva") else "<")
    if convention not in ("<", "<="):
        raise L1mlError("expected '<' or '<='", path=path, key="splitting_convention", value=convention)
    n_features = d["n_features"]
    ensemble = {
        "max_depth": max(1, max(_depth(t) for r in rounds for t in r)),
        "n_trees": len(rounds),
        "n_classes": d["n_classes"],
        "n_features": n_features,
        "trees": rounds,
        "init_predict": [float(v) for v in d["init_predict"]],
        "norm": float(d.get("norm", 1)),
        "library": d.get("library", "xgboost"),
        "splitting_convention": convention,
        "feature_map": d.get("feature_map") or {f"f{i}": i for i in range(n_features)},
    }
    return _with_weights(ensemble), _precisions(config, path)


def _conifer_trees(d: object, path: Path) -> list[list[dict]]:
    """The checked trees of a conifer model (one list per boosting round, one tree per class in each)."""
    if not isinstance(d, dict):
        raise L1mlError("not a conifer model: expected a JSON object", path=path)
    for key in ("trees", "n_features", "n_classes", "init_predict"):
        if key not in d:
            raise L1mlError("not a conifer model: key missing", path=path, key=key)
    for key in ("n_features", "n_classes"):
        if isinstance(d[key], bool) or not isinstance(d[key], int) or d[key] < 1:
            raise L1mlError("expected a whole number >= 1", path=path, key=key, value=d[key])
    groups = n_outputs(d)
    init = d["init_predict"]
    if not isinstance(init, list) or len(init) < groups or not all(isinstance(v, (int, float)) for v in init):
        raise L1mlError(f"expected a list of {groups} or more numbers (one per class)", path=path, key="init_predict")
    trees = d["trees"]
    if not isinstance(trees, list) or not trees or not all(isinstance(r, list) and len(r) == groups for r in trees):
        raise L1mlError(f"expected trees as a non-empty list (one entry per boosting round) of lists of {groups} trees (one per class)",
                        path=path, key="trees")
    for i, r in enumerate(trees):
        for c, t in enumerate(r):
            check_tree(t, CONIFER_NODES, d["n_features"], f"trees.{i}.{c}", path)
    return [[{k: list(t[k]) for k in CONIFER_NODES.keys} for t in r] for r in trees]


def _precisions(config: dict, path: Path) -> dict[str, str]:
    """Input, threshold, score and weight types of a conifer configuration, with conifer's fall-backs."""
    def get(*names):
        return next((config[n] for n in names if config.get(n)), None)

    default = get("precision", "Precision")
    inp = get("input_precision", "InputPrecision") or default
    thr = get("threshold_precision", "ThresholdPrecision") or inp
    types = {"input": inp, "threshold": thr, "weight": get("weight_precision", "WeightPrecision") or thr,
             "score": get("score_precision", "ScorePrecision") or default}
    for key, text in types.items():
        if not text:
            raise L1mlError("no precision in the model's configuration; give the types", path=path, key=f"{key}_precision")
        try:
            types[key] = str(parse_fixed(text))
        except ValueError as exc:
            raise L1mlError(str(exc), path=path, key=f"{key}_precision", value=text) from None
    return types


# firmware thresholds -----------------------------------------------------------------------------------------


def threshold_type_for(input_type: FixedType) -> FixedType:
    """The input type with one more integer bit: holds every grid threshold, including max + 1 LSB."""
    return FixedType(input_type.width + 1, input_type.integer + 1, input_type.signed, input_type.rounding,
                     input_type.overflow)


def firmware_thresholds(ensemble: dict, input_type: FixedType) -> dict:
    """A copy of a '<' ensemble with every threshold replaced by the smallest input-grid value >= it (clipped to
    [min, max + 1 LSB] of the input type): exact in `threshold_type_for(input_type)`, and on the input grid
    `x < new` exactly when `x < old`."""
    if ensemble["splitting_convention"] != "<":
        raise ValueError("grid thresholds are derived for the '<' convention")
    out = copy.deepcopy(ensemble)
    lsb = input_type.lsb
    low, high = input_type.min_value, input_type.max_value + lsb
    for r in out["trees"]:
        for t in r:
            t["threshold"] = [0.0 if f == -2 else float(min(max(math.ceil(thr / lsb) * lsb, low), high))
                              for f, thr in zip(t["feature"], t["threshold"])]
    return out


def n_outputs(ensemble: dict) -> int:
    """The scores it gives: one for two classes, else one per class."""
    return 1 if ensemble["n_classes"] == 2 else ensemble["n_classes"]


def max_abs_score(ensemble: dict) -> float:
    """Largest |init + sum of leaves| any input can reach, per class (a bound: the largest leaf of every tree)."""
    worst = 0.0
    for c in range(n_outputs(ensemble)):
        total = abs(ensemble["init_predict"][c])
        for r in ensemble["trees"]:
            t = r[c]
            total += max(abs(v) for v, f in zip(t["value"], t["feature"]) if f == -2)
        worst = max(worst, total)
    return worst


def check_finite(x: np.ndarray, where: object = "input") -> None:
    """conifer's firmware has no default direction for missing values: NaN inputs are refused, not routed."""
    bad = ~np.isfinite(x)
    if bad.any():
        event, feature = np.argwhere(bad)[0]
        raise L1mlError(f"NaN or infinite input at event {event}, feature {feature}: BDT firmware has no missing-value "
                        "routing; replace missing values before evaluation", path=where)


def save(ensemble: dict, path: Path) -> None:
    """Write the ensemble as an `ensemble.json` document (`l1ml.documents.Ensemble`)."""
    Ensemble.model_validate({"format": Ensemble.format_name(), **ensemble}).write(path)


def load(path: Path) -> dict:
    """The ensemble of an `ensemble.json` document; an older, foreign or damaged one is an L1mlError naming it."""
    return read(path, Ensemble).model_dump(exclude={"format"})


def quantized_values(ensemble: dict, score_type: FixedType) -> dict:
    """A copy with leaf values and initial predictions already on the score type's grid (so that a backend with a
    finer or differently rounding type holds exactly the values the HLS firmware holds)."""
    out = copy.deepcopy(ensemble)
    out["init_predict"] = [float(v) for v in score_type.quantize(np.array(out["init_predict"], dtype=np.float64))]
    for r in out["trees"]:
        for t in r:
            t["value"] = [float(v) for v in score_type.quantize(np.array(t["value"], dtype=np.float64))]
    return out
