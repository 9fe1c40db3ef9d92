"""The two QKeras classifiers of hls4ml's example models (../shared/fixtures/models): how far the firmware's lookup-table
softmax lies from the exact softmax of its logits, and how often hls4ml's C-simulation equals QKeras's logits with the
power-of-two kernels as they are and after l1ml's rewrite (`l1ml.firmware.keras_forms`).

Run: `.venv/bin/python benchmarks/byo_classifiers.py [--events N]` (random inputs on each model's input grid, as
`l1ml verify DIR --random N` uses; about 20 minutes on 2 cores, most of it g++ on the MNIST project with its po2
kernels as given, which needs about 2 GB at -O0).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

from l1ml.config.hw import load_target  # noqa: E402
from l1ml.firmware import csim  # noqa: E402
from l1ml.firmware.byo import convert_keras, input_type_of, logits_model, prepare_keras  # noqa: E402
from l1ml.firmware.hls import PROJECT, convert  # noqa: E402
from l1ml.models.keras import load_keras  # noqa: E402
from l1ml.quantize.fixedpoint import parse_fixed  # noqa: E402
from l1ml.verify.bitexact import compare, random_inputs  # noqa: E402
from l1ml.verify.run import VerifyOptions, verify  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "models"
FIXTURES = {"3-layer (16 inputs)": "qkeras_3layer", "MNIST dense (784 inputs)": "qkeras_mnist_dense"}


def files(name: str) -> tuple[Path, Path]:
    return MODELS / f"exmodels__{name}.json", MODELS / f"exmodels__{name}_weights.h5"


def softmax_distance(name: str, events: int, tmp: Path) -> str:
    """`l1ml convert --keras` then `l1ml verify --random N`: the softmax check's largest |difference|."""
    out = tmp / name
    convert_keras(*files(name), out, input_type=None, target="vu9p", backend="vitis", reuse_factor=1, clock_period_ns=None)
    report = verify(out, VerifyOptions(random=events), log=lambda m: None)
    by_name = {c.name.split(" ")[0]: c for c in report.checks}
    logits, softmax = by_name["bit_exact"], by_name["softmax"]
    return (f"logits {logits.events - logits.mismatches} of {logits.events} events bit for bit; "
            f"softmax max |diff| {softmax.max_abs_diff:.4f} (tolerance {softmax.tolerance:g})")


def po2_effect(name: str, events: int, tmp: Path) -> str | None:
    """Logits of hls4ml's C-simulation against QKeras, with the po2 kernels as given and rewritten."""
    model = load_keras(*files(name))
    input_type = parse_fixed(input_type_of(model, None))
    if not any(type(getattr(layer, "kernel_quantizer_internal", None)).__name__ == "quantized_po2" for layer in model.layers):
        return None
    rewritten_model, _ = prepare_keras(model, str(input_type), files(name)[0])
    x = random_inputs(input_type, int(model.input_shape[-1]), events)
    expected = logits_model(model).predict(x.astype(np.float32), batch_size=4096, verbose=0)
    lines = []
    for label, converted in (("as given", model), ("rewritten", rewritten_model)):
        project = convert(logits_model(converted), str(input_type), tmp / f"{name}-{label}", load_target("vu9p"))
        sources = csim.hls4ml_sources(project.out_dir / "hls4ml_prj", PROJECT)
        sources.optimisation = "-O0"  # the shift products of po2 kernels take g++ -O2 over 18 GB; the results do not depend on it
        library = csim.compile_sources(sources)
        result = compare("csim vs qkeras", library.run(x), expected)
        lines.append(f"po2 kernels {label:<10} {1 - result.mismatches / result.events:7.2%} of {result.events} events' logits "
                     f"equal QKeras (max |diff| {result.max_abs_diff:g})")
    return "\n  ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)  # Keras on QKeras quantisers while hls4ml writes projects
    with tempfile.TemporaryDirectory() as tmp:
        for label, name in FIXTURES.items():
            print(f"{label}: {softmax_distance(name, args.events, Path(tmp))}")
            po2 = po2_effect(name, args.events, Path(tmp))
            if po2:
                print(f"  {po2}")


if __name__ == "__main__":
    main()
