"""Throughput of the ways l1ml evaluates firmware arithmetic, in one run on the same models and events.

    .venv/bin/python benchmarks/emulation.py [AE_RUN_DIR] [--bdt BDT_RUN_DIR] [--events N]

AE_RUN_DIR is a converted network run (default: the newest runs/ae_demo/*/ with firmware), BDT_RUN_DIR a
converted BDT run (default: the newest runs/bdt_demo/*/ with firmware). Prints events/s for the emulators,
the batched C-simulations (1 thread and every core), hls4ml's predict(), QKeras' predict(), conifer's own
decision_function() (its xilinxhls and cpp backends, on conifer's own conversion of the same booster),
and the C-simulation compile times (a fresh cache). The last line is machine-readable.
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


def newest(name: str, backend: str) -> Path:
    found = list(Path("runs", name).glob(f"*/firmware/{backend}"))
    if not found:
        sys.exit(f"no converted runs/{name}/*/firmware/{backend}: run `make demo` first, or give the run folder")
    return max(found, key=os.path.getmtime).parents[1]


def bdt_figures(run: Path, n_events: int) -> tuple[dict, bool]:
    """The BDT's emulator, batched C-simulation and conifer's own decision_function() on random grid inputs."""
    import logging

    import conifer
    import xgboost as xgb

    from l1ml.firmware import csim
    from l1ml.firmware.project import open_project
    from l1ml.verify.bitexact import random_inputs

    project = open_project(run / "firmware" / "xilinxhls")
    emulator, _ = project.emulator()
    info = project.info
    x = random_inputs(emulator.input_type, info["n_features"], n_events, seed=12)
    print(f"BDT: {run} ({info['n_trees']} trees of depth {info['max_depth']}, {info['n_features']} inputs)")
    start = time.perf_counter()
    library = csim.compile_sources(project.csim_sources())
    print(f"BDT C-simulation compile (g++ {library.build.key[:8]}, one translation unit): {time.perf_counter() - start:.1f} s")
    figures = {"bdt_emulator": rate(emulator.predict, x, repeat=3),
               "bdt_emulator_1thread": rate(lambda v: emulator.predict(v, threads=1), x, repeat=2)}
    library.threads = 1
    figures["bdt_csim_1thread"] = rate(library.run, x[:10_000])
    library.threads = len(os.sched_getaffinity(0))
    figures["bdt_csim"] = rate(library.run, x[:20_000])
    equal = np.array_equal(emulator.predict(x[:20_000]), library.run(x[:20_000]))
    logging.getLogger("conifer").setLevel(logging.ERROR)
    import hls4ml

    # conifer compiles against the Xilinx ap_types headers, which it does not ship: use hls4ml's copy
    os.environ.setdefault("XILINX_AP_INCLUDE", str(Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"))
    booster = xgb.Booster(model_file=str(run / "model" / "xgboost.json"))
    types = info["types"]
    for backend in ("xilinxhls", "cpp"):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = {"backend": backend, "output_dir": tmp, "project_name": "bench", "input_precision": types["input"],
                   "xilinx_part": "xcvu13p-flga2577-2-e", "clock_period": 4.16, "unroll": True,
                   "threshold_precision": types["input"], "score_precision": types["score"]}
            model = conifer.converters.convert_from_xgboost(booster, cfg)
            start = time.perf_counter()
            try:
                model.compile()
            except Exception as exc:  # noqa: BLE001 - conifer raises a bare Exception; its g++ output is above
                print(f"conifer {backend} compile() failed ({exc}); the cpp backend needs the nlohmann-json3-dev headers")
                figures[f"bdt_conifer_{backend}"] = float("nan")
                continue
            print(f"conifer {backend} compile(): {time.perf_counter() - start:.1f} s")
            figures[f"bdt_conifer_{backend}"] = rate(model.decision_function, x[:10_000])
    return figures, equal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?")
    parser.add_argument("--bdt")
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    run = Path(args.run) if args.run else newest("ae_demo", "vitis")
    bdt_run = Path(args.bdt) if args.bdt else newest("bdt_demo", "xilinxhls")
    os.environ["L1ML_CACHE"] = tempfile.mkdtemp(prefix="l1ml_bench_cache_")

    from l1ml.documents import NormalisationRecord, read
    from l1ml.emulate.network import NetworkEmulator
    from l1ml.firmware import csim
    from l1ml.firmware.hls import PROJECT
    from l1ml.models.keras import load_model
    from l1ml.verify.bitexact import random_inputs

    fw = run / "firmware" / "vitis"
    norm = read(run / "normalisation.json", NormalisationRecord).normalisation()
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

    from l1ml.models.keras import quiet_qkeras_serialisation

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
    bdt, bdt_equal = bdt_figures(bdt_run, args.events)
    figures.update(bdt)
    conifer_best = np.nanmax([figures["bdt_conifer_xilinxhls"], figures["bdt_conifer_cpp"]])
    for name, value in figures.items():
        print(f"  {name:<22} {value:>12,.0f} events/s")
    print(f"  AE emulator == C-simulation on 100000 events: {equal}; BDT emulator == C-simulation on 20000: {bdt_equal}")
    print(f"  AE emulator / hls4ml predict: {figures['ae_emulator'] / figures['ae_hls4ml_predict']:.0f}x; "
          f"batched C-sim / hls4ml predict: {figures['ae_csim'] / figures['ae_hls4ml_predict']:.2f}x")
    print(f"  BDT emulator / conifer decision_function (faster backend): {figures['bdt_emulator'] / conifer_best:.0f}x; "
          f"batched C-sim / conifer xilinxhls: {figures['bdt_csim'] / figures['bdt_conifer_xilinxhls']:.2f}x")
    print(" ".join(f"{name}={figures[name]:.0f}" for name in (
        "ae_emulator", "ae_csim", "ae_hls4ml_predict", "bdt_emulator", "bdt_csim", "bdt_conifer_xilinxhls", "bdt_conifer_cpp")))
    sys.exit(0 if equal and bdt_equal else 1)


if __name__ == "__main__":
    main()
