"""Training loop for networks: one `fit` per epoch on a seeded shuffle, and a checkpoint after every epoch.

What makes a resumed run end exactly where an uninterrupted one does:
- the data order of epoch e depends only on (seed, phase, e), not on how many epochs ran before;
- the checkpoint holds the weights, the optimizer's state (step count and moments), the epoch counter
  and the VAE's sampling generator;
- TensorFlow runs with op determinism enabled (`enable_op_determinism`) and a fixed global seed.
An epoch cut short by SIGTERM/SIGINT is lost and runs again on resume.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from l1ml.models.networks import Networks
from l1ml.runs import write_json_atomic

#: progress(phase, epoch (1-based), epochs, logs, seconds for the epochs run in this process)
EpochProgress = Callable[[str, int, int, dict, float], None]


def make_deterministic(seed: int) -> None:
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit(nets: Networks, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *, phase: str, epochs: int,
        batch_size: int, learning_rate: float, seed: int, checkpoint_dir: Path,
        progress: EpochProgress | None = None) -> dict[str, list[float]]:
    """Train `nets.train_model` to `epochs` epochs, resuming from `checkpoint_dir` if it holds a checkpoint."""
    model = nets.train_model
    optimizer = tf.keras.optimizers.Adam(learning_rate)
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_variables)  # create the moment slots now so that a checkpoint can fill them
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    tracked = {"model": model, "optimizer": optimizer, "epoch": epoch}
    if nets.rng is not None:
        tracked["rng"] = nets.rng
    checkpoint = tf.train.Checkpoint(**tracked)
    manager = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=1)
    history_path = checkpoint_dir / "history.json"
    history: dict[str, list[float]] = {"loss": [], "val_loss": []}
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        history = json.loads(history_path.read_text())
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    val = (x_val.astype(np.float32), y_val.astype(np.float32))
    t0 = time.perf_counter()
    first = int(epoch.numpy())
    for e in range(first, epochs):
        order = np.random.Generator(np.random.PCG64([seed, e, zlib.crc32(phase.encode())])).permutation(len(x32))
        result = model.fit(x32[order], y32[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                           validation_data=val, callbacks=_pruning_callbacks(model))
        for key in history:
            history[key].append(float(result.history[key][-1]))
        epoch.assign(e + 1)
        manager.save(checkpoint_number=e + 1)
        write_json_atomic(history_path, history)
        if progress:
            progress(phase, e + 1, epochs, {k: v[-1] for k, v in history.items()}, (time.perf_counter() - t0) / (e + 1 - first))
    return history


def _is_pruned(layer) -> bool:
    return type(layer).__name__ == "PruneLowMagnitude"


def _pruning_callbacks(model) -> list:
    if not any(_is_pruned(layer) for layer in model.layers):
        return []
    import tensorflow_model_optimization as tfmot

    return [tfmot.sparsity.keras.UpdatePruningStep()]


def strip_pruning(model):
    """The model with pruning wrappers removed (their masked weights stay), as firmware conversion needs it."""
    if not any(_is_pruned(layer) for layer in model.layers):
        return model
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.strip_pruning(model)


def sparsity(model) -> dict[str, float]:
    """Fraction of zero kernel weights per dense layer."""
    return {layer.name: float(np.mean(layer.get_weights()[0] == 0)) for layer in model.layers
            if layer.weights and len(layer.get_weights()[0].shape) == 2 and layer.trainable}


def copy_weights(source, target) -> int:
    """Copy weights between models layer by layer where names and shapes match (float -> quantised pre-training)."""
    copied = 0
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        layer = layer.layer if _is_pruned(layer) else layer
        src = by_name.get(layer.name)
        if src is None or not layer.weights:
            continue
        weights = src.get_weights()
        if [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
            copied += 1
    return copied


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
    from l1ml.errors import L1mlError

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
    from l1ml.errors import L1mlError

    try:
        with quiet_qkeras_serialisation():
            return load()
    except (ValueError, OSError, KeyError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise L1mlError(f"cannot load {what}: {reason}", path=path) from None
