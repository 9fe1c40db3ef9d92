"""What a finished job produced: its reports, parsed, and their comparison with the hw target's budgets and with a
baseline result (same tool version and part): clock 1 %, latency and interval 2 %, resources 10 %."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from l1ml.config.hw import load_target
from l1ml.documents import GhdlRun, JobReports, SynthJob, TrialResult, VerifyReport, VerifyVerdict, read
from l1ml.errors import L1mlError
from l1ml.synth.reports import parse_report, parse_timing_summary
from l1ml.synth.vivado_rtl import KIND as VIVADO_RTL
from l1ml.synth.vivado_rtl import TIMING, UTILIZATION

TRIAL_RESULT = "result.json"  # what a trial job of `l1ml search` writes into its trial folder
TOLERANCES = {"clock": 0.01, "latency": 0.02, "interval": 0.02, "resources": 0.10}


def collect_reports(job_dir: Path, spec: SynthJob, started: float) -> JobReports:
    """Reports of a job: C-synthesis XML and Vivado utilisation (hls), the verify report (verify), GHDL's output (ghdl),
    Vivado's utilisation and timing summary (vivado-rtl). Only files written after the job started count."""
    out = JobReports()

    def fresh(path: Path) -> bool:
        return path.is_file() and path.stat().st_mtime >= started - 1

    if spec.kind == "hls":
        project = job_dir / "project"
        main = _top_report([p for p in project.glob("**/syn/report/*_csynth.xml") if fresh(p)])
        if main is not None:
            out.csynth = parse_report(main).to_dict()
            out.found.append(str(main.relative_to(job_dir)))
        _vivado_reports(job_dir, fresh, out)
        if "csynth" in spec.steps and out.csynth is None:
            out.found = []  # the report that matters is missing
    elif spec.kind == VIVADO_RTL:
        _vivado_reports(job_dir, fresh, out)
        if out.vsynth is None:
            out.found = []
    elif spec.kind == "trial":  # a trial's result counts whenever it was written: a trial is done once it has one
        path = Path(spec.target) / TRIAL_RESULT
        if path.is_file():
            read(path, TrialResult)  # a damaged result is one named error, not a finished trial
            out.found.append(str(path))
    elif spec.kind == "verify":
        path = Path(spec.target) / "verify" / "report.json"
        if fresh(path):
            report = read(path, VerifyReport)
            out.verify = VerifyVerdict(passed=report.passed, failed_checks=report.failed_checks)
            out.found.append(str(path))
    else:
        output = job_dir / "project" / "SimulationOutput.txt"
        if fresh(output):
            out.ghdl = GhdlRun(events=sum(1 for line in output.read_text().splitlines() if line.strip()))
            out.found.append(str(output.relative_to(job_dir)))
    return out


def _vivado_reports(job_dir: Path, fresh, out: JobReports) -> None:
    """Vivado's utilisation report as `vsynth`, with its timing summary (vivado-rtl jobs write one) under "timing"."""
    utilization = job_dir / "project" / UTILIZATION  # hls4ml's and conifer's vsynth step and vivado-rtl jobs write it there
    if not fresh(utilization):
        return
    out.vsynth = parse_report(utilization).to_dict()
    out.found.append(str(utilization.relative_to(job_dir)))
    timing = job_dir / "project" / TIMING
    if fresh(timing):
        out.vsynth["timing"] = parse_timing_summary(timing).to_dict()
        out.found.append(str(timing.relative_to(job_dir)))


def _top_report(paths: list[Path]) -> Path | None:
    """The top function's report: hls4ml and conifer name it after the project, the shortest name among them."""
    return min(paths, key=lambda p: len(p.name)) if paths else None


@dataclass
class BudgetCheck:
    """A job's C-synthesis result against its hw target: the rows, whether all are within budget, and, when that cannot
    be said (`within` is None), why not."""

    rows: list[dict]
    within: bool | None
    unknown_because: str | None = None

    def to_result(self) -> dict:
        """The keys of a job's result.json."""
        return {"budget": self.rows, "within_budget": self.within, "budget_unknown": self.unknown_because}


def check_budget(kind: str, steps: list[str], csynth: dict | None, hw_target: str | None) -> BudgetCheck:
    """The budget comparison of a finished job of `kind` that ran `steps`, with the hw target its project was converted
    for (a name, or None when the project records none)."""

    if kind == VIVADO_RTL:
        return BudgetCheck([], None, "the budgets are compared with C-synthesis (hls jobs); see Vivado's reports")
    if kind != "hls":
        return BudgetCheck([], None, f"a {kind} job synthesises nothing")
    if not csynth:
        return BudgetCheck([], None, f"no C-synthesis report (steps run: {', '.join(steps) or 'none'})")
    if not hw_target:
        return BudgetCheck([], None, "the firmware project records no hw target (its convert.json names none)")
    try:
        target = load_target(hw_target)
    except L1mlError as exc:
        return BudgetCheck([], None, f"hw target {hw_target!r} cannot be read: {exc}")
    rows = against_budget(csynth, target)
    return BudgetCheck(rows, all(row["ok"] for row in rows))


def against_budget(csynth: dict, target) -> list[dict]:
    """Latency and resource fractions of a C-synthesis result against an hw target (l1ml.config.hw.HwTarget)."""
    rows = []
    if target.latency_budget_ns:
        worst = csynth["latency_worst_ns"]
        rows.append({"item": "latency (ns)", "value": worst, "budget": target.latency_budget_ns,
                     "ok": 0 <= worst <= target.latency_budget_ns})
    clock = csynth["clock_estimated_ns"] + csynth["clock_uncertainty_ns"]
    rows.append({"item": "clock incl. uncertainty (ns)", "value": round(clock, 3), "budget": csynth["clock_target_ns"],
                 "ok": clock <= csynth["clock_target_ns"]})
    for name, usage in csynth["resources"].items():
        if usage["available"]:
            fraction = usage["used"] / usage["available"]
            rows.append({"item": f"{name} fraction", "value": round(fraction, 4), "budget": 1.0, "ok": fraction <= 1.0})
    return rows


def against_baseline(csynth: dict, baseline: dict) -> list[dict]:
    """Differences from a baseline C-synthesis of the same tool version and part, beyond the tolerances."""
    if (csynth["version"], csynth["part"]) != (baseline["version"], baseline["part"]):
        return [{"item": "baseline", "ok": False,
                 "message": f"baseline is {baseline['tool']} {baseline['version']} on {baseline['part']}, not comparable"}]
    rows = []

    def compare(item: str, new: float, old: float, tol: float) -> None:
        change = (new - old) / old if old else (0.0 if new == old else float("inf"))
        rows.append({"item": item, "value": new, "baseline": old, "change": round(change, 4), "ok": abs(change) <= tol})

    compare("estimated clock (ns)", csynth["clock_estimated_ns"], baseline["clock_estimated_ns"], TOLERANCES["clock"])
    compare("worst latency (cycles)", csynth["latency_worst"], baseline["latency_worst"], TOLERANCES["latency"])
    compare("max interval (cycles)", csynth["interval_max"], baseline["interval_max"], TOLERANCES["interval"])
    for name, usage in csynth["resources"].items():
        if name in baseline["resources"]:
            compare(name, usage["used"], baseline["resources"][name]["used"], TOLERANCES["resources"])
    return rows
