"""What each l1ml step left on disk, as MLflow records (`l1ml.track.log.Record`), read from its validated documents.

`for_step(step, target)` gives the records of one step; every one has the l1ml run (`run_record`, a training run or a
folder converted with --out) as parent, except a synthesis job or a delivery whose run folder is not there. A step's
key is `<step>:<run>:<first 16 hex of the SHA-256 of its document or content>`, so the same result logged twice is
one MLflow run and a new result is a new one:

    step      target                          one record per               metrics
    train     run folder                      the run itself               auc/..., eff_<r>kHz/..., training/<phase>/...
    convert   run or --out folder             firmware/<folder>/convert.json  rtl/... (da4ml's RTL)
    verify    run or --out folder             verify/report.json           passed, mismatches/<check>, events/<check>
    estimate  run or --out folder             estimate/estimate.json       <method>/<lut|ff|dsp|latency_ns|...>
    synth     synthesis job folder            result.json                  lut, ff, dsp, bram_18k, latency_*, seconds
    deliver   deliveries/<model>/<version>/   manifest.json                size_mb, files
    search    runs/search/<name>/             the study, and each trial      objectives, wall_s, resumes (records_search)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from l1ml.documents import (
    CONVERT,
    ConvertInfo,
    DeliveryManifest,
    DeliveryRecord,
    EstimateReport,
    RtlSummary,
    SynthJob,
    SynthResult,
    VerifyReport,
    read,
)
from l1ml.errors import L1mlError
from l1ml.runs import sha256_file, tree_hash
from l1ml.track.log import Record
from l1ml.track.records_run import EXTERNAL, artifacts, child, digest, flatten, name, need, orphan, parent_of, present, run_record, text
from l1ml.track.records_search import search_records

__all__ = ["for_step", "run_record"]

#: the figures of an estimate method logged as `<method>/<figure>`
ESTIMATE_FIGURES = ("lut", "ff", "dsp", "carry", "bram_18k", "bops", "logic_depth", "latency_cycles", "latency_ns", "seconds")
SYNTH_RESOURCES = ("lut", "ff", "dsp", "bram_18k", "bram_tile", "uram")
SYNTH_STATUS = {"done": "FINISHED", "cancelled": "KILLED"}  # every other end state of a job is FAILED


def for_step(step: str, target: str | Path) -> list[Record]:
    """The records of `step` done on `target` (see the module docstring); a missing or damaged document is one
    L1mlError naming it."""
    if step not in STEPS:
        raise L1mlError(f"unknown step; one of {', '.join(STEPS)}", key="step", value=step)
    return STEPS[step](Path(target))


# ------------------------------------------------------------------------------------------------ convert


def convert_records(target: Path) -> list[Record]:
    """One record per converted firmware project (`firmware/<folder>/convert.json`)."""
    found = sorted(target.glob(f"firmware/*/{CONVERT}"))
    if not found:
        raise L1mlError(f"no converted firmware here (no firmware/<backend>/{CONVERT})", path=target / "firmware")
    parent = parent_of(target)
    return [_convert(parent, convert.parent) for convert in found]


def _convert(parent: Record, folder: Path) -> Record:
    info = read(folder / CONVERT, ConvertInfo, "not a converted firmware project")
    firmware = tree_hash(folder)
    tags = {"l1ml.firmware_sha256": firmware, "l1ml.firmware_tool": info.tool, "l1ml.backend": info.backend,
            "l1ml.firmware_folder": folder.name}
    metrics = []
    if (folder / "rtl.json").is_file():
        rtl = read(folder / "rtl.json", RtlSummary)
        metrics = [(f"rtl/{k}", float(getattr(rtl, k)), 0) for k in ("latency_cycles", "reg_bits", "da4ml_lut_estimate")]
    # the records beside the project (convert.json, emulator.json, rtl.json, the tool's config), not the project itself
    files = [(p, None) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
    return child(parent, "convert", f"convert {folder.name}", firmware[:16], params=flatten(info.model_dump(exclude={"format"})),
                 metrics=metrics, tags=tags, artifacts=files)


# ------------------------------------------------------------------------------------------------ verify


def verify_records(target: Path) -> list[Record]:
    path = target / "verify" / "report.json"
    report = read(path, VerifyReport, "the verify report")
    parent = parent_of(target)
    metrics = [("passed", float(report.passed), 0)]
    for check, entry in check_names(report, path).items():
        metrics += [(f"{count}/{check}", float(entry[count]), 0) for count in ("mismatches", "events")
                    if isinstance(entry.get(count), int | float)]
    verified = in_run(report.firmware)
    tags = present({"l1ml.verify_passed": text(report.passed), "l1ml.verify_kind": report.kind, "l1ml.firmware_folder": verified,
                    "l1ml.firmware_sha256": report.fingerprint.get(f"{verified}/"),
                    "l1ml.checked_firmware": ", ".join(in_run(f) for f in report.checked_firmware),
                    "l1ml.failed_checks": ", ".join(report.failed_checks)})
    params = flatten({"options": report.options, "sample_events": report.sample.get("events")})
    plots = [(p, "plots") for p in sorted(path.parent.glob("*.png"))]
    return [child(parent, "verify", "verify", digest(path), params=params, metrics=metrics, tags=tags,
                  artifacts=[(path, None), *plots])]


def check_names(report: VerifyReport, path: Path) -> dict[str, dict]:
    """The report's checks by a metric-safe name: the name before its parenthesis ("bit_exact", "physics", ...)."""
    named: dict[str, dict] = {}
    for entry in report.checks:
        base = name(need(entry, "name", path, "checks", str).split(" (")[0]).replace("/", "_")
        unique, n = base, 2
        while unique in named:
            unique, n = f"{base}_{n}", n + 1
        named[unique] = entry
    return named


def in_run(folder: str) -> str:
    """A firmware folder as the verify fingerprint names it, relative to its run: `firmware/<backend>` (the report
    holds paths as verify was given them).

    >>> in_run("runs/ae_demo/20261202-010036-e7111fb6/firmware/vitis")
    'firmware/vitis'
    """
    parts = Path(folder).parts
    if "firmware" not in parts:
        return Path(folder).name
    at = len(parts) - 1 - parts[::-1].index("firmware")
    return "/".join(parts[at:])


# ------------------------------------------------------------------------------------------------ estimate


def estimate_records(target: Path) -> list[Record]:
    path = target / "estimate" / "estimate.json"
    report = read(path, EstimateReport, "the estimate report")
    parent = parent_of(target)
    metrics = []
    for method, figures in report.methods.items():
        metrics += [(f"{method}/{f}", float(getattr(figures, f)), 0) for f in ESTIMATE_FIGURES if getattr(figures, f) is not None]
        if figures.within_budget is not None:
            metrics.append((f"{method}/within_budget", float(figures.within_budget), 0))
    source = report.source
    tags = present({"l1ml.hw_target": report.target, "l1ml.estimate_kind": report.kind, "l1ml.backend": source.get("backend"),
                    "l1ml.firmware_folder": in_run(str(source["project"])) if source.get("project") else None,
                    "l1ml.estimate_failed": ", ".join(report.failed)})
    params = flatten({k: getattr(report, k) for k in ("target", "part", "family", "clock_period_ns", "latency_budget_ns")}
                     | {"tool": {m: f.tool for m, f in report.methods.items()}})
    return [child(parent, "estimate", "estimate", digest(path), params=params, metrics=metrics, tags=tags,
                  artifacts=[(path, None)])]


# ------------------------------------------------------------------------------------------------ synthesis jobs


def synth_records(job_dir: Path) -> list[Record]:
    """A synthesis job folder that ended (job.json and result.json)."""
    job_dir = job_dir.resolve()
    again = "submit the job again with this l1ml (`l1ml synth submit --force`)"
    job = read(job_dir / "job.json", SynthJob, again=again)
    result = read(job_dir / "result.json", SynthResult, again=again)
    tags = {"l1ml.job_id": job.id, "l1ml.job_kind": job.kind, "l1ml.state": result.state, "l1ml.synth_tool": job.tool,
            "l1ml.backend": Path(job.project).parent.name, "l1ml.project_hash": job.project_hash, "l1ml.job_dir": str(job_dir)}
    tags.update(present({"l1ml.host": result.host, "l1ml.tool_version": result.tool_version,
                         "l1ml.within_budget": result.within_budget}))
    found = [Path(f) if Path(f).is_absolute() else job_dir / f for f in result.reports.found]
    params = flatten(job.model_dump(include={"kind", "tool", "part", "clock_ns", "steps", "mem_gb", "time_s", "cpus", "extra"}))
    files = artifacts(job_dir, ("job.json", "result.json")) + [(p, "reports") for p in found if p.is_file()]
    run_name, content = f"synth {job.id}", digest(job_dir / "result.json")
    fields = {"params": params, "metrics": synth_metrics(result), "status": SYNTH_STATUS.get(result.state, "FAILED"),
              "artifacts": files}
    target = Path(job.target)
    if (target / "run.json").is_file() or (target / "byo.json").is_file():
        return [child(parent_of(target), "synth", run_name, content, tags=tags, **fields)]
    # the run folder is not here (moved, or not mounted on this node)
    model = job.model.split("/")[0] if "/" in job.model else EXTERNAL
    return [orphan("synth", model, job.model, job.target, run_name, content, tags=tags, **fields)]


def synth_metrics(result: SynthResult) -> list[tuple[str, float, int]]:
    """C-synthesis figures under plain names (`lut`, `latency_ns`, ...), Vivado's under `vivado/` (and plain when there
    was no C-synthesis: vivado-rtl jobs), the job's peak memory and duration."""
    csynth, vsynth = result.reports.csynth, result.reports.vsynth
    out = _resources(csynth if csynth is not None else vsynth, "")
    if vsynth is not None:
        out += _resources(vsynth, "vivado/")
    if csynth is not None:
        out += [(m, float(csynth[k]), 0) for m, k in (("latency_cycles", "latency_worst"), ("latency_ns", "latency_worst_ns"),
                                                      ("interval_max", "interval_max"), ("clock_estimated_ns", "clock_estimated_ns"))
                if csynth.get(k) is not None]
    timing = (vsynth or {}).get("timing") or {}
    out += [(f"vivado/{k}", float(timing[k]), 0) for k in ("wns_ns", "whs_ns") if timing.get(k) is not None]
    if result.reports.verify is not None:
        out.append(("passed", float(result.reports.verify.passed), 0))
    if result.reports.ghdl is not None:
        out.append(("events", float(result.reports.ghdl.events), 0))
    if result.peak_mem_gb is not None:
        out.append(("peak_mem_gb", result.peak_mem_gb, 0))
    out.append(("seconds", result.ended - result.started, 0))
    return out


def _resources(report: dict | None, prefix: str) -> list[tuple[str, float, int]]:
    usage = (report or {}).get("resources") or {}
    return [(f"{prefix}{r}", float(usage[r]["used"]), 0) for r in SYNTH_RESOURCES
            if isinstance(usage.get(r), dict) and usage[r].get("used") is not None]


# ------------------------------------------------------------------------------------------------ deliveries


def read_delivery(folder: Path) -> tuple[Path, DeliveryManifest, DeliveryRecord, Path]:
    """A delivery package `deliveries/<model>/<version>/`: its folder, manifest, record and archive (beside it), the
    archive checked against the record."""
    folder = Path(folder).resolve()
    manifest = read(folder / "manifest.json", DeliveryManifest, "not a delivery")
    record_file = folder.parent / f"{folder.name}.record.json"
    record = read(record_file, DeliveryRecord, "the delivery record")
    archive = folder.parent / f"{folder.name}.tar.gz"
    if not archive.is_file():
        raise L1mlError("the delivery's archive is missing", path=archive)
    if sha256_file(archive) != record.archive_sha256:
        raise L1mlError(f"not the archive delivered: its SHA-256 differs from {record_file.name}", path=archive)
    return folder, manifest, record, archive


def deliver_records(folder: Path) -> list[Record]:
    """A delivery package `deliveries/<model>/<version>/` with its record and archive beside it."""
    folder, manifest, record, archive = read_delivery(folder)
    tags = {"l1ml.delivery": f"{manifest.model}/{manifest.version}", "l1ml.delivery_version": manifest.version,
            "l1ml.archive_sha256": record.archive_sha256, "l1ml.archive_path": str(archive), "l1ml.package_dir": str(folder),
            "l1ml.kind": manifest.kind, "l1ml.verify_passed": text(bool(manifest.verify.get("passed")))}
    firmware = delivered_firmware(folder, manifest)
    if firmware:
        tags["l1ml.firmware_sha256"] = firmware
    fields = {"metrics": [("size_mb", sum(f.bytes for f in manifest.files.values()) / 1e6, 0),
                          ("files", float(len(manifest.files)), 0)],
              "artifacts": [(folder / "manifest.json", None), (folder.parent / f"{folder.name}.record.json", None),
                            (archive, "archive")]}
    run_name, content = f"deliver {manifest.version}", digest(folder / "manifest.json")
    run = manifest.lineage.get("run") if isinstance(manifest.lineage.get("run"), dict) else {}
    run_dir = Path(str(run.get("path", "")))
    if run.get("path") and (run_dir / "run.json").is_file():
        return [child(run_record(run_dir), "deliver", run_name, content, tags=tags, **fields)]
    # the training run is not here
    run_id = f"{manifest.model}/{run['id']}" if run.get("id") else manifest.model
    return [orphan("deliver", manifest.model, run_id, run.get("path"), run_name, content, tags=tags, **fields)]


def delivered_firmware(folder: Path, manifest: DeliveryManifest) -> str | None:
    """The content hash (as `l1ml.firmware_sha256` of the convert step) of the firmware project a firmware delivery
    carries: the synthesised one, or the RTL of an RTL-only delivery; from the verify report it was delivered with."""
    if manifest.kind != "firmware":
        return None
    report = read(folder / "verify_report.json", VerifyReport, "the verify report of the delivery")
    rtl = manifest.synthesis.get("rtl")
    if isinstance(rtl, dict) and "job" not in manifest.synthesis:  # RTL-only: its folder keeps its name in the release
        wanted = Path(str(rtl.get("folder"))).name
        verified = next((in_run(f) for f in report.checked_firmware if Path(f).name == wanted), f"firmware/{wanted}")
    else:
        verified = in_run(report.firmware)
    return report.fingerprint.get(f"{verified}/")


STEPS: dict[str, Callable[[Path], list[Record]]] = {
    "train": lambda target: [run_record(target)],
    "convert": convert_records,
    "verify": verify_records,
    "estimate": estimate_records,
    "synth": synth_records,
    "deliver": deliver_records,
    "search": search_records,
}
