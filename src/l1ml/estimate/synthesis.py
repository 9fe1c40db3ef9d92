"""Logic synthesis with open-source tools: Verilog through Yosys' `synth_xilinx`, VHDL (conifer's BDTs) through GHDL's
synthesis to a Verilog netlist and then Yosys; and conifer's own resource estimator.

What the figures are: the cells Yosys maps a design to (LUTs, flip-flops, carry chains, DSPs, block RAMs) and the
longest chain of cells between clocked elements. What they are NOT: Vivado. There is no placement, no routing and no
timing closure; Yosys' LUT mapping (ABC) packs logic differently from Vivado's, it maps carries to CARRY4 also on
UltraScale+ (where Vivado uses CARRY8), and Vivado's retiming, LUT combining and DSP/SRL inference differ. Read them
as an estimate to compare designs with one another, not as a utilisation report.

`workdir` keeps what a person needs to re-run a synthesis by hand: the Yosys script `synth.ys`, its log, the
statistics (`stat.txt`, `stat.json`) and the longest path (`ltp.txt`); for VHDL also GHDL's library, log and netlist.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from l1ml.documents import ConvertInfo, Ensemble, read
from l1ml.errors import L1mlError
from l1ml.firmware.conifer_project import quiet_conifer
from l1ml.firmware.csim import cache_root

TIMEOUT_S = 900.0
SCRIPT_VERSION = 1  # of _yosys_script: a change here makes the cached results of older scripts unused
CACHED = ("stat.txt", "stat.json", "ltp.txt", "netlist.json")  # a synthesis' results, kept in $L1ML_CACHE/yosys/<key>/

# hw target families (Vivado's names, lower case) by the `synth_xilinx -family` that synthesises for them
_FAMILIES = {
    "xcup": ("virtexuplus", "virtexuplushbm", "virtexuplus58g", "kintexuplus", "zynquplus", "zynquplusrfsoc",
             "artixuplus"),
    "xcu": ("virtexu", "kintexu"),
    "xc7": ("virtex7", "kintex7", "artix7", "spartan7", "zynq"),
}

# LUTs taken by each distributed-RAM primitive (Vivado counts them as "LUT as Memory" among the CLB LUTs)
_LUTRAM_LUTS = {"RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8, "RAM32X1D": 2,
                "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8}

# cell types that hold state: the longest path is counted between them (and the design's ports)
_CLOCKED = ("FD*", "SRL*", "RAMB*", "FIFO*", "URAM*")

# conifer's VHDL in the order its ghdl_compile.sh analyses it (the Arrays<i> packages go between AddReduce and BDT)
CONIFER_VHDL_TOP = "BDTTop"
_CONIFER_BEFORE_ARRAYS = ("Constants", "Split", "Types", "Tree", "AddReduce")
_CONIFER_AFTER_ARRAYS = ("BDT", "BDTTop")


@dataclass(frozen=True)
class SynthFigures:
    """What Yosys mapped a design to. `logic_depth`: cells on the longest path between clocked cells (None if Yosys'
    `ltp` reported none); `bram_18k`: RAMB18 count plus two per RAMB36; `cells`: every cell type with its count."""

    lut: int
    ff: int
    carry: int
    dsp: int
    bram_18k: int
    logic_depth: int | None
    cells: dict[str, int]
    tool: str
    seconds: float
    log: Path


@dataclass(frozen=True)
class ConiferFigures:
    """conifer's estimate of a BDT: a formula (VHDL) or a fitted model (HLS) of Vivado results, not a synthesis."""

    lut: int
    ff: int
    latency_cycles: int
    backend: str
    tool: str


# families ---------------------------------------------------------------------------------------------------


def yosys_family(family: str) -> str:
    """The `synth_xilinx -family` value (xcup, xcu, xc7) for an hw target family such as "virtexuplus"."""
    name = family.strip().lower()
    if name in _FAMILIES:
        return name
    for yosys_name, families in _FAMILIES.items():
        if name in families:
            return yosys_name
    known = ", ".join(f for families in _FAMILIES.values() for f in families)
    raise L1mlError(f"no Yosys synth_xilinx family for this FPGA family; known families: {known}", key="family",
                    value=family)


# Verilog through Yosys --------------------------------------------------------------------------------------


def synthesize_verilog(files: list[Path], top: str, family: str, workdir: Path, timeout_s: float = TIMEOUT_S,
                       cwd: Path | None = None) -> SynthFigures:
    """Synthesise Verilog/SystemVerilog (`.sv`) `files` with top module `top` for an hw target family.

    `cwd`: where Yosys runs, for `$readmemh` files named relative to it (default: `workdir`; Yosys also looks next to
    the Verilog file that reads them)."""
    xc = yosys_family(family)
    files = [Path(f).resolve() for f in files]
    for f in files:
        if not f.is_file():
            raise L1mlError("no such Verilog file", path=f)
    _require("yosys", "Yosys")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("stat.json", "stat.txt", "ltp.txt", "netlist.json"):
        (workdir / name).unlink(missing_ok=True)
    cwd = Path(cwd).resolve() if cwd is not None else workdir
    script, log = workdir / "synth.ys", workdir / "yosys.log"
    script.write_text(_yosys_script(files, top, xc, workdir, cwd))

    start = time.monotonic()
    cached = cache_root() / "yosys" / _cache_key(files, top, xc, cwd if cwd != workdir else None)
    if all((cached / name).is_file() for name in CACHED):
        for name in CACHED:
            shutil.copyfile(cached / name, workdir / name)
        log.write_text(f"l1ml: the same sources were synthesised before: results from the cache {cached}\n")
    else:
        proc = _run(["yosys", "-q", "-l", str(log), "-s", str(script)], cwd=cwd, timeout_s=timeout_s,
                    what=f"Yosys synthesis of '{top}'", path=script)
        if proc.returncode != 0:
            raise _yosys_error(files, top, script, log, proc)
        _into_cache(workdir, cached)
    seconds = time.monotonic() - start

    stat = _read_stat(workdir / "stat.json", log)
    cells = stat["cells"]
    return SynthFigures(lut=_luts(cells), ff=_count(cells, "FD"), carry=_count(cells, "CARRY"), dsp=_count(cells, "DSP48"),
                        bram_18k=_count(cells, "RAMB18", "FIFO18") + 2 * _count(cells, "RAMB36", "FIFO36"),
                        logic_depth=_logic_depth((workdir / "ltp.txt").read_text()), cells=cells,
                        tool=f"yosys {stat['version']} synth_xilinx -family {xc}", seconds=seconds, log=log)


def _cache_key(files: list[Path], top: str, xc: str, data_dir: Path | None) -> str:
    """What a synthesis' results depend on: the sources, the data files they read, the top, the family, Yosys' version
    and l1ml's script."""
    h = hashlib.sha256(f"{SCRIPT_VERSION}\0{_yosys_version()}\0{top}\0{xc}\0{data_dir is not None}\0".encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    for f in sorted(p for p in data_dir.rglob("*") if p.is_file()) if data_dir is not None else []:
        h.update(str(f.relative_to(data_dir)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:32]


def _into_cache(workdir: Path, cached: Path) -> None:
    """Keep a synthesis' results for the same sources (a cache that cannot be written only costs the next run time)."""
    tmp = cached.with_name(f".{cached.name}.tmp-{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for name in CACHED:
            shutil.copyfile(workdir / name, tmp / name)
        os.replace(tmp, cached)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def _yosys_version() -> str:
    return _run(["yosys", "-V"], cwd=Path.cwd(), timeout_s=30, what="yosys -V", path=Path("yosys")).stdout.strip()


def _yosys_script(files: list[Path], top: str, xc: str, workdir: Path, cwd: Path) -> str:
    reads = [f"read_verilog {'-sv ' if f.suffix == '.sv' else ''}{_quoted(f)}" for f in files]
    clocked = " ".join(f"t:{t}" for t in _CLOCKED) + " %u" * (len(_CLOCKED) - 1) + " %n"
    out = _output_dir(workdir, cwd)
    return "\n".join([
        f"# l1ml estimate: Yosys logic synthesis of '{top}' (an estimate: no placement, no routing)",
        f"# re-run: cd {_quoted(cwd)} && yosys -l {_quoted(workdir / 'yosys.log')} -s {_quoted(workdir / 'synth.ys')}",
        *reads,
        # out of context, as Vivado synthesises a kernel: no I/O or clock buffers on the ports
        f"synth_xilinx -top {top} -family {xc} -flatten -noiopad -noclkbuf",
        f"tee -q -o {out}stat.txt stat",
        f"tee -q -o {out}stat.json stat -json",
        # -noff only leaves out Yosys' internal flip-flops; the Xilinx ones are taken out by the selection
        f"tee -q -o {out}ltp.txt ltp -noff {clocked}",
        f"write_json {out}netlist.json",
    ]) + "\n"


@dataclass(frozen=True)
class PortUse:
    """What the mapped netlist of a module does with its ports, by port name and bit index: the input bits its cells
    read, the output bits that are constants, and the output bits wired straight to an input bit (out bit -> (input
    port, bit)). What a register in front of or behind the module needs to hold follows from it."""

    widths: dict[str, int]
    read_inputs: dict[str, set[int]]
    constant_outputs: dict[str, set[int]]
    passthrough: dict[str, dict[int, tuple[str, int]]]


def port_use(workdir: Path, top: str) -> PortUse:
    """The PortUse of the module `top` that `synthesize_verilog` mapped in `workdir` (from its netlist.json)."""
    path = Path(workdir) / "netlist.json"
    try:
        module = json.loads(path.read_text())["modules"][top]
    except (OSError, ValueError, KeyError) as exc:
        raise L1mlError(f"no netlist of '{top}' from Yosys ({exc})", path=path) from None
    read: set[int] = set()
    for cell in module["cells"].values():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) != "output":
                read.update(b for b in bits if isinstance(b, int))
    ports = module["ports"]
    inputs = {name: p["bits"] for name, p in ports.items() if p["direction"] == "input"}
    outputs = {name: p["bits"] for name, p in ports.items() if p["direction"] == "output"}
    input_bit = {b: (name, i) for name, bits in inputs.items() for i, b in enumerate(bits)}
    return PortUse(
        widths={name: len(p["bits"]) for name, p in ports.items()},
        read_inputs={name: {i for i, b in enumerate(bits) if b in read} for name, bits in inputs.items()},
        constant_outputs={name: {i for i, b in enumerate(bits) if not isinstance(b, int)} for name, bits in outputs.items()},
        passthrough={name: {j: input_bit[b] for j, b in enumerate(bits) if b in input_bit} for name, bits in outputs.items()})


def _output_dir(workdir: Path, cwd: Path) -> str:
    """`workdir` for Yosys' `tee -o`, relative to where Yosys runs: tee takes its file name as written, without quotes."""
    rel = os.path.relpath(workdir, cwd)
    if any(c.isspace() or c == '"' for c in rel):
        raise L1mlError("Yosys cannot write its reports to a folder whose path (relative to where it runs) has a space",
                        path=workdir)
    return "" if rel == "." else rel + "/"


def _quoted(path: Path) -> str:
    if '"' in str(path) or "\n" in str(path):
        raise L1mlError("Yosys cannot take a path with a double quote or a newline in a script", path=path)
    return f'"{path}"'


def _read_stat(path: Path, log: Path) -> dict:
    """Cell counts and the Yosys version from `stat -json` (read from the first brace: tee may add text before)."""
    try:
        text = path.read_text()
        data = json.loads(text[text.index("{"):])
        cells = data["design"]["num_cells_by_type"] if "design" in data else _sum_modules(data["modules"])
    except (OSError, ValueError, KeyError) as exc:
        raise L1mlError(f"Yosys wrote no readable statistics ({exc}); see its log {log}", path=path) from None
    match = re.search(r"Yosys (\S+)", data.get("creator", ""))
    return {"cells": {str(k): int(v) for k, v in sorted(cells.items())}, "version": match.group(1) if match else "?"}


def _sum_modules(modules: dict) -> dict[str, int]:
    total: dict[str, int] = {}
    for module in modules.values():
        for cell, n in module.get("num_cells_by_type", {}).items():
            total[cell] = total.get(cell, 0) + n
    return total


def _count(cells: dict[str, int], *prefixes: str) -> int:
    return sum(n for cell, n in cells.items() if cell.startswith(prefixes))


def _luts(cells: dict[str, int]) -> int:
    """LUTs as Vivado counts CLB LUTs: logic LUTs (LUT1..LUT6, LUT6_2), inverters (a LUT1 each unless Vivado absorbs
    them), shift registers (SRL16E/SRLC32E: one LUT) and distributed RAM (its LUTs)."""
    return (_count(cells, "LUT", "INV", "SRL")
            + sum(n * _LUTRAM_LUTS[cell] for cell, n in cells.items() if cell in _LUTRAM_LUTS))


def _logic_depth(ltp_text: str) -> int | None:
    """The longest of the paths `ltp` found (one per module; flattened designs have one)."""
    lengths = [int(m) for m in re.findall(r"\(length=(\d+)\)", ltp_text)]
    return max(lengths) if lengths else None


def _yosys_error(files: list[Path], top: str, script: Path, log: Path, proc: _Result) -> L1mlError:
    text = log.read_text(errors="replace") if log.is_file() else ""
    lines = [ln.strip() for ln in (text + "\n" + proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    errors = list(dict.fromkeys(ln for ln in lines if "ERROR:" in ln)) or lines[-5:]
    # a parse error names its file first ("/path/x.v:3: ERROR: syntax error ..."): point at that file
    named = next((f for f in files for ln in errors if ln.startswith(str(f))), None)
    where = f"top '{top}' from {', '.join(f.name for f in files)}"
    return L1mlError(f"Yosys failed on {where} (exit {proc.returncode}; log {log}):\n  " + "\n  ".join(errors[-5:]),
                     path=named or script)


# VHDL through GHDL and Yosys --------------------------------------------------------------------------------


def synthesize_vhdl(files: list[Path], top: str, family: str, workdir: Path, std: str = "08", *,
                    generics: dict[str, object] | None = None, timeout_s: float = TIMEOUT_S) -> SynthFigures:
    """Synthesise VHDL `files` (in analysis order: packages before their users) with top entity `top`: GHDL analyses
    them into a library in `workdir/ghdl`, synthesises the top (`ghdl --synth --out=verilog`, with `generics` as
    -gNAME=VALUE) to the Verilog netlist `workdir/<top>_ghdl.v`, and Yosys maps that netlist."""
    yosys_family(family)  # refuse an unknown family before anything runs
    files = [Path(f).resolve() for f in files]
    for f in files:
        if not f.is_file():
            raise L1mlError("no such VHDL file", path=f)
    _require("ghdl", "GHDL")
    workdir = Path(workdir).resolve()
    library = workdir / "ghdl"
    shutil.rmtree(library, ignore_errors=True)  # a stale library could hold units of other files
    library.mkdir(parents=True)
    options = [f"--std={std}", f"--workdir={library}", "--work=work"]
    start = time.monotonic()
    deadline = start + timeout_s
    with (workdir / "ghdl.log").open("w") as log:
        for f in files:
            _ghdl(["ghdl", "-a", *options, str(f)], library, deadline, log, f"GHDL analysis of {f.name}", f)
        gen = [f"-g{name}={value}" for name, value in (generics or {}).items()]
        netlist = _ghdl(["ghdl", "--synth", *options, "--out=verilog", *gen, top], library, deadline, log,
                        f"GHDL synthesis of '{top}'", workdir)
    verilog = workdir / f"{top}_ghdl.v"
    verilog.write_text(netlist)
    ghdl_seconds = time.monotonic() - start
    figures = synthesize_verilog([verilog], _module_named(netlist, top, verilog), family, workdir,
                                 timeout_s=max(1.0, deadline - time.monotonic()))
    return replace(figures, tool=f"{_ghdl_version()} --synth --out=verilog + {figures.tool}",
                   seconds=figures.seconds + ghdl_seconds)


def conifer_vhdl_sources(project_dir: Path) -> list[Path]:
    """The synthesisable VHDL of a conifer VHDL project (`conifer_prj/`) in analysis order; its top entity is
    `CONIFER_VHDL_TOP`. The testbench and simulation files are left out."""
    firmware = Path(project_dir) / "firmware"
    arrays = sorted(firmware.glob("Arrays*.vhd"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    files = [firmware / f"{n}.vhd" for n in _CONIFER_BEFORE_ARRAYS] + arrays + [firmware / f"{n}.vhd" for n in _CONIFER_AFTER_ARRAYS]
    missing = [f.name for f in files if not f.is_file()]
    if missing or not arrays:
        raise L1mlError(f"not a conifer VHDL project: missing {', '.join(missing) or 'Arrays0.vhd'}", path=firmware)
    return files


def _ghdl(cmd: list[str], cwd: Path, deadline: float, log: TextIO, what: str, path: Path) -> str:
    """Run a GHDL step, logging its messages; its standard output (the netlist of --synth)."""
    proc = _run(cmd, cwd=cwd, timeout_s=max(1.0, deadline - time.monotonic()), what=what, path=path)
    log.write(f"$ {' '.join(cmd)}\n{proc.stderr}")
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise L1mlError(f"{what} failed (exit {proc.returncode}):\n  " + "\n  ".join(lines[:6]), path=path)
    return proc.stdout


def _module_named(netlist: str, top: str, path: Path) -> str:
    """The netlist's module for entity `top` (GHDL spells it as the entity declares it, VHDL ignores case)."""
    for name in re.findall(r"^module\s+(\S+)", netlist, flags=re.MULTILINE):
        if name.lower() == top.lower():
            return name
    raise L1mlError(f"GHDL's netlist has no module for the top entity '{top}'", path=path)


def _ghdl_version() -> str:
    proc = _run(["ghdl", "--version"], cwd=Path.cwd(), timeout_s=30, what="ghdl --version", path=Path("ghdl"))
    match = re.match(r"GHDL (\S+)", proc.stdout)
    return f"ghdl {match.group(1)}" if match else "ghdl"


# conifer's estimator ----------------------------------------------------------------------------------------


def conifer_estimate(fw_dir: Path, backend: str | None = None) -> ConiferFigures:
    """conifer's own estimate (`conifer.utils.performance.performance_estimates`) of the BDT of an l1ml conifer
    project folder (`RUN_DIR/firmware/<backend>/`: its convert.json and ensemble.json), for its backend or `backend`."""
    import conifer  # heavy: imported only where needed
    from conifer.model import ModelBase
    from conifer.utils.performance import performance_estimates

    fw_dir = Path(fw_dir)
    info = read(fw_dir / "convert.json", ConvertInfo)
    if info.tool != "conifer":
        raise L1mlError(f"not a conifer project (made by {info.tool})", path=fw_dir)
    backend = backend or info.backend
    ensemble = read(fw_dir / "ensemble.json", Ensemble).model_dump(exclude={"format"})
    with quiet_conifer():
        # the backend-free model: the estimators read only the trees' shapes, and nothing is written or compiled
        estimates = performance_estimates(ModelBase(ensemble), backend=backend)
    if not estimates:
        raise L1mlError(f"conifer {conifer.__version__} has no estimator for this backend", key="backend", value=backend)
    return ConiferFigures(lut=int(estimates["lut"]), ff=int(estimates["ff"]), latency_cycles=int(estimates["latency"]),
                          backend=backend, tool=f"conifer {conifer.__version__} estimator")


# processes --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Result:
    returncode: int
    stdout: str
    stderr: str


def _require(executable: str, name: str) -> None:
    if shutil.which(executable) is None:
        raise L1mlError(f"{name} is not installed (Debian package {executable})", key=executable)


def _run(cmd: list[str], *, cwd: Path, timeout_s: float, what: str, path: Path) -> _Result:
    """Run a tool in its own process group, so that a timeout also ends what it started (Yosys runs ABC)."""
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace", start_new_session=True)
    except OSError as exc:
        raise L1mlError(f"cannot run {cmd[0]}: {exc.strerror or exc}", key=cmd[0]) from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise L1mlError(f"{what} did not finish in {timeout_s:g} s", path=path) from None
    return _Result(proc.returncode, out, err)
