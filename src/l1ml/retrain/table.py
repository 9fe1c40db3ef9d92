"""The comparison as text: `retrain/comparison.txt`, and what `l1ml retrain` prints."""

from __future__ import annotations

from l1ml.retrain.document import Measured, RetrainComparison


def _m(m: Measured) -> str:
    return f"{m.value:.3f} ± {m.error:.3f}"


def lines(c: RetrainComparison) -> list[str]:
    ch, cp = c.challenger, c.champion
    rate = f"{c.rate_khz:g}"
    out = [f"retrain {c.model}: challenger {ch.run_dir}", f"  champion: {_champion(cp)}",
           f"test events: {', '.join(f'{k} {v}' for k, v in c.events['n_test'].items())} ({c.events['path']})"]
    for r in (cp, ch):
        if r is not None:
            out.append(f"{r.role} scores: {r.scores}")
    out.append("")
    header = f"{'signal':<12}{'challenger':>18}"
    if cp:
        header = f"{'signal':<12}{'champion':>18}{'challenger':>18}{'diff':>9}{'sigma':>8}{'tolerance':>11}  verdict"
    out.append(f"efficiency at {rate} kHz (the rule's rate):")
    out.append(header)
    for name, s in ch.signals.items():
        e = s.efficiency[rate]
        if cp is None:
            out.append(f"{name:<12}{_m(e):>18}")
            continue
        v = c.decision.signals[name]
        verdict = ("LOST more than its tolerance" if v.beyond_tolerance else "better" if v.significant
                   else "chosen, not significant" if v.chosen else "")
        out.append(f"{name:<12}{_m(cp.signals[name].efficiency[rate]):>18}{_m(e):>18}{v.difference:>+9.3f}{v.sigma:>+8.1f}"
                   f"{v.tolerance:>11g}  {verdict}")
    out += ["", "AUC and efficiency at every rate" + (" (champion -> challenger):" if cp else ":")]
    out.append(f"{'signal':<12}{'AUC':>16}" + "".join(f"{f'eff @ {r:g} kHz':>18}" for r in c.rates_khz))
    for name, s in ch.signals.items():
        pairs = [(cp.signals[name].auc.value if cp else None, s.auc.value)]
        pairs += [(cp.signals[name].efficiency[f"{r:g}"].value if cp else None, s.efficiency[f"{r:g}"].value) for r in c.rates_khz]
        out.append(f"{name:<12}" + "".join(f"{_pair(a, b):>{16 if i == 0 else 18}}" for i, (a, b) in enumerate(pairs)))
    out += ["", "thresholds on the new background (score > threshold fires; bits: the score type's code):"]
    for r in (cp, ch):
        if r is not None:
            out.append(f"  {r.role:<11}" + "  ".join(f"{t.rate_khz:g} kHz: {t.threshold:g}"
                                                     + (f" ({t.threshold_bits})" if t.threshold_bits is not None else "")
                                                     + f", {t.achieved_rate_khz:.3g} kHz achieved" for t in r.thresholds))
    out += ["", f"verify: {'passed' if c.verify.ok else 'FAILED' if c.verify.ok is False else 'not run'}: {c.verify.summary}",
            f"budget ({c.rule['budget']}): {'within' if c.budget.ok else 'OVER' if c.budget.ok is False else 'not known'}: "
            f"{c.budget.summary}"]
    return out


def _champion(cp) -> str:
    if cp is None:
        return "none (no --champion given)"
    if cp.model_version is None:
        return cp.run_dir
    return f"{cp.spec}: version {cp.model_version['version']} of {cp.model_version['name']} ({cp.run_dir})"


def _pair(a: float | None, b: float) -> str:
    return f"{b:.3f}" if a is None else f"{a:.3f} -> {b:.3f}"
