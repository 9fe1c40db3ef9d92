"""The "rtl" estimate of a network: its exact arithmetic traced by da4ml into pipelined Verilog (`l1ml.firmware.rtl`)
and mapped by Yosys' `synth_xilinx` for the target's family.

The RTL of `l1ml convert --rtl` is used where it was made from the same emulator specification for the same part and
clock; otherwise the method writes its own in its folder. The latency is the pipeline's depth at the project's clock:
da4ml cuts the pipeline at about one adder delay per ns (`l1ml.firmware.rtl.UNITS_PER_NS`); Yosys' longest path per
stage (`logic_depth`) tells how deep each stage really is, but not whether Vivado closes timing on it.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from l1ml.config.hw import HwTarget
from l1ml.documents import EstimateFigures, RtlSummary, read
from l1ml.estimate.synthesis import PortUse, SynthFigures, port_use, synthesize_verilog
from l1ml.firmware import rtl
from l1ml.firmware.project import FirmwareProject

PORT_IN, PORT_OUT = "model_inp", "model_out"  # the ports of da4ml's stage modules


def estimate_rtl(project: FirmwareProject, spec: Path, hw: HwTarget, workdir: Path) -> EstimateFigures:
    """The figures of the network of `project` (its hls4ml project), specified by `spec` (its emulator.json), on `hw`."""
    start = time.perf_counter()
    folder = _rtl_folder(project, spec, hw, workdir)
    summary = read(folder / rtl.SUMMARY, RtlSummary)
    src = folder / rtl.PROJECT / "verilog" / "src"
    synth = _synthesize(src, summary.top, hw.family, workdir / "yosys")
    return EstimateFigures(
        tool=f"da4ml {summary.tools['da4ml']} + {synth.tool}", seconds=round(time.perf_counter() - start, 2),
        lut=synth.lut, ff=synth.ff, dsp=synth.dsp, carry=synth.carry, bram_18k=synth.bram_18k,
        logic_depth=synth.logic_depth, latency_cycles=summary.latency_cycles,
        latency_ns=round(summary.latency_cycles * summary.clock_period_ns, 3),
        note=f"da4ml's pipeline at {summary.clock_period_ns} ns ({summary.latency_cutoff} adder delays per stage), each "
             "stage synthesised on its own plus the pipeline registers; Yosys maps to CARRY4, has no placement, routing "
             "or timing closure",
        details={"rtl": str(folder), "yosys": str(workdir / "yosys"), "cells": synth.cells,
                 "da4ml_lut_estimate": summary.da4ml_lut_estimate, "pipeline_reg_bits": summary.reg_bits})


def _synthesize(src: Path, top: str, family: str, workdir: Path) -> SynthFigures:
    """Yosys on the RTL: a pipeline's stages (combinational modules between the registers of `top`) one by one, in
    parallel, and the pipeline registers that synthesis keeps; a combinational network as a whole. Yosys' time grows with the
    design's cells (about 40 s per 25 000 on this kind of machine), so the stages in parallel take half the time."""
    stages = sorted(src.glob(f"{top}_stage*.v"), key=lambda p: int(p.stem.rsplit("stage", 1)[1]))
    if not stages:
        return synthesize_verilog([src / f"{top}.v", *_library(src, [src / f"{top}.v"])], top, family, workdir,
                                  cwd=src / "memfiles")

    def one(stage: Path) -> SynthFigures:
        return synthesize_verilog([stage, *_library(src, [stage])], stage.stem, family, workdir / stage.stem,
                                  cwd=src / "memfiles")

    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        parts = list(pool.map(one, stages))
    registers, srls = _pipeline_registers([port_use(workdir / s.stem, s.stem) for s in stages])
    cells = Counter({"FDRE": registers, "SRLC32E": srls})
    for part in parts:
        cells.update(part.cells)
    return SynthFigures(lut=srls + sum(p.lut for p in parts), ff=registers + sum(p.ff for p in parts),
                        carry=sum(p.carry for p in parts), dsp=sum(p.dsp for p in parts),
                        bram_18k=sum(p.bram_18k for p in parts), logic_depth=max(p.logic_depth or 0 for p in parts),
                        cells=dict(cells), tool=parts[0].tool, seconds=sum(p.seconds for p in parts), log=workdir)


def _pipeline_registers(uses: list[PortUse]) -> tuple[int, int]:
    """(flip-flops, SRL shift registers) of da4ml's pipeline (a register in front of each stage and one behind the
    last), as synthesis of the whole design keeps them: a bit that is a constant, or that nothing downstream reads,
    needs none; a chain of at least 3 bits that only pass a value from register to register through the stages is one
    shift register per 32 bits (as Yosys' xilinx_srl and Vivado's SRL inference map such delay lines)."""
    n = len(uses)
    # needed[k]: the bits of register k (k = n: the output register) that synthesis keeps
    needed = [set() for _ in range(n + 1)]
    last = uses[-1]
    needed[n] = set(range(last.widths[PORT_OUT])) - last.constant_outputs[PORT_OUT]
    link: dict[tuple[int, int], tuple[int, int]] = {}  # a register bit whose only fanout is one bit of the next
    for k in range(n - 1, -1, -1):
        use = uses[k]
        fanout: dict[int, list[int]] = {}
        for j, (_, i) in use.passthrough[PORT_OUT].items():
            if j in needed[k + 1]:
                fanout.setdefault(i, []).append(j)
        read = use.read_inputs[PORT_IN]
        constant = uses[k - 1].constant_outputs[PORT_OUT] if k > 0 else set()
        needed[k] = (read | set(fanout)) - constant
        link.update({(k, i): (k + 1, js[0]) for i, js in fanout.items() if len(js) == 1 and i not in read and i in needed[k]})
    srl_bits = srls = 0
    for start in set(link) - set(link.values()):
        length, node = 1, start
        while node in link:
            node, length = link[node], length + 1
        if length >= 3:
            srl_bits, srls = srl_bits + length, srls + -(-length // 32)
    return sum(len(bits) for bits in needed) - srl_bits, srls


def _library(src: Path, files: list[Path]) -> list[Path]:
    """da4ml's library modules that `files` instantiate (an unused lookup table would read a missing .mem file)."""
    used = "".join(f.read_text() for f in files)
    return [f for f in sorted((src / "static").glob("*.v")) if re.search(rf"\b{f.stem}\b", used)]


def _rtl_folder(project: FirmwareProject, spec: Path, hw: HwTarget, workdir: Path) -> Path:
    """The converted RTL beside the project if it is the same network for the same part and clock, else a new one."""
    converted = project.folder.parent / "rtl"
    clock = project.info.clock_period_ns
    if (converted / rtl.SUMMARY).is_file() and (converted / rtl.SPEC).is_file():
        summary = read(converted / rtl.SUMMARY, RtlSummary)
        same = (converted / rtl.SPEC).read_bytes() == spec.read_bytes()
        if same and summary.part == hw.part and summary.clock_period_ns == clock:
            return converted
    folder = workdir / "rtl"
    rtl.write_rtl(spec, folder, part=hw.part, clock_period_ns=clock, target=hw.name,
                  source={"kind": "estimate", "project": str(project.folder)})
    return folder
