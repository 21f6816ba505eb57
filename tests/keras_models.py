"""Keras 3 models (torch backend) built in the tests, with random weights, and the check that
cnnkit and Keras give the same outputs. Shared by the Keras-file tests."""

from __future__ import annotations

import os

import numpy as np
import pytest


def keras_or_skip():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("h5py", reason="h5py is not installed (pip install 'cnnkit[keras]')")
    keras = pytest.importorskip("keras", reason="keras is not installed")
    if keras.backend.backend() != "torch":
        pytest.skip("keras is not on the torch backend")
    return keras


def randomize(model, seed=0):
    """Non-trivial weights everywhere (variances positive), Keras or cnnkit model."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        name = getattr(w, "path", None) or w.name
        shape = tuple(w.shape)
        value = (rng.uniform(0.5, 1.5, shape) if "variance" in name
                 else rng.standard_normal(shape) * 0.4).astype(np.float32)
        if hasattr(w, "assign"):
            w.assign(value)
        else:
            w.data[...] = value
    return model


def keras_out(keras, model, x):
    y = model(x, training=False)
    return [keras.ops.convert_to_numpy(t) for t in y] if isinstance(y, (list, tuple)) \
        else keras.ops.convert_to_numpy(y)


def max_error(a, b):
    if isinstance(a, list):
        return max(max_error(p, q) for p, q in zip(a, b, strict=True))
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)))


def sequential_cnn(keras):
    L = keras.layers
    return keras.Sequential([
        keras.Input((12, 12, 3)), L.Conv2D(6, 3, padding="same", activation="relu"),
        L.BatchNormalization(), L.MaxPooling2D(), L.Conv2D(8, 3, strides=2),
        L.BatchNormalization(momentum=0.9, epsilon=1e-5), L.ReLU(), L.Flatten(),
        L.Dropout(0.3), L.Dense(5, activation="softmax", name="out")], name="seq_cnn")


def functional_net(keras):
    """Residual Add, Concatenate, a layer shared by two branches, a nested functional model
    and a nested Sequential, separable and depthwise convolutions, batch normalization."""
    L = keras.layers
    inp = keras.Input((10, 10, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="stem")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation("relu")(x)
    sub_in = keras.Input((10, 10, 8))
    s = L.SeparableConv2D(8, 3, padding="same", depth_multiplier=2)(sub_in)
    s = L.BatchNormalization()(s)
    block = keras.Model(sub_in, L.ReLU()(s), name="block")
    y = block(x)
    x = L.Add()([x, y])  # residual
    shared = L.DepthwiseConv2D(3, padding="same", name="shared_dw")
    a, b = shared(x), shared(y)
    head = keras.Sequential([keras.Input((10, 10, 8)), L.Conv2D(4, 1),
                             L.BatchNormalization()], name="head")
    x = L.Concatenate()([a, b, head(x)])
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="func_net")
