"""Autoencoder networks for L1 anomaly detection, float and quantised (QKeras), with the score in the graph.

Two kinds:
- `dense_ae`: encoder -> latent -> decoder reconstructs the (normalised, quantised) input; the score
  model ends in sum((x - x_reco)^2) (or that sum x 2^-k as a power-of-two "mean"), so the firmware
  outputs the anomaly score itself;
- `vae_encoder`: a variational autoencoder trained whole, of which only the encoder goes to firmware:
  score = sum of the squared latent means, as the CMS Global Trigger model does.

Each build returns the model to train (input -> reconstruction) and the score model (input -> score)
that shares its layers. The quantised build puts a quantiser after the input, after every layer and at
each step of the score, so that every value the firmware computes has a declared fixed-point type; the
float build has the same layers and names without quantisers.

This module imports TensorFlow: import it only in the steps that build or load networks.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow 2.14 logs spurious CUDA-plugin errors on CPU-only hosts
import tensorflow as tf  # noqa: E402
from qkeras import QActivation, QDense  # noqa: E402

from l1ml.config.train import DenseLayer, NetworkModel, Pruning, Quantization  # noqa: E402
from l1ml.quantize.fixedpoint import FixedType  # noqa: E402
from l1ml.quantize.qkeras_types import qkeras_type, quantizer, relu_type  # noqa: E402


@dataclass
class Networks:
    train_model: object  # keras.Model: input -> reconstruction
    score_model: object  # keras.Model: input -> anomaly score, shape (N, 1)
    rng: object | None = None  # the VAE's sampling generator, checkpointed with the model


def layer_stack(model: NetworkModel, n_features: int) -> tuple[list[DenseLayer], list[DenseLayer]]:
    """(encoder up to and including the latent layer, decoder including the output layer)."""
    encoder = list(model.encoder) + [DenseLayer(units=model.latent, activation="linear")]
    if model.decoder == "mirror":
        decoder = [layer.model_copy() for layer in reversed(model.encoder)]
    else:
        decoder = list(model.decoder)
    return encoder, decoder + [DenseLayer(units=n_features, activation="linear")]


def result_type(layer: DenseLayer, q: Quantization) -> FixedType:
    t = qkeras_type(layer.result or q.result)
    return relu_type(t) if layer.activation == "relu" else t


def build(model: NetworkModel, q: Quantization, n_features: int, *, quantized: bool, seed: int,
          pruning: Pruning | None = None, steps_per_epoch: int = 1) -> Networks:
    """The networks of `model`; with `pruning`, the quantised dense layers are pruned to its sparsity (tfmot)."""
    keras = tf.keras
    prune = _pruner(pruning, steps_per_epoch) if quantized else None
    inputs = keras.Input((n_features,), name="inputs")
    x = _quant(inputs, qkeras_type(q.input), "input_quant", quantized)
    encoder, decoder = layer_stack(model, n_features)
    h = x
    for i, layer in enumerate(encoder[:-1]):
        h = _dense(h, layer, q, f"enc_{i}", quantized, prune)
    if model.kind == "dense_ae":
        z = _dense(h, encoder[-1], q, "latent", quantized, prune)
        reco = _decode(z, decoder, q, quantized, prune)
        score = _sum_of_squares(_ae_difference(x, reco, q, quantized), q, quantized, mean=model.score == "mean")
        return Networks(keras.Model(inputs, reco, name="dense_ae"), keras.Model(inputs, score, name="dense_ae_score"))

    mu = _dense(h, encoder[-1], q, "z_mean", quantized, prune)
    log_var = _dense(h, encoder[-1], q, "z_log_var", quantized, prune)
    log_var = tf.keras.layers.Lambda(lambda v: tf.clip_by_value(v, -8.0, 8.0), name="z_log_var_clip")(log_var)
    rng = tf.random.Generator.from_seed(seed)
    z = Sampling(rng, name="sampling")([mu, log_var])
    reco = _decode(z, decoder, q, quantized, prune)
    train_model = keras.Model(inputs, reco, name="vae")
    kl = -0.5 * tf.reduce_mean(tf.reduce_sum(1 + log_var - tf.square(mu) - tf.exp(log_var), axis=1))
    train_model.add_loss(model.beta * kl / n_features)
    score = _sum_of_squares(mu, q, quantized, mean=False)
    return Networks(train_model, keras.Model(inputs, score, name="vae_encoder_score"), rng)


def _pruner(pruning: Pruning | None, steps_per_epoch: int):
    if pruning is None:
        return None
    import tensorflow_model_optimization as tfmot  # heavy: imported only where needed

    schedule = tfmot.sparsity.keras.ConstantSparsity(pruning.sparsity, begin_step=pruning.begin_epoch * steps_per_epoch,
                                                     frequency=max(1, steps_per_epoch // 4))
    return lambda layer: tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)


def _decode(z, decoder: list[DenseLayer], q: Quantization, quantized: bool, prune):
    h = z
    for i, layer in enumerate(decoder):
        h = _dense(h, layer, q, f"dec_{i}" if i < len(decoder) - 1 else "output", quantized, prune)
    return h


def _dense(h, layer: DenseLayer, q: Quantization, name: str, quantized: bool, prune=None):
    keras = tf.keras
    if quantized:
        dense = QDense(layer.units, name=name,
                       kernel_quantizer=quantizer(qkeras_type(layer.weight or q.weight)),
                       bias_quantizer=quantizer(qkeras_type(layer.bias or q.bias)))
        h = (prune(dense) if prune else dense)(h)
    else:
        h = keras.layers.Dense(layer.units, name=name)(h)
    if layer.batchnorm:
        h = keras.layers.BatchNormalization(name=f"{name}_bn")(h)
    if layer.activation == "relu" and not quantized:
        h = keras.layers.Activation("relu", name=f"{name}_act")(h)
    # quantised: the result quantiser is the activation (quantized_relu for relu, quantized_bits for linear)
    return _quant(h, result_type(layer, q), f"{name}_act", quantized) if quantized else h


def _quant(h, t: FixedType, name: str, quantized: bool):
    if not quantized:
        return tf.keras.layers.Activation("linear", name=name)(h)
    return QActivation(quantizer(t), name=name)(h)


def _ae_difference(x, reco, q: Quantization, quantized: bool):
    d = tf.keras.layers.Subtract(name="score_diff")([x, reco])
    return _quant(d, qkeras_type(q.score_diff), "score_diff_quant", quantized) if quantized else d


def _sum_of_squares(v, q: Quantization, quantized: bool, *, mean: bool):
    keras = tf.keras
    sq = keras.layers.Multiply(name="score_square")([v, v])
    if quantized:
        sq = _quant(sq, qkeras_type(q.score_square), "score_square_quant", True)
    n = int(v.shape[-1])
    weight = 2.0 ** -math.ceil(math.log2(n)) if mean else 1.0
    total = keras.layers.Dense(1, use_bias=False, trainable=False, name="score_sum",
                               kernel_initializer=keras.initializers.Constant(weight))(sq)
    return _quant(total, qkeras_type(q.score), "score", quantized) if quantized else \
        keras.layers.Activation("linear", name="score")(total)


class Sampling(tf.keras.layers.Layer):
    """z = mu + exp(log_var / 2) * eps in training, with eps from a seeded generator that is checkpointed; mu otherwise."""

    def __init__(self, rng: tf.random.Generator, **kwargs):
        super().__init__(**kwargs)
        self.rng = rng

    def call(self, inputs, training=None):
        mu, log_var = inputs
        if not training:
            return mu
        return mu + tf.exp(0.5 * log_var) * self.rng.normal(tf.shape(mu))
