"""Bring your own model: `l1ml convert --keras/--xgboost/--conifer ... --out DIR` for models trained elsewhere.

DIR gets the same layout as a training run's firmware, so that `l1ml verify DIR` and `l1ml synth` work on it:

    DIR/byo.json              what was converted: kind, source files with SHA-256, input type, outputs
    DIR/model/                a copy of the source model files
    DIR/firmware/<backend>/   the HLS (or VHDL) project, its configuration and the emulator specification

A Keras model is first brought into the layer forms hls4ml converts bit for bit, or refused by name
(`l1ml.firmware.keras_forms`). A Keras classifier that ends in a softmax is converted twice: the whole model (what goes to hardware,
with hls4ml's lookup-table softmax) and the model up to the logits (`<backend>/logits/`), which is the
part verified bit for bit; the softmax is verified within a tolerance.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np

from l1ml.config.hw import load_target
from l1ml.documents import ByoRecord, SourceFile, read
from l1ml.emulate.ensemble import from_conifer_json, max_abs_score, n_outputs
from l1ml.errors import L1mlError
from l1ml.firmware.conifer_project import BDT_BACKENDS, WEIGHT_TYPE, convert_for_firmware, write_project
from l1ml.firmware.hls import convert, is_softmax
from l1ml.firmware.keras_forms import prepare, qactivation_type
from l1ml.firmware.rtl import convert_beside
from l1ml.models.bdt import from_xgboost_file, integer_bits_for
from l1ml.quantize.fixedpoint import FixedType, parse_fixed
from l1ml.runs import sha256_file, tree_hash

DEFAULT_INPUT_TYPE = "ap_fixed<16,6,AP_RND_CONV,AP_SAT>"
BYO_FILE = "byo.json"
LOGITS = "logits"  # <backend>/logits/: the project of a classifier up to its logits


def _check_out(out: Path) -> None:
    """--out may be new, empty, or an earlier conversion (replaced); anything else is the user's and is left alone."""
    if out.exists() and any(out.iterdir()) and not (out / BYO_FILE).exists():
        raise L1mlError("the output folder exists and is not an l1ml conversion; choose a new --out", path=out)


def _first_layer(model):
    """The first layer after the input (Sequential models do not list their InputLayer)."""
    return model.layers[1] if type(model.layers[0]).__name__ == "InputLayer" else model.layers[0]


def input_type_of(model, given: str | None) -> str:
    """The firmware input type: the type of the model's own input quantiser (a quantized_bits QActivation right after
    the input) if it has one, else --input-type, else the default. A given type that contradicts the model's quantiser
    is an error. (A quantiser with no exact type is refused by name when the model is prepared.)"""

    first = _first_layer(model)
    own = None
    if type(first).__name__ == "QActivation" and type(first.quantizer).__name__ == "quantized_bits":
        with contextlib.suppress(ValueError):
            own = str(qactivation_type(first))
    if own and given and str(_parse_type(given, "--input-type")) != own:
        raise L1mlError(f"the model quantises its inputs to {own}", key="--input-type", value=given)
    return own or str(_parse_type(given or DEFAULT_INPUT_TYPE, "--input-type"))


def prepare_keras(model, input_type: str, source: Path):
    """(the model in the forms hls4ml converts bit for bit, notes on what was rewritten), see `l1ml.firmware.keras_forms`;
    a rewritten model must give the same outputs as the given one on inputs over the firmware's input grid."""

    t = _parse_type(input_type, "--input-type")
    n = int(model.input_shape[-1])
    rng = np.random.Generator(np.random.PCG64(0))
    probe = np.concatenate([rng.uniform(t.min_value, t.max_value, size=(1024, n)), np.full((1, n), t.min_value),
                            np.full((1, n), t.max_value), np.zeros((1, n))])
    return prepare(model, t, t.quantize(probe).astype(np.float32), source)


def model_quantizes_inputs(model) -> bool:
    return type(_first_layer(model)).__name__ == "QActivation"


def logits_model(model):
    """The model without its final softmax, or None if it does not end in one."""
    import tensorflow as tf  # heavy: imported only where needed


    if not is_softmax(model.layers[-1]):
        return None
    return tf.keras.Model(model.inputs, model.layers[-2].output, name=f"{model.name}_logits")


def convert_keras(arch: Path, weights: Path | None, out: Path, *, input_type: str | None, target: str, backend: str,
                  reuse_factor: int, clock_period_ns: float | None, rtl: bool = False) -> list[Path]:
    """The hls4ml project of a Keras/QKeras network (and with `rtl`, its RTL): the folders written."""
    from l1ml.models.keras import load_keras  # heavy: imported only where needed

    _check_out(out)
    model = load_keras(arch, weights)
    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.input_shape) != 2:
        raise L1mlError("only models with one flat input (events x features) and one output convert", path=arch)
    in_type = input_type_of(model, input_type)
    model, rewritten = prepare_keras(model, in_type, arch)
    hw = load_target(target)
    fw = out / "firmware" / backend
    logits = logits_model(model)
    project = convert(model, in_type, fw, hw, backend=backend, reuse_factor=reuse_factor, clock_period_ns=clock_period_ns)
    if logits is not None:
        convert(logits, in_type, fw / LOGITS, hw, backend=backend, reuse_factor=reuse_factor, clock_period_ns=clock_period_ns)
    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    copied = {"architecture": _copy(arch, model_dir).name}
    if weights is not None:
        copied["weights"] = _copy(weights, model_dir).name
    if rewritten:  # verify compares the firmware with the model that was converted (its outputs equal the given model's)
        from l1ml.models.keras import save_model  # heavy: imported only where needed

        saved = save_model(model, model_dir / "converted")
        copied = {k: f"converted/{p.name}" for k, p in saved.items()}
    given = {"architecture": arch, **({"weights": weights} if weights else {})}
    ByoRecord(kind="keras", input_type=in_type, n_features=int(model.input_shape[-1]), n_outputs=int(model.output_shape[-1]),
              backends=[backend], source={k: _source_file(v) for k, v in given.items()}, model_files=copied,
              softmax=logits is not None, model_quantizes_inputs=model_quantizes_inputs(model),
              rewritten=rewritten).write(out / BYO_FILE)
    if rtl:
        return [project.out_dir, convert_beside(project.out_dir, source={"kind": "keras", "architecture": str(arch.resolve())})]
    return [project.out_dir]


def _copy(path: Path, folder: Path) -> Path:
    """`path` (a file, or a SavedModel folder) copied into `folder`."""
    target = folder / Path(path).name
    if Path(path).resolve() == target.resolve():
        return target
    if Path(path).is_dir():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(path, target)
    else:
        shutil.copyfile(path, target)
    return target


def _source_file(path: Path) -> SourceFile:
    """A given model file (or SavedModel folder) with its SHA-256."""
    return SourceFile(path=str(Path(path).resolve()), sha256=tree_hash(path) if Path(path).is_dir() else sha256_file(path))


def read_byo(folder: Path) -> ByoRecord:
    return read(Path(folder) / BYO_FILE, ByoRecord)


# BDTs -------------------------------------------------------------------------------------------------------


def convert_xgboost(model_path: Path, out: Path, *, input_type: str | None, score_type: str | None, target: str,
                    backend: str | None, clock_period_ns: float | None) -> list[Path]:
    """An xgboost model (saved with `save_model`) as conifer projects: exact float32 thresholds moved to the input grid,
    leaves in the score type (default: 18 bits, integer bits for the largest reachable |score|)."""

    _check_out(out)
    if not Path(model_path).is_file():
        raise L1mlError("no such file", path=model_path, key="--xgboost")
    ensemble, _ = from_xgboost_file(model_path)
    in_type = _parse_type(input_type or DEFAULT_INPUT_TYPE, "--input-type")
    sc_type = (_parse_type(score_type, "--score-type") if score_type else
               FixedType(18, integer_bits_for(max_abs_score(ensemble)), True, "AP_RND_CONV", "AP_SAT"))
    hw = load_target(target)
    dirs = convert_for_firmware(ensemble, in_type, sc_type, out / "firmware", backends=(backend,) if backend else BDT_BACKENDS,
                                hw=hw, clock_period_ns=clock_period_ns or hw.default_clock_ns,
                                source={"kind": "xgboost", "model": str(Path(model_path).resolve())})
    _record_bdt(out, "xgboost", model_path, ensemble, {"input": str(in_type), "score": str(sc_type)}, dirs)
    return dirs


def convert_conifer(model_path: Path, out: Path, *, input_type: str | None, score_type: str | None, target: str,
                    backend: str | None, clock_period_ns: float | None) -> list[Path]:
    """A conifer model saved as JSON (current or older schema) with the precisions of its own configuration
    (--input-type / --score-type override them). The VHDL is written when the model has one type for inputs,
    thresholds and scores, as conifer's VHDL requires."""

    _check_out(out)
    if not Path(model_path).is_file():
        raise L1mlError("no such file", path=model_path, key="--conifer")
    ensemble, precisions = from_conifer_json(model_path)
    types = {k: _parse_type(v, f"{k}_precision") for k, v in precisions.items()}
    if input_type:
        types["input"] = _parse_type(input_type, "--input-type")
    if score_type:
        types["score"] = _parse_type(score_type, "--score-type")
    # conifer's one-hot weights only need to hold 0 and 1 (some shipped models give a type that cannot hold 1)
    types["weight"] = WEIGHT_TYPE
    one_type = types["input"] == types["threshold"] == types["score"]
    wanted = (backend,) if backend else ("xilinxhls", "vhdl") if one_type else ("xilinxhls",)
    if "vhdl" in wanted and not one_type:
        raise L1mlError(f"conifer's VHDL needs one type for inputs, thresholds and scores; this model has "
                        f"{types['input']}, {types['threshold']}, {types['score']}", key="--backend", value="vhdl")
    hw = load_target(target)
    dirs = []
    for b in wanted:
        use = dict.fromkeys(types, types["input"]) if b == "vhdl" else types
        dirs.append(write_project(ensemble, use, out / "firmware" / b, backend=b, hw=hw,
                                  clock_period_ns=clock_period_ns or hw.default_clock_ns,
                                  source={"kind": "conifer", "model": str(Path(model_path).resolve())}))
    notes = [] if one_type else ["VHDL not written: conifer's VHDL needs one type for inputs, thresholds and scores"]
    _record_bdt(out, "conifer", model_path, ensemble, {k: str(v) for k, v in types.items()}, dirs, notes)
    return dirs


def _parse_type(text: str, key: str):
    try:
        return parse_fixed(text)
    except ValueError as exc:
        raise L1mlError(str(exc), key=key, value=text) from None


def _record_bdt(out: Path, kind: str, model_path: Path, ensemble: dict, types: dict, dirs: list[Path],
                notes: list[str] | None = None) -> None:

    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    copied = _copy(model_path, model_dir).name
    ByoRecord(kind=kind, input_type=types["input"], n_features=ensemble["n_features"], n_outputs=n_outputs(ensemble),
              backends=[d.name for d in dirs], source={"model": _source_file(model_path)}, model_files={"model": copied},
              types=types, n_trees=ensemble["n_trees"], max_depth=ensemble["max_depth"], notes=notes or []
              ).write(out / BYO_FILE)
