"""Training loop for networks: one `fit` per epoch on a seeded shuffle, and a checkpoint after every epoch.

What makes a resumed run end exactly where an uninterrupted one does:
- the data order of epoch e depends only on (seed, phase, e), not on how many epochs ran before;
- the checkpoint holds the weights, the optimizer's state (step count and moments), the epoch counter
  and the VAE's sampling generator;
- TensorFlow runs with op determinism enabled (`enable_op_determinism`) and a fixed global seed.
An epoch cut short by SIGTERM/SIGINT is lost and runs again on resume.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from l1ml.models.keras import is_pruned
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


def _pruning_callbacks(model) -> list:
    if not any(is_pruned(layer) for layer in model.layers):
        return []
    import tensorflow_model_optimization as tfmot  # heavy: imported only where needed

    return [tfmot.sparsity.keras.UpdatePruningStep()]


def sparsity(model) -> dict[str, float]:
    """Fraction of zero kernel weights per dense layer."""
    return {layer.name: float(np.mean(layer.get_weights()[0] == 0)) for layer in model.layers
            if layer.weights and len(layer.get_weights()[0].shape) == 2 and layer.trainable}


def copy_weights(source, target) -> int:
    """Copy weights between models layer by layer where names and shapes match (float -> quantised pre-training)."""
    copied = 0
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        layer = layer.layer if is_pruned(layer) else layer
        src = by_name.get(layer.name)
        if src is None or not layer.weights:
            continue
        weights = src.get_weights()
        if [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
            copied += 1
    return copied
