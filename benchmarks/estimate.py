"""How long `l1ml estimate` takes on the demo models, and what it finds for the demo AE's RTL.

    .venv/bin/python benchmarks/estimate.py [AE_RUN_DIR] [--vae VAE_RUN_DIR] [--bdt BDT_RUN_DIR] [--no-rtl]

Defaults: the newest converted runs/ae_demo, runs/vae_demo and runs/bdt_demo (`make demo`). Each run is copied to a
temporary folder first, so the runs themselves are not changed. Prints, per model, the exact counts' time (the
in-process library call, not the CLI's start-up); for the AE, da4ml's RTL generation, the Verilator build, and
Yosys' synth_xilinx of the RTL with their times and figures; the BDT through GHDL and Yosys. The last line is
machine-readable.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from l1ml.documents import RtlSummary, read
from l1ml.estimate.run import estimate
from l1ml.firmware import rtl


def newest(name: str, backend: str) -> Path:
    found = list(Path("runs", name).glob(f"*/firmware/{backend}"))
    if not found:
        sys.exit(f"no converted runs/{name}/*/firmware/{backend}: run `make demo` first, or give the run folder")
    return max(found, key=os.path.getmtime).parents[1]


def counts_ms(run: Path, repeat: int = 20) -> float:
    estimate(run, methods=("counts",), log=lambda *_: None)  # warm up: imports
    start = time.perf_counter()
    for _ in range(repeat):
        estimate(run, methods=("counts",), log=lambda *_: None)
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ae", nargs="?", type=Path)
    parser.add_argument("--vae", type=Path)
    parser.add_argument("--bdt", type=Path)
    parser.add_argument("--no-rtl", action="store_true", help="only the exact counts")
    args = parser.parse_args()
    runs = {"ae": args.ae or newest("ae_demo", "vitis"), "vae": args.vae or newest("vae_demo", "vitis"),
            "bdt": args.bdt or newest("bdt_demo", "vhdl")}
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        copies = {}
        for name, run in runs.items():
            copies[name] = Path(tmp) / name
            shutil.copytree(run, copies[name], ignore=shutil.ignore_patterns("estimate", "rtl", "verify"))
            figures[f"{name}_counts_ms"] = counts_ms(copies[name])
            print(f"{name}: {run}: exact counts in {figures[f'{name}_counts_ms']:.1f} ms")
        if not args.no_rtl:
            ae = copies["ae"]
            start = time.perf_counter()
            rtl.convert_beside(ae / "firmware" / "vitis", source={"kind": "benchmark"})
            figures["ae_rtl_generate_s"] = time.perf_counter() - start
            os.environ["L1ML_CACHE"] = str(Path(tmp) / "cache")  # a fresh Verilator build
            x = np.zeros((1, read(ae / "firmware" / "rtl" / rtl.SUMMARY, RtlSummary).n_inputs))
            start = time.perf_counter()
            rtl.simulate_rtl(ae / "firmware" / "rtl", x)
            figures["ae_verilator_build_s"] = time.perf_counter() - start
            start = time.perf_counter()
            report = estimate(ae, methods=("rtl",), log=lambda *_: None)
            figures["ae_yosys_s"] = time.perf_counter() - start
            f = report.methods["rtl"]
            figures.update(ae_lut=f.lut, ae_ff=f.ff, ae_dsp=f.dsp, ae_carry=f.carry, ae_depth=f.logic_depth,
                           ae_latency_cycles=f.latency_cycles, ae_latency_ns=f.latency_ns)
            print(f"ae RTL: da4ml generation {figures['ae_rtl_generate_s']:.1f} s, Verilator build "
                  f"{figures['ae_verilator_build_s']:.1f} s, Yosys synth_xilinx {figures['ae_yosys_s']:.1f} s")
            print(f"ae RTL on {report.target} at {report.clock_period_ns} ns: {f.lut} LUT, {f.ff} FF, {f.dsp} DSP, "
                  f"{f.carry} CARRY, logic depth {f.logic_depth}, {f.latency_cycles} cycles = {f.latency_ns} ns "
                  f"(budget {report.latency_budget_ns} ns)")
            start = time.perf_counter()
            report = estimate(copies["bdt"], methods=("bdt",), log=lambda *_: None)
            figures["bdt_synth_s"] = time.perf_counter() - start
            b = report.methods["bdt"]
            figures.update(bdt_lut=b.lut, bdt_ff=b.ff)
            print(f"bdt: {b.tool}: {b.lut} LUT, {b.ff} FF in {figures['bdt_synth_s']:.1f} s ({b.note})")
    print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
