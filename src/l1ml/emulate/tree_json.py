"""Checks of tree ensembles saved as JSON, xgboost's and conifer's, before xgboost or l1ml's tree reader use them.

A file that is damaged or edited by hand must give one error naming the file and the key path of what is wrong
(`learner.gradient_booster.model.trees.3.left_children.5`), not xgboost's C++ backtrace, an IndexError or a tree walk
that never ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from l1ml.errors import L1mlError

XGBOOST_TREES = "learner.gradient_booster.model.trees"


def base_scores(text: object) -> np.ndarray:
    """xgboost's `base_score` parameter ('5E-1', or '[4.62E-1]', a list with one entry per class) as float32."""
    return np.array([float(v) for v in str(text).strip("[]").split(",")], dtype=np.float32)


def check_xgboost_json(model: object, source: object) -> None:
    """Check what l1ml reads from an xgboost JSON model (as `save_model` or `save_raw("json")` write it) before xgboost or
    the tree reader use it: a tree booster, its parameters, and trees whose node arrays are consistent (see
    `check_tree`). A problem is an L1mlError naming `source` and the key path, such as
    `learner.gradient_booster.model.trees.3.left_children.5`."""
    booster = _field(model, "learner.gradient_booster.name", source, str)
    if booster != "gbtree":
        raise L1mlError("only tree boosters (gbtree) are supported", path=source, key="learner.gradient_booster.name",
                        value=booster)
    _field(model, "learner.objective.name", source, str)
    params = "learner.learner_model_param"
    n_features = _count(model, f"{params}.num_feature", source)
    n_groups = max(1, _count(model, f"{params}.num_class", source))
    if "num_target" in model["learner"]["learner_model_param"]:
        _count(model, f"{params}.num_target", source)
    base = _field(model, f"{params}.base_score", source, (str, int, float))
    try:
        n_base = len(base_scores(base))
    except ValueError:
        n_base = 0
    if n_base not in (1, n_groups):
        raise L1mlError(f"expected a number or a list of {n_groups} numbers (one per class)", path=source,
                        key=f"{params}.base_score", value=_short(base))
    names = model["learner"].get("feature_names") or []
    if len(names) not in (0, n_features):
        raise L1mlError(f"{len(names)} names for {n_features} features", path=source, key="learner.feature_names")
    trees = _field(model, XGBOOST_TREES, source, list)
    tree_info = _field(model, "learner.gradient_booster.model.tree_info", source, list)
    if len(tree_info) != len(trees):
        raise L1mlError(f"{len(tree_info)} entries for {len(trees)} trees", path=source,
                        key="learner.gradient_booster.model.tree_info")
    for i, tree in enumerate(trees):
        check_tree(tree, XGBOOST_NODES, n_features, f"{XGBOOST_TREES}.{i}", source)
        _count(tree, "tree_param.num_deleted", source, f"{XGBOOST_TREES}.{i}")


@dataclass(frozen=True)
class NodeArrays:
    """The names a file format gives a tree's per-node arrays."""

    left: str
    right: str
    feature: str
    numbers: tuple[str, ...]  # thresholds, leaf values
    leaf_feature: int | None = None  # the feature that marks a leaf (conifer's -2), else leaves are nodes without children

    @property
    def keys(self) -> tuple[str, ...]:
        return self.left, self.right, self.feature, *self.numbers


XGBOOST_NODES = NodeArrays("left_children", "right_children", "split_indices", ("split_conditions",))
CONIFER_NODES = NodeArrays("children_left", "children_right", "feature", ("threshold", "value"), leaf_feature=-2)


def check_tree(tree: object, names: NodeArrays, n_features: int, where: str, source: object) -> None:
    """One tree as per-node arrays: one entry per node in each, children that are -1 on both sides (a leaf) or other
    nodes of the tree, each node reached at most once from the root, and splits on features the model has. `where` is
    the tree's key path, for the messages."""
    if not isinstance(tree, dict):
        raise L1mlError("expected an object (one tree)", path=source, key=where)
    arrays = {key: _numbers(tree, key, source, where, integer=key not in names.numbers) for key in names.keys}
    left, right = arrays[names.left], arrays[names.right]
    if not left:
        raise L1mlError("a tree without nodes", path=source, key=f"{where}.{names.left}")
    for key, values in arrays.items():
        if len(values) != len(left):
            raise L1mlError(f"{len(values)} entries where {names.left} has {len(left)} (one per node)", path=source,
                            key=f"{where}.{key}")
    _check_children(left, right, names, where, source)
    _check_features(left, arrays[names.feature], names, n_features, where, source)


def _check_children(left: list[int], right: list[int], names: NodeArrays, where: str, source: object) -> None:
    n = len(left)
    for node, pair in enumerate(zip(left, right)):
        for key, child in zip((names.left, names.right), pair):
            if child != -1 and not 0 < child < n:
                raise L1mlError(f"child {child} is neither a node of this tree (1 to {n - 1}) nor -1 (a leaf)", path=source,
                                key=f"{where}.{key}.{node}")
        if (pair[0] == -1) != (pair[1] == -1):
            raise L1mlError("a node with one child (a leaf has -1 on both sides)", path=source, key=f"{where}.{names.left}.{node}")
    reached, stack = set(), [(0, "")]
    while stack:
        node, via = stack.pop()
        if node in reached:
            raise L1mlError(f"node {node} is reached twice from the root: not a tree", path=source, key=via)
        reached.add(node)
        if left[node] != -1:
            stack += [(left[node], f"{where}.{names.left}.{node}"), (right[node], f"{where}.{names.right}.{node}")]


def _check_features(left: list[int], features: list[int], names: NodeArrays, n_features: int, where: str,
                    source: object) -> None:
    for node, (child, feature) in enumerate(zip(left, features)):
        split = child != -1 if names.leaf_feature is None else feature != names.leaf_feature
        if split and not 0 <= feature < n_features:
            raise L1mlError(f"split on feature {feature} of a model with {n_features} features", path=source,
                            key=f"{where}.{names.feature}.{node}")
        if split and child == -1:
            raise L1mlError(f"a split on feature {feature} without children", path=source, key=f"{where}.{names.left}.{node}")


_KINDS = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}


def _field(obj: object, key: str, source: object, kind: type | tuple[type, ...], where: str = "") -> object:
    """obj[a][b][c] for key 'a.b.c', of the given kind; `where`: the key path of obj itself."""
    walked = where
    for part in key.split("."):
        if not isinstance(obj, dict):
            raise L1mlError("expected an object", path=source, key=walked or None)
        walked = f"{walked}.{part}" if walked else part
        if part not in obj:
            raise L1mlError("missing", path=source, key=walked)
        obj = obj[part]
    if isinstance(obj, bool) or not isinstance(obj, kind):
        expected = " or ".join(_KINDS[k] for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise L1mlError(f"expected {expected}", path=source, key=walked, value=_short(obj))
    return obj


def _count(obj: object, key: str, source: object, where: str = "") -> int:
    """A whole number >= 0, which xgboost writes as a string."""
    value = _field(obj, key, source, (str, int), where)
    if not str(value).isdigit():
        raise L1mlError("expected a whole number >= 0", path=source, key=f"{where}.{key}" if where else key, value=value)
    return int(value)


def _numbers(tree: dict, key: str, source: object, where: str, integer: bool) -> list:
    values = _field(tree, key, source, list, where)
    kind = int if integer else (int, float)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, kind):
            raise L1mlError(f"expected {'an integer' if integer else 'a number'}", path=source, key=f"{where}.{key}.{i}",
                            value=_short(v))
    return values


def _short(value: object) -> object:
    """A value short enough for a one-line message."""
    text = repr(value)
    return value if len(text) <= 40 else f"{text[:37]}..."
