"""Trigger rates, thresholds and signal efficiencies from anomaly scores.

An event fires when its score is above the threshold (`score > threshold`). For a target rate R the
allowed background fraction is f = R / (filled bunches x revolution frequency); the threshold is the
smallest background score such that at most f of the background scores lie above it. Scores of a
quantised model take few distinct values, so the achieved rate (reported) can be below the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from l1ml.config.checks import check_resolvable as check_resolvable  # the rule is checked before training too


@dataclass
class Threshold:
    rate_khz: float
    fraction: float
    threshold: float
    n_pass: int
    n_background: int
    bx_rate_khz: float

    @property
    def achieved_rate_khz(self) -> float:
        return self.n_pass / self.n_background * self.bx_rate_khz

    @property
    def achieved_rate_err_khz(self) -> float:
        return math.sqrt(max(self.n_pass, 1)) / self.n_background * self.bx_rate_khz


def threshold_for_rate(background: np.ndarray, rate_khz: float, bx_rate_khz: float) -> Threshold:
    """The threshold that lets at most `rate_khz` of background fire.

    >>> t = threshold_for_rate(np.arange(10000.0), 286.088, 28608.8)  # 1 % of the events
    >>> t.threshold, t.n_pass
    (9899.0, 100)
    """
    scores = np.sort(np.asarray(background, dtype=np.float64))[::-1]
    n = len(scores)
    fraction = rate_khz / bx_rate_khz
    allowed = int(math.floor(fraction * n + 1e-9))
    threshold = scores[min(allowed, n - 1)]
    n_pass = int(np.count_nonzero(scores > threshold))
    return Threshold(rate_khz, fraction, float(threshold), n_pass, n, bx_rate_khz)


def efficiency(signal: np.ndarray, threshold: float) -> tuple[float, float]:
    """Fraction of signal above threshold and its binomial uncertainty."""
    n = len(signal)
    k = int(np.count_nonzero(np.asarray(signal) > threshold))
    eff = k / n
    return eff, math.sqrt(max(eff * (1 - eff), 1.0 / n) / n)


def roc_curve(background: np.ndarray, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background efficiency, signal efficiency) for every distinct threshold, from (1, 1) down to (0, 0)."""
    values = np.unique(np.concatenate([background, signal]))
    b = np.sort(background)
    s = np.sort(signal)
    fpr = 1.0 - np.searchsorted(b, values, side="right") / len(b)
    tpr = 1.0 - np.searchsorted(s, values, side="right") / len(s)
    return np.concatenate([[1.0], fpr]), np.concatenate([[1.0], tpr])


def auc(background: np.ndarray, signal: np.ndarray) -> tuple[float, float]:
    """Area under the ROC curve (probability that a signal scores above a background event, ties count half),
    with the Hanley-McNeil standard error.

    >>> auc(np.array([0.0, 1.0]), np.array([1.0, 2.0]))[0]
    0.875
    """
    b = np.asarray(background, dtype=np.float64)
    s = np.asarray(signal, dtype=np.float64)

    ranks = rankdata(np.concatenate([b, s]))  # ties get their average rank
    n_b, n_s = len(b), len(s)
    a = (ranks[n_b:].sum() - n_s * (n_s + 1) / 2) / (n_b * n_s)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_s - 1) * (q1 - a * a) + (n_b - 1) * (q2 - a * a)) / (n_b * n_s)
    return float(a), float(math.sqrt(max(var, 0.0)))

