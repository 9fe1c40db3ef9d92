"""Throughput of the ways l1ml evaluates firmware arithmetic, in one run on the same models and events.

    .venv/bin/python benchmarks/emulation.py [AE_RUN_DIR] [--events N]

AE_RUN_DIR is a converted network run (default: the newest runs/ae_demo/*/ with firmware). Prints events/s
for the emulator, the batched C-simulation (1 thread and every core), hls4ml's predict() and QKeras'
predict(), and the C-simulation compile time (a fresh cache). BDT figures need the conifer conversion,
which is not built yet: they print as n/a. The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def rate(fn, x, repeat: int = 1) -> float:
    fn(x[:1000])  # warm up (tables, TensorFlow graph)
    start = time.perf_counter()
    for _ in range(repeat):
        fn(x)
    return repeat * len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?")
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    run = Path(args.run) if args.run else max(Path("runs/ae_demo").glob("*/firmware/vitis"), key=os.path.getmtime).parents[1]
    os.environ["L1ML_CACHE"] = tempfile.mkdtemp(prefix="l1ml_bench_cache_")

    from l1ml.firmware import csim
    from l1ml.firmware.emulator import NetworkEmulator
    from l1ml.firmware.hls import PROJECT
    from l1ml.quantize.normalisation import Normalisation
    from l1ml.train.network import load_model
    from l1ml.verify.bitexact import random_inputs

    fw = run / "firmware" / "vitis"
    norm = Normalisation.load(run / "normalisation.json")
    x = random_inputs(norm.type, len(norm.features), args.events, seed=11)
    print(f"model: {run} ({len(norm.features)} inputs), {len(x)} random events on the input grid, {os.cpu_count()} cores")

    start = time.perf_counter()
    library = csim.compile_sources(csim.hls4ml_sources(fw / "hls4ml_prj", PROJECT))
    compile_s = time.perf_counter() - start
    print(f"C-simulation compile (g++ {' '.join(csim.FLAGS)}): {compile_s:.1f} s")

    emulator = NetworkEmulator.load(fw / "emulator.json")
    figures = {"ae_emulator": rate(emulator.predict, x, repeat=3)}
    emulator.threads = 1
    figures["ae_emulator_1thread"] = rate(emulator.predict, x, repeat=3)
    library.threads = 1
    figures["ae_csim_1thread"] = rate(library.run, x[:50_000])
    library.threads = len(os.sched_getaffinity(0))
    figures["ae_csim"] = rate(library.run, x[:100_000])
    equal = np.array_equal(emulator.predict(x[:100_000]), library.run(x[:100_000]))

    import hls4ml

    from l1ml.train.network import quiet_qkeras_serialisation

    qmodel = load_model(run / "model" / "quantized")
    with quiet_qkeras_serialisation(), tempfile.TemporaryDirectory() as tmp:
        from l1ml.firmware.hls import exact_config

        cfg = exact_config(qmodel, norm.input_type, backend="vitis", reuse_factor=1)
        hls_model = hls4ml.converters.convert_from_keras_model(qmodel, hls_config=cfg, output_dir=tmp, backend="Vitis",
                                                               io_type="io_parallel", project_name=PROJECT)
        start = time.perf_counter()
        hls_model.compile()
        hls4ml_compile_s = time.perf_counter() - start
        figures["ae_hls4ml_predict"] = rate(hls_model.predict, x[:50_000])
    figures["ae_qkeras_predict"] = rate(lambda v: qmodel.predict(v.astype(np.float32), batch_size=8192, verbose=0), x[:100_000])
    print(f"hls4ml compile(): {hls4ml_compile_s:.1f} s")
    for name, value in figures.items():
        print(f"  {name:<22} {value:>12,.0f} events/s")
    print(f"  emulator == C-simulation on 100000 events: {equal}")
    print(f"  emulator / hls4ml predict: {figures['ae_emulator'] / figures['ae_hls4ml_predict']:.0f}x; "
          f"batched C-sim / hls4ml predict: {figures['ae_csim'] / figures['ae_hls4ml_predict']:.2f}x")
    print(" ".join([f"ae_emulator={figures['ae_emulator']:.0f}", f"ae_csim={figures['ae_csim']:.0f}",
                    f"ae_hls4ml_predict={figures['ae_hls4ml_predict']:.0f}", "bdt_emulator=n/a", "bdt_csim=n/a",
                    "bdt_conifer=n/a"]))
    sys.exit(0 if equal else 1)


if __name__ == "__main__":
    main()
