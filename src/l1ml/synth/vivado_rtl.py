"""vivado-rtl jobs: Vivado's logic synthesis of a network's RTL (`l1ml convert RUN --rtl`: da4ml's Verilog) alone, with
no HLS step, so far quicker and with far less memory than C-synthesis.

    <job>/project/        the RTL project (da4ml_prj/) without build outputs
    <job>/rtl.json        its RtlSummary: top, part, clock, pipeline depth, da4ml's LUT estimate
    <job>/emulator.json   the specification the RTL was traced from (an estimate of the same network has its SHA-256)
    <job>/synth.tcl       reads the Verilog, the memory files and the timing constraints (xdc), runs `synth_design
                          -mode out_of_context` and `opt_design`, writes the reports
    <job>/run.sh          finds vivado on the host that runs it (or ends as tool_missing) and runs synth.tcl

da4ml's own `build_vivado_prj.tcl` (project/verilog/) makes a Vivado project, then places and routes the design: far
longer. The job stops after `opt_design`, as the vsynth step of an HLS job does, and writes its reports where that step
does, so they are read the same way: project/vivado_synth.rpt (report_utilization) and project/vivado_timing.rpt
(report_timing_summary, against the clock of da4ml's xdc).

The memory it asks for is the rule in `l1ml.synth.jobs`, beside those of the other kinds (`memory_gb`).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from l1ml.documents import RtlSummary, read
from l1ml.errors import L1mlError
from l1ml.firmware.project import BUILD_OUTPUTS, projects_in
from l1ml.firmware.rtl import SPEC, SUMMARY
from l1ml.synth.outcome import TOOL_MISSING

if TYPE_CHECKING:
    from l1ml.documents import JobSpec
    from l1ml.firmware.project import FirmwareProject

KIND = "vivado-rtl"
ROLE = "RTL for Vivado (da4ml's Verilog)"
BASE_GB = 3.0
GB_PER_LUT = 1 / 100_000
CONVERT_HINT = "; run `l1ml convert RUN --rtl` first to write it (firmware/rtl/)"  # the end of select_project's error
VERILOG = Path("verilog") / "src"  # da4ml's Verilog below the project: <top>.v and its stages, static/, memfiles/, <top>.xdc
UTILIZATION = "vivado_synth.rpt"  # below project/, as an HLS job's vsynth step writes it; l1ml.synth.results reads both
TIMING = "vivado_timing.rpt"


def has_rtl(project: FirmwareProject) -> bool:
    """The project is RTL that Vivado synthesises alone (it has an rtl.json)."""
    return (project.folder / SUMMARY).is_file()


def require_rtl(target: Path, backend: str | None) -> None:
    """One error that says how to make the RTL where target has none (and --firmware names no project)."""
    if backend is None and not any(has_rtl(p) for p in projects_in(target)):
        raise L1mlError("no RTL project here (firmware/rtl/): run `l1ml convert RUN --rtl` first to write it",
                        path=Path(target) / "firmware")


def summary_of(project: FirmwareProject) -> RtlSummary:
    return read(project.folder / SUMMARY, RtlSummary)


def steps_of(steps: list[str]) -> list[str]:
    """A vivado-rtl job's one step, logic synthesis ("vsynth"); --steps may name it, or leave the default."""
    others = [s for s in steps if s not in ("csynth", "vsynth")]  # csynth: the option's default, for HLS jobs
    if others:
        raise L1mlError("a vivado-rtl job runs Vivado's logic synthesis alone (vsynth): no HLS steps", key="--steps",
                        value=others[0])
    return ["vsynth"]


def memory_gb(summary: RtlSummary) -> float:
    """The rule documented in `l1ml.synth.jobs`."""
    return math.ceil(2 * (BASE_GB + summary.da4ml_lut_estimate * GB_PER_LUT)) / 2


@dataclass
class RtlSources:
    """What synth.tcl reads, as paths below the project folder."""

    verilog: list[str]
    memfiles: list[str]
    xdc: str | None


def sources(project_dir: Path, top: str) -> RtlSources:
    """da4ml's Verilog of `top` in `project_dir`: the modules, their memory files and the timing constraints."""
    src = project_dir / VERILOG

    def below(pattern: str) -> list[str]:
        return [str(p.relative_to(project_dir)) for p in sorted(src.glob(pattern))]

    verilog = below("*.v") + below("static/*.v")
    if not verilog:
        raise L1mlError("the RTL project has no Verilog; convert it again with `l1ml convert RUN --rtl`", path=src)
    xdc = src / f"{top}.xdc"
    return RtlSources(verilog, below("memfiles/*.mem"), str(xdc.relative_to(project_dir)) if xdc.is_file() else None)


SYNTH_TCL = """\
# l1ml: Vivado logic synthesis of {model}'s RTL alone (vivado-rtl job {job_id}), out of context; no HLS step
set project [file join [file normalize [file dirname [info script]]] project]
set top {{{top}}}
set part {{{part}}}
proc in_project {{names}} {{
  global project
  set paths {{}}
  foreach name $names {{ lappend paths [file join $project $name] }}
  return $paths
}}
read_verilog [in_project {{
{verilog}
}}]
{memfiles}{xdc}synth_design -top $top -part $part -mode out_of_context
opt_design
report_utilization -file [file join $project {utilization}]
report_timing_summary -file [file join $project {timing}]
"""

# $readmemh names its file bare: read_mem makes the files known to synthesis, and Vivado also looks in the working folder
READ_MEM = """\
read_mem [in_project {{
{memfiles}
}}]
cd [file join $project {folder}]
"""

READ_XDC = "read_xdc -mode out_of_context [in_project {{{xdc}}}]\n"


def synth_tcl(job_id: str, spec: JobSpec, summary: RtlSummary, found: RtlSources) -> str:
    """The Tcl a vivado-rtl job sources (Tcl 8.5, as Vivado has it: no lmap)."""

    def lines(paths: list[str]) -> str:
        return "\n".join(f"  {{{p}}}" for p in paths)

    memfiles = READ_MEM.format(memfiles=lines(found.memfiles), folder=VERILOG / "memfiles") if found.memfiles else ""
    return SYNTH_TCL.format(model=spec.model, job_id=job_id, top=summary.top, part=spec.part, verilog=lines(found.verilog),
                            memfiles=memfiles, xdc=READ_XDC.format(xdc=found.xdc) if found.xdc else "",
                            utilization=UTILIZATION, timing=TIMING)


RUN_BODY = """\
if ! have vivado; then
  echo "{missing}: Vivado (vivado) is not on the PATH of $(hostname)" >&2
  exit 127
fi
version=$("${{wrap[@]}}" vivado -version 2>/dev/null | head -1)
echo "$version" > tool_version.txt
echo "l1ml: running vivado -mode batch -source synth.tcl ($version) on $(hostname)"
"${{wrap[@]}}" vivado -mode batch -nojournal -log vivado.log -source synth.tcl
"""


def write_job(folder: Path, job_id: str, spec: JobSpec, project: FirmwareProject, prelude: str) -> None:
    """The job folder's project copy, records, synth.tcl and run.sh (`prelude`: the part of every Xilinx job's run.sh
    that sources the settings script or enters the container)."""
    shutil.copytree(project.project_dir, folder / "project", ignore=shutil.ignore_patterns(*BUILD_OUTPUTS, "output_*"))
    for name in (SUMMARY, SPEC):
        shutil.copyfile(project.folder / name, folder / name)
    summary = summary_of(project)
    found = sources(folder / "project", summary.top)
    (folder / "synth.tcl").write_text(synth_tcl(job_id, spec, summary, found))
    header = (f"#!/usr/bin/env bash\n# l1ml job {job_id}: Vivado logic synthesis of {spec.model}'s RTL for {spec.part} at "
              f"{spec.clock_ns} ns (no HLS step).\n")
    (folder / "run.sh").write_text(header + prelude + RUN_BODY.format(missing=TOOL_MISSING[1]))
