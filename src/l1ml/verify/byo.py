"""Verification subjects and inputs for models converted with `l1ml convert --keras/--xgboost/--conifer --out DIR`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1ml.data.events import list_samples, read_sample
from l1ml.documents import ByoRecord
from l1ml.errors import L1mlError
from l1ml.firmware import csim
from l1ml.firmware.byo import LOGITS, logits_model, read_byo
from l1ml.firmware.project import open_project
from l1ml.models.bdt import from_xgboost_file
from l1ml.quantize.fixedpoint import parse_fixed
from l1ml.verify.bdt import bdt_subject
from l1ml.verify.bitexact import compare, random_inputs
from l1ml.verify.subject import Subject, verified_project
from l1ml.verify.subjects import network_subject

# the firmware's softmax uses lookup tables (l1ml configures 4096 entries with types fitted to the value ranges):
# on the two fixture classifiers |softmax(firmware) - exact softmax of the same logits| reached 0.0038 (16 inputs) and
# 0.0068 (MNIST, 784 inputs) on 20 000 random grid inputs (`benchmarks/byo_classifiers.py`)
SOFTMAX_TOLERANCE = 0.01


def byo_subject(target: Path, backend: str | None) -> Subject:
    info = read_byo(target)
    if info.kind == "keras":
        return _keras_subject(target, info, backend)

    booster = None
    if info.kind == "xgboost":

        _, booster = from_xgboost_file(target / "model" / info.model_files["model"])
    return bdt_subject(target, backend, booster=booster)


def _keras_subject(target: Path, info: ByoRecord, backend: str | None) -> Subject:
    from l1ml.models.keras import load_keras  # heavy: imported only where needed

    files = info.model_files
    model = load_keras(target / "model" / files["architecture"],
                       target / "model" / files["weights"] if "weights" in files else None)
    project = verified_project(target, backend)
    input_type = parse_fixed(info.input_type)
    raw = not info.model_quantizes_inputs
    name = "QKeras, inputs quantised to the firmware input type" if raw else "QKeras"
    if not info.softmax:
        return network_subject(target, project, model, input_type, model_name=name, quantize_inputs=raw)
    logits = logits_model(model)
    subject = network_subject(target, open_project(project.folder / LOGITS), logits, input_type,
                              model_name=name.replace("QKeras", "QKeras logits"), quantize_inputs=raw)
    subject.firmware_dir = project.folder

    def softmax_check(subject, sample, firmware_logits):
        library = csim.compile_sources(project.csim_sources())
        probabilities = library.run(sample.x)
        z = firmware_logits - firmware_logits.max(axis=1, keepdims=True)
        exact = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        check = compare("softmax (firmware lookup tables vs exact softmax of the firmware logits)", probabilities, exact,
                        sample=sample, tolerance=SOFTMAX_TOLERANCE)
        # tie-aware: the class of the exact softmax must be among the firmware's maxima (coarse tables create ties)
        top = probabilities[np.arange(len(exact)), exact.argmax(axis=1)] == probabilities.max(axis=1)
        check.name += f"; argmax agrees on {np.mean(top):.2%} of events"
        return [check]

    subject.extra_checks.append(softmax_check)
    return subject


def user_inputs(subject: Subject, options) -> dict[str, np.ndarray]:
    """--data (an events x features .npy, or an events .h5) and/or --random N, on the firmware's input grid."""
    parts = {}
    t, n = subject.input_type, subject.n_features
    if options.data is not None:
        x = _read_inputs(Path(options.data), n)
        parts["data"] = t.quantize(x)
    if options.random is not None:

        parts["random:requested"] = random_inputs(t, n, options.random, seed=7)
    if not parts:
        raise L1mlError("give the inputs to verify on: --data X.npy (events x features), --data EVENTS.h5, or --random N",
                        path=subject.target)
    return parts


def _read_inputs(path: Path, n_features: int) -> np.ndarray:
    if not path.is_file():
        raise L1mlError("no such file", path=path, key="--data")
    if path.suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise L1mlError(f"not a NumPy array file: {exc}", path=path, key="--data") from None
    elif path.suffix in (".h5", ".hdf5"):

        x = np.concatenate([read_sample(path, s).features() for s in list_samples(path)])
    else:
        raise L1mlError("expected a .npy array or an events .h5 file", path=path, key="--data")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise L1mlError(f"expected an (events x {n_features}) array, got shape {x.shape}", path=path, key="--data")
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise L1mlError(f"NaN or infinite input at event {bad[0]}, feature {bad[1]}", path=path, key="--data")
    return x
