"""Keras and QKeras models in one place: saving (architecture JSON + HDF5 weights, the portable form hls4ml reads)
and loading what l1ml saved or what users bring (architecture JSON + weights, or one full-model .h5), with the
QKeras custom objects; a file that cannot be read is an error naming that file. TensorFlow is imported here, so
modules that must stay quick import this one inside the function that needs it."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from l1ml.errors import L1mlError


def is_pruned(layer) -> bool:
    return type(layer).__name__ == "PruneLowMagnitude"


def strip_pruning(model):
    """The model with pruning wrappers removed (their masked weights stay), as firmware conversion needs it."""
    if not any(is_pruned(layer) for layer in model.layers):
        return model
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.strip_pruning(model)


@contextlib.contextmanager
def quiet_qkeras_serialisation():
    """Keras warns when it serialises QKeras quantisers as constraints (the JSON is what QKeras reads back), and that
    the initialisers of a model read from JSON are unseeded (its weights are loaded right after)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The `keras.constraints.serialize\(\)` API", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"The initializer \w+ is unseeded", category=UserWarning)
        yield


def qkeras_objects() -> dict:
    """The custom objects Keras needs to read QKeras layers and quantisers."""
    from qkeras.utils import _add_supported_quantized_objects

    objects: dict = {}
    _add_supported_quantized_objects(objects)
    return objects


def save_model(model, out_dir: Path) -> dict[str, Path]:
    """Architecture JSON and HDF5 weights, the portable form hls4ml reads."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = strip_pruning(model)
    arch, weights = out_dir / "model.json", out_dir / "weights.h5"
    with quiet_qkeras_serialisation():
        arch.write_text(model.to_json(indent=1))
    model.save_weights(weights)
    return {"architecture": arch, "weights": weights}


def load_model(out_dir: Path):
    """A model saved by `save_model`."""
    return load_keras(out_dir / "model.json", out_dir / "weights.h5")


def load_keras(arch: Path, weights: Path | None):
    """A Keras/QKeras model from an architecture JSON and HDF5 weights, or from one full-model .h5 file. A file that
    cannot be read is an L1mlError naming that file."""
    for path in (arch, weights):
        if path is not None and not Path(path).is_file():
            raise L1mlError("no such file", path=path)
    if weights is None:
        return _loading(arch, "the Keras model", lambda: tf.keras.models.load_model(arch, custom_objects=qkeras_objects(),
                                                                                   compile=False))
    model = _loading(arch, "the Keras architecture", lambda: _model_from_json(Path(arch).read_text()))
    _loading(weights, "the Keras weights", lambda: model.load_weights(weights))
    return model


def _model_from_json(text: str):
    config = json.loads(text)
    if not isinstance(config, dict) or not {"class_name", "config"} <= config.keys():
        raise ValueError("expected a JSON object with class_name and config")
    model = tf.keras.models.model_from_json(text, custom_objects=qkeras_objects())
    if not isinstance(model, tf.keras.Model):
        raise ValueError(f"a {type(model).__name__}, not a Keras model")
    return model


def _loading(path: Path, what: str, load: Callable[[], object]):
    try:
        with quiet_qkeras_serialisation():
            return load()
    except (ValueError, OSError, KeyError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise L1mlError(f"cannot load {what}: {reason}", path=path) from None
