"""`l1ml deliver RUN_DIR --version X.Y.Z`: the package of a verified (and synthesised) run, written atomically.

    deliveries/<model>/<version>/
      README.md            what this is; EMULATOR-ONLY and RTL-ONLY deliveries say so first
      manifest.json        lineage, verify and synthesis summaries, the SHA-256 of every other file
      firmware/            firmware deliveries only: hls/ (the HLS project: sources, build Tcl), vhdl/ (BDTs),
                           rtl/ (da4ml's RTL, verified with Verilator), synthesis/ (the job's result and reports),
                           ip/ (the exported IP, when synthesis exported it); an RTL-only delivery (--no-synthesis of
                           a run with verified RTL) has rtl/ alone: not synthesised by Vivado
      emulator/            the CMSSW emulator package (l1ml.deliver.cmssw)
      test_vectors/        inputs and expected outputs as bit patterns (l1ml.deliver.vectors)
      scaling.json         per-feature offset and shift, as real numbers and as integer codes
      thresholds.json      the threshold of each target rate, as real numbers and as the score type's bit patterns
      verify_report.json   the verify report the gate accepted
    deliveries/<model>/<version>.tar.gz

Everything is written into a hidden temporary folder beside the version folder, the emulator is built from it
with g++ and checked on the test vectors, and only then is the folder renamed into place (the commit), then the
archive. A delivery interrupted at any point leaves no version folder; the next delivery of the model removes the
leftovers (deliveries of one model take turns through a lock file).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import gzip
import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ml import __version__
from l1ml.config.loader import load_config
from l1ml.config.train import TrainConfig
from l1ml.data.layout import feature_names
from l1ml.deliver import cmssw
from l1ml.deliver.firmware import write_firmware
from l1ml.deliver.gate import VERSION_RE, DeliveryRefused, Gate, already_delivered, check, check_version, require_run, version_key
from l1ml.deliver.manifest import MANIFEST, listing, make_record, record_path, rtl_only
from l1ml.deliver.vectors import make_vectors, to_hex_lines
from l1ml.documents import DeliveryManifest, Metrics, NormalisationRecord, RtlSummary, StepManifest, read
from l1ml.errors import L1mlError
from l1ml.firmware import csim
from l1ml.firmware.rtl import SUMMARY as RTL_SUMMARY
from l1ml.quantize.fixedpoint import FixedType
from l1ml.quantize.normalisation import OFFSET_GRID
from l1ml.runfolder import read_inputs, read_state
from l1ml.runs import git_state, sha256_file, tool_versions
from l1ml.verify.subjects import from_run


@dataclass
class DeliverOptions:
    version: str
    out: Path = Path("deliveries")
    synthesis: bool = True  # False (--no-synthesis): an RTL-only delivery of a run with verified RTL, else emulator-only
    test_events: int = 1000  # test events per sample in the test vectors


@dataclass
class Delivery:
    path: Path  # the version folder
    archive: Path
    manifest: DeliveryManifest
    seconds: float

    @property
    def size_mb(self) -> float:
        return sum(f.bytes for f in self.manifest.files.values()) / 1e6


def deliver(run_dir: str | Path, options: DeliverOptions, log: Callable[[str], None] = print, db=None) -> Delivery:
    start = time.perf_counter()
    run_dir = Path(run_dir)
    require_run(run_dir)
    _, cfg = load_config(run_dir / "config.yaml", TrainConfig)
    model_root = Path(options.out) / cfg.name
    version = next_version(model_root) if options.version == "next" else check_version(options.version)
    final = model_root / version
    gate = check(run_dir, final, synthesis=options.synthesis, db=db)
    subject = from_run(run_dir, gate.project.backend)  # reads and checks the recorded events: before anything is written
    made_root = not model_root.exists()
    model_root.mkdir(parents=True, exist_ok=True)
    try:
        with _model_lock(model_root):
            return _deliver_locked(gate, subject, cfg, model_root, version, options, log, start)
    finally:
        if made_root and {p.name for p in model_root.iterdir()} <= {".lock"}:  # nothing delivered: leave no empty folder
            shutil.rmtree(model_root, ignore_errors=True)


def _deliver_locked(gate: Gate, subject, cfg, model_root: Path, version: str, options: DeliverOptions, log,
                    start: float) -> Delivery:
    run_dir, final = gate.run_dir, model_root / version
    if final.exists():  # delivered by another process since the gate looked
        raise DeliveryRefused(run_dir, [already_delivered(final)])
    _remove_leftovers(model_root)
    tmp = model_root / f".{version}.tmp-{os.getpid()}"
    archive_tmp = model_root / f".{version}.tar.gz.tmp-{os.getpid()}"
    try:
        tmp.mkdir()
        content = _write(tmp, gate, subject, cfg, version, options, log)
        log("building the CMSSW emulator and running the test vectors through it")
        result = cmssw.build_and_test(tmp, scratch_dir=model_root)  # a kill -9 leaves it where leftovers are removed
        if not result.passed:
            raise DeliveryRefused(run_dir, ["the emulator package failed its test vectors; nothing was delivered:\n"
                                            + result.output[-3000:]])
        content["emulator"]["self_test"] = {"passed": True, "seconds": round(result.seconds, 1),
                                            "summary": [ln for ln in result.output.splitlines() if " differ" in ln]}
        manifest = _write_manifest(tmp, content)
        _tar(tmp, version, archive_tmp, manifest.created)
        make_record(manifest, tmp / MANIFEST, archive_tmp).write(record_path(model_root, version))
        os.replace(tmp, final)  # the commit point
        os.replace(archive_tmp, model_root / f"{version}.tar.gz")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        archive_tmp.unlink(missing_ok=True)
    return Delivery(final, model_root / f"{version}.tar.gz", manifest, time.perf_counter() - start)


def next_version(model_root: Path) -> str:
    """One patch above the highest delivered version of the model, 0.1.0 for the first."""

    versions = [p.name for p in model_root.iterdir() if p.is_dir() and VERSION_RE.match(p.name)] if model_root.is_dir() else []
    if not versions:
        return "0.1.0"
    major, minor, patch = max(map(version_key, versions))
    return f"{major}.{minor}.{patch + 1}"


@contextlib.contextmanager
def _model_lock(model_root: Path):
    with open(model_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove_leftovers(model_root: Path) -> None:
    """Temporary folders and archives of deliveries that were killed (we hold the model's lock: none is running)."""
    for path in model_root.glob(".*.tmp-*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    for record in model_root.glob("*.record.json"):  # written just before the commit that did not happen
        if not (model_root / record.name.removesuffix(".record.json")).is_dir():
            record.unlink()


# ------------------------------------------------------------------------------------------ the package's content


def _write(folder: Path, gate: Gate, subject, cfg, version: str, options: DeliverOptions, log) -> dict:
    """The package's files but the manifest; returns what the manifest says of them, but their list and hashes."""

    run_dir = gate.run_dir
    metrics = read(run_dir / "metrics.json", Metrics).model_dump(mode="json")
    only = {"firmware": " (RTL only: not synthesised)", "emulator-only": " (emulator only)"}[gate.kind]
    log(f"delivering {cfg.name} {version} from {run_dir}" + ("" if options.synthesis else only))
    sources = subject.csim_sources()
    library = csim.compile_sources(sources)
    vectors = make_vectors(subject, library, test_events=options.test_events)
    vectors.write(folder / "test_vectors")

    scaling = _scaling(run_dir, subject)
    thresholds = _thresholds(metrics, subject.run.score_type)
    (folder / "scaling.json").write_text(json.dumps(scaling, indent=1) + "\n")
    (folder / "thresholds.json").write_text(json.dumps(thresholds, indent=1) + "\n")
    name = cmssw.library_name(cfg.name, version)
    facts = cmssw.ModelFacts(cfg.name, version, subject.input_type, subject.run.score_type, subject.n_features,
                             vectors.outputs.shape[1], np.array(scaling["offset"]), np.array(scaling["shift"]),
                             [{"rate_khz": t["rate_khz"], "value": t["threshold"], "code": t["code"]}
                              for t in thresholds["thresholds"]])
    cmssw.write_package(folder / "emulator", name, sources, facts, __version__)
    shutil.copyfile(run_dir / "verify" / "report.json", folder / "verify_report.json")
    synthesis = write_firmware(folder / "firmware", gate, vectors) if gate.kind == "firmware" else None
    manifest = _manifest(gate, cfg, version, name, vectors, synthesis, metrics)
    (folder / "README.md").write_text(_readme(manifest))
    return manifest


def _scaling(run_dir: Path, subject) -> dict:
    t = subject.input_type
    common = {"input_type": str(t), "formula": "x_scaled = (x - offset) * 2**-shift, then converted to input_type "
              f"({t.rounding}, {t.overflow})", "offset_lsb": OFFSET_GRID}
    path = run_dir / "normalisation.json"
    if path.is_file():
        norm = read(path, NormalisationRecord).normalisation()
        codes = np.rint(norm.offset / OFFSET_GRID).astype(np.int64)
        if not np.array_equal(codes * OFFSET_GRID, norm.offset):
            raise L1mlError("an offset is not on the 2**-8 grid", path=path, key="offset")
        offset_type = _offset_type(codes, OFFSET_GRID)
        return {"features": norm.features, "offset": norm.offset.tolist(), "offset_code": codes.tolist(),
                "offset_type": str(offset_type), "offset_hex": to_hex_lines(codes[None, :], offset_type)[0].split(),
                "shift": norm.shift.tolist(), **common}

    n = subject.n_features
    return {"features": feature_names()[:n], "offset": [0.0] * n, "offset_code": [0] * n, "shift": [0] * n, **common,
            "note": "a BDT takes the features as they are, converted to input_type"}


def _offset_type(codes: np.ndarray, lsb: float):
    """The narrowest signed fixed-point type with that LSB which holds every offset code."""

    fractional = -int(np.log2(lsb))
    width = max(fractional + 1, int(np.max(np.abs(codes), initial=0)).bit_length() + 1)  # the sign bit, at least
    return FixedType(width, width - fractional, True)


def _thresholds(metrics: dict, score_type) -> dict:
    rows = []
    for row in metrics["thresholds"]["quantized"]:
        code = int(score_type.to_codes(row["threshold"]))
        if code != row["threshold_bits"]:
            raise L1mlError(f"threshold {row['threshold']!r} is not code {row['threshold_bits']} of {score_type}",
                            key="thresholds.quantized", value=row["rate_khz"])
        rows.append({"rate_khz": row["rate_khz"], "threshold": row["threshold"], "code": code, "hex": row["threshold_hex"],
                     "achieved_rate_khz": row["achieved_rate_khz"], "achieved_rate_err_khz": row["achieved_rate_err_khz"],
                     "background_pass": row["background_pass"]})
    return {"score_type": str(score_type), "score_fractional_bits": score_type.fractional,
            "trigger": metrics.get("trigger", "an event fires when score > threshold"),
            "bx_rate_khz": metrics["bx_rate_khz"], "n_background_test": metrics["n_background_test"], "thresholds": rows}


def _manifest(gate: Gate, cfg, version: str, name: str, vectors, synthesis: dict | None, metrics: dict) -> dict:
    run_dir = gate.run_dir
    train = read(run_dir / "manifest.json", StepManifest).model_dump()
    convert = read(gate.project.folder / "manifest.json", StepManifest).model_dump()
    report = gate.report
    tools = {"delivery": tool_versions(), "training": train.get("tools"), "conversion": convert.get("tools")}
    if gate.synthesis is not None:
        tools["synthesis"] = gate.synthesis.result.tool_version
    rtl = _rtl_summary(gate)
    if rtl is not None:
        tools["rtl"] = rtl["tools"]
    return {
        "model": cfg.name,
        "version": version,
        "kind": gate.kind,
        "firmware_release": gate.kind == "firmware",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "lineage": {
            "run": {"path": str(run_dir.resolve()), "id": run_dir.name, "config_hash": read_state(run_dir).config_hash},
            "config": {"sha256": sha256_file(run_dir / "config.yaml"), "as_given": (run_dir / "config.yaml").read_text()},
            "seed": cfg.seed,
            "data": read_inputs(run_dir).model_dump(),  # the events verify read, by the hash the gate checked
            "l1ml_git": {"delivery": git_state(), "training": train.get("l1ml_git"), "conversion": convert.get("l1ml_git"),
                         "verify": report.l1ml_git},
            "tools": tools,
        },
        "verify": {
            "created": report.created, "passed": report.passed, "fingerprint": report.fingerprint,
            "events": report.sample.get("events"),
            "checks": [{k: c[k] for k in ("name", "passed", "events", "mismatches", "message") if c.get(k) is not None}
                       for c in report.checks],
        },
        "synthesis": _synthesis_summary(gate, synthesis, rtl),
        "emulator": {"library": f"{name}.so", "interface": "hls4mlEmulator::Model", "folder": f"emulator/{name}"},
        "test_vectors": {"events": len(vectors.inputs), "blocks": {n: b - a for n, a, b in vectors.blocks}},
        "metrics": {"signals": {s: {f: v[f]["auc"] for f in ("float", "quantized")} for s, v in metrics["signals"].items()}},
    }


def _synthesis_summary(gate: Gate, synthesis: dict | None, rtl: dict | None) -> dict:
    """The manifest's `synthesis`: the HLS job's figures, or why there are none; and the RTL delivered, if any."""
    if gate.synthesis is not None:
        summary = _hls_summary(gate, synthesis)
    elif rtl is not None:
        summary = {"none": f"RTL-only firmware delivery (--no-synthesis): {rtl['note']}; no Vivado timing, resources "
                           "or IP"}
    else:
        summary = {"none": "emulator-only delivery (--no-synthesis): not synthesised, no IP; not a firmware release"}
    return {**summary, "rtl": rtl} if rtl is not None else summary


def _hls_summary(gate: Gate, synthesis: dict | None) -> dict:
    """The synthesis job's figures (Vivado or Vitis HLS C-synthesis) and the IP it exported."""
    result, spec = gate.synthesis.result, gate.synthesis.spec
    csynth = result.reports.csynth or {}
    return {
        "job": gate.synthesis.job_id, "tool_version": result.tool_version, "host": result.host, "part": spec.part,
        "clock_ns": spec.clock_ns, "steps": spec.steps, "hw_target": spec.extra.hw_target,
        "project_hash": spec.project_hash,
        "latency_worst_cycles": csynth.get("latency_worst"), "latency_worst_ns": csynth.get("latency_worst_ns"),
        "interval_max": csynth.get("interval_max"), "clock_estimated_ns": csynth.get("clock_estimated_ns"),
        "resources": csynth.get("resources"), "budget": [row.model_dump() for row in result.budget],
        "within_budget": result.within_budget, "peak_mem_gb": result.peak_mem_gb,
        "ip": synthesis["ip"] if synthesis else [],
    }


def _rtl_summary(gate: Gate) -> dict | None:
    """What the delivery says of the run's RTL: its tool, pipeline and the verify checks that compared it. da4ml
    pipelined it for the clock with its own delay model; no Vivado figure is claimed."""
    project = gate.rtl
    if project is None:
        return None
    rtl = read(project.folder / RTL_SUMMARY, RtlSummary)
    checks = [{k: c.get(k) for k in ("name", "passed", "events", "mismatches")} for c in gate.rtl_checks]
    events = min(c["events"] for c in checks)
    return {
        "folder": f"firmware/{project.release_folder}",
        "contents": sorted(p.name for p in project.project_dir.iterdir() if p.is_dir()),
        "tool": project.tool, "tool_version": rtl.tools.get(project.tool, project.info.tool_version), "tools": rtl.tools,
        "top": rtl.top, "part": rtl.part, "clock_period_ns": rtl.clock_period_ns, "latency_cycles": rtl.latency_cycles,
        "reg_bits": rtl.reg_bits, "da4ml_lut_estimate": rtl.da4ml_lut_estimate,
        "simulated_by": project.simulated_by, "checks": checks, "events": events,
        "mismatches": sum(c["mismatches"] or 0 for c in checks), "synthesised_by_vivado": False,
        "note": f"RTL from {project.tool}, verified with {project.simulated_by} bit for bit on {events} events; "
                "not synthesised by Vivado",
    }


def _write_manifest(folder: Path, content: dict) -> DeliveryManifest:
    """The manifest: `content` and the list of the package's files with their hashes."""

    manifest = DeliveryManifest(**content, **listing(folder))
    manifest.write(folder / MANIFEST)
    return manifest


def _tar(folder: Path, version: str, out: Path, created: str) -> None:
    """A reproducible .tar.gz of the package: sorted entries, one time stamp, no owners."""
    stamp = int(_dt.datetime.fromisoformat(created).timestamp())

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = stamp, 0, 0, "", ""
        info.mode = 0o755 if info.isdir() or info.mode & 0o100 else 0o644
        return info

    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=stamp) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in [folder, *sorted(folder.rglob("*"))]:
            tar.add(path, arcname=str(Path(version) / path.relative_to(folder)), recursive=False, filter=normalise)


def _readme(manifest: dict) -> str:
    m = manifest
    rtl = m["synthesis"].get("rtl")
    lines = [f"# {m['model']} {m['version']}", ""]
    if m["kind"] == "emulator-only":
        lines += ["**EMULATOR-ONLY DELIVERY: not synthesised, no IP, not a firmware release.** It carries the CMSSW",
                  "emulator, the test vectors, the input scaling and the thresholds of a verified model.", ""]
    elif rtl_only(m["kind"], m["synthesis"]):
        lines += [f"**RTL-ONLY FIRMWARE DELIVERY: {rtl['note']}.**",
                  "No Vivado timing, resources or IP: an open-source firmware path. It carries the RTL, the CMSSW emulator,",
                  "the test vectors, the input scaling and the thresholds of a verified model.", ""]
    else:
        s = m["synthesis"]
        lines += [f"Firmware release: synthesised with {s['tool_version'] or 'an unrecorded tool'} for {s['part']} at "
                  f"{s['clock_ns']} ns (job {s['job']}), latency {s['latency_worst_cycles']} cycles, within the budgets "
                  f"of {s['hw_target']}.", ""]
    if rtl:
        lines += _rtl_readme(rtl)
    hls = m["kind"] == "firmware" and not rtl_only(m["kind"], m["synthesis"])
    lines += [
        f"Made by l1ml from run `{m['lineage']['run']['id']}`; `l1ml verify` passed on {m['verify']['events']} events.",
        "",
        "- `emulator/`: the CMSSW emulator (`hls4mlEmulator::Model`): `make`, `make test`, `make install PREFIX=DIR`",
        "- `test_vectors/`: inputs and expected outputs as bit patterns (hex and .npy); `vectors.json` says which rows are which",
        "- `scaling.json`, `thresholds.json`: the input scaling and the threshold of each rate, real and as bit patterns",
        *(["- `firmware/`: the HLS project and build Tcl, synthesis reports, exported IP (when exported)"] if hls else []),
        *([f"- `{rtl['folder']}/`: {rtl['tool']}'s RTL ({', '.join(f'`{d}/`' for d in rtl['contents'])}): Verilog and "
           "VHDL sources in `src/`, Vivado and Quartus project Tcl, the Verilator binder in `sim/`; `tb/` holds test "
           "vectors as integer codes at the ports' LSBs, one event per line; the `l1ml_*.json` records: conversion, ports and pipeline, the emulator "
           "specification it was traced from"]
          if rtl else []),
        "- `manifest.json`: lineage and the SHA-256 of every file; `l1ml deliver --check .` checks them",
        "",
    ]
    return "\n".join(lines)


def _rtl_readme(rtl: dict) -> list[str]:
    """What the README says of the RTL: its tool, pipeline and verification, and that Vivado never saw it."""
    checks = "; ".join(f"`{c['name']}`: {c['mismatches']} of {c['events']} events differ" for c in rtl["checks"])
    tools = ", ".join(f"{k} {v}" for k, v in rtl["tools"].items() if v)
    return [f"RTL (`{rtl['folder']}/`, top `{rtl['top']}`), made with {tools}: pipelined by {rtl['tool']} for "
            f"{rtl['part']} at {rtl['clock_period_ns']:g} ns, latency {rtl['latency_cycles']} cycles ({rtl['tool']}'s own "
            f"delay model: timing not checked by Vivado). `l1ml verify` simulated it with {rtl['simulated_by']}: {checks}.",
            ""]
