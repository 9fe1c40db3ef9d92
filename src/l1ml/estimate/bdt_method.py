"""The "bdt" estimate of a BDT: conifer's VHDL (the project `l1ml convert` writes with backend vhdl) through GHDL's
synthesis into Yosys' `synth_xilinx`; where that route fails, or the BDT has only its HLS project, conifer's own
resource and latency estimator. The figures' `tool` and `note` say which was used.
"""

from __future__ import annotations

import time
from pathlib import Path

from l1ml.config.hw import HwTarget
from l1ml.documents import EstimateFigures
from l1ml.errors import L1mlError
from l1ml.estimate.synthesis import CONIFER_VHDL_TOP, conifer_estimate, conifer_vhdl_sources, synthesize_vhdl
from l1ml.firmware.project import FirmwareProject


def estimate_bdt(project: FirmwareProject, hw: HwTarget, workdir: Path) -> EstimateFigures:
    """The figures of the BDT of `project` on `hw`."""
    start = time.perf_counter()
    conifer = conifer_estimate(project.folder)
    cross_check = {"conifer_estimator": {"lut": conifer.lut, "ff": conifer.ff, "latency_cycles": conifer.latency_cycles,
                                         "tool": conifer.tool}}
    if project.backend != "vhdl":
        return _from_conifer(conifer, start, "conifer's estimator: the BDT has no VHDL project for GHDL and Yosys "
                                             "(convert with --backend vhdl)", cross_check)
    try:
        synth = synthesize_vhdl(conifer_vhdl_sources(project.project_dir), CONIFER_VHDL_TOP, hw.family, workdir)
    except L1mlError as exc:
        return _from_conifer(conifer, start, f"conifer's estimator: GHDL and Yosys failed ({exc})", cross_check)
    return EstimateFigures(
        tool=synth.tool, seconds=round(time.perf_counter() - start, 2), lut=synth.lut, ff=synth.ff, dsp=synth.dsp,
        carry=synth.carry, bram_18k=synth.bram_18k, logic_depth=synth.logic_depth,
        latency_cycles=conifer.latency_cycles,
        note="conifer's VHDL through GHDL and Yosys; the latency in cycles is conifer's estimator's (the VHDL's "
             "pipeline depth)",
        details={"yosys_log": str(synth.log), "cells": synth.cells, **cross_check})


def _from_conifer(conifer, start: float, note: str, details: dict) -> EstimateFigures:
    return EstimateFigures(tool=conifer.tool, seconds=round(time.perf_counter() - start, 2), lut=conifer.lut,
                           ff=conifer.ff, latency_cycles=conifer.latency_cycles, note=note, details=details)
