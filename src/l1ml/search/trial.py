"""One trial, as its job runs it (`l1ml search trial TRIAL_DIR [--resume]`): train the trial's config, convert it,
estimate its firmware, and write its objective values to TRIAL_DIR/result.json.

    TRIAL_DIR/trial.json     which trial, its parameters, the objectives and constraints (`TrialSpec`)
    TRIAL_DIR/config.yaml    a plain train config (what `l1ml search export` writes)
    TRIAL_DIR/runs/          the trial's training run (runs/<name>/<id>/), converted and estimated
    TRIAL_DIR/attempts.log   one line per job that worked on the trial
    TRIAL_DIR/result.json    the trial's values (`TrialResult`), written last

A job stopped at its wall time (SIGTERM) leaves its training run interrupted at its last epoch's checkpoint; the
job that follows it (`--resume`) continues that run, so the trial ends with the metrics of an uninterrupted one.
Without --resume, a trial whose training has already started is refused: it would be trained twice.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
from pathlib import Path

from l1ml.config.search import Constraints, Objective
from l1ml.documents import Metrics, TrialResult, TrialSpec, read
from l1ml.errors import L1mlError
from l1ml.runfolder import RUN, read_state
from l1ml.search import objectives as obj
from l1ml.synth.results import TRIAL_RESULT

SPEC = "trial.json"
CONFIG = "config.yaml"
RUNS = "runs"
ATTEMPTS = "attempts.log"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_spec(trial_dir: Path) -> TrialSpec:
    return read(Path(trial_dir) / SPEC, TrialSpec)


def training_run(trial_dir: Path) -> Path | None:
    """The trial's training run folder, once its training has started."""
    found = sorted(Path(trial_dir, RUNS).glob(f"*/*/{RUN}"))
    return found[-1].parent if found else None


def run_trial(trial_dir: str | Path, *, resume: bool = False, log=_log) -> TrialResult:
    from l1ml.estimate.run import estimate
    from l1ml.firmware.convert import convert_run
    from l1ml.train.run import train

    trial_dir = Path(trial_dir).resolve()
    spec = read_spec(trial_dir)
    objectives = [Objective.model_validate(o) for o in spec.objectives]
    constraints = Constraints.model_validate(spec.constraints)
    if (trial_dir / TRIAL_RESULT).is_file():
        log(f"trial {spec.segment}/{spec.number} has its result already")
        return read(trial_dir / TRIAL_RESULT, TrialResult)
    with open(trial_dir / ATTEMPTS, "a") as attempts:
        attempts.write(f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')} {'resume' if resume else 'start'}\n")
    seconds = {}
    run_dir = training_run(trial_dir)
    t0 = time.perf_counter()
    if run_dir is None:
        run_dir = train(trial_dir / CONFIG, runs_root=trial_dir / RUNS, log=log).run_dir
    elif not resume:
        raise L1mlError("the trial's training has started already (a job of it ran before): run it with --resume",
                        path=run_dir)
    elif read_state(run_dir).status != "finished":
        log(f"resuming {run_dir} from its last checkpoint")
        train(trial_dir / CONFIG, resume=run_dir, log=log)
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    convert_run(run_dir)
    seconds["convert"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = estimate(run_dir, methods=obj.methods_needed(objectives, constraints), log=log)
    seconds["estimate"] = time.perf_counter() - t0
    metrics = read(run_dir / "metrics.json", Metrics)
    values, figures = obj.values(metrics, report, objectives, spec.signals)
    found, missed = obj.constraint_values(report, constraints)
    if missed:
        log(f"misses the constraints: {'; '.join(missed)}")
    result = TrialResult(segment=spec.segment, number=spec.number, run_dir=str(run_dir), values=values,
                         constraints=found, feasible=not missed, figures=figures,
                         seconds={k: round(v, 2) for k, v in seconds.items()},
                         resumed=sum(1 for line in (trial_dir / ATTEMPTS).read_text().splitlines() if line.endswith(" resume")))
    result.write(trial_dir / TRIAL_RESULT)
    log(f"trial {spec.segment}/{spec.number}: " + ", ".join(f"{k} {v:g}" for k, v in zip((o.label for o in objectives), values)))
    return result

