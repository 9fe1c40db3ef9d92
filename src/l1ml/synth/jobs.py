"""Synthesis job folders: self-contained, runnable by hand (`bash run.sh`) or by any batch system.

    <job>/job.json     what to do: kind, model, tool, part, clock, steps, memory, time, cores, the source
    <job>/run.sh       the job (bash only for the Xilinx kinds; it finds the tool on the host that runs it)
    <job>/build.tcl    hls: sources the project's own build script with the steps set
    <job>/synth.tcl    vivado-rtl: Vivado's logic synthesis of the RTL (`l1ml.synth.vivado_rtl`)
    <job>/project/     a copy of the firmware project
    <job>/job.log      everything the job printed; result.json once it ended (written by the runner)

Kinds: `trial` (one trial of `l1ml search`: train, convert and estimate a trial folder's config; `l1ml.search`),
`hls` (C-synthesis and the later steps with Vitis HLS or Vivado HLS), `verify` (`l1ml verify` of the
run: the C-simulation checks, no FPGA tools), `ghdl` (conifer's VHDL testbench under GHDL on test
vectors, compared with the expected scores) and `vivado-rtl` (Vivado's logic synthesis of the network's RTL,
`l1ml convert RUN --rtl`, with no HLS step).

Which project of TARGET/firmware/ a job runs on (`l1ml.firmware.project`): the first one synthesised with HLS
(hls), C-simulated (verify), simulated with GHDL (ghdl) or with an rtl.json (vivado-rtl), unless --firmware names one.

Memory rule (when neither --mem nor the config gives one): HLS of an unrolled design grows with its
multipliers or tree nodes. Two small tutorial-size networks peaked at 0.96 GB (Vivado HLS 2019.2) and 2.3 GB
(Vitis HLS 2022.2) in the logs of ../shared/fixtures; large models need 32-50 GB (published cases). l1ml asks
2 GB + 0.5 GB per 1 000 multipliers (weights / ReuseFactor), or + 0.25 GB per 1 000 tree nodes (each project's
`synthesis_memory_gb`), and never less than the floor (default 8 GB).

vivado-rtl jobs (logic synthesis of RTL, no HLS) ask 3 GB + 1 GB per 100 000 LUTs of da4ml's own estimate (rtl.json
`da4ml_lut_estimate`), rounded up to 0.5 GB, with no floor: the 3 GB are for Vivado itself and the device it loads. No
Vivado synthesis of da4ml's RTL has been measured here yet; a job that runs out says so, and --mem raises the request.
verify and ghdl jobs ask 2 GB.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import get_args

import numpy as np
import yaml

from l1ml.documents import JobExtra, JobKind, JobSpec, Step, SynthJob, SynthResult, read
from l1ml.errors import L1mlError
from l1ml.firmware.ghdl import run_command
from l1ml.firmware.project import CSIM, GHDL, FirmwareProject, projects_in, select_project
from l1ml.runfolder import require_trained
from l1ml.runs import tree_hash
from l1ml.synth import vivado_rtl
from l1ml.synth.outcome import TOOL_MISSING
from l1ml.verify.bitexact import adversarial_inputs
from l1ml.verify.subject import verified_project

KINDS = get_args(JobKind)
STEPS = get_args(Step)
DEFAULT_FLOOR_GB = 8.0
SMALL_JOB_GB = 2.0  # verify and ghdl jobs
AGAIN = "submit the job again with this l1ml (`l1ml synth submit --force`)"  # for a folder an older l1ml wrote


def read_job(job_dir: str | Path) -> SynthJob:
    """A job folder's job.json; one named error when it is missing, damaged or an older l1ml's."""
    return read(Path(job_dir) / "job.json", SynthJob, again=AGAIN)


def read_result(job_dir: str | Path) -> SynthResult:
    """A job folder's result.json (written once the job ended); one named error when it is missing, damaged or an older
    l1ml's."""
    return read(Path(job_dir) / "result.json", SynthResult, again=AGAIN)


def estimate_memory_gb(project: FirmwareProject, floor_gb: float = DEFAULT_FLOOR_GB) -> float:
    """The documented rule of the module docstring (each project estimates its own synthesis)."""
    return round(max(floor_gb, project.synthesis_memory_gb()), 1)


def _configured_memory_gb(target: Path) -> float | None:
    """`firmware.synth_mem_gb` of a training run's config, if it sets one."""

    path = target / "config.yaml"
    config = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    value = (config.get("firmware") or {}).get("synth_mem_gb")
    return float(value) if value else None


#: which projects a job of each kind runs on (the first one, unless --firmware names one)
KIND_PROJECTS = {
    "hls": ("synthesised with HLS", lambda p: p.build_script is not None),
    "verify": ("C-simulated", lambda p: p.simulated_by == CSIM),
    "ghdl": ("simulated with GHDL", lambda p: p.simulated_by == GHDL),
    vivado_rtl.KIND: (vivado_rtl.ROLE, vivado_rtl.has_rtl),
}


def spec_for(target: Path, *, kind: str, backend: str | None, steps: list[str], mem_gb: float | None, time_s: int,
             cpus: int, floor_gb: float, settings: str | None, container: str | None) -> JobSpec:
    """What to run for a converted run or BYO folder."""
    target = Path(target).resolve()
    if (target / "run.json").is_file():

        require_trained(target, "synth submit", check_events=kind == "verify")
    if kind not in KIND_PROJECTS:
        why = "trial jobs are submitted by `l1ml search`" if kind in KINDS else "unknown job kind"
        raise L1mlError(f"{why}; choose one of {', '.join(KIND_PROJECTS)}", key="--kind", value=kind)
    bad = [s for s in steps if s not in STEPS]
    if bad:
        raise L1mlError(f"unknown step; choose from {', '.join(STEPS)}", key="--steps", value=bad[0])
    role, fits = KIND_PROJECTS[kind]
    rtl = kind == vivado_rtl.KIND
    if rtl:
        vivado_rtl.require_rtl(target, backend)
    project = select_project(target, backend, fits, role, vivado_rtl.CONVERT_HINT if rtl else "")
    if kind == "hls":
        tool, script = project.hls_tool, project.build_script
        mem = mem_gb if mem_gb is not None else _configured_memory_gb(target) or estimate_memory_gb(project, floor_gb)
    elif rtl:
        tool, script, steps = "vivado", "", vivado_rtl.steps_of(steps)
        mem = mem_gb if mem_gb is not None else vivado_rtl.memory_gb(vivado_rtl.summary_of(project))
    else:
        tool, script = ("l1ml" if kind == "verify" else "ghdl"), ""
        mem = mem_gb if mem_gb is not None else SMALL_JOB_GB
    # a training run is named by its config name and run id (runs/<name>/<id>), a --out folder by its name
    model = f"{target.parent.name}/{target.name}" if (target / "run.json").is_file() else target.name
    hashed = project.folder if kind == "verify" else project.project_dir
    return JobSpec(kind=kind, model=model, target=str(target), project=str(project.project_dir), tool=tool,
                   part=project.info.part, clock_ns=project.info.clock_period_ns, steps=list(steps),
                   mem_gb=float(mem), time_s=time_s, cpus=cpus, project_hash=tree_hash(hashed), build_script=script,
                   settings=settings, container=container, extra=JobExtra(hw_target=project.hw_target))


def trial_spec(trial_dir: Path, *, model: str, part: str, clock_ns: float, mem_gb: float, time_s: int, attempt: int,
               signal_before_s: int) -> JobSpec:
    """A trial job of `l1ml search`: it runs `l1ml search trial TRIAL_DIR`, with --resume from the second attempt on
    (the attempt before it was stopped at its wall time). Each attempt is a job of its own."""
    trial_dir = Path(trial_dir).resolve()
    identity = hashlib.sha256(f"{trial_dir}|{attempt}".encode()).hexdigest()
    return JobSpec(kind="trial", model=model, target=str(trial_dir), project="", tool="l1ml", part=part, clock_ns=clock_ns,
                   steps=[], mem_gb=float(mem_gb), time_s=int(time_s), cpus=1, project_hash=identity,
                   extra=JobExtra(resume=attempt > 1, signal_before_s=signal_before_s))


def _project_of(spec: JobSpec) -> FirmwareProject:
    """The converted project a job spec names (by its project folder)."""
    found = [p for p in projects_in(spec.target) if str(p.project_dir) == spec.project]
    if not found:
        raise L1mlError("the job's firmware project is no longer there", path=spec.project)
    return found[0]


# the job folder -----------------------------------------------------------------------------------------------

# the tool-finding part of every Xilinx job's run.sh: a settings script to source, or an apptainer image to run in
XILINX_PRELUDE = """\
# Runs anywhere by hand: bash run.sh   (set L1ML_HLS_SETTINGS or L1ML_HLS_CONTAINER to override job.json)
set -uo pipefail
cd "$(dirname "$0")"
settings="${{L1ML_HLS_SETTINGS:-{settings}}}"
container="${{L1ML_HLS_CONTAINER:-{container}}}"
if [ -n "$settings" ]; then
  [ -f "$settings" ] || {{ echo "{missing}: the settings script $settings does not exist on $(hostname)" >&2; exit 127; }}
  source "$settings" >/dev/null
fi
wrap=()
if [ -n "$container" ]; then
  command -v apptainer >/dev/null || {{ echo "{missing}: apptainer is not installed on $(hostname)" >&2; exit 127; }}
  wrap=(apptainer exec --bind "$PWD" "$container")
fi
have() {{ if [ -n "$container" ]; then "${{wrap[@]}}" bash -c "command -v $1" >/dev/null 2>&1; else command -v "$1" >/dev/null; fi; }}
"""

RUN_HLS = """\
#!/usr/bin/env bash
# l1ml synthesis job {job_id}: {steps} of {model} with {tool_name} for {part} at {clock} ns.
{prelude}cmd=()
if [ "{tool}" = vivado ] && have vivado_hls; then
  cmd=(vivado_hls -f build.tcl); version=$("${{wrap[@]}}" vivado_hls -version 2>/dev/null | head -1)
elif [ "{tool}" = vitis ] && have vitis_hls; then
  cmd=(vitis_hls -f build.tcl); version=$("${{wrap[@]}}" vitis_hls -version 2>/dev/null | head -1)
elif [ "{tool}" = vitis ] && have vitis-run; then  # Vitis 2024.2 and newer have no vitis_hls
  cmd=(vitis-run --mode hls --tcl build.tcl); version=$("${{wrap[@]}}" vitis-run --version 2>/dev/null | head -1)
else
  echo "l1ml: no HLS tool: {tool_name} (vitis_hls, vitis-run or vivado_hls) is not on the PATH of $(hostname)" >&2
  exit 127
fi
echo "$version" > tool_version.txt
echo "l1ml: running ${{cmd[*]}} ($version) on $(hostname)"
"${{wrap[@]}}" "${{cmd[@]}}"
"""

RUN_VERIFY = """\
#!/usr/bin/env bash
# l1ml job {job_id}: `l1ml verify` of {model} (C-simulation checks; no FPGA tools).
set -uo pipefail
job="$(cd "$(dirname "$0")" && pwd)"
{python} -m l1ml --version > "$job/tool_version.txt" 2>&1
cd "$job"  # the run is named by its absolute path and finds its own events (inputs.json): no working folder needed
exec {python} -m l1ml verify {target}{options}
"""

RUN_TRIAL = """\
#!/usr/bin/env bash
# l1ml job {job_id}: trial {model} of a search (train -> convert -> estimate; no FPGA tools).
set -uo pipefail
job="$(cd "$(dirname "$0")" && pwd)"
# as many threads as the job has cores (TensorFlow and OpenMP otherwise start one per core of the node)
export OMP_NUM_THREADS={cpus} TF_NUM_INTRAOP_THREADS={cpus} TF_NUM_INTEROP_THREADS={cpus}
{python} -m l1ml --version > "$job/tool_version.txt" 2>&1
cd "$job"
exec {python} -m l1ml search trial {target}{options}
"""

RUN_GHDL = """\
#!/usr/bin/env bash
# l1ml job {job_id}: conifer's VHDL testbench of {model} under GHDL on test vectors, compared with the expected scores.
set -uo pipefail
cd "$(dirname "$0")/project"
command -v ghdl >/dev/null || {{ echo "l1ml: no HLS tool: ghdl is not installed on $(hostname)" >&2; exit 127; }}
ghdl --version | head -1 > ../tool_version.txt
cp ../vectors/input.txt SimulationInput.txt
bash -e ghdl_compile.sh
{run} || exit $?
if diff -q <(tr -s ' ' < SimulationOutput.txt) <(tr -s ' ' < ../vectors/expected.txt) >/dev/null; then
  echo "l1ml: GHDL output equals the expected scores on $(wc -l < SimulationInput.txt) events"
else
  echo "ERROR: GHDL output differs from the expected scores" >&2; exit 1
fi
"""

BUILD_TCL = """\
# l1ml: {steps} ({kind} job {job_id})
cd [file join [file dirname [info script]] project]
source {script}
"""

STEP_OPTIONS = {"csynth": "synth", "cosim": "cosim", "export": "export", "vsynth": "vsynth"}


def create_job_dir(root: Path, spec: JobSpec) -> tuple[str, Path]:
    """Write the job folder under root/ (atomically: a temporary folder renamed); returns (job id, folder)."""
    job_id = f"{spec.model.replace('/', '_')[:48]}-{spec.kind}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    final = Path(root) / job_id
    tmp = final.with_name(f".{job_id}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if spec.kind in ("hls", "ghdl"):
            shutil.copytree(spec.project, tmp / "project", ignore=shutil.ignore_patterns("*_prj", "tb_data", "*.log"))
        if spec.kind == "hls":
            _write_hls(tmp, job_id, spec)
        elif spec.kind == vivado_rtl.KIND:
            vivado_rtl.write_job(tmp, job_id, spec, _project_of(spec), _prelude(spec, TOOL_MISSING[1]))
        elif spec.kind == "trial":
            (tmp / "run.sh").write_text(RUN_TRIAL.format(job_id=job_id, model=spec.model, python=shlex.quote(sys.executable), cpus=spec.cpus,
                                                         target=shlex.quote(spec.target),
                                                         options=" --resume" if spec.extra.resume else ""))
        elif spec.kind == "verify":
            options = f" --backend {shlex.quote(_project_of(spec).backend)}"
            if (Path(spec.target) / "byo.json").is_file():  # a model converted with --out: verify on random grid inputs
                options += f" --random {spec.extra.random_events}"
            (tmp / "run.sh").write_text(RUN_VERIFY.format(job_id=job_id, model=spec.model, python=shlex.quote(sys.executable),
                                                          target=shlex.quote(spec.target), options=options))
        else:
            n_events = _write_vectors(tmp, spec)

            (tmp / "run.sh").write_text(RUN_GHDL.format(job_id=job_id, model=spec.model, run=shlex.join(run_command(n_events))))
        (tmp / "run.sh").chmod(0o755)
        SynthJob(id=job_id, **dict(spec)).write(tmp / "job.json")
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return job_id, final


def _write_hls(folder: Path, job_id: str, spec: JobSpec) -> None:
    options = {"reset": 1, "csim": 0, "synth": 0, "cosim": 0, "validation": 0, "export": 0, "vsynth": 0, "fifo_opt": 0}
    for step in spec.steps:
        options[STEP_OPTIONS[step]] = 1
    (folder / "project" / "build_opt.tcl").write_text(
        "array set opt {\n" + "".join(f"    {k:<10} {v}\n" for k, v in options.items()) + "}\n")
    (folder / "build.tcl").write_text(BUILD_TCL.format(steps=",".join(spec.steps), kind=spec.kind, job_id=job_id,
                                                       script=spec.build_script))
    tool_name = {"vitis": "Vitis HLS", "vivado": "Vivado HLS"}[spec.tool]
    (folder / "run.sh").write_text(RUN_HLS.format(job_id=job_id, steps=",".join(spec.steps), model=spec.model,
                                                  tool=spec.tool, tool_name=tool_name, part=spec.part, clock=spec.clock_ns,
                                                  prelude=_prelude(spec, TOOL_MISSING[0])))


def _prelude(spec: JobSpec, missing: str) -> str:
    return XILINX_PRELUDE.format(settings=spec.settings or "", container=spec.container or "", missing=missing)


def _write_vectors(folder: Path, spec: JobSpec, n_events: int = 500) -> int:
    """Test vectors for the VHDL: grid inputs and the scores the HLS firmware gives (its bit-exact emulation)."""

    reference = verified_project(Path(spec.target), None)  # the C-simulated project the VHDL must equal
    emulator, _ = reference.emulator()
    vt = _project_of(spec).input_type
    t = emulator.input_type
    x = t.quantize(adversarial_inputs(t, reference.info.n_features, n_random=n_events))
    scores = emulator.predict(x)
    out = folder / "vectors"
    out.mkdir()
    np.savetxt(out / "input.txt", vt.to_codes(x), fmt="%d")
    (out / "expected.txt").write_text("".join("".join(f"{c:>10d} " for c in row) + "\n" for row in vt.to_codes(scores)))
    return len(x)
