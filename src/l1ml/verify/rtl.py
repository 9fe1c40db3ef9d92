"""The `rtl` check: the Verilog that da4ml wrote (`l1ml convert --rtl`), simulated with Verilator, equals the
C-simulation and the emulator bit for bit.

Verilator runs the pipelined RTL at a few thousand events per second on this kind of machine, so it is given at most
`RTL_EVENTS` of verify's events: the adversarial blocks first, the rest spread over the test events (the report says
how many). The inputs are what the C-simulation's input conversion made of each event.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1ml.firmware.project import VERILATOR, FirmwareProject, projects_in
from l1ml.firmware.rtl import simulate_rtl
from l1ml.verify.bitexact import Sample, compare, pick_events
from l1ml.verify.report import Check
from l1ml.verify.subject import Subject

RTL_EVENTS = 50_000
NAME = "rtl (Verilator vs C-simulation and emulator)"


def rtl_project(target: Path) -> FirmwareProject | None:
    """The RTL project of a run or --out folder, if it was converted with --rtl."""
    return next((p for p in projects_in(target) if p.simulated_by == VERILATOR), None)


def add_rtl_check(subject: Subject, threads: int | None = None) -> None:
    """Add the rtl check to a network's subject where the RTL exists; the RTL's folder is then part of what is verified."""
    project = rtl_project(subject.target)
    if project is None:
        return
    subject.also_checked.append(project.folder)
    subject.extra_checks.append(lambda s, sample, csim_out: [rtl_check(project, s, sample, csim_out, threads or 1)])


def rtl_check(project: FirmwareProject, subject: Subject, sample: Sample, csim_out: np.ndarray, threads: int,
              n_events: int = RTL_EVENTS) -> Check:
    pick = pick_events(sample, n_events)
    taken = sample.take(pick)
    x = subject.input_type.quantize(taken.x)
    if not np.array_equal(project.input_type.quantize(x), x):
        return Check(NAME, False, {}, f"the RTL's input type {project.input_type} cannot hold the firmware inputs")
    got, info = simulate_rtl(project.folder, x, threads)
    emulator, _ = project.emulator()
    vs_csim = compare("Verilator vs C-simulation", got, csim_out[pick], inputs=x, sample=taken)
    vs_emulator = compare("Verilator vs emulator", got, emulator.predict(x), inputs=x, sample=taken)
    passed = vs_csim.passed and vs_emulator.passed
    message = (f"{vs_csim.mismatches} and {vs_emulator.mismatches} of {len(x)} events differ from the C-simulation and "
               f"the emulator" if not passed else f"equal bit for bit on {len(x)} of {len(sample.x)} verified events "
               f"({info['latency_cycles']}-cycle pipeline, {info['events_per_second']} events/s in Verilator)")
    return Check(NAME, passed, {"vs_csim": vs_csim.to_dict(), "vs_emulator": vs_emulator.to_dict(), "verilator": info,
                                "verified_events": len(sample.x), "by_category": vs_csim.by_category},
                 message, events=len(x), mismatches=max(vs_csim.mismatches, vs_emulator.mismatches))
