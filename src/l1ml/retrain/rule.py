"""The promotion rule of `l1ml retrain`, as one pure function of the measured numbers.

    refused        the challenger's verify failed (promotion.require_verify), or its cost is over the budget or cannot
                   be compared with it
    keep champion  a signal's efficiency at the target rate dropped by more than its tolerance, or no chosen signal
                   (any or all of promotion.signals, by promotion.improve_on) improved by promotion.min_significance
                   sigma, sigma = sqrt(err_champion**2 + err_challenger**2) of the two binomial errors
    promote        otherwise; and with no champion to compare with, when the challenger is not refused

The two efficiencies come from the same test events, so they are positively correlated and the sigma of their
difference is at most the one used here: the rule errs on the side of keeping the champion.
"""

from __future__ import annotations

import math

from l1ml.config.train import Promotion
from l1ml.retrain.document import DecisionRecord, Gate, Measured, SignalVerdict

OUTCOMES = ("promote", "keep champion", "refused")


def decide(rule: Promotion, signals: list[str], challenger: dict[str, Measured], champion: dict[str, Measured] | None,
           verify: Gate, budget: Gate) -> DecisionRecord:
    """The outcome for efficiencies at `rule.rate_khz` by signal (all of `signals`, the config's data.signals)."""
    rate = f"{rule.rate_khz:g} kHz"
    chosen = rule.signals or signals
    verdicts = {} if champion is None else {s: _verdict(rule, s, s in chosen, champion[s], challenger[s]) for s in signals}
    gates = _gate_words(rule, verify, budget)
    refusals = _refusals(rule, verify, budget)
    if refusals:
        reason = "; ".join(refusals)
        return DecisionRecord(outcome="refused", reason=reason, line=f"outcome: refused ({reason})", signals=verdicts)
    if champion is None:
        reason = "no champion to compare with"
        return _record("promote", reason, [reason, *gates], verdicts)
    worse = [f"{s} {v.difference:+.3f} at {rate}, beyond its tolerance {v.tolerance:g}" for s, v in verdicts.items()
             if v.beyond_tolerance]
    if worse:
        return _record("keep champion", "; ".join(worse), worse, verdicts)
    significant = [s for s in chosen if verdicts[s].significant]
    need = f"{rule.min_significance:g} sigma"
    if rule.improve_on == "all" and len(significant) < len(chosen):
        missing = [s for s in chosen if s not in significant]
        reason = f"not every chosen signal improved by {need} at {rate} ({_sigmas(missing, verdicts)})"
        return _record("keep champion", reason, [reason], verdicts)
    if not significant:
        reason = f"no chosen signal improved by {need} at {rate} ({_sigmas(chosen, verdicts)})"
        return _record("keep champion", reason, [reason], verdicts)
    gain = f"{_sigmas(significant, verdicts)} at {rate}"
    return _record("promote", gain, [gain, "no signal worse than its tolerance", *gates], verdicts)


def _verdict(rule: Promotion, signal: str, chosen: bool, champion: Measured, challenger: Measured) -> SignalVerdict:
    difference = challenger.value - champion.value
    sigma = difference / max(math.sqrt(champion.error**2 + challenger.error**2), 1e-12)  # binomial errors are never 0
    tolerance = rule.tolerance_for(signal)
    return SignalVerdict(chosen=chosen, difference=difference, sigma=sigma, tolerance=tolerance,
                         significant=chosen and sigma >= rule.min_significance, beyond_tolerance=difference < -tolerance)


def _refusals(rule: Promotion, verify: Gate, budget: Gate) -> list[str]:
    found = []
    if rule.require_verify and verify.ok is not True:
        found.append(f"verify {'failed' if verify.ok is False else 'did not run'}: {verify.summary}")
    if rule.budget != "none" and budget.ok is False:
        found.append(f"over budget: {budget.summary}")
    elif rule.budget != "none" and budget.ok is None:
        found.append(f"cost not compared with the budget: {budget.summary}")
    return found


def _gate_words(rule: Promotion, verify: Gate, budget: Gate) -> list[str]:
    words = ["verify passed" if verify.ok else f"verify not required ({'failed' if verify.ok is False else 'not run'})"]
    words.append("no budget" if rule.budget == "none" else f"{rule.budget} within budget")
    return words


def _sigmas(names: list[str], verdicts: dict[str, SignalVerdict]) -> str:
    return ", ".join(f"{s} {verdicts[s].sigma:+.1f} sigma" for s in names)


def _record(outcome: str, reason: str, parts: list[str], verdicts: dict[str, SignalVerdict]) -> DecisionRecord:
    return DecisionRecord(outcome=outcome, reason=reason, line=f"outcome: {outcome} ({'; '.join(parts)})", signals=verdicts)
