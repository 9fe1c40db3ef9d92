"""A trial's objective and constraint values, from its training run's metrics.json and its `l1ml estimate` report.

Physics figures are the quantised model's (what the firmware computes, bit for bit): `efficiency@<rate>` is the mean
over the objective's signals of the efficiency at that rate's threshold, `auc` the mean AUC. Cost figures are those of
`l1ml estimate` (open-source estimates, never Vivado results) under the names of `promotion.limits`.
"""

from __future__ import annotations

from pathlib import Path

from l1ml.config.search import COST_METRICS, Constraints, Objective
from l1ml.documents import EstimateReport, Metrics
from l1ml.errors import L1mlError
from l1ml.estimate.run import figure


def methods_needed(objectives: list[Objective], constraints: Constraints) -> list[str]:
    """The estimate methods a trial runs: those its cost objectives and constraints are read from."""
    needed = [o.method for o in objectives if o.metric in COST_METRICS or o.metric == "weighted"]
    if constraints.latency_within_budget or constraints.max_device_fraction is not None or constraints.limits.given():
        needed.append(constraints.method)
    return sorted(set(needed)) or ["counts"]


def physics(metrics: Metrics, objective: Objective, metric: str, signals: list[str]) -> float:
    chosen = objective.signals or signals
    if metric == "auc":
        return sum(float(metrics.signals[s]["quantized"]["auc"]) for s in chosen) / len(chosen)
    key = f"{objective.rate_khz:g}"
    return sum(float(metrics.signals[s]["quantized"]["efficiency"][key]["value"]) for s in chosen) / len(chosen)


def cost(report: EstimateReport, method: str, metric: str, where: str) -> float:
    figures = report.methods.get(method)
    if figures is None:
        why = report.failed.get(method, "it did not run")
        raise L1mlError(f"the estimate method {method} gives no figures: {why}", key=where, value=metric)
    value = figure(figures, metric)
    if value is None:
        raise L1mlError(f"the estimate method {method} does not give {metric} for this model", key=where, value=metric)
    return value


def values(metrics: Metrics, report: EstimateReport, objectives: list[Objective], signals: list[str]) -> tuple[list[float], dict]:
    """The objective values, in order, and every figure they were made of (for the status table)."""
    out, figures = [], {}
    for i, objective in enumerate(objectives):
        where = f"search.objectives.{i}"
        terms = objective.terms or {objective.metric: 1.0}
        total = 0.0
        for metric, weight in terms.items():
            if metric in COST_METRICS:
                value = cost(report, objective.method, metric, where)
                figures[f"{metric} ({objective.method})"] = value
            else:
                value = physics(metrics, objective, metric, signals)
                figures[f"efficiency@{objective.rate_khz:g}kHz" if metric == "efficiency" else metric] = value
            total += weight * value
        out.append(total)
    return out, figures


def constraint_values(report: EstimateReport, constraints: Constraints) -> tuple[list[float], list[str]]:
    """Optuna's constraint values (<= 0: met) and, for those missed, why."""
    method = constraints.method
    found, missed = [], []
    if constraints.latency_within_budget:
        latency = cost(report, method, "latency_ns", "search.constraints.latency_within_budget")
        found.append(latency - report.latency_budget_ns)
        if found[-1] > 0:
            missed.append(f"latency {latency:g} ns > budget {report.latency_budget_ns:g} ns")
    if constraints.max_device_fraction is not None:
        fractions = report.methods[method].fraction_of_device if method in report.methods else {}
        if not fractions:
            raise L1mlError(f"the estimate method {method} gives no resources to compare with the device",
                            key="search.constraints.max_device_fraction")
        worst = max(fractions, key=fractions.get)
        found.append(fractions[worst] - constraints.max_device_fraction)
        if found[-1] > 0:
            missed.append(f"{worst} {fractions[worst]:.1%} of the device > {constraints.max_device_fraction:.0%}")
    for key, limit in constraints.limits.given().items():
        value = cost(report, method, key, f"search.constraints.limits.{key}")
        found.append(value - limit)
        if found[-1] > 0:
            missed.append(f"{key} {value:g} > {limit:g}")
    return found, missed


def of_run(run_dir: Path, objectives: list[Objective], signals: list[str]) -> list[float] | None:
    """The objective values of any finished, estimated run (a model marked on the report), or None where it has no
    estimate or lacks a figure."""
    from l1ml.documents import read
    from l1ml.estimate.run import OUT_DIR, REPORT

    estimate = Path(run_dir) / OUT_DIR / REPORT
    if not estimate.is_file():
        return None
    try:
        return values(read(Path(run_dir) / "metrics.json", Metrics), read(estimate, EstimateReport), objectives, signals)[0]
    except (L1mlError, KeyError):
        return None

