"""Bit-exact comparison of firmware outputs with model outputs, and the sample of inputs they are compared on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from l1ml.quantize.fixedpoint import FixedType


@dataclass
class Comparison:
    name: str
    events: int
    mismatches: int
    max_abs_diff: float
    first: list[dict] = field(default_factory=list)
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    tolerance: float = 0.0

    @property
    def passed(self) -> bool:
        return self.mismatches == 0

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        what = "differ" if self.tolerance == 0 else f"differ by more than {self.tolerance:g}"
        return f"{self.name}: {verdict}, {self.mismatches} of {self.events} events {what} (max |diff| {self.max_abs_diff:g})"

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "events": self.events, "mismatches": self.mismatches,
                "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance, "by_category": self.by_category,
                "first_mismatches": self.first}


@dataclass
class Sample:
    """Firmware inputs (events x features) in contiguous blocks named by category."""

    x: np.ndarray
    blocks: list[tuple[str, int, int]]

    @classmethod
    def from_parts(cls, parts: dict[str, np.ndarray]) -> Sample:
        blocks, start = [], 0
        for name, values in parts.items():
            blocks.append((name, start, start + len(values)))
            start += len(values)
        return cls(np.vstack([np.asarray(v, dtype=np.float64) for v in parts.values()]), blocks)

    def category(self, i: int) -> str:
        return next(name for name, a, b in self.blocks if a <= i < b)

    def take(self, indices: np.ndarray) -> Sample:
        """The events at `indices` (ascending), in blocks of their categories."""
        blocks: list[tuple[str, int, int]] = []
        for k, i in enumerate(indices):
            name = self.category(int(i))
            if blocks and blocks[-1][0] == name:
                blocks[-1] = (name, blocks[-1][1], k + 1)
            else:
                blocks.append((name, k, k + 1))
        return Sample(self.x[indices], blocks)

    def counts(self) -> dict[str, int]:
        return {name: b - a for name, a, b in self.blocks}


def pick_events(sample: Sample, n_events: int) -> np.ndarray:
    """At most `n_events` indices of the sample for a slow simulator, ascending: the adversarial events first (up to
    half: they are where a difference would show), the rest spread evenly over the other events."""
    adversarial = np.array([i for name, a, b in sample.blocks if name.startswith("adversarial") for i in range(a, b)],
                           dtype=np.int64)[: n_events // 2]
    rest = np.setdiff1d(np.arange(len(sample.x)), adversarial)
    spread = rest[np.linspace(0, len(rest) - 1, min(n_events - len(adversarial), len(rest))).astype(np.int64)]
    return np.unique(np.concatenate([adversarial, spread]))


def compare(name: str, got: np.ndarray, expected: np.ndarray, inputs: np.ndarray | None = None, keep: int = 5,
            sample: Sample | None = None, tolerance: float = 0.0) -> Comparison:
    """Events whose outputs differ in any bit (outputs compared as exact float64 values), or by more than `tolerance`."""
    got = np.asarray(got, dtype=np.float64).reshape(len(got), -1)
    expected = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    if got.shape != expected.shape:
        raise ValueError(f"{name}: output shapes differ, {got.shape} vs {expected.shape}")
    diff = np.abs(got - expected)
    bad = np.any(got != expected, axis=1) if tolerance == 0 else np.any(diff > tolerance, axis=1)
    differ = np.flatnonzero(bad)
    if inputs is None and sample is not None:
        inputs = sample.x
    first = [{"event": int(i), "firmware": got[i].tolist(), "model": expected[i].tolist(),
              **({"category": sample.category(i)} if sample is not None else {}),
              **({"inputs": np.asarray(inputs[i]).tolist()} if inputs is not None else {})} for i in differ[:keep]]
    by_category = {} if sample is None else {
        cat: {"events": b - a, "mismatches": int(bad[a:b].sum())} for cat, a, b in sample.blocks}
    max_diff = float(diff.max()) if diff.size else 0.0
    return Comparison(name, len(got), len(differ), max_diff, first, by_category, tolerance)


def edge_inputs(t: FixedType, n_features: int) -> np.ndarray:
    """Inputs at the edges of type t: zeros (a fully padded event), the extremes (saturation downstream), one LSB
    around zero, alternating extremes, and each feature alone at its maximum and at its minimum."""
    rows = [
        np.zeros(n_features),
        np.full(n_features, t.max_value),
        np.full(n_features, t.min_value),
        np.full(n_features, t.lsb),
        np.full(n_features, -t.lsb if t.signed else 0.0),
        np.where(np.arange(n_features) % 2 == 0, t.max_value, t.min_value),
    ]
    eye = np.eye(n_features)
    return np.vstack([np.array(rows), eye * t.max_value, eye * t.min_value])


def tie_inputs(t: FixedType, n_features: int, n: int, seed: int = 1) -> np.ndarray:
    """Values exactly halfway between two codes of t (not on its grid): the firmware's input conversion rounds them."""
    rng = np.random.Generator(np.random.PCG64(seed))
    codes = rng.integers(t.min_code, t.max_code, size=(n, n_features))
    return np.ldexp(codes.astype(np.float64) + 0.5, -t.fractional)


def random_inputs(t: FixedType, n_features: int, n: int, seed: int = 0) -> np.ndarray:
    """Values drawn uniformly over the whole grid of t."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return np.ldexp(rng.integers(t.min_code, t.max_code + 1, size=(n, n_features)).astype(np.float64), -t.fractional)


def adversarial_inputs(t: FixedType, n_features: int, seed: int = 0, n_random: int = 200) -> np.ndarray:
    """Edge inputs and uniformly drawn grid values, all on the grid of t."""
    return np.vstack([edge_inputs(t, n_features), random_inputs(t, n_features, n_random, seed)])


def adversarial_parts(t: FixedType, n_features: int, *, raw_to_firmware: Callable[[np.ndarray], np.ndarray] | None = None,
                      raw_events: np.ndarray | None = None, pt_columns: slice | None = None, n_ties: int = 256) -> dict[str, np.ndarray]:
    """The adversarial blocks of every verification, by name."""
    parts = {"adversarial:edges": edge_inputs(t, n_features), "adversarial:ties": tie_inputs(t, n_features, n_ties)}
    if raw_to_firmware is not None:
        parts["adversarial:empty_event"] = raw_to_firmware(np.zeros((1, n_features)))
        if raw_events is not None and pt_columns is not None and len(raw_events):
            huge = np.array(raw_events[:32], dtype=np.float64)
            huge[:, pt_columns] = 1e6  # far beyond any input range: must saturate, never wrap
            parts["adversarial:huge_pt"] = raw_to_firmware(huge)
    return parts
