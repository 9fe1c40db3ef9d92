"""Keras and QKeras models in one place: saving (architecture JSON + HDF5 weights, the portable form hls4ml reads)
and loading what l1ml saved or what users bring (architecture JSON + weights, one full-model .h5, or a SavedModel
folder), with the QKeras custom objects; a file that cannot be read is an error naming that file. Also the
rebuilding of a model with some layers replaced. TensorFlow is imported here, so modules that must stay quick import
this one inside the function that needs it."""

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
    import tensorflow_model_optimization as tfmot  # heavy: imported only where needed

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
    from qkeras.utils import _add_supported_quantized_objects  # heavy: imported only where needed

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
    """A Keras/QKeras model from an architecture JSON and HDF5 weights, from one full-model .h5 file, or from a
    SavedModel folder. A file that cannot be read is an L1mlError naming that file."""
    for path in (arch, weights):
        if path is not None and not Path(path).exists():
            raise L1mlError("no such file", path=path)
    if Path(arch).is_dir() and not (Path(arch) / "saved_model.pb").is_file():
        raise L1mlError("a folder that is not a SavedModel (no saved_model.pb)", path=arch)
    if Path(arch).is_dir() and weights is not None:
        raise L1mlError("a SavedModel folder holds its weights; give no --weights", path=weights)
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
    _mark_quantiser_objects(config)
    model = tf.keras.models.model_from_json(json.dumps(config), custom_objects=qkeras_objects())
    if not isinstance(model, tf.keras.Model):
        raise ValueError(f"a {type(model).__name__}, not a Keras model")
    return model


def _mark_quantiser_objects(config: dict) -> None:
    """Let Keras deserialise the quantiser objects of QActivation layers.

    A QActivation built from a quantiser object (`QActivation(quantized_bits(8, 3))`) writes it into the JSON as a
    nested object, and QActivation.from_config passes that dict on unread (only QKeras' other layers deserialise their
    quantisers). Keras' JSON reader deserialises a nested object that is marked as passively serialised, which is how
    a full-model .h5 stores it, so the same mark makes the JSON form load.
    """
    layers = config.get("config", {}).get("layers", []) if isinstance(config.get("config"), dict) else []
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        if layer.get("class_name") in ("Sequential", "Functional", "Model"):
            _mark_quantiser_objects(layer)
        activation = layer.get("config", {}).get("activation")
        if layer.get("class_name") == "QActivation" and isinstance(activation, dict) and "class_name" in activation:
            activation["__passive_serialization__"] = True


def _loading(path: Path, what: str, load: Callable[[], object]):
    try:
        with quiet_qkeras_serialisation():
            return load()
    except (ValueError, OSError, KeyError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise L1mlError(f"cannot load {what}: {reason}", path=path) from None


def quantiser_config(quantiser) -> tuple[str, dict]:
    """(class name, configuration) of a QKeras quantiser object, or of a Keras activation function (no configuration)."""
    if hasattr(quantiser, "get_config"):
        return type(quantiser).__name__, quantiser.get_config()
    return getattr(quantiser, "__name__", type(quantiser).__name__), {}


def rebuild(model, replace: Callable[[object], list | None]):
    """A copy of `model` (a new functional model with new layers) in which `replace(layer)` gives, for each layer, the
    (new layer, weights or None) pairs to apply in sequence in its place: None keeps a copy of the layer, [] passes its
    input through. Layers given weights None keep the weights Keras gives them when they are built."""
    inputs = [tf.keras.Input(batch_shape=t.shape, dtype=t.dtype, name=name) for t, name in zip(model.inputs, model.input_names)]
    tensors = {id(old): new for old, new in zip(model.inputs, inputs)}
    weights = []
    with quiet_qkeras_serialisation():
        for layer in model.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            x = tf.nest.map_structure(lambda t: tensors[id(t)], layer.input)
            pieces = replace(layer)
            for piece, values in [(type(layer).from_config(layer.get_config()), layer.get_weights())] if pieces is None else pieces:
                x = piece(x)
                weights.append((piece, values))
            tensors[id(layer.output)] = x
    outputs = [tensors[id(t)] for t in model.outputs]
    new = tf.keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs, name=model.name)
    for piece, values in weights:
        if values is not None:
            piece.set_weights(values)
    return new

