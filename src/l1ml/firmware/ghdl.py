"""Simulation of conifer's VHDL with GHDL (open source, no Vivado): the testbench that conifer writes,
fed with events as integer bit patterns, run in a scratch copy of the project.

The testbench reads `SimulationInput.txt` (one event per line: each feature's two's-complement integer)
and writes `SimulationOutput.txt` (per event, each score's integer); it stops when the last valid output
has been written (an empty input would never stop, so there is always at least one event, and a stop
time bounds the run).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from l1ml.errors import L1mlError

CLOCK_NS = 5  # the testbench's clock period
TIMEOUT_S = 1800


def available() -> bool:
    return shutil.which("ghdl") is not None


def run_command(n_events: int) -> list[str]:
    """The testbench run for `n_events` events, bounded by a stop time."""
    stop_ns = (n_events + 1000) * CLOCK_NS
    # large trees elaborate constant arrays bigger than the mcode backend's default 128 kB stack limit
    return ["ghdl", "-r", "--std=08", "--work=xil_defaultlib", "testbench", f"--stop-time={stop_ns}ns", "--max-stack-alloc=0"]


def simulate(project_dir: Path, codes: np.ndarray, n_scores: int) -> np.ndarray:
    """Run the VHDL testbench of `project_dir` (conifer_prj/) on (events x features) integer codes and return the
    (events x n_scores) integer codes of the scores."""
    if not available():
        raise L1mlError("GHDL is not installed (Debian package ghdl; `make test` installs it)", key="ghdl")
    codes = np.asarray(codes, dtype=np.int64)
    if len(codes) == 0:
        return np.empty((0, n_scores), dtype=np.int64)
    with tempfile.TemporaryDirectory(prefix="l1ml-ghdl-") as tmp:
        work = Path(tmp) / "prj"
        shutil.copytree(project_dir, work, ignore=shutil.ignore_patterns("*.txt", "*.log", "*.cf", "*.o"))
        (work / "SimulationInput.txt").write_text("\n".join(" ".join(map(str, row)) for row in codes) + "\n")
        _run(["bash", "-e", "ghdl_compile.sh"], work, "analysis and elaboration")
        _run(run_command(len(codes)), work, "simulation")
        out_path = work / "SimulationOutput.txt"
        lines = out_path.read_text().split("\n") if out_path.is_file() else []
        rows = [[int(v) for v in line.split()] for line in lines if line.strip()]
    out = np.array(rows, dtype=np.int64).reshape(-1, n_scores) if rows else np.empty((0, n_scores), dtype=np.int64)
    if len(out) != len(codes):
        raise L1mlError(f"the GHDL testbench wrote {len(out)} results for {len(codes)} events", path=project_dir)
    return out


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise L1mlError(f"GHDL {what} did not finish in {TIMEOUT_S} s", path=cwd) from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()] or lines[-5:]
        raise L1mlError(f"GHDL {what} failed:\n  " + "\n  ".join(errors[:5]), path=cwd)
