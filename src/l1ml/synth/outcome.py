"""How a synthesis job ended, from its exit status, its log and the reports it left: a state and a message a user
can act on. A zero exit without the expected report is a failure, never a success; a failure always says why (the
signal or exit status, and the log's errors or last lines)."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from l1ml.config.types import parse_duration  # noqa: F401 - where the synth commands have always found it

# Vivado/Vitis run their binaries through rdiArgs.sh or loader; the kernel's OOM killer shows up as
# `...: line 286:  6531 Killed  "$RDI_PROG" "$@"` (PIDs and line numbers vary)
OOM_PATTERNS = (re.compile(r'Killed\s+"\$RDI_PROG"'), re.compile(r"Out of memory: Kill(ed)? process"),
                re.compile(r"std::bad_alloc"), re.compile(r"Exceeded (job|step) memory limit"),  # the last: Slurm's
                re.compile(r"oom[-_]kill event", re.I))
TOOL_MISSING = ("l1ml: no HLS tool", "l1ml: no FPGA tool")  # what run.sh prints when the host lacks the job's tool
TRANSIENT_SLURM = ("NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "REQUEUED")
FINAL = ("done", "failed", "out_of_memory", "timeout", "tool_missing", "cancelled", "lost")


@dataclass
class Outcome:
    state: str
    message: str
    transient: bool = False


def classify(*, exit_code: int | None, log: str, has_report: bool, mem_gb: float, time_limit: str,
             killed_for: str | None = None, slurm_state: str | None = None, expects_report: bool = True) -> Outcome:
    """`killed_for`: 'memory' or 'time' when l1ml's local watchdog killed the job; `slurm_state`: sacct's State."""
    state = (slurm_state or "").split()[0] if slurm_state else ""
    if state in TRANSIENT_SLURM:
        return Outcome("failed", f"the batch system ended the job ({state}); it is retried", transient=True)
    if state == "CANCELLED" or killed_for == "cancel":
        return Outcome("cancelled", "cancelled")
    if killed_for == "memory" or state == "OUT_OF_MEMORY" or exit_code == 137 and "Killed" in log or \
            any(p.search(log) for p in OOM_PATTERNS):
        return Outcome("out_of_memory", f"out of memory at {mem_gb:g} GB: raise --mem or the ReuseFactor")
    if killed_for == "time" or state == "TIMEOUT":
        return Outcome("timeout", f"time limit of {time_limit} reached: raise --time")
    missing = next((ln for ln in log.splitlines() if any(mark in ln for mark in TOOL_MISSING)), None)
    if missing:
        return Outcome("tool_missing", missing.strip())
    if exit_code != 0:
        return Outcome("failed", _failure(exit_code, log))
    if expects_report and not has_report:
        return Outcome("failed", "the tool exited 0 but wrote no report: nothing was synthesised (see the log)")
    return Outcome("done", "finished")


def _failure(exit_code: int | None, log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    tail = [ln for ln in lines if re.match(r"(ERROR|Error|error)\b", ln)][:3] or lines[-3:]
    how = _how_it_ended(exit_code)
    return f"{how}: {' | '.join(tail)}" if tail else f"{how}, with an empty log"


def _how_it_ended(exit_code: int | None) -> str:
    """'killed by SIGKILL (exit status 137)', as a shell reports a process killed by a signal, or 'exit status 2'."""
    if exit_code is None:
        return "no exit status (the batch system reported none)"
    if 128 < exit_code <= 128 + 64:
        try:
            name = signal.Signals(exit_code - 128).name
        except ValueError:
            name = f"signal {exit_code - 128}"
        return f"killed by {name} (exit status {exit_code})"
    return f"exit status {exit_code}"


def parse_memory(text: str) -> float:
    """'48G', '512M', '1.5T', '48' (GB) -> GB."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)i?B?\s*", str(text), re.I)
    if not m:
        raise ValueError(f"not a memory size: {text!r} (examples: 48G, 512M)")
    scale = {"": 1, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}[m.group(2).upper()]
    return float(m.group(1)) * scale
