"""`l1ml estimate TARGET`: the firmware cost of a converted model without Vivado, in TARGET/estimate/estimate.json.

TARGET is a training run or a folder converted with `l1ml convert --out`; its converted projects (firmware/<backend>/)
say what the model is. One project is estimated, by every method that applies to it:

    method   applies to   what it does                                          module
    counts   both         exact operation counts from emulator.json/ensemble.json  l1ml.estimate.counts
    rtl      networks     the network's RTL through Yosys                        l1ml.estimate.rtl_method
    bdt      BDTs         conifer's VHDL through GHDL and Yosys                  l1ml.estimate.bdt_method

A network's project is its first hls4ml one; a BDT's is its conifer VHDL project if it has one (the firmware that
open-source tools synthesise), else its HLS one. A method that cannot run (an L1mlError: a missing tool, a network
without an emulator specification) is recorded in the report's `failed` with its reason, and the others still run.
Each method's figures are compared with the hw target: the fraction of the device of each resource it gives, and
whether it is within budget (see `against_target`).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from l1ml.config.hw import HwTarget, load_target
from l1ml.config.train import COST_FIGURES
from l1ml.documents import EmulatorSpec, Ensemble, EstimateFigures, EstimateReport, read
from l1ml.errors import L1mlError
from l1ml.estimate import bdt_method, rtl_method
from l1ml.estimate.counts import count_bdt, count_network
from l1ml.firmware.byo import LOGITS
from l1ml.firmware.conifer_project import ENSEMBLE
from l1ml.firmware.hls import EMULATOR
from l1ml.firmware.project import FirmwareProject, projects_in
from l1ml.runs import sha256_file

DEFAULT_TARGET = "vu13p"
OUT_DIR = "estimate"
REPORT = "estimate.json"
RESOURCES = ("lut", "ff", "dsp", "bram_18k")  # compared with the device; carry has no device figure

#: What each firmware tool's projects are, and the file their counts come from.
KINDS = {"hls4ml": ("network", EMULATOR), "conifer": ("bdt", ENSEMBLE)}
BDT_BACKENDS = ("vhdl", "xilinxhls")  # the BDT project estimated: the first of these the target has


@dataclass(frozen=True)
class Context:
    """What a method is given: the project estimated, the file its model is described in, the hw target, and a folder
    of its own for its files (`workdir`, not yet made)."""

    target: Path
    kind: str
    project: FirmwareProject
    file: Path
    hw: HwTarget
    workdir: Path


def _counts(ctx: Context) -> EstimateFigures:
    if ctx.kind == "network":
        return count_network(read(ctx.file, EmulatorSpec), n_features=ctx.project.info.n_features)
    return count_bdt(read(ctx.file, Ensemble), ctx.project.types())


def _rtl(ctx: Context) -> EstimateFigures:
    return rtl_method.estimate_rtl(ctx.project, ctx.file, ctx.hw, ctx.workdir)


def _bdt(ctx: Context) -> EstimateFigures:
    return bdt_method.estimate_bdt(ctx.project, ctx.hw, ctx.workdir)


@dataclass(frozen=True)
class Method:
    kinds: tuple[str, ...]  # the kinds of model it applies to
    run: Callable[[Context], EstimateFigures]


METHODS: dict[str, Method] = {
    "counts": Method(("network", "bdt"), _counts),
    "rtl": Method(("network",), _rtl),
    "bdt": Method(("bdt",), _bdt),
}


def estimate(target: str | Path, hw_target: str | None = None, methods: Iterable[str] = ("counts", "rtl", "bdt"),
             log=print) -> EstimateReport:
    """Estimate the firmware of `target` with `methods` (those that apply to its kind of model) for `hw_target` (else
    the target the project was converted for, else vu13p); write and return TARGET/estimate/estimate.json."""
    target = Path(target).absolute()
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise L1mlError(f"unknown estimate method; known: {', '.join(METHODS)}", value=unknown[0])
    project, others = choose_project(target)
    kind, file_name = KINDS[project.tool]
    hw = load_target(hw_target or project.hw_target or DEFAULT_TARGET)
    clock = project.info.clock_period_ns
    ctx = Context(target, kind, project, model_file(project, file_name), hw, target / OUT_DIR)
    log(f"estimating {project.folder} ({kind}) for {hw.name}")

    figures: dict[str, EstimateFigures] = {}
    failed: dict[str, str] = {}
    for name in methods:
        if kind not in METHODS[name].kinds:
            continue
        start = time.perf_counter()
        try:
            found = METHODS[name].run(replace(ctx, workdir=ctx.workdir / name))
        except L1mlError as exc:
            failed[name] = str(exc)
            log(f"{name}: did not run: {exc}")
            continue
        if ctx.file.parent.name == LOGITS:
            found = found.model_copy(update={"note": " ".join(filter(None, [
                "the classifier up to its logits: the softmax's lookup tables are not included;", found.note]))})
        figures[name] = against_target(found, hw, clock)
        log(f"{name}: {summary(figures[name])} ({time.perf_counter() - start:.2f} s)")

    report = EstimateReport(
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), kind=kind, target=hw.name, part=hw.part,
        family=hw.family, clock_period_ns=clock, latency_budget_ns=hw.latency_budget_ns, device=device(hw),
        source=_source(ctx, others), methods=figures, failed=failed)
    report.write(target / OUT_DIR / REPORT)
    return report


def model_file(project: FirmwareProject, file_name: str) -> Path:
    """The file a project's model is estimated from: for a classifier whose softmax has no exact emulator, the
    specification of its logits project (`<backend>/logits/`, everything but the softmax's tables)."""
    path = project.folder / file_name
    logits = project.folder / LOGITS / file_name
    if file_name == EMULATOR and logits.is_file() and read(path, EmulatorSpec).unsupported is not None:
        return logits
    return path


def choose_project(target: Path) -> tuple[FirmwareProject, list[FirmwareProject]]:
    """(the project estimated, the other converted projects of target); an L1mlError naming target if it has none."""
    if not target.is_dir():
        raise L1mlError("no such folder: give a training run or a folder made by `l1ml convert --out`", path=target)
    projects = projects_in(target)
    if not projects:
        raise L1mlError("no converted firmware here (no firmware/<backend>/convert.json): not a training run or "
                        "converted folder, or not converted yet; run `l1ml convert` first", path=target)
    known = [p for p in projects if p.tool in KINDS]
    if not known:
        raise L1mlError(f"l1ml estimate knows {' and '.join(KINDS)} projects; found {', '.join(p.tool for p in projects)}",
                        path=target / "firmware")
    chosen = known[0]
    if KINDS[chosen.tool][0] == "bdt":
        chosen = next((p for b in BDT_BACKENDS for p in known if p.backend == b), chosen)
    return chosen, [p for p in projects if p is not chosen]


def device(hw: HwTarget) -> dict[str, int]:
    """The target's resources, under the names of EstimateFigures."""
    r = hw.resources
    return {"lut": r.lut, "ff": r.ff, "dsp": r.dsp, "bram_18k": r.bram_18k, "uram": r.uram}


def against_target(figures: EstimateFigures, hw: HwTarget, clock_period_ns: float) -> EstimateFigures:
    """`figures` with the fraction of the device of each resource it gives, its latency in ns (from its cycles, if it
    gives only those) and `within_budget`: False if the latency or any resource is over, True if the latency and at
    least one resource are known and none is over, else None (the figures cannot tell)."""
    available = device(hw)
    used = {r: getattr(figures, r) for r in RESOURCES if getattr(figures, r) is not None}
    fractions = {r: n / available[r] for r, n in used.items() if available[r] > 0}
    latency_ns = figures.latency_ns
    if latency_ns is None and figures.latency_cycles is not None:
        latency_ns = figures.latency_cycles * clock_period_ns
    verdicts = [n <= available[r] for r, n in used.items()]
    if latency_ns is not None:
        verdicts.append(latency_ns <= hw.latency_budget_ns)
    within = False if not all(verdicts) else (True if latency_ns is not None and used else None)
    return figures.model_copy(update={"fraction_of_device": fractions, "latency_ns": latency_ns,
                                      "within_budget": within})


def summary(figures: EstimateFigures) -> str:
    """One line of what a method found."""
    parts = [f"{getattr(figures, k)} {label}" for k, label in
             (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"), ("bops", "BOPs"), ("latency_cycles", "cycles"))
             if getattr(figures, k) is not None]
    d = figures.details
    if "multiplications" in d and "adders" in d:
        parts.append(f"{d['multiplications']} multiplications, {d['adders']} adders")
    elif "comparators_total" in d:
        parts.append(f"{d['comparators_total']} comparators, {d['adders']} adders")
    return ", ".join(parts) or "no figures"


def _source(ctx: Context, others: list[FirmwareProject]) -> dict:
    file = ctx.file
    return {
        "target": str(ctx.target),
        "project": str(ctx.project.folder),
        "tool": ctx.project.tool,
        "backend": ctx.project.backend,
        "converted_for": ctx.project.hw_target,
        "file": str(file),
        "sha256": sha256_file(file) if file.is_file() else None,
        "other_projects": [str(p.folder) for p in others],
    }


def figure(figures: EstimateFigures, key: str) -> float | None:
    """The figure `key` of COST_FIGURES (the keys of `promotion.limits`) in what a method found (None: the method does not
    give it)."""
    where = COST_FIGURES[key]
    value = figures.details.get(where.removeprefix("details.")) if where.startswith("details.") else getattr(figures, where)
    return None if value is None else float(value)
