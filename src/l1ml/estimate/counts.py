"""Exact operation counts of a converted model, read from its documents: no tools, milliseconds.

Counts are not resources: they say how much arithmetic the firmware has to do, whatever the tool makes of it, so
`lut`, `ff` and `dsp` stay None and the figures are for comparing models, not for fitting a device.

Networks (`count_network`, from the `emulator.json` of an hls4ml project, `l1ml.documents.EmulatorSpec`):

- Dense (n_in inputs x n_out outputs, input type of b_x bits, weight type of b_w bits): one multiplication per
  NON-ZERO weight code (a zero weight is pruned away by the HLS tool); `shift_only` counts those of them whose code is
  +-2**k, which a tool may make a shift rather than a multiplier. Per output column,
  `max(0, nonzero weights in the column + (1 if its bias code != 0) - 1)` adders, and the accumulator is `accum_type`.
- BOPs (bit operations), after Baskin et al., "UNIQ: Uniform Noise Injection for Non-Uniform Quantization of Neural
  Networks", ACM Trans. Comput. Syst. 37 (2021), as Hawks et al., "Ps and Qs: Quantization-Aware Pruning for
  Efficient Low Latency Neural Network Inference", Front. AI 4:676564 (2021), eq. 2 write it for a pruned dense layer,
  `BOPs = m n ((1 - f_p) b_a b_w + b_a + b_w + log2 n)`. Here both terms count only what is left after pruning:

      BOPs(dense) = n_mult * b_x * b_w + n_adders * (b_x + b_w + ceil(log2 n_in))

  where n_mult is the number of non-zero weights and n_adders the adders above; ceil(log2 n_in) (the bits a sum of
  n_in products grows by) keeps BOPs an exact integer and equals the papers' log2 n when n_in is a power of two.
- Merge of two tensors of n elements, of b_a and b_b bits: `multiply` is n multiplications,
  BOPs = n * b_a * b_b; `add` and `subtract` are n adders as wide as the exact sum (the wider integer part, plus one
  bit for the carry, plus the finer fraction), BOPs = n * that width.
- Input and Activation (ReLU, linear: a comparison or a cast) are listed with no operations.

BDTs (`count_bdt`, from the `ensemble.json` of a conifer project and its types): per tree its nodes, leaves and depth;
one comparator per internal node, as wide as the threshold type; per score (class) an adder tree over the trees,
n_trees - 1 adders of the score type's width, ceil(log2 n_trees) adders deep, plus one adder per score whose initial
prediction (the ensemble's offset) is not zero. A BDT's BOPs are None: the literature defines them for networks.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from l1ml.documents import DenseLayer, EmulatorSpec, Ensemble, EstimateFigures, InputLayer, MergeLayer, Tree
from l1ml.errors import L1mlError
from l1ml.quantize.fixedpoint import FixedType, parse_fixed

TOOL = "l1ml counts"


def ceil_log2(n: int) -> int:
    """ceil(log2 n) for n >= 1, exactly (0 for n = 1).

    >>> [ceil_log2(n) for n in (1, 2, 3, 4, 5, 57)]
    [0, 1, 2, 2, 3, 6]
    """
    return (n - 1).bit_length()


# ------------------------------------------------------------------------------------------------ networks


@dataclass(frozen=True)
class _Tensor:
    size: int | None  # elements; None while unknown (an input only a Merge reads)
    type: FixedType


def count_network(spec: EmulatorSpec, n_features: int | None = None) -> EstimateFigures:
    """The operation counts of an hls4ml network from its emulator specification; `n_features` is the size of its
    input (else taken from the Dense layer that reads it)."""
    start = time.perf_counter()
    if spec.unsupported is not None:
        raise L1mlError(f"the network has no emulator specification to count from: {spec.unsupported}")
    layers = network_layers(spec, n_features)
    widths: Counter[str] = Counter()
    for row in layers:
        widths.update(row["multiplications"])
    details = {
        "layers": layers,
        "multiplications": sum(widths.values()),
        "multiplications_by_width": dict(sorted(widths.items())),
        "shift_only": sum(row["shift_only"] for row in layers),
        "adders": sum(row["adders"] for row in layers),
        "weights": sum(row.get("weights", 0) for row in layers),
        "zero_weights": sum(row.get("zero_weights", 0) for row in layers),
    }
    return EstimateFigures(tool=TOOL, seconds=time.perf_counter() - start, bops=sum(row["bops"] for row in layers),
                           note="operation counts, not resources", details=details)


def network_layers(spec: EmulatorSpec, n_features: int | None = None) -> list[dict]:
    """One row of counts per layer but the inputs, in the order the layers are evaluated."""
    tensors: dict[str, _Tensor] = {}
    rows = []
    for layer in spec.layers:
        out_type = parse_fixed(layer.result_type)
        if isinstance(layer, InputLayer):
            tensors[layer.output] = _Tensor(n_features or _fan_in(spec, layer.output), out_type)
            continue
        if isinstance(layer, DenseLayer):
            row = dense_counts(layer)
            size = row["n_out"]
        elif isinstance(layer, MergeLayer):
            a, b = (tensors[name] for name in layer.inputs)
            size = a.size or b.size
            if size is None:
                raise L1mlError(f"cannot tell how many elements layer {layer.name!r} merges: give the input size")
            row = merge_counts(layer, size, a.type, b.type)
        else:
            size = tensors[layer.inputs[0]].size
            row = {"name": layer.name, "class": layer.kind, "activation": layer.activation, "elements": size,
                   "multiplications": {}, "shift_only": 0, "adders": 0, "bops": 0}
        tensors[layer.output] = _Tensor(size, out_type)
        rows.append(row)
    return rows


def _fan_in(spec: EmulatorSpec, tensor: str) -> int | None:
    """The size of `tensor` as the first Dense layer reading it has it, or None."""
    return next((len(layer.weight_codes) for layer in spec.layers
                 if isinstance(layer, DenseLayer) and layer.inputs[0] == tensor), None)


def dense_counts(layer: DenseLayer) -> dict:
    """Multiplications (non-zero weights) by operand widths, shift-only ones, adders, accumulator and BOPs of a Dense."""
    w = np.asarray(layer.weight_codes, dtype=np.int64).reshape(len(layer.weight_codes), -1)  # inputs x outputs
    bias = np.asarray(layer.bias_codes, dtype=np.int64)
    n_in, n_out = w.shape
    if bias.shape != (n_out,):
        raise L1mlError(f"layer {layer.name!r} has {n_out} outputs but {bias.size} biases")
    nonzero = w != 0
    magnitudes = np.abs(w[nonzero])
    n_mult = int(nonzero.sum())
    terms = nonzero.sum(axis=0) + (bias != 0)  # what each output sums
    n_adders = int(np.maximum(terms - 1, 0).sum())
    b_x, b_w = parse_fixed(layer.input_type).width, parse_fixed(layer.weight_type).width
    accum = parse_fixed(layer.accum_type)
    return {
        "name": layer.name, "class": layer.kind, "n_in": n_in, "n_out": n_out,
        "input_type": layer.input_type, "weight_type": layer.weight_type,
        "multiplications": {f"{b_x}x{b_w}": n_mult} if n_mult else {},
        "shift_only": int(np.count_nonzero(magnitudes & (magnitudes - 1) == 0)),
        "weights": int(w.size), "zero_weights": int(w.size) - n_mult,
        "adders": n_adders,
        "accumulator_type": layer.accum_type, "accumulator_width": accum.width,
        "bops": n_mult * b_x * b_w + n_adders * (b_x + b_w + ceil_log2(n_in)),
    }


def merge_counts(layer: MergeLayer, size: int, a: FixedType, b: FixedType) -> dict:
    """An element-wise multiply (multiplications) or add / subtract (adders) of two tensors of `size` elements."""
    row = {"name": layer.name, "class": layer.kind, "op": layer.op, "elements": size,
           "operand_widths": [a.width, b.width], "shift_only": 0}
    if layer.op == "multiply":
        return {**row, "multiplications": {f"{a.width}x{b.width}": size}, "adders": 0, "bops": size * a.width * b.width}
    width = sum_width(a, b)
    return {**row, "multiplications": {}, "adders": size, "adder_width": width, "bops": size * width}


def sum_width(a: FixedType, b: FixedType) -> int:
    """The width of the exact sum or difference of a and b: the wider integer part (with a sign bit for an unsigned
    operand beside a signed one), one bit more for the carry, and the finer fraction.

    >>> sum_width(parse_fixed("ap_fixed<12,4>"), parse_fixed("ap_fixed<12,5>"))
    14
    >>> sum_width(parse_fixed("ap_ufixed<8,4>"), parse_fixed("ap_fixed<6,2>"))
    10
    """
    signed = a.signed or b.signed
    integer = max(t.integer + (signed and not t.signed) for t in (a, b))
    return integer + 1 + max(a.fractional, b.fractional)


# ------------------------------------------------------------------------------------------------ BDTs


def count_bdt(ensemble: Ensemble, types: dict[str, FixedType]) -> EstimateFigures:
    """The comparators and adders of a conifer BDT from its trees and its types ("threshold", "score" and "input")."""
    start = time.perf_counter()
    threshold, score = types["threshold"], types["score"]
    trees = [{"round": r, "class": c, **tree_counts(tree)}
             for r, round_trees in enumerate(ensemble.trees) for c, tree in enumerate(round_trees)]
    n_rounds = len(ensemble.trees)
    n_scores = len(ensemble.trees[0]) if ensemble.trees else 0
    comparators = sum(t["comparators"] for t in trees)
    offsets = sum(1 for value in ensemble.init_predict[:n_scores] if value != 0)
    per_score = max(n_rounds - 1, 0)
    details = {
        "trees": trees,
        "n_trees": n_rounds,
        "n_scores": n_scores,
        "nodes": sum(t["nodes"] for t in trees),
        "leaves": sum(t["leaves"] for t in trees),
        "max_depth": max((t["depth"] for t in trees), default=0),
        "input_type": str(types["input"]) if "input" in types else None,
        "threshold_type": str(threshold),
        "score_type": str(score),
        "comparators": {f"{threshold.width}": comparators} if comparators else {},
        "comparators_total": comparators,
        "adder_tree": {"adders_per_score": per_score, "depth": ceil_log2(max(n_rounds, 1)), "width": score.width},
        "offset_adders": offsets,
        "adders": n_scores * per_score + offsets,
        "score_width": score.width,
    }
    return EstimateFigures(tool=TOOL, seconds=time.perf_counter() - start,
                           note="operation counts, not resources", details=details)


def tree_counts(tree: Tree) -> dict:
    """Nodes, leaves, depth (edges from the root to the deepest leaf) and comparators (internal nodes) of one tree."""
    nodes = len(tree.feature)
    leaves = sum(1 for left in tree.children_left if left == -1)
    return {"nodes": nodes, "leaves": leaves, "depth": tree_depth(tree), "comparators": nodes - leaves}


def tree_depth(tree: Tree) -> int:
    """The depth of a tree in conifer's arrays (a lone leaf has depth 0); a child index that loops is an error."""
    deepest, stack, seen = 0, [(0, 0)], set()
    while stack:
        node, depth = stack.pop()
        if node in seen or not 0 <= node < len(tree.feature):
            raise L1mlError(f"a tree's node {node} is out of range or reached twice: the ensemble is damaged")
        seen.add(node)
        deepest = max(deepest, depth)
        if tree.children_left[node] != -1:
            stack += [(tree.children_left[node], depth + 1), (tree.children_right[node], depth + 1)]
    return deepest
