"""What tracking in MLflow adds to each command of the demo chain: goal < 5 % of the command's own time.

    .venv/bin/python benchmarks/tracking.py [--models bdt vae ae]

For each demo model (`configs/train/<model>_demo.yaml`, on the demo events `make demo` made), the real commands
train, convert (networks: --rtl), verify, estimate --counts-only and deliver --no-synthesis run twice, as a user runs
them: once with `--no-tracking` and once tracking into the local store of a new runs root (the first command of a
store also creates its database). Each command's wall time both ways, and the difference, which is what tracking
costs the user (MLflow is imported and the store opened by a process of its own while the command works, so mostly
the logging itself is left). The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
L1ML = str(Path(sys.executable).with_name("l1ml"))


def timed(args: list[str], tracking: bool) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("L1ML_NO_TRACKING", "MLFLOW_TRACKING_URI")}
    start = time.perf_counter()
    out = subprocess.run([L1ML, *args, *([] if tracking else ["--no-tracking"])], check=True, capture_output=True,
                         text=True, cwd=ROOT, env=env)
    return time.perf_counter() - start, out.stdout.strip().splitlines()[-1]


def chain(model: str, root: Path, tracking: bool) -> dict[str, float]:
    """The demo chain of one model in runs root `root`: seconds by step."""
    config = ROOT / "configs" / "train" / f"{model}_demo.yaml"
    seconds = {}
    seconds["train"], run = timed(["train", str(config), "--runs", str(root / "runs"), "--quiet"], tracking)
    rtl = [] if model == "bdt" else ["--rtl"]
    for step, args in (("convert", ["convert", run, *rtl]), ("verify", ["verify", run]),
                       ("estimate", ["estimate", run, "--counts-only"]),
                       ("deliver", ["deliver", run, "--version", "0.1.0", "--no-synthesis", "--out", str(root / "deliveries")])):
        seconds[step], _ = timed(args, tracking)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["bdt", "vae", "ae"], choices=["ae", "vae", "bdt"])
    args = parser.parse_args()
    totals = {"off": 0.0, "on": 0.0}
    long_steps = {"off": 0.0, "on": 0.0}  # train, verify, deliver: the commands that take more than seconds
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'model':>5} {'step':<9} {'no tracking':>12} {'tracking':>10} {'added':>8}")
        for model in args.models:
            off = chain(model, Path(tmp) / f"off-{model}", tracking=False)
            on = chain(model, Path(tmp) / f"on-{model}", tracking=True)
            for step in off:
                added = on[step] - off[step]
                totals["off"], totals["on"] = totals["off"] + off[step], totals["on"] + on[step]
                if step in ("train", "verify", "deliver"):
                    long_steps["off"], long_steps["on"] = long_steps["off"] + off[step], long_steps["on"] + on[step]
                print(f"{model:>5} {step:<9} {off[step]:10.1f} s {on[step]:8.1f} s {added:+7.1f} s ({100 * added / off[step]:+.0f} %)")
    share = 100 * (totals["on"] - totals["off"]) / totals["off"]
    long_share = 100 * (long_steps["on"] - long_steps["off"]) / long_steps["off"]
    print(f"tracking_added_total={share:.1f}% tracking_added_train_verify_deliver={long_share:.1f}%")


if __name__ == "__main__":
    main()
