"""Champion and challenger scored on the same test events, each with its thresholds set on that background."""

from __future__ import annotations

import numpy as np

from l1ml.metrics.rates import auc, efficiency, threshold_for_rate
from l1ml.retrain.document import Measured, ModelResult, RateRow, SignalResult
from l1ml.retrain.scoring import Scorer

BACKGROUND = "background"


def score_all(scorer: Scorer, test: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The scorer's scores of every sample (`background` and the signals)."""
    return {name: np.asarray(scorer.score(events), dtype=np.float64) for name, events in test.items()}


def evaluate(scorer: Scorer, scores: dict[str, np.ndarray], rates_khz: list[float], bx_rate_khz: float, *, role: str,
             spec: str, model_version: dict | None = None) -> ModelResult:
    """Thresholds for each rate on `scores["background"]`, and per signal the AUC and the efficiency at each rate, with
    their errors (Hanley-McNeil, binomial)."""
    background = scores[BACKGROUND]
    rows = []
    for rate in rates_khz:
        t = threshold_for_rate(background, rate, bx_rate_khz)
        on_grid = float(scorer.score_type.quantize(t.threshold)) == t.threshold
        rows.append(RateRow(rate_khz=rate, threshold=t.threshold, background_pass=t.n_pass, achieved_rate_khz=t.achieved_rate_khz,
                            threshold_bits=int(scorer.score_type.to_codes(t.threshold)) if on_grid else None))
    signals = {}
    for name, values in scores.items():
        if name == BACKGROUND:
            continue
        a, a_err = auc(background, values)
        effs = {f"{row.rate_khz:g}": Measured(value=e, error=err)
                for row in rows for e, err in [efficiency(values, row.threshold)]}
        signals[name] = SignalResult(n_test=len(values), auc=Measured(value=a, error=a_err), efficiency=effs)
    return ModelResult(role=role, run_dir=str(scorer.run_dir), spec=spec, model_version=model_version, scores=scorer.source,
                       firmware_exact=scorer.firmware_exact, score_type=str(scorer.score_type), thresholds=rows, signals=signals)


def at_rate(result: ModelResult, rate_khz: float) -> dict[str, Measured]:
    """The efficiency of each signal at one rate."""
    return {name: s.efficiency[f"{rate_khz:g}"] for name, s in result.signals.items()}
