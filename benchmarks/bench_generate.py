"""Generator throughput per process type: events per second on one core, Pythia 8 and L1 emulation included.

Run: `make bench` or `.venv/bin/python benchmarks/bench_generate.py [--events N] [--pileup MEAN]`.
Each process runs as one chunk in this process (the same code path as a worker of `l1ml data
generate`), so the figure is per core; `l1ml data generate` runs one such worker per core.
"""

from __future__ import annotations

import argparse
import platform
import time

from l1ml.config.data import DataConfig
from l1ml.data.generate import Chunk, process_settings, run_chunk
from l1ml.data.processes import PROCESSES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--pileup", type=float, default=0.0, help="mean pile-up interactions overlaid")
    parser.add_argument("--processes", nargs="*", default=list(PROCESSES))
    args = parser.parse_args()

    print(f"# {platform.processor() or platform.machine()}, 1 core, {args.events} events per process, "
          f"pile-up mean {args.pileup:g}")
    print(f"{'process':<12}{'events/s':>10}{'ms/event':>10}{'init s':>8}")
    for name in args.processes:
        cfg = DataConfig.model_validate({
            "name": "bench", "seed": 1, "pileup": {"mean": args.pileup},
            "samples": {"s": {"events": args.events, "processes": [{"process": name}]}},
        })
        settings = tuple(process_settings(cfg, "s", 0))
        t0 = time.perf_counter()
        run_chunk(Chunk("s", 0, name, 0, 1, settings, 12345), cfg.l1.model_dump_json(), args.pileup, None, 1)
        init = time.perf_counter() - t0  # one event: almost all of it is Pythia's initialisation
        result = run_chunk(Chunk("s", 0, name, 1, args.events, settings, 54321), cfg.l1.model_dump_json(),
                           args.pileup, None, 1)
        per_event = max(result.seconds - init, 1e-9) / args.events
        print(f"{name:<12}{1 / per_event:>10.0f}{1000 * per_event:>10.1f}{init:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
