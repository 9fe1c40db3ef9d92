"""Vivado's figures of a finished job beside `l1ml estimate`'s open-source estimate of the same firmware, and their
ratios, recorded in the estimate's document (its `vivado` list: one entry per job, replaced when the job is reported
again).

A job is compared with TARGET/estimate/estimate.json of its target when that estimate is of the firmware the job
synthesised:

    job kind     the estimate matches when                                    methods compared
    vivado-rtl   it read the emulator.json the RTL was traced from (SHA-256)  rtl (da4ml's RTL through Yosys)
    hls          its project (`source.project`) is the job's                  all but rtl, which estimates da4ml's RTL

A method without a figure gives no row (the counts method has no resources). Vivado's latency is known for RTL only: the
pipeline's cycles (rtl.json) at the clock Vivado's timing summary allows (the target clock when it is met).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

from l1ml.documents import EstimateReport, RtlSummary, SynthJob, SynthResult, read
from l1ml.errors import L1mlError
from l1ml.estimate.run import METHODS, OUT_DIR, REPORT
from l1ml.firmware.rtl import SPEC, SUMMARY
from l1ml.runs import sha256_file
from l1ml.synth.jobs import read_job
from l1ml.synth.vivado_rtl import KIND as VIVADO_RTL

FIGURES = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "latency_ns": "latency (ns)"}


@dataclass
class Row:
    figure: str  # a key of FIGURES
    vivado: float
    estimate: float
    ratio: float | None  # Vivado / estimate (None: the estimate is 0)


@dataclass
class Comparison:
    """A job's Vivado figures against the estimate of its target (`problem`: why they are not compared)."""

    estimate: str | None  # the estimate.json (None: the job's folder could not be read)
    notice: str = ""  # the estimate's own words on what it is
    rows: dict[str, list[Row]] = field(default_factory=dict)  # method -> rows
    tools: dict[str, str] = field(default_factory=dict)  # method -> what computed its figures
    problem: str | None = None
    recorded: bool = False  # the estimate's document was updated

    def to_dict(self) -> dict:
        return asdict(self)


def compare_and_record(job_dir: Path, result: SynthResult) -> Comparison | None:
    """The comparison of a finished job with the estimate of its target, recorded in the estimate; None when there is
    nothing to compare (no Vivado figures, no estimate)."""
    job_dir = Path(job_dir)
    spec = read_job(job_dir)
    vivado = vivado_figures(job_dir, spec, result)
    path = Path(spec.target) / OUT_DIR / REPORT
    if not vivado or not path.is_file():
        return None
    try:
        estimate = read(path, EstimateReport)
    except L1mlError as exc:
        return Comparison(str(path), problem=str(exc))
    comparison = Comparison(str(path), estimate.notice)
    methods, comparison.problem = _methods_for(job_dir, spec, estimate)
    for method in (m for m in methods if m in estimate.methods):
        rows = _rows(vivado, estimate.methods[method].model_dump())
        if rows:
            comparison.rows[method] = rows
            comparison.tools[method] = estimate.methods[method].tool
    if not comparison.rows:
        comparison.problem = comparison.problem or _no_rows(estimate, methods)
        return comparison
    entry = {"job": spec.id, "kind": spec.kind, "tool_version": result.tool_version, "part": spec.part,
             "design_state": result.reports.vsynth.get("design_state"), "figures": vivado,
             "ratios": {m: {r.figure: r.ratio for r in rows} for m, rows in comparison.rows.items()},
             "time": dt.datetime.fromtimestamp(result.ended, dt.UTC).isoformat(timespec="seconds")}  # when the job ended
    comparison.recorded = record(path, estimate, entry)
    return comparison


def vivado_figures(job_dir: Path, spec: SynthJob, result: SynthResult) -> dict[str, float]:
    """LUT, FF, DSP from Vivado's utilisation report and, of RTL, the latency its timing allows."""
    vsynth = result.reports.vsynth
    if result.state != "done" or not vsynth:
        return {}
    used = {key: usage["used"] for key, usage in vsynth["resources"].items()}
    figures = {key: int(used[key]) for key in FIGURES if key in used}  # LUT, FF, DSP: counts of cells
    latency = _rtl_latency_ns(job_dir, spec, vsynth.get("timing")) if spec.kind == VIVADO_RTL else None
    if latency is not None:
        figures["latency_ns"] = latency
    return figures


def _rtl_latency_ns(job_dir: Path, spec: SynthJob, timing: dict | None) -> float | None:
    summary = job_dir / SUMMARY
    if timing is None or timing.get("wns_ns") is None or not summary.is_file():
        return None
    period = spec.clock_ns - min(timing["wns_ns"], 0.0)  # a negative slack lengthens the clock the design runs at
    return round(read(summary, RtlSummary).latency_cycles * period, 3)


def _methods_for(job_dir: Path, spec: SynthJob, estimate: EstimateReport) -> tuple[list[str], str | None]:
    """The estimate's methods that estimate what the job synthesised, or why there are none."""
    source = estimate.source
    if spec.kind == VIVADO_RTL:
        traced = job_dir / SPEC
        if not traced.is_file() or source.get("sha256") != sha256_file(traced):
            return [], ("it estimated another network than the one this RTL was traced from (another emulator.json); "
                        "run `l1ml estimate` again")
        return ["rtl"], None
    if source.get("project") and Path(source["project"]).resolve() == Path(spec.project).parent.resolve():
        return [m for m in METHODS if m != "rtl"], None
    return [], f"it estimated another project ({source.get('project')}), not this job's ({Path(spec.project).parent})"


def _rows(vivado: dict[str, float], estimated: dict) -> list[Row]:
    """A row for each figure both have."""
    return [Row(key, value, estimated[key], round(value / estimated[key], 3) if estimated[key] else None)
            for key, value in vivado.items() if estimated.get(key) is not None]


def _no_rows(estimate: EstimateReport, methods: list[str]) -> str:
    failed = [f"{m}: {estimate.failed[m]}" for m in methods if m in estimate.failed]
    why = f" (did not run: {'; '.join(failed)})" if failed else ""
    return f"no estimate method has a figure to compare (compared: {', '.join(methods) or 'none'}){why}"


def record(path: Path, estimate: EstimateReport, entry: dict) -> bool:
    """Put `entry` in the estimate's `vivado` list, in the place of an entry of the same job; False when it was there."""
    entries = list(estimate.vivado)
    at = next((i for i, e in enumerate(entries) if e.get("job") == entry["job"]), None)
    if at is not None and entries[at] == entry:
        return False
    if at is None:
        entries.append(entry)
    else:
        entries[at] = entry
    estimate.model_copy(update={"vivado": entries}).write(path)
    return True
