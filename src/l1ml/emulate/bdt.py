"""A vectorised, bit-exact emulator of conifer's HLS BDT firmware (xilinxhls backend).

What the firmware does, per event (conifer 1.11 `BDT.h`):
- each input is the input type (the C-simulation converts the given double with the type's rounding);
- each split compares `x . weight` (one-hot: the input itself, in the input type) with the threshold
  held in the threshold type, by '<' or '<=';
- each tree returns its leaf value held in the score type; per class, the trees' values are summed by a
  balanced pairwise reduction (`BDT::reduce`), every partial sum cast to the score type; the initial
  prediction (score type) is added and the sum cast again, then multiplied by the normalisation.

All values are float64 numbers on their type's grid (exact: the comparisons need no arithmetic, and
sums of leaves stay far below 2**53 LSBs). When no partial sum can overflow the score type (bounded
by the largest leaf of each tree), the casts in the reduction change nothing and the sum is taken
directly; otherwise the reduction is emulated in the firmware's order. Trees are padded to complete
trees, every split of every tree is compared at once, and all trees are walked together.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from l1ml.emulate.ensemble import check_finite
from l1ml.quantize.fixedpoint import FixedType, parse_fixed

CHUNK = 8192


@dataclass
class Forest:
    """Every tree of an ensemble padded to a complete tree of the ensemble's depth, in heap order (node k has children
    2k+1 and 2k+2): a leaf above the bottom becomes a split that always goes left, to copies of itself. Trees are in
    conifer's order (round-major, then class). Evaluation compares every split at once, then walks all trees
    together, one gather per level."""

    feature: np.ndarray  # (trees, 2**depth - 1) int64
    threshold: np.ndarray  # (trees, 2**depth - 1) float64; +inf for padding
    value: np.ndarray  # (trees, 2**depth) float64 leaf values
    leaf_id: np.ndarray  # (trees, 2**depth) the leaf's node number in the original tree
    klass: np.ndarray  # class (score) index of each tree
    depth: int
    n_scores: int
    less_equal: bool

    @classmethod
    def from_ensemble(cls, ens: dict, threshold_type: FixedType | None = None, score_type: FixedType | None = None) -> Forest:
        depth = max(1, int(ens["max_depth"]))
        trees = [(c, t) for r in ens["trees"] for c, t in enumerate(r)]
        n_inner, n_leaves = 2**depth - 1, 2**depth
        feature = np.zeros((len(trees), n_inner), dtype=np.int64)
        threshold = np.full((len(trees), n_inner), np.inf)
        value = np.zeros((len(trees), n_leaves))
        leaf_id = np.zeros((len(trees), n_leaves), dtype=np.int64)
        for i, (_, t) in enumerate(trees):
            stack = [(0, 0, 0)]  # (original node, heap position, depth)
            while stack:
                node, pos, d = stack.pop()
                if t["children_left"][node] != -1:
                    feature[i, pos], threshold[i, pos] = t["feature"][node], t["threshold"][node]
                    stack += [(t["children_left"][node], 2 * pos + 1, d + 1), (t["children_right"][node], 2 * pos + 2, d + 1)]
                    continue
                # a leaf at depth d covers 2**(depth - d) bottom positions, reached by always going left below it
                first = pos
                for _ in range(depth - d):
                    first = 2 * first + 1
                span = 2 ** (depth - d)
                value[i, first - n_inner:first - n_inner + span] = t["value"][node]
                leaf_id[i, first - n_inner:first - n_inner + span] = node
        finite = np.isfinite(threshold)
        if threshold_type is not None:
            threshold[finite] = threshold_type.quantize(threshold[finite])
        if score_type is not None:
            value = score_type.quantize(value)
        return cls(feature, threshold, value, leaf_id, np.array([c for c, _ in trees]), depth,
                   1 if ens["n_classes"] == 2 else int(ens["n_classes"]), ens["splitting_convention"] == "<=")

    def __post_init__(self) -> None:
        self._threshold32 = self.threshold.ravel().astype(np.float32)
        self.float32_exact = bool(np.array_equal(self._threshold32, self.threshold.ravel()))

    @property
    def n_trees(self) -> int:
        return len(self.feature)

    def positions(self, x: np.ndarray) -> np.ndarray:
        """Bottom position (0 .. 2**depth - 1) each event reaches in each tree, shape (events, trees)."""
        thresholds = self.threshold.ravel()
        if x.dtype == np.float32:  # half the memory traffic; the same comparisons when the thresholds are float32 too
            thresholds = self._threshold32 if self.float32_exact else thresholds
        xs = np.take(x, self.feature.ravel(), axis=1)  # every split's input, (events, trees * inner)
        go_right = xs > thresholds if self.less_equal else xs >= thresholds
        n_inner = self.feature.shape[1]
        base = np.arange(self.n_trees) * n_inner
        pos = np.zeros((len(x), self.n_trees), dtype=np.int64)
        rows = np.arange(len(x))[:, None] * go_right.shape[1]
        flat = go_right.ravel()
        for _ in range(self.depth):
            pos = 2 * pos + 1 + flat[rows + base + pos]
        return pos - n_inner

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Leaf number within each tree (as xgboost's `pred_leaf` numbers nodes), shape (events, trees)."""
        x = np.ascontiguousarray(x, dtype=np.float32 if np.asarray(x).dtype == np.float32 else np.float64)
        out = np.empty((len(x), self.n_trees), dtype=np.int64)
        for a in range(0, len(x), self.chunk):
            out[a:a + self.chunk] = self.leaf_id[np.arange(self.n_trees), self.positions(x[a:a + self.chunk])]
        return out

    def tree_values(self, x: np.ndarray) -> np.ndarray:
        return self.value[np.arange(self.n_trees), self.positions(x)]

    @property
    def chunk(self) -> int:
        """Events per block: keeps the comparison matrix near 8 M entries."""
        return max(64, min(CHUNK, (1 << 23) // max(1, self.feature.size)))


class BdtEmulator:
    """`predict(x)` -> (events, scores): what the C-simulation of the conifer project returns, bit for bit."""

    def __init__(self, ensemble: dict, input_type: FixedType | str, threshold_type: FixedType | str,
                 score_type: FixedType | str, weight_type: FixedType | str | None = None):
        t = {k: parse_fixed(v) if isinstance(v, str) else v for k, v in
             {"input": input_type, "threshold": threshold_type, "score": score_type}.items()}
        self.input_type, self.threshold_type, self.score_type = t["input"], t["threshold"], t["score"]
        if weight_type is not None:
            w = parse_fixed(weight_type) if isinstance(weight_type, str) else weight_type
            if float(w.quantize(1.0)) != 1.0:
                raise ValueError(f"the weight type {w} cannot hold the one-hot weight 1")
        for r in ensemble["trees"]:
            for tree in r:
                for f, wv in zip(tree["feature"], tree.get("weight", [])):
                    if f != -2 and (sum(wv) != 1 or wv[f] != 1):
                        raise ValueError("oblique (non one-hot) splits are not emulated")
        self.forest = Forest.from_ensemble(ensemble, self.threshold_type, self.score_type)
        groups = self.forest.n_scores
        self.init = self.score_type.quantize(np.array(ensemble["init_predict"][:groups], dtype=np.float64))
        self.norm = float(self.score_type.quantize(float(ensemble["norm"])))
        self.trees_per_class = [np.flatnonzero(self.forest.klass == c) for c in range(groups)]
        self.exact_sum = self._sum_cannot_overflow()

    def _sum_cannot_overflow(self) -> bool:
        """True when no partial sum can leave the score type (bound: the largest |leaf| of every tree)."""
        st = self.score_type
        largest = np.abs(self.forest.value).max(axis=1)
        limit = min(st.max_value, -st.min_value) if st.signed else st.max_value
        return all(abs(self.init[c]) + largest[trees].sum() <= limit for c, trees in enumerate(self.trees_per_class))

    def _reduce(self, v: np.ndarray) -> np.ndarray:
        """conifer's balanced reduction over the last axis: left part of size 2**floor(log2(n-1)), each sum cast."""
        n = v.shape[1]
        if n == 1:
            return v[:, 0]
        if n == 2:
            return self.score_type.quantize(v[:, 0] + v[:, 1])
        left = 1 << ((n - 1).bit_length() - 1)
        return self.score_type.quantize(self._reduce(v[:, :left]) + self._reduce(v[:, left:]))

    def _quantize_inputs(self, x: np.ndarray) -> np.ndarray:
        t = self.input_type
        # the float64 path is exact unless a wrapping type meets values beyond 2**52 LSBs
        q = t.quantize(x) if t.overflow == "AP_WRAP" else t.quantize_float(x)
        return q.astype(np.float32) if t.width <= 24 else q  # float32 holds every value of a type up to 24 bits wide

    def _predict_chunk(self, x: np.ndarray) -> np.ndarray:
        values = self.forest.tree_values(self._quantize_inputs(x))
        out = np.empty((len(x), len(self.trees_per_class)))
        for c, trees in enumerate(self.trees_per_class):
            part = values[:, trees]
            total = part.sum(axis=1) if self.exact_sum else self._reduce(part)
            out[:, c] = self.score_type.quantize(self.init[c] + total)
        if self.norm != 1.0:
            out = self.score_type.quantize(out * self.norm)
        return out

    def predict(self, x: np.ndarray, threads: int | None = None) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        check_finite(x)
        n = self.forest.chunk
        chunks = [x[i:i + n] for i in range(0, len(x), n)] or [x]
        threads = threads or len(os.sched_getaffinity(0))
        if threads == 1 or len(chunks) == 1:
            return np.concatenate([self._predict_chunk(c) for c in chunks])
        with ThreadPoolExecutor(threads) as pool:
            return np.concatenate(list(pool.map(self._predict_chunk, chunks)))

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Leaf index per tree that the firmware selects for each event."""
        return self.forest.leaves(self._quantize_inputs(np.asarray(x, dtype=np.float64)))
