"""Thresholds from trigger rates, efficiencies and AUC on samples with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from l1ml.errors import L1mlError
from l1ml.metrics.rates import auc, check_resolvable, efficiency, roc_curve, threshold_for_rate

BX = 2544 * 11.2456  # kHz


def test_bunch_crossing_rate_default():
    from l1ml.config.train import Evaluation

    assert Evaluation(rates_khz=[1]).bx_rate_khz == pytest.approx(28608.8064)


@pytest.mark.parametrize("fraction, threshold, n_pass", [(0.01, 9899.0, 100), (0.001, 9989.0, 10), (0.5, 4999.0, 5000)])
def test_threshold_on_distinct_scores(fraction, threshold, n_pass):
    t = threshold_for_rate(np.random.default_rng(0).permutation(np.arange(10000.0)), fraction * BX, BX)
    assert (t.threshold, t.n_pass) == (threshold, n_pass)
    assert t.achieved_rate_khz == pytest.approx(fraction * BX)


def test_threshold_with_ties_never_exceeds_the_rate():
    scores = np.array([0.0] * 90 + [1.0] * 5 + [2.0] * 5)
    t = threshold_for_rate(scores, 0.07 * BX, BX)  # 7 events allowed; the 5 at score 2 fit, the 10 at >= 1 do not
    assert t.threshold == 1.0 and t.n_pass == 5 and t.achieved_rate_khz == pytest.approx(0.05 * BX)
    t = threshold_for_rate(scores, 0.10 * BX, BX)
    assert t.threshold == 0.0 and t.n_pass == 10


def test_efficiency_and_uncertainty():
    eff, err = efficiency(np.arange(100.0), 74.5)
    assert eff == 0.25 and err == pytest.approx(np.sqrt(0.25 * 0.75 / 100))


def test_auc_known_values():
    rng = np.random.default_rng(1)
    same = rng.normal(size=20000)
    assert auc(same[:10000], same[10000:])[0] == pytest.approx(0.5, abs=0.01)
    assert auc(np.zeros(50), np.ones(50))[0] == 1.0
    assert auc(np.ones(50), np.zeros(50))[0] == 0.0
    # N(0,1) vs N(1,1): AUC = Phi(1/sqrt(2)) = 0.7602
    a, err = auc(rng.normal(size=20000), rng.normal(1.0, 1.0, size=20000))
    assert a == pytest.approx(0.7602, abs=3 * err) and 0 < err < 0.01


def test_roc_ends():
    fpr, tpr = roc_curve(np.array([0.0, 1.0, 2.0]), np.array([1.5, 2.5]))
    assert (fpr[0], tpr[0]) == (1.0, 1.0) and (fpr[-1], tpr[-1]) == (0.0, 0.0)
    assert np.all(np.diff(fpr) <= 0) and np.all(np.diff(tpr) <= 0)


def test_unresolvable_rate_is_an_error_and_poor_one_a_warning():
    with pytest.raises(L1mlError, match=r"key 'evaluation.rates_khz.0'.*lowest rate they resolve is 286.1 kHz"):
        check_resolvable([100.0], 1000, BX, 10, "c.yaml")
    warnings = check_resolvable([500.0], 1000, BX, 10)
    assert len(warnings) == 1 and "17 background events" in warnings[0]
    assert check_resolvable([5000.0], 1000, BX, 10) == []
