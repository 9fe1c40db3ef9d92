"""Your own networks in every layer form hls4ml 1.3 converts: models built here (quantisers as objects or as strings),
saved as architecture JSON + weights, as one .h5 or as a SavedModel folder, converted with `l1ml convert --keras` and
verified bit for bit on random inputs over the input grid (C-simulation == QKeras, and the emulator where it supports
every layer). Forms that cannot be made exact are refused with one message naming the layer, the quantiser, what is
wrong and what to do."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

N_IN = 8
EVENTS = 1500


# the forms ----------------------------------------------------------------------------------------------------------


def objects():
    """Quantisers given as objects, the usual way: an input quantiser, power-of-two kernels, a quantised relu."""
    from qkeras import QActivation, QDense, quantized_bits, quantized_po2, quantized_relu

    return [QActivation(quantized_bits(12, 5, alpha=1), name="q_in"),
            QDense(16, kernel_quantizer=quantized_po2(5, 1), bias_quantizer=quantized_bits(8, 3, alpha=1), name="d1"),
            QActivation(quantized_relu(8, 3), name="r1"),
            QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1), name="d2")]


def strings():
    """Quantisers given as strings, a linear quantized_bits right after a dense layer."""
    from qkeras import QActivation, QDense

    return [QActivation("quantized_bits(10,3,alpha=1)", name="q_in"),
            QDense(16, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(8,3,alpha=1)", name="d1"),
            QActivation("quantized_bits(8,2,alpha=1)", name="b1"),
            QActivation("quantized_relu(6,2)", name="r1"),
            QDense(4, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(8,3,alpha=1)", name="d2")]


def keep_negative():
    """quantized_bits without the sign (kernel and activation) and symmetric: hls4ml reads both as the plain form."""
    from qkeras import QActivation, QDense, quantized_bits

    return [QDense(16, kernel_quantizer=quantized_bits(6, 0, keep_negative=False, alpha=1),
                   bias_quantizer=quantized_bits(8, 3, alpha=1), name="d1"),
            QActivation(quantized_bits(8, 3, keep_negative=False), name="u1"),
            QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1), name="d2"),
            QActivation(quantized_bits(9, 2, symmetric=1, alpha=1), name="sym")]


def alpha_po2():
    """Kernels scaled by powers of two: alpha='auto_po2', and alpha=None, which QDense turns into 'auto_po2'."""
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    return [QActivation(quantized_bits(10, 3, alpha=1), name="q_in"),
            QDense(16, kernel_quantizer=quantized_bits(6, 0, alpha="auto_po2"), bias_quantizer=quantized_bits(8, 3, alpha=1), name="d1"),
            QActivation(quantized_relu(8, 3), name="r1"),
            QDense(4, kernel_quantizer=quantized_bits(6, 0), bias_quantizer=quantized_bits(8, 3), name="d2")]


def leaky_relu():
    """quantized_relu with a negative slope right after a dense layer: its input is saturated at -2**I first."""
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    return [QActivation(quantized_bits(10, 3, alpha=1), name="q_in"),
            QDense(16, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1), name="d1"),
            QActivation(quantized_relu(8, 2, negative_slope=0.25), name="leaky"),
            QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1), name="d2")]


def dense_activations():
    """Activations given to QDense: a quantiser object, a quantiser string, and 'relu'."""
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    q = {"kernel_quantizer": "quantized_bits(6,0,alpha=1)", "bias_quantizer": "quantized_bits(8,3,alpha=1)"}
    return [QActivation(quantized_bits(10, 3, alpha=1), name="q_in"),
            QDense(16, activation=quantized_relu(8, 3), name="d1", **q),
            QDense(8, activation="quantized_bits(8,3,alpha=1)", name="d2", **q),
            QDense(4, activation="relu", name="d3", **q)]


def keras_layers():
    """A Sequential model with Keras layers: Dense with float weights on a grid, ReLU, Activation('relu' | 'linear'), and
    QActivation('relu') (a Keras function, not a quantiser)."""
    import tensorflow as tf
    from qkeras import QActivation, quantized_bits, quantized_relu

    layers = tf.keras.layers
    return tf.keras.Sequential([QActivation(quantized_bits(8, 3, alpha=1), name="q_in", input_shape=(N_IN,)),
                                layers.Dense(16, activation="relu", name="d1"), QActivation(quantized_relu(6, 3), name="r1"),
                                layers.Dense(8, name="d2"), layers.ReLU(name="relu2"), QActivation("relu", name="qrelu2"),
                                layers.Activation("linear", name="lin"),
                                QActivation(quantized_bits(8, 3, alpha=1), name="b2"),
                                layers.Dense(4, name="d3"), layers.Activation("relu", name="relu3")])


def batchnorm():
    """QBatchNormalization with QKeras' default power-of-two quantisers and epsilon=0, folded into the dense layer."""
    from qkeras import QActivation, QBatchNormalization, QDense, quantized_bits, quantized_relu

    return [QActivation(quantized_bits(10, 3, alpha=1), name="q_in"),
            QDense(16, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1), name="d1"),
            QBatchNormalization(epsilon=0.0, name="bn"),
            QActivation(quantized_relu(8, 3), name="r1"),
            QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 3, alpha=1), name="d2")]


def classifier():
    """A classifier whose last dense layer ends in a softmax: its logits are verified bit for bit."""
    from qkeras import QActivation, QDense, quantized_bits

    q = {"kernel_quantizer": quantized_bits(6, 0, alpha=1), "bias_quantizer": quantized_bits(8, 3, alpha=1)}
    return [QActivation(quantized_bits(10, 3, alpha=1), name="q_in"),
            QDense(16, activation="quantized_relu(8,3)", name="d1", **q),
            QDense(4, activation="softmax", name="d2", **q)]


CONVERTS = [  # (form, save format, what l1ml rewrites for hls4ml, the emulator supports every layer)
    pytest.param(objects, "json", ["d1: kernel (quantized_po2(5,1)) as quantized_bits(13,1,alpha=1)"], True, id="objects-json"),
    pytest.param(objects, "h5", ["d1: kernel (quantized_po2(5,1)) as quantized_bits(13,1,alpha=1)"], True, id="objects-h5"),
    pytest.param(objects, "savedmodel", ["d1: kernel (quantized_po2(5,1)) as quantized_bits(13,1,alpha=1)"], True, id="objects-savedmodel"),
    pytest.param(strings, "h5", [], True, id="strings-h5"),
    pytest.param(keep_negative, "savedmodel",
                 ["d1: kernel (quantized_bits(6,0,0,keep_negative=False,alpha=1)) as quantized_bits(7,0,alpha=1)"], True,
                 id="keep_negative-symmetric-savedmodel"),
    pytest.param(alpha_po2, "json", ["d1: kernel (quantized_bits(6,0,1,alpha='auto_po2')) as quantized_bits(7,0,alpha=1)",
                                     "d2: kernel (quantized_bits(6,0,1,alpha='auto_po2')) as quantized_bits(7,1,alpha=1)"], True,
                 id="alpha_po2-json"),
    pytest.param(leaky_relu, "h5", ["leaky: negative side clipped at -4.0 first (leaky_clip: quantized_bits(14,2,alpha=1))"], False,
                 id="leaky_relu-h5"),
    pytest.param(dense_activations, "json", ["d1: activation quantized_relu(8,3) as layer d1_activation",
                                             "d2: activation quantized_bits(8,3,0,alpha=1) as layer d2_activation",
                                             "d3: relu as quantized_relu(14,5), which holds its input's values"], True,
                 id="dense_activations-json"),
    pytest.param(keras_layers, "h5", ["d1: kernel (not quantised) as quantized_bits(6,1,alpha=1)",
                                      "d1: bias (not quantised) as quantized_bits(5,0,alpha=1)",
                                      "d1: relu as quantized_relu(14,6), which holds its input's values",
                                      "d2: kernel (not quantised) as quantized_bits(6,1,alpha=1)",
                                      "d2: bias (not quantised) as quantized_bits(6,1,alpha=1)",
                                      "relu2: relu as quantized_relu(13,6), which holds its input's values",
                                      "qrelu2: relu as quantized_relu(13,6), which holds its input's values",
                                      "lin: linear activation dropped",
                                      "d3: kernel (not quantised) as quantized_bits(5,0,alpha=1)",
                                      "d3: bias (not quantised) as quantized_bits(5,0,alpha=1)",
                                      "relu3: relu as quantized_relu(13,5), which holds its input's values"], True,
                 id="keras_layers-sequential-h5"),
    pytest.param(batchnorm, "savedmodel", ["bn: folded into d1", "d1: kernel (quantized_bits(6,0,0,alpha=1)) as quantized_bits(9,1,alpha=1)",
                                           "d1: bias (quantized_bits(8,3,0,alpha=1)) as quantized_bits(9,2,alpha=1)"], True,
                 id="batchnorm_folded-savedmodel"),
    pytest.param(classifier, "json", ["d1: activation quantized_relu(8,3) as layer d1_activation", "d2: softmax as layer d2_activation"],
                 True, id="softmax_classifier-json"),
]


def alpha_auto():
    from qkeras import QDense, quantized_bits

    return [QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha="auto"), bias_quantizer=quantized_bits(8, 3, alpha=1), name="d1")]


def activation_alpha():
    from qkeras import QActivation, quantized_bits

    return [QActivation(quantized_bits(8, 3, alpha="auto_po2"), name="q_in")]


def stochastic():
    from qkeras import QActivation, quantized_bits

    return [QActivation(quantized_bits(8, 3, alpha=1, use_stochastic_rounding=True), name="q_in")]


def tanh():
    from qkeras import QActivation, quantized_tanh

    return [QActivation(quantized_tanh(8), name="t1")]


def sigmoid():
    import tensorflow as tf
    from qkeras import QDense

    return [QDense(4, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(8,3,alpha=1)", name="d1"),
            tf.keras.layers.Activation("sigmoid", name="sig")]


def softmax_inside():
    import tensorflow as tf
    from qkeras import QDense

    return [tf.keras.layers.Activation("softmax", name="sm"),
            QDense(4, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(8,3,alpha=1)", name="d1")]


def float_weights():
    import tensorflow as tf

    return [tf.keras.layers.Dense(4, name="d1")]


def wide_sums():
    from qkeras import QDense

    return [QDense(4, kernel_quantizer="quantized_bits(12,0,alpha=1)", bias_quantizer="quantized_bits(8,3,alpha=1)", name="d1")]


def batchnorm_default():
    from qkeras import QBatchNormalization, QDense

    return [QDense(4, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(8,3,alpha=1)", name="d1"),
            QBatchNormalization(name="bn")]


def batchnorm_after_activation():
    from qkeras import QBatchNormalization, QDense

    return [QDense(4, kernel_quantizer="quantized_bits(6,0,alpha=1)", bias_quantizer="quantized_bits(8,3,alpha=1)",
                   activation="quantized_relu(8,3)", name="d1"),
            QBatchNormalization(epsilon=0.0, name="bn")]


def layer_norm():
    import tensorflow as tf

    return [tf.keras.layers.LayerNormalization(name="ln")]


REFUSED = [  # (form, the message after "error: <architecture file>: ")
    pytest.param(alpha_auto, "layer 'd1' (QDense): its kernel quantiser quantized_bits(6,0,1,alpha='auto') scales by 1.39931, not a "
                             "power of two, which no fixed-point kernel holds exactly: give alpha=1 or alpha='auto_po2'", id="alpha_auto"),
    pytest.param(activation_alpha, "layer 'q_in' (QActivation): quantized_bits(8,3,1,alpha='auto_po2'): alpha='auto_po2' scales an "
                                   "activation by a factor computed from each batch (or given), which the firmware does not apply: "
                                   "give alpha=1", id="activation_alpha"),
    pytest.param(stochastic, "layer 'q_in' (QActivation): quantized_bits(8,3,0,alpha=1,use_stochastic_rounding=1): stochastic "
                             "rounding is random: give use_stochastic_rounding=False", id="stochastic_rounding"),
    pytest.param(tanh, "layer 't1' (QActivation): quantized_tanh(8): l1ml converts the activation quantisers quantized_bits and "
                       "quantized_relu bit for bit: hls4ml computes quantized_tanh with an approximation (or not at all)", id="quantized_tanh"),
    pytest.param(sigmoid, "layer 'sig' (Activation): activation 'sigmoid' is computed by hls4ml with lookup tables or "
                          "approximations, not bit for bit: use relu or linear, or a QActivation(quantized_relu | quantized_bits)",
                 id="sigmoid"),
    pytest.param(softmax_inside, "layer 'sm' (Activation): a softmax converts only as the model's last layer", id="softmax_inside"),
    pytest.param(float_weights, "layer 'd1' (Dense): its kernel (not quantised): the values need a 32-bit type (ap_fixed<32,2>) to be "
                                "held exactly; at most 24 bits here, as QKeras computes in float32; quantise it with "
                                "quantized_bits(W, I, alpha=1) of at most 24 bits", id="float_weights"),
    pytest.param(wide_sums, "layer 'd1' (QDense): its sums can need 28 bits (inputs on a grid of 2**-10 in [-32, 31.999]), but QKeras "
                            "computes them in float32, which holds 24: QKeras would round where the firmware does not; give a "
                            "narrower --input-type or quantise the inputs (a QActivation(quantized_bits(W, I)) first)", id="float32_sums"),
    pytest.param(batchnorm_default, "layer 'bn' (QBatchNormalization): it scales channel 0 by gamma/sqrt(variance + epsilon) = "
                                    "0.9995, not a power of two, so the firmware cannot reproduce it bit for bit: fold it into the "
                                    "preceding layer before quantisation-aware training, or remove it", id="batchnorm_scale"),
    pytest.param(batchnorm_after_activation, "layer 'bn' (QBatchNormalization): it normalises the output of 'd1' after its "
                                             "activation, which does not fold: give the dense layer no activation and put the "
                                             "activation after the normalisation", id="batchnorm_after_activation"),
    pytest.param(layer_norm, "layer 'ln' (LayerNormalization): l1ml converts these forms bit for bit: Dense/QDense", id="other_layer"),
]


# helpers ------------------------------------------------------------------------------------------------------------


def build(form, seed: int = 1):
    """The model of `form` with reproducible weights: dense kernels ~ N(0, 0.5) (quantised by their quantisers), float
    Dense weights on a grid of 1/16 (so that they convert), batch normalisations with power-of-two variances."""
    import tensorflow as tf

    layers = form()
    if isinstance(layers, tf.keras.Model):
        model = layers
    else:
        inputs = tf.keras.Input((N_IN,), name="x")
        x = inputs
        for layer in layers:
            x = layer(x)
        model = tf.keras.Model(inputs, x)
    rng = np.random.Generator(np.random.PCG64(seed))
    for layer in model.layers:
        weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
        if type(layer).__name__ == "Dense" and form is not float_weights:
            weights = [np.round(w * 16) / 16 for w in weights]
        if "BatchNormalization" in type(layer).__name__:
            n = weights[0].shape[0]
            weights = [np.abs(weights[0]) + 0.5, weights[1], weights[2], 4.0 ** rng.integers(-1, 2, n).astype(np.float32)]
        layer.set_weights(weights)
    return model


def save(model, folder, fmt: str):
    """The --keras (and --weights) arguments of `model` saved in `fmt`."""
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # Keras on QKeras quantisers and on the legacy .h5 format
        warnings.simplefilter("ignore")
        if fmt == "json":
            (folder / "model.json").write_text(model.to_json())
            model.save_weights(folder / "weights.h5")
            return ["--keras", str(folder / "model.json"), "--weights", str(folder / "weights.h5")]
        if fmt == "h5":
            model.save(folder / "model.h5")
            return ["--keras", str(folder / "model.h5")]
        model.save(folder / "saved_model")
        return ["--keras", str(folder / "saved_model")]


def _exact_rsqrt() -> bool:
    """TensorFlow's vectorised rsqrt is exact for 1.0 on this CPU (it is not with AVX-512: 0.9999999)."""
    import tensorflow as tf

    return bool(np.all(tf.math.rsqrt(tf.ones(16)).numpy() == 1.0))


def l1ml(capsys, *args) -> tuple[int, str, str]:
    """`l1ml ARGS` as a user runs it: (exit code, stdout, stderr)."""
    from l1ml.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


# tests --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form, fmt, rewritten, emulated", CONVERTS)
def test_form_converts_and_verifies_bit_for_bit(form, fmt, rewritten, emulated, tmp_path, capsys):
    from l1ml.verify.run import VerifyOptions, verify

    model = build(form)
    out = tmp_path / "out"
    code, _, err = l1ml(capsys, "convert", *save(model, tmp_path / "model", fmt), "--out", str(out), "--target", "vu9p")
    if form is batchnorm and not _exact_rsqrt():
        # TensorFlow's own inference scales by 0.9999999 on this CPU, not 1: no firmware reproduces that bit for bit
        assert code == 1 and "TensorFlow's float32 rsqrt on this CPU is an approximation: 1 exactly on paper" in err, err
        return
    assert code == 0, err
    info = json.loads((out / "byo.json").read_text())
    assert info["rewritten"] == rewritten
    report = verify(out, VerifyOptions(random=EVENTS), log=lambda m: None)
    assert report.passed, report.summary_lines()
    checks = {c.name.split(" ")[0]: c for c in report.checks}
    assert checks["bit_exact"].mismatches == 0 and checks["bit_exact"].events > EVENTS
    assert ("emulator" in checks) == emulated, report.summary_lines()


@pytest.mark.parametrize("form, message", REFUSED)
def test_form_is_refused_by_name(form, message, tmp_path, capsys):
    arguments = save(build(form), tmp_path / "model", "json")
    code, _, err = l1ml(capsys, "convert", *arguments, "--out", str(tmp_path / "out"))
    print(err)
    assert code == 1 and err.startswith(f"error: {arguments[1]}: {message}"), err
    assert "internal error" not in err and "Traceback" not in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["json", "h5", "savedmodel"])
def test_quantiser_objects_load_from_every_save_format(fmt, tmp_path):
    """Layers built from quantiser objects (QActivation writes its object into the JSON, which Keras did not read back)."""
    from l1ml.models.keras import load_keras

    model = build(lambda: objects() + leaky_relu()[2:3] + batchnorm()[2:3])
    arguments = save(model, tmp_path, fmt)
    loaded = load_keras(arguments[1], arguments[3] if len(arguments) > 2 else None)
    assert [type(layer.quantizer).__name__ for layer in loaded.layers if hasattr(layer, "quantizer")] == \
        ["quantized_bits", "quantized_relu", "quantized_relu"]
    x = np.random.Generator(np.random.PCG64(2)).uniform(-16, 16, size=(256, N_IN)).astype(np.float32)
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_emulator_refuses_non_fixed_point_precisions_by_name():
    """hls4ml precisions the emulator cannot use are named (EmulatorUnsupported), not internal errors."""
    from hls4ml.model.types import ExponentPrecisionType, FixedPrecisionType, XnorPrecisionType

    from l1ml.emulate.network import EmulatorUnsupported
    from l1ml.firmware.emulator_spec import hls_type

    assert str(hls_type(FixedPrecisionType(14, 7, True, "RND_CONV", "SAT"))) == "ap_fixed<14,7,AP_RND_CONV,AP_SAT>"
    for precision, why in ((ExponentPrecisionType(5), "exponents of power-of-two values"), (XnorPrecisionType(), "-1 and \\+1")):
        with pytest.raises(EmulatorUnsupported, match=why):
            hls_type(precision)
