"""How often hls4ml's C-simulation equals QKeras, with hls4ml's own precisions and with l1ml's exact recipe.

Run: `.venv/bin/python benchmarks/hls_recipe.py RUN_DIR [--events N]` on a finished network run
(e.g. the demo AE of `make demo`); it uses the background of the run's event file.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

from l1ml.config.hw import load_target  # noqa: E402
from l1ml.data.events import read_sample  # noqa: E402
from l1ml.documents import NormalisationRecord, read  # noqa: E402
from l1ml.firmware.hls import convert  # noqa: E402
from l1ml.models.keras import load_model  # noqa: E402
from l1ml.verify.bitexact import compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)  # Keras on QKeras quantisers while hls4ml writes projects

    manifest = json.loads((args.run_dir / "manifest.json").read_text())
    norm = read(args.run_dir / "normalisation.json", NormalisationRecord).normalisation()
    qmodel = load_model(args.run_dir / "model" / "quantized")
    events = read_sample(manifest["inputs"]["events"]["path"], "background", stop=args.events).features()
    inputs = norm.apply_quantized(events).astype(np.float32)
    expected = qmodel.predict(inputs, batch_size=4096, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        for exact in (False, True):
            project = convert(qmodel, norm.input_type, Path(tmp) / str(exact), load_target("vu13p"), exact=exact)
            project.model.compile()
            result = compare("csim vs qkeras", project.model.predict(inputs), expected)
            label = "l1ml exact recipe" if exact else "hls4ml's own precisions"
            print(f"{label:<24} {1 - result.mismatches / result.events:8.2%} of {result.events} events equal "
                  f"(max |diff| {result.max_abs_diff:g})")


if __name__ == "__main__":
    main()
