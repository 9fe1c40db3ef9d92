"""The promotion rule of `l1ml retrain` on hand-made numbers (promote, keep champion, each refusal, tolerances per
signal, the boundaries), its cost limits against estimate figures, and the config section's validation."""

from __future__ import annotations

import json

import pytest
import yaml

from l1ml.config.loader import load_config, validate_config
from l1ml.config.train import Promotion, TrainConfig
from l1ml.documents import EstimateFigures
from l1ml.errors import L1mlError
from l1ml.retrain.budget import judge_estimate
from l1ml.retrain.document import Gate, Measured
from l1ml.retrain.rule import decide
from l1ml.train.run import config_hash

from helpers import ROOT

SIGNALS = ["Ato4l", "LQ_btau", "h0_tautau"]
PASSED = Gate(ok=True, summary="all 6 checks passed")
WITHIN = Gate(ok=True, summary="multiplications 10 <= 20 (counts)")


def rule(**kw) -> Promotion:
    return Promotion.model_validate({"rate_khz": 100, "budget": "none", **kw})


def effs(*pairs: tuple[float, float]) -> dict[str, Measured]:
    return {s: Measured(value=v, error=e) for s, (v, e) in zip(SIGNALS, pairs)}


CHAMPION = effs((0.50, 0.02), (0.40, 0.02), (0.30, 0.02))


def test_promote_on_a_significant_gain_names_the_signal_and_its_sigma():
    d = decide(rule(), SIGNALS, effs((0.60, 0.02), (0.40, 0.02), (0.30, 0.02)), CHAMPION, PASSED, WITHIN)
    assert d.outcome == "promote"
    assert d.signals["Ato4l"].sigma == pytest.approx(0.1 / (2 * 0.02**2) ** 0.5)
    assert d.signals["Ato4l"].significant and not d.signals["LQ_btau"].significant
    assert d.line == ("outcome: promote (Ato4l +3.5 sigma at 100 kHz; no signal worse than its tolerance; verify passed; "
                      "no budget)")


def test_keep_champion_when_no_gain_is_significant():
    d = decide(rule(), SIGNALS, effs((0.53, 0.02), (0.41, 0.02), (0.30, 0.02)), CHAMPION, PASSED, WITHIN)
    assert d.outcome == "keep champion"
    assert d.line == ("outcome: keep champion (no chosen signal improved by 2 sigma at 100 kHz (Ato4l +1.1 sigma, "
                      "LQ_btau +0.4 sigma, h0_tautau +0.0 sigma))")


def test_keep_champion_when_a_signal_loses_more_than_its_tolerance_even_with_a_gain_elsewhere():
    challenger = effs((0.60, 0.02), (0.37, 0.02), (0.30, 0.02))
    d = decide(rule(tolerance=0.02), SIGNALS, challenger, CHAMPION, PASSED, WITHIN)
    assert d.outcome == "keep champion" and d.signals["LQ_btau"].beyond_tolerance
    assert d.reason == "LQ_btau -0.030 at 100 kHz, beyond its tolerance 0.02"
    # the same numbers with a larger tolerance for LQ_btau alone promote
    d = decide(rule(tolerance=0.02, tolerance_per_signal={"LQ_btau": 0.05}), SIGNALS, challenger, CHAMPION, PASSED, WITHIN)
    assert d.outcome == "promote" and d.signals["LQ_btau"].tolerance == 0.05 and d.signals["Ato4l"].tolerance == 0.02


def test_boundaries_are_inclusive_exactly_min_significance_and_exactly_the_tolerance():
    # errors 3 and 4 (x 2**-7): the sigma of the difference is 5 x 2**-7, and every number here is exact in binary
    champion = {"Ato4l": Measured(value=0.5, error=3 / 128), "LQ_btau": Measured(value=0.5, error=0.01)}
    challenger = {"Ato4l": Measured(value=0.5 + 10 / 128, error=4 / 128), "LQ_btau": Measured(value=0.4375, error=0.01)}
    d = decide(rule(tolerance=0.0625), ["Ato4l", "LQ_btau"], challenger, champion, PASSED, WITHIN)
    assert d.signals["Ato4l"].sigma == 2.0 and d.signals["LQ_btau"].difference == -0.0625
    assert d.outcome == "promote"
    d = decide(rule(tolerance=0.0625, min_significance=2.0000001), ["Ato4l", "LQ_btau"], challenger, champion, PASSED, WITHIN)
    assert d.outcome == "keep champion"
    d = decide(rule(tolerance=0.0624), ["Ato4l", "LQ_btau"], challenger, champion, PASSED, WITHIN)
    assert d.outcome == "keep champion" and d.signals["LQ_btau"].beyond_tolerance


def test_only_the_chosen_signals_carry_a_promotion():
    challenger = effs((0.50, 0.02), (0.50, 0.02), (0.30, 0.02))  # LQ_btau +3.5 sigma
    assert decide(rule(signals=["Ato4l"]), SIGNALS, challenger, CHAMPION, PASSED, WITHIN).outcome == "keep champion"
    assert decide(rule(signals=["LQ_btau"]), SIGNALS, challenger, CHAMPION, PASSED, WITHIN).outcome == "promote"
    assert decide(rule(improve_on="all"), SIGNALS, challenger, CHAMPION, PASSED, WITHIN).outcome == "keep champion"
    everything = effs((0.60, 0.02), (0.50, 0.02), (0.40, 0.02))
    assert decide(rule(improve_on="all"), SIGNALS, everything, CHAMPION, PASSED, WITHIN).outcome == "promote"


@pytest.mark.parametrize(("verify", "budget", "kind", "reason"), [
    (Gate(ok=False, summary="failed: bit_exact"), WITHIN, "estimate", "verify failed: failed: bit_exact"),
    (PASSED, Gate(ok=False, summary="multiplications 30 > 20 (counts)"), "estimate", "over budget: multiplications 30 > 20 (counts)"),
    (PASSED, Gate(ok=None, summary="no estimate method (counts) gives lut"), "estimate",
     "cost not compared with the budget: no estimate method (counts) gives lut"),
    (PASSED, Gate(ok=None, summary="no finished synthesis"), "synthesis", "cost not compared with the budget: no finished synthesis"),
    (Gate(ok=False, summary="failed: physics"), Gate(ok=False, summary="lut 9 > 8 (rtl)"), "estimate",
     "verify failed: failed: physics; over budget: lut 9 > 8 (rtl)"),
])
def test_refused_for_each_reason_even_with_a_large_gain(verify, budget, kind, reason):
    r = rule(budget=kind, limits={"multiplications": 20})
    d = decide(r, SIGNALS, effs((0.90, 0.01), (0.40, 0.02), (0.30, 0.02)), CHAMPION, verify, budget)
    assert d.outcome == "refused" and d.reason == reason and d.line == f"outcome: refused ({reason})"


def test_what_is_not_required_does_not_refuse():
    failed = Gate(ok=False, summary="failed: physics")
    over = Gate(ok=False, summary="lut 9 > 8")
    gain = effs((0.60, 0.02), (0.40, 0.02), (0.30, 0.02))
    d = decide(rule(require_verify=False, budget="none"), SIGNALS, gain, CHAMPION, failed, over)
    assert d.outcome == "promote" and "verify not required (failed)" in d.line and "no budget" in d.line


def test_without_a_champion_the_challenger_is_judged_on_verify_and_budget_alone():
    gain = effs((0.10, 0.02), (0.10, 0.02), (0.10, 0.02))
    r = rule(budget="estimate", limits={"bops": 5})
    d = decide(r, SIGNALS, gain, None, PASSED, WITHIN)
    assert d.outcome == "promote" and d.signals == {}
    assert d.line == "outcome: promote (no champion to compare with; verify passed; estimate within budget)"
    assert decide(r, SIGNALS, gain, None, Gate(ok=False, summary="x"), WITHIN).outcome == "refused"


# ------------------------------------------------------------------------------------------------ budget


def _figures(**kw) -> EstimateFigures:
    return EstimateFigures(tool="l1ml counts", seconds=0.0, **kw)


def test_limits_are_checked_against_every_method_that_gives_the_figure():
    counts = _figures(bops=1000, details={"multiplications": 40, "adders": 39})
    rtl = _figures(lut=900, within_budget=True, latency_ns=20.0)
    g = judge_estimate({"counts": counts, "rtl": rtl}, {}, {"multiplications": 40, "lut": 1000}, "vu13p")
    assert g.ok is True and g.summary == "rtl within the vu13p budget; multiplications 40 <= 40 (counts); lut 900 <= 1000 (rtl)"
    g = judge_estimate({"counts": counts, "rtl": rtl}, {}, {"multiplications": 39}, "vu13p")
    assert g.ok is False and g.summary == "multiplications 40 > 39 (counts)"


def test_an_estimate_that_cannot_tell_is_not_within_budget():
    counts = _figures(details={"comparators_total": 30})
    assert judge_estimate({"counts": counts}, {}, {"lut": 5}, "vu13p").ok is None
    g = judge_estimate({"counts": counts}, {"bdt": "GHDL is not installed"}, {"comparators": 40}, "vu13p")
    assert g.ok is None and g.summary == "estimate method bdt did not run (GHDL is not installed)"
    over = _figures(lut=10, within_budget=False, fraction_of_device={"lut": 1.5})
    assert judge_estimate({"bdt": over}, {}, {}, "vu13p").ok is False


# ------------------------------------------------------------------------------------------------ the config section

CONFIG = """
name: rule_demo
seed: 3
data: {events: events.h5, signals: [Ato4l, LQ_btau]}
model: {kind: bdt, n_estimators: 5}
evaluation: {rates_khz: [1000, 3000]}
"""


def _load(promotion: dict | None) -> TrainConfig:
    data = yaml.safe_load(CONFIG)
    if promotion is not None:
        data["promotion"] = promotion
    return validate_config(data, TrainConfig, source="rule.yaml")


def test_a_config_without_the_section_hashes_as_before_it_existed():
    cfg = _load(None)
    assert cfg.promotion is None and "promotion" not in cfg.model_dump(mode="json")
    # the hash l1ml computed for this config before the promotion section existed (its runs resume)
    assert config_hash(cfg) == "02b816e1ea3bf2d0a6b5dc9ad00dd06ee9bd827cde252ae4ac5bddeac84a61b3"
    with_rule = _load({"rate_khz": 1000, "budget": "none"})
    assert with_rule.model_dump(mode="json")["promotion"]["min_significance"] == 2.0
    assert config_hash(with_rule) != config_hash(cfg)


def test_defaults_of_the_section():
    p = _load({"rate_khz": 3000, "limits": {"comparators": 100}}).promotion
    assert (p.signals, p.improve_on, p.min_significance, p.tolerance, p.require_verify, p.budget, p.estimate_methods) == (
        None, "any", 2.0, 0.02, True, "estimate", ["counts"])
    assert p.tolerance_for("Ato4l") == 0.02


@pytest.mark.parametrize(("promotion", "message"), [
    ({"rate_khz": 1000, "budget": "none", "tolerence": 0.1},
     "key 'promotion.tolerence': unknown key (did you mean 'tolerance'?)"),
    ({"rate_khz": 1000, "limits": {"lutz": 3}}, "key 'promotion.limits.lutz': unknown key (did you mean 'lut'?)"),
    ({"rate_khz": 2000, "budget": "none"}, "promotion.rate_khz 2000 is not one of evaluation.rates_khz (1000, 3000)"),
    ({"rate_khz": 1000, "budget": "none", "signals": ["hpm_taunu"]},
     "promotion.signals: 'hpm_taunu' is not one of data.signals (Ato4l, LQ_btau)"),
    ({"rate_khz": 1000, "budget": "none", "tolerance_per_signal": {"Ato4": 0.1}},
     "promotion.tolerance_per_signal: 'Ato4' is not one of data.signals (Ato4l, LQ_btau)"),
    ({"rate_khz": 1000}, "the counts method gives operation counts, not resources"),
    ({"rate_khz": 1000, "estimate_methods": ["rtl"]}, "promotion.estimate_methods: 'rtl' does not apply to this model"),
    ({"rate_khz": 1000, "budget": "vivado"}, "key 'promotion.budget', value 'vivado'"),
    ({"rate_khz": 1000, "budget": "none", "tolerance": 1.5}, "key 'promotion.tolerance', value 1.5"),
    ({"budget": "none"}, "key 'promotion.rate_khz': required but missing"),
])
def test_section_errors_name_the_key(promotion, message):
    with pytest.raises(L1mlError) as err:
        _load(promotion)
    text = str(err.value)
    assert text.startswith("rule.yaml: ") and message in text and "\n" not in text, text
    if "rate_khz 2000" in message or "signals:" in message:
        assert "key 'promotion'" in text


def test_demo_configs_state_a_rule_that_validates():
    rules = {m: load_config(ROOT / "configs" / "train" / f"{m}_demo.yaml", TrainConfig)[1].promotion for m in ("ae", "vae", "bdt")}
    assert all(r is not None and r.rate_khz == 100 and r.budget == "estimate" and r.limits.given() for r in rules.values())
    assert rules["bdt"].signals == ["Ato4l"] and rules["bdt"].tolerance_for("hpm_taunu") == 0.08
    json.dumps(rules["ae"].model_dump(mode="json"))  # the rule as comparison.json records it
