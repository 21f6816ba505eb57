"""Weight constraints (vs Keras 3 and closed forms), applied after each optimizer step, and
activity_regularizer penalties (vs the formula and Keras)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnkit import constraints, layers, regularizers
from cnnkit.autograd import Tensor
from cnnkit.train.optimizers import SGD

rng = np.random.default_rng(1)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def test_closed_forms():
    w = np.array([[3.0, -1.0], [4.0, 0.5]], np.float32)  # column norms 5 and ~1.118
    np.testing.assert_allclose(constraints.MaxNorm(2.0)(w)[:, 0], [1.2, 1.6], rtol=1e-6)
    np.testing.assert_allclose(constraints.MaxNorm(2.0)(w)[:, 1], w[:, 1], rtol=1e-6)
    np.testing.assert_array_equal(constraints.NonNeg()(w), [[3, 0], [4, 0.5]])
    np.testing.assert_allclose(np.linalg.norm(constraints.UnitNorm()(w), axis=0), 1, rtol=1e-6)


@pytest.mark.parametrize("name,kwargs", [("MaxNorm", {"max_value": 0.7, "axis": [0, 1, 2]}),
                                         ("NonNeg", {}), ("UnitNorm", {"axis": 1}),
                                         ("MinMaxNorm", {"min_value": 0.5, "max_value": 0.9,
                                                         "rate": 0.5})])
def test_same_as_keras(name, kwargs):
    keras = _keras()
    w = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    ours = getattr(constraints, name)(**kwargs)(w)
    theirs = np.asarray(getattr(keras.constraints, name)(**kwargs)(keras.ops.convert_to_tensor(w)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_get_and_serialize_round_trip():
    c = constraints.get({"class_name": "MaxNorm", "config": {"max_value": 3.0, "axis": 1}})
    assert constraints.serialize(constraints.get(constraints.serialize(c))) == \
        constraints.serialize(c)
    assert isinstance(constraints.get("non_neg"), constraints.NonNeg)
    with pytest.raises(ValueError, match="unknown constraint"):
        constraints.get("nope")


def test_optimizer_applies_constraints_after_each_step():
    d = layers.Dense(3, kernel_constraint="non_neg", bias_constraint=constraints.MaxNorm(0.1))
    x = rng.standard_normal((8, 4)).astype(np.float32)
    d(x)
    opt = SGD(learning_rate=0.5)
    out = d(Tensor(x))
    (out * out).sum().backward()
    free_k = d.kernel.data - 0.5 * d.kernel.grad  # the plain SGD step
    free_b = d.bias.data - 0.5 * d.bias.grad
    assert (free_k < 0).any()
    opt.step(d.trainable_weights)
    np.testing.assert_allclose(d.kernel.data, np.maximum(free_k, 0), rtol=1e-6)
    n = np.linalg.norm(free_b)
    np.testing.assert_allclose(d.bias.data, free_b * min(n, 0.1) / (n + 1e-7), rtol=1e-5)


def test_conv_constraint_in_fit_and_config():
    from cnnkit.models import Sequential
    conv = layers.Conv2D(2, 3, kernel_constraint=constraints.MaxNorm(0.5, axis=[0, 1, 2]),
                         input_shape=(5, 5, 1))
    m = Sequential([conv, layers.Flatten(), layers.Dense(1)])
    m.compile("sgd", "mse")
    m.fit(rng.standard_normal((8, 5, 5, 1)).astype(np.float32), np.ones((8, 1), np.float32),
          epochs=1, verbose=0)
    norms = np.sqrt((conv.kernel.data ** 2).sum(axis=(0, 1, 2)))
    assert (norms <= 0.5 + 1e-5).all()
    cfg = conv.get_config()
    assert cfg["kernel_constraint"] == {"class_name": "MaxNorm",
                                        "config": {"max_value": 0.5, "axis": [0, 1, 2]}}
    assert layers.Conv2D.from_config(cfg).get_config() == cfg


def test_activity_regularizer_formula():
    d = layers.Dense(3, activity_regularizer=regularizers.L2(0.1))
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = d(x).data
    reg = sum(float(t.data) for t in d.losses)
    np.testing.assert_allclose(reg, 0.1 * (y.astype(np.float64) ** 2).sum() / 4, rtol=1e-5)
    cfg = d.get_config()
    assert cfg["activity_regularizer"] == {"class_name": "L1L2",
                                           "config": {"l1": 0.0, "l2": 0.1}}
    assert layers.Dense.from_config(cfg).activity_regularizer.l2 == 0.1


def test_activity_regularizer_vs_keras_and_gradient():
    keras = _keras()
    x = rng.standard_normal((4, 5)).astype(np.float32)
    ours = layers.Dense(3, activity_regularizer=regularizers.L1(0.2))
    ours(x)
    theirs = keras.layers.Dense(3, activity_regularizer=keras.regularizers.L1(0.2))
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    theirs(x)
    ref = float(sum(float(t.detach().cpu()) for t in theirs.losses))
    ours(Tensor(x))
    np.testing.assert_allclose(sum(float(t.data) for t in ours.losses), ref, rtol=1e-5)
    # the penalty reaches the kernel's gradient
    out = ours(Tensor(x))
    sum(ours.losses, out.sum() * 0.0).backward()
    assert ours.kernel.grad is not None and np.abs(ours.kernel.grad).sum() > 0


def test_bad_stored_configs_are_value_errors():
    with pytest.raises(ValueError, match="bad config for constraint MaxNorm"):
        constraints.get({"class_name": "MaxNorm", "config": {"nope": 1}})
    with pytest.raises(ValueError, match="axis must be"):
        constraints.get({"class_name": "UnitNorm", "config": {"axis": "x"}})


@pytest.mark.parametrize("cls, kw", [
    ("DepthwiseConv2D", {"depthwise_constraint": "non_neg", "bias_constraint": "non_neg"}),
    ("SeparableConv2D", {"filters": 3, "depthwise_constraint": "non_neg",
                         "pointwise_constraint": "non_neg", "bias_constraint": "non_neg"})])
def test_depthwise_and_separable_constraints(cls, kw):
    from cnnkit.models import Sequential
    conv = getattr(layers, cls)(kernel_size=3, input_shape=(6, 6, 2), **kw)
    m = Sequential([conv, layers.Flatten(), layers.Dense(1)])
    m.compile("sgd", "mse")
    x = rng.standard_normal((8, 6, 6, 2)).astype(np.float32)
    m.fit(x, -np.ones((8, 1), np.float32), epochs=2, verbose=0)
    for w in conv.trainable_weights:  # NonNeg: max(w, 0) after every step
        assert (w.data >= 0).all(), w.name
    assert any((w.data == 0).any() for w in conv.trainable_weights)  # the constraint bit
    cfg = conv.get_config()
    for k in kw:
        if k.endswith("_constraint"):
            assert cfg[k] == {"class_name": "NonNeg", "config": {}}
    assert getattr(layers, cls).from_config(cfg).get_config() == cfg


@pytest.mark.parametrize("make, names", [
    (lambda: layers.BatchNormalization(beta_constraint="non_neg", gamma_constraint="non_neg"),
     ("beta", "gamma")),
    (lambda: layers.Conv2DTranspose(2, 3, kernel_constraint="non_neg",
                                    bias_constraint="non_neg"), ("kernel", "bias"))])
def test_norm_and_transpose_constraints(make, names):
    from cnnkit.models import Sequential
    layer = make()
    m = Sequential([layers.Input((5, 5, 2)), layer, layers.Flatten(), layers.Dense(1)])
    m.compile("sgd", "mse")
    x = rng.standard_normal((8, 5, 5, 2)).astype(np.float32)
    m.fit(x, -np.ones((8, 1), np.float32), epochs=2, verbose=0)
    for n in names:
        assert (getattr(layer, n).data >= 0).all(), n
    cfg = layer.get_config()
    assert type(layer).from_config(cfg).get_config() == cfg


def test_embedding_constraint():
    from cnnkit.models import Sequential
    emb = layers.Embedding(10, 4, embeddings_constraint=constraints.MaxNorm(0.5, axis=1))
    m = Sequential([layers.Input((3,)), emb, layers.Flatten(), layers.Dense(1)])
    m.compile(optimizers_sgd(), "mse")
    ids = rng.integers(0, 10, (16, 3)).astype(np.float32)
    m.fit(ids, np.full((16, 1), 5.0, np.float32), epochs=3, verbose=0)
    assert (np.linalg.norm(emb.embeddings.data, axis=1) <= 0.5 + 1e-5).all()
    assert emb.get_config()["embeddings_constraint"]["class_name"] == "MaxNorm"


def optimizers_sgd():
    from cnnkit.optimizers import SGD
    return SGD(learning_rate=1.0)
