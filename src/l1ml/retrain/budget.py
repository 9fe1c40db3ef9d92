"""Whether the challenger's firmware fits the budget of the promotion rule: `l1ml estimate` against the hw target and
the rule's limits, or a finished HLS synthesis against the hw target's budgets."""

from __future__ import annotations

from pathlib import Path

from l1ml.config.train import Promotion
from l1ml.documents import EstimateFigures
from l1ml.errors import L1mlError
from l1ml.estimate.run import figure
from l1ml.retrain.document import Gate
from l1ml.runs import tree_hash
from l1ml.verify.subject import verified_project


def no_budget() -> Gate:
    return Gate(ok=True, summary="no budget in the rule (promotion.budget: none)")


def estimate_gate(run_dir: Path, rule: Promotion, log=print) -> Gate:
    """Run `l1ml estimate` with the rule's methods; over if any method is over the hw target or any limit is exceeded,
    unknown if a method did not run, a limit is given by no method, or nothing was compared."""
    from l1ml.estimate.run import estimate

    report = estimate(run_dir, methods=rule.estimate_methods, log=log)
    return judge_estimate(report.methods, report.failed, rule.limits.given(), report.target)


def judge_estimate(methods: dict[str, EstimateFigures], failed: dict[str, str], limits: dict[str, float], target: str) -> Gate:
    over, unknown, within = [], [], []
    for name, figures in methods.items():
        if figures.within_budget is False:
            used = ", ".join(f"{r} {f:.0%}" for r, f in figures.fraction_of_device.items())
            over.append(f"{name}: over the {target} budget ({used}; latency {figures.latency_ns} ns)")
        elif figures.within_budget:
            within.append(f"{name} within the {target} budget")
    unknown += [f"estimate method {name} did not run ({why})" for name, why in failed.items()]
    for key, limit in limits.items():
        given = [(name, value) for name, f in methods.items() if (value := figure(f, key)) is not None]
        if not given:
            unknown.append(f"no estimate method ({', '.join(methods) or 'none ran'}) gives {key}")
        for name, value in given:
            (over if value > limit else within).append(f"{key} {value:g} {'>' if value > limit else '<='} {limit:g} ({name})")
    details = {"methods": {n: f.model_dump(mode="json", exclude={"details"}) for n, f in methods.items()}, "failed": failed,
               "limits": limits}
    if over:
        return Gate(ok=False, summary="; ".join(over), details=details)
    if unknown or not within:
        return Gate(ok=None, summary="; ".join(unknown) or "no method compared the cost with the hw target", details=details)
    return Gate(ok=True, summary="; ".join(within), details=details)


def synthesis_gate(run_dir: Path, db=None) -> Gate:
    """The newest finished HLS synthesis of the challenger's C-simulated project (same content hash) in the job database,
    against the hw target's budgets."""
    from l1ml.synth.db import JobDB
    from l1ml.synth.jobs import read_job

    project = verified_project(run_dir, None)
    wanted = tree_hash(project.project_dir)
    db = db or JobDB()
    done = []
    for job in db.jobs(None, "kind = 'hls'"):
        try:
            if (Path(job.job_dir) / "job.json").is_file() and read_job(job.job_dir).project_hash == wanted and job.state == "done":
                done.append(job)
        except L1mlError:  # an older l1ml's job: not this project's
            continue
    if not done:
        return Gate(ok=None, summary=f"no finished synthesis of the challenger's firmware (content hash {wanted[:12]}) in "
                                     f"{db.path}: run `l1ml synth submit {run_dir}` and `l1ml synth wait`, then `l1ml retrain "
                                     f"... --challenger {run_dir}`", details={"project_hash": wanted})
    job = max(done, key=lambda j: j.submitted)
    result = job.recorded_result()
    details = {"job": job.id, "project_hash": wanted}
    if result is None or not result.budget:
        return Gate(ok=None, summary=f"synthesis job {job.id} has no budget comparison "
                                     f"({result.budget_unknown if result else 'no recorded result'})", details=details)
    over = [f"{row.item} {row.value:g} > {row.budget:g}" for row in result.budget if not row.ok]
    if over:
        return Gate(ok=False, summary=f"synthesis job {job.id}: {'; '.join(over)}", details=details)
    return Gate(ok=True, summary=f"synthesis job {job.id} within the hw target's budgets", details=details)
