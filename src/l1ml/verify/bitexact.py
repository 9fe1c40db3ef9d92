"""Bit-exact comparison of firmware outputs with model outputs, and adversarial inputs for it."""

from __future__ import annotations

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

    @property
    def passed(self) -> bool:
        return self.mismatches == 0

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return f"{self.name}: {verdict}, {self.mismatches} of {self.events} events differ (max |diff| {self.max_abs_diff:g})"


def compare(name: str, got: np.ndarray, expected: np.ndarray, inputs: np.ndarray | None = None, keep: int = 5) -> Comparison:
    """Events whose outputs differ in any bit (outputs compared as exact float64 values)."""
    got = np.asarray(got, dtype=np.float64).reshape(len(got), -1)
    expected = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    if got.shape != expected.shape:
        raise ValueError(f"{name}: output shapes differ, {got.shape} vs {expected.shape}")
    differ = np.flatnonzero(np.any(got != expected, axis=1))
    first = [{"event": int(i), "firmware": got[i].tolist(), "model": expected[i].tolist(),
              **({"inputs": np.asarray(inputs[i]).tolist()} if inputs is not None else {})} for i in differ[:keep]]
    max_diff = float(np.abs(got - expected).max()) if len(got) else 0.0
    return Comparison(name, len(got), len(differ), max_diff, first)


def adversarial_inputs(t: FixedType, n_features: int, seed: int = 0, n_random: int = 200) -> np.ndarray:
    """Inputs on the grid of `t` that stress a fixed-point design: zeros (a fully padded event), the type's
    extremes (saturation downstream), one LSB around zero, alternating extremes, and values drawn
    uniformly over the whole range."""
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = [
        np.zeros(n_features),
        np.full(n_features, t.max_value),
        np.full(n_features, t.min_value),
        np.full(n_features, t.lsb),
        np.full(n_features, -t.lsb if t.signed else 0.0),
        np.where(np.arange(n_features) % 2 == 0, t.max_value, t.min_value),
    ]
    codes = rng.integers(t.min_code, t.max_code + 1, size=(n_random, n_features))
    return np.vstack([np.array(rows), np.ldexp(codes.astype(np.float64), -t.fractional)])
