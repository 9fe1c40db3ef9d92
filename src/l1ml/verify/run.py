"""`l1ml verify TARGET`: C-simulate the firmware and check it against the models; write TARGET/verify/report.json.

Checks (each with counts, in the report and in the printed summary):
- `bit_exact`: C-simulation == quantised model on every verified event (test events, adversarial
  blocks, random inputs over the whole input grid);
- `emulator`: the vectorised emulator == C-simulation on the same events;
- model-specific checks: for BDTs `leaves`, `conversion` (against xgboost) and `vhdl` (GHDL), for your own
  classifiers the `softmax` within tolerance;
- for training runs, `thresholds` (the recorded bit patterns are what the firmware's scores give) and
  `physics` (AUC and efficiency at each rate within the configured tolerances of the float model).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ml.data.layout import CLASS, PT
from l1ml.errors import L1mlError
from l1ml.firmware import csim
from l1ml.metrics.rates import auc, efficiency, threshold_for_rate
from l1ml.runfolder import fingerprint
from l1ml.verify import subjects
from l1ml.verify.bitexact import Sample, adversarial_parts, compare, random_inputs
from l1ml.verify.byo import byo_subject, user_inputs
from l1ml.verify.report import Check, Report, plots
from l1ml.verify.subject import Subject


@dataclass
class VerifyOptions:
    backend: str | None = None
    events: int | None = None  # test events per sample (default: all)
    data: Path | None = None  # BYO inputs (.npy or events .h5)
    random: int | None = None  # BYO: random inputs over the input type's range
    min_events: int | None = None  # fill the verified sample with random grid inputs up to this
    threads: int | None = None


def verify(target: str | Path, options: VerifyOptions | None = None, log=print, progress=None) -> Report:
    """Check the firmware of `target`; `log` gets messages, `progress(done, total)` follows the C-simulation's batches."""

    options = options or VerifyOptions()
    target = Path(target)
    subject = _subject(target, options)
    hashes = fingerprint(target, subject.checked_dirs)  # before the checks: a change while they run makes the report stale
    sample = build_sample(subject, options)
    log(f"verifying {subject.firmware_dir} on {len(sample.x)} events")

    start = time.perf_counter()
    library = csim.compile_sources(subject.csim_sources(), options.threads)
    compile_s = time.perf_counter() - start
    log(f"C-simulation library {'from cache' if library.build.cached else f'compiled in {library.build.seconds:.0f} s'}")
    start = time.perf_counter()
    firmware = library.run(sample.x, progress=progress)
    csim_s = time.perf_counter() - start

    checks: list = [compare(f"bit_exact (C-simulation vs {subject.model_name})", firmware, subject.model_output(sample.x),
                            sample=sample)]
    emulator_rate = None
    if subject.emulator is not None:
        start = time.perf_counter()
        emulated = subject.emulator.predict(sample.x)
        emulator_rate = len(sample.x) / (time.perf_counter() - start)
        checks.append(compare("emulator (emulator vs C-simulation)", emulated, firmware, sample=sample))
    for extra in subject.extra_checks:
        checks.extend(extra(subject, sample, firmware))
    scores = float_scores = None
    if subject.run is not None:
        scores = _firmware_scores(sample, firmware)
        float_scores = {name: subject.run.float_score(ev[: len(scores[name])]) for name, ev in subject.run.test_events.items()}
        checks.append(_threshold_check(subject, scores))
        checks.append(_physics_check(subject, scores, float_scores))

    info = {
        "kind": subject.kind,
        "fingerprint": hashes,
        "checked_firmware": [str(d) for d in subject.checked_dirs],
        "options": {"events": options.events, "min_events": options.min_events, "data": str(options.data) if options.data else None,
                    "random": options.random},
        "sample": {"events": len(sample.x), "by_category": sample.counts()},
        "csim": {"library": str(library.build.library), "key": library.build.key, "cached": library.build.cached,
                 "compile_seconds": round(library.build.seconds, 2), "load_seconds": round(compile_s, 2),
                 "events_per_second": round(len(sample.x) / csim_s), "threads": library.threads},
        "emulator": {"events_per_second": round(emulator_rate) if emulator_rate else None,
                     "unavailable": subject.emulator_note or None},
    }
    report = Report(target, subject.firmware_dir, checks, info)
    out = target / "verify"
    if scores is not None:
        report.plots = plots(scores["background"], float_scores["background"], "float model", out)
    report.write(out)
    return report


def _subject(target: Path, options: VerifyOptions) -> Subject:
    if (target / "run.json").is_file():
        if options.data is not None or options.random is not None:
            raise L1mlError("a training run is verified on its own test events; --data and --random are for "
                            "models converted with --keras", path=target)
        return subjects.from_run(target, options.backend)
    if (target / "byo.json").is_file():

        return byo_subject(target, options.backend)
    raise L1mlError("not a training run (run.json) nor a converted model (byo.json)", path=target)


def build_sample(subject: Subject, options: VerifyOptions) -> Sample:
    """The verified events: test events by sample (training runs) or the user's inputs, the adversarial blocks, then
    random grid inputs up to the minimum."""
    parts: dict[str, np.ndarray] = {}
    t, n = subject.input_type, subject.n_features
    raw_events = None
    if subject.run is not None:
        for name, events in subject.run.test_events.items():
            events = events[: options.events] if options.events else events
            parts[f"test:{name}"] = subject.run.raw_to_firmware(events)
        raw_events = subject.run.test_events["background"]
        min_events = subject.run.config.verify.min_events
    else:

        parts.update(user_inputs(subject, options))
        min_events = 0
    if options.min_events is not None:
        min_events = options.min_events
    # features are (pT, eta, phi) per object slot: every third column is a pT
    parts.update(adversarial_parts(t, n, raw_to_firmware=subject.run.raw_to_firmware if subject.run else None,
                                   raw_events=raw_events, pt_columns=slice(PT, None, CLASS) if subject.run else None))
    if subject.extra_parts is not None:
        parts.update(subject.extra_parts())
    missing = min_events - sum(len(v) for v in parts.values())
    if missing > 0:
        parts["random"] = random_inputs(t, n, missing)
    return Sample.from_parts(parts)


def _firmware_scores(sample: Sample, firmware: np.ndarray) -> dict[str, np.ndarray]:
    """The firmware's scores of the test events, by sample."""
    return {name[5:]: firmware[a:b, 0] for name, a, b in sample.blocks if name.startswith("test:")}


def _threshold_check(subject: Subject, scores: dict[str, np.ndarray]) -> Check:
    """The thresholds recorded for the run must be what the firmware's own scores give, bit for bit."""

    run = subject.run
    rows, bad = [], []
    n_bg = len(scores["background"])
    full = n_bg == run.metrics.n_background_test
    for row in run.metrics.thresholds["quantized"]:
        t = threshold_for_rate(scores["background"], row.rate_khz, run.metrics.bx_rate_khz)
        bits = int(run.score_type.to_codes(t.threshold))
        recorded = row.threshold_bits
        entry = {"rate_khz": row.rate_khz, "recorded_bits": recorded, "firmware_bits": bits,
                 "firmware_hex": f"0x{int(run.score_type.to_bits(t.threshold)):0{(run.score_type.width + 3) // 4}x}",
                 "threshold": t.threshold, "achieved_rate_khz": t.achieved_rate_khz}
        rows.append(entry)
        if full and bits != recorded:
            bad.append(f"{row.rate_khz:g} kHz: recorded {recorded}, firmware gives {bits}")
    if not full:
        return Check("thresholds", True, {"thresholds": rows},
                     f"not compared: {n_bg} of {run.metrics.n_background_test} test background events verified (--events)")
    return Check("thresholds", not bad, {"thresholds": rows}, "; ".join(bad) or f"{len(rows)} thresholds equal bit for bit",
                 events=len(rows), mismatches=len(bad))


def _physics_check(subject: Subject, scores: dict[str, np.ndarray], float_scores: dict[str, np.ndarray]) -> Check:
    """AUC and efficiency at each rate of the firmware against the float model."""
    run = subject.run
    tol = run.config.verify
    bx = run.metrics.bx_rate_khz
    results, bad = {}, []
    for name in scores:
        if name == "background":
            continue
        a_fw, a_fl = auc(scores["background"], scores[name])[0], auc(float_scores["background"], float_scores[name])[0]
        entry = {"auc_firmware": a_fw, "auc_float": a_fl, "efficiency": {}}
        if abs(a_fw - a_fl) > tol.auc_tolerance:
            bad.append(f"{name} AUC {a_fw:.4f} vs float {a_fl:.4f}")
        for rate in run.config.evaluation.rates_khz:
            e_fw = efficiency(scores[name], threshold_for_rate(scores["background"], rate, bx).threshold)[0]
            e_fl = efficiency(float_scores[name], threshold_for_rate(float_scores["background"], rate, bx).threshold)[0]
            entry["efficiency"][f"{rate:g}"] = {"firmware": e_fw, "float": e_fl}
            if abs(e_fw - e_fl) > tol.efficiency_tolerance:
                bad.append(f"{name} efficiency at {rate:g} kHz {e_fw:.3f} vs float {e_fl:.3f}")
        results[name] = entry
    message = "; ".join(bad) or (f"AUC within {tol.auc_tolerance:g} and efficiencies within "
                                 f"{tol.efficiency_tolerance:g} of the float model")
    return Check("physics (firmware vs float model)", not bad,
                 {"signals": results, "auc_tolerance": tol.auc_tolerance, "efficiency_tolerance": tol.efficiency_tolerance},
                 message, events=sum(len(v) for v in scores.values()), mismatches=len(bad))
