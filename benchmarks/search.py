"""What steering a search costs per trial, and a 12-trial two-objective search of the demo autoencoder.

    .venv/bin/python benchmarks/search.py [--trials 8] [--ae]

1. Steering overhead: the demo BDT search (`configs/search/bdt_demo.yaml`, seconds per trial) with --trials N on the
   local queue, in a new runs root and job database. The steering process times its own work (status.json's
   `steering`): asking Optuna, writing the trial folder and submitting the job, reading the result, telling Optuna, and
   looking at the jobs every poll; tracking is the study's MLflow logging at the end (timed here, MLflow imported
   before, as `l1ml search` has its tracking process import it while the trials run). Per trial, and as
   a fraction of a trial's own wall time (its job's). The gap is what the trials' slots stood idle: the search's wall
   time x parallel trials, less the jobs' wall times, per trial (the start, and up to one poll interval per trial).
2. --ae: `configs/search/ae_demo.yaml` (12 trials, 2 at once): its wall time, and whether its front holds a model at
   least as efficient as ae_demo.yaml (its trial 0) at lower estimated cost.

The demo events come from `make demo`'s cache (generated here if missing). The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_search(config: Path, root: Path, trials: int | None) -> tuple[Path, float, float]:
    """The search in runs root `root`; (study folder, wall seconds, tracking seconds)."""
    from l1ml.search.steer import SearchOptions, search
    from l1ml.track.log import track
    from l1ml.track.records import for_step
    from l1ml.track.store import client, local_uri

    os.chdir(ROOT)  # the demo events' cache is the repository's runs/data
    start = time.perf_counter()
    folder = search(config, SearchOptions(runs_root=root / "runs", trials=trials), log=lambda m: None)
    wall = time.perf_counter() - start
    uri = local_uri(root / "runs" / "mlflow")
    client(uri)  # MLflow imported and the store made first, as `l1ml search` has its tracking process do while it steers
    start = time.perf_counter()
    track(lambda: for_step("search", folder), uri)
    return folder, wall, time.perf_counter() - start


def steering(folder: Path, wall: float, tracking: float, what: str) -> dict[str, float]:
    """The steering's own work per trial (status.json) and the tracking at the end, against a trial's job time."""
    from l1ml.documents import SearchStatus, read

    status = read(folder / "status.json", SearchStatus)
    n = len(status.trials)
    job_wall = sum(t.wall_s or 0 for t in status.trials)
    per_trial = {k: status.steering.get(k, 0.0) / n for k in ("ask", "submit", "result", "tell", "refresh")}
    per_trial["tracking"] = tracking / n
    total = sum(per_trial.values())
    print(f"{what}: {n} trials in {wall:.1f} s, 2 at once; a trial's job {job_wall / n:.2f} s on average")
    print("steering per trial: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in per_trial.items()))
    print(f"steering total per trial {total * 1000:.0f} ms = {total / (job_wall / n):.2%} of a trial's time; "
          f"idle gap per trial {(wall * 2 - job_wall) / n:.2f} s")
    return {"steering_s_per_trial": round(total, 3), "steering_fraction": round(total / (job_wall / n), 4),
            "trial_s": round(job_wall / n, 2), "gap_s_per_trial": round((wall * 2 - job_wall) / n, 2)}


def overhead(trials: int, tmp: Path) -> dict[str, float]:
    folder, wall, tracking = run_search(ROOT / "configs" / "search" / "bdt_demo.yaml", tmp / "bdt", trials)
    return {f"bdt_{k}": v for k, v in steering(folder, wall, tracking, "demo BDT search").items()}


def ae_search(tmp: Path) -> dict[str, float]:
    from l1ml.documents import SearchStatus, read

    folder, wall, tracking = run_search(ROOT / "configs" / "search" / "ae_demo.yaml", tmp / "ae", None)
    print()
    figures = {f"ae_{k}": v for k, v in steering(folder, wall, tracking, "demo AE search").items()}
    status = read(folder / "status.json", SearchStatus)
    base = next(t for t in status.trials if t.base)
    print(f"AE search: {len(status.trials)} trials in {wall / 60:.1f} min "
          f"({sum(t.state == 'COMPLETE' for t in status.trials)} complete); ae_demo.yaml (trial {base.number}): "
          f"efficiency {base.values[0]:.4f}, bops {base.values[1]:.0f}")
    print(f"{'trial':>5} {'efficiency@100kHz':>18} {'bops':>9}  parameters")
    for t in sorted((t for t in status.trials if t.on_front), key=lambda t: t.values[1]):
        print(f"{t.number:>5} {t.values[0]:>18.4f} {t.values[1]:>9.0f}  {t.params}")
    better = [t for t in status.trials if t.on_front and t.values[0] >= base.values[0] and t.values[1] < base.values[1]]
    print("front members at least as efficient as ae_demo.yaml at lower cost: " +
          (", ".join(f"trial {t.number} ({t.values[1] / base.values[1]:.0%} of its bops)" for t in better) or "none"))
    return {**figures, "ae_search_min": round(wall / 60, 2), "ae_front_better": len(better)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8, help="trials of the demo BDT search (overhead)")
    parser.add_argument("--ae", action="store_true", help="also the 12-trial search of the demo autoencoder (~10 min)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["L1ML_STATE"] = str(Path(tmp) / "state")  # a job database of its own
        figures = overhead(args.trials, Path(tmp))
        if args.ae:
            figures.update(ae_search(Path(tmp)))
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
