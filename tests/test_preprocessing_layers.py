"""Preprocessing layers inside a model: Resizing / CenterCrop always run (vs Keras 3 and
closed forms); Random* act only with training=True, are seeded, and match Keras for fixed
factors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnkit import layers
from cnnkit.models import Sequential

rng = np.random.default_rng(5)
X = rng.uniform(0, 255, (3, 8, 10, 2)).astype(np.float32)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _np(t):
    return np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t)


def test_center_crop_closed_form():
    out = layers.CenterCrop(4, 5)(X).data
    np.testing.assert_array_equal(out, X[:, 2:6, 2:7])  # (8-4)//2 = 2, (10-5)//2 = 2


@pytest.mark.parametrize("size", [(4, 5), (16, 20), (5, 7)])
def test_resizing_vs_keras(size):
    keras = _keras()
    ours = layers.Resizing(*size)(X).data
    theirs = _np(keras.layers.Resizing(*size)(X))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-3)


def test_center_crop_vs_keras():
    keras = _keras()
    np.testing.assert_allclose(layers.CenterCrop(5, 7)(X).data,
                               _np(keras.layers.CenterCrop(5, 7)(X)), atol=1e-4)


@pytest.mark.parametrize("make", [
    lambda: layers.RandomFlip(seed=1), lambda: layers.RandomRotation(0.2, seed=1),
    lambda: layers.RandomZoom(0.3, seed=1), lambda: layers.RandomTranslation(0.2, 0.2, seed=1),
    lambda: layers.RandomContrast(0.5, seed=1), lambda: layers.RandomBrightness(0.3, seed=1)])
def test_random_layers_identity_at_inference_and_seeded_in_training(make):
    layer = make()
    np.testing.assert_array_equal(layer(X).data, X)
    np.testing.assert_array_equal(layer(X, training=False).data, X)
    a = layer(X, training=True).data
    b = make()(X, training=True).data
    np.testing.assert_array_equal(a, b)  # same seed, same draw
    assert not np.array_equal(a, X) and a.shape == X.shape and a.dtype == X.dtype
    cfg = layer.get_config()
    assert type(layer).from_config(cfg).get_config() == cfg


def test_random_flip_is_a_flip_per_sample():
    out = layers.RandomFlip("horizontal", seed=0)(X, training=True).data
    for o, x in zip(out, X, strict=True):
        assert np.array_equal(o, x) or np.array_equal(o, x[:, ::-1])


def test_rotation_quarter_turn_vs_keras_and_closed_form():
    keras = _keras()
    sq = X[:, :, :8]
    ours = layers.RandomRotation((0.25, 0.25))(sq, training=True).data
    np.testing.assert_allclose(ours, np.rot90(sq, 1, axes=(1, 2)), atol=1e-3)  # CCW
    theirs = _np(keras.layers.RandomRotation((0.25, 0.25))(sq, training=True))
    np.testing.assert_allclose(ours, theirs, atol=1e-2)


def test_translation_vs_keras():
    keras = _keras()
    kw = dict(height_factor=(0.25, 0.25), width_factor=(-0.2, -0.2), fill_mode="constant")
    ours = layers.RandomTranslation(**kw)(X, training=True).data
    theirs = _np(keras.layers.RandomTranslation(**kw)(X, training=True))
    np.testing.assert_allclose(ours, theirs, atol=1e-2)
    np.testing.assert_allclose(ours[:, 2:, :8], X[:, :6, 2:], atol=1e-3)  # 2 down, 2 left


def test_zoom_vs_keras():
    keras = _keras()
    sq = X[:, :, :8]
    ours = layers.RandomZoom((-0.5, -0.5), fill_mode="constant")(sq, training=True).data
    theirs = _np(keras.layers.RandomZoom((-0.5, -0.5), fill_mode="constant")(sq, training=True))
    np.testing.assert_allclose(ours, theirs, atol=1e-2 * 255)


@pytest.mark.parametrize("name,factor", [("RandomContrast", (-0.4, 0.4)),
                                         ("RandomBrightness", (0.2, 0.2))])
def test_intensity_vs_keras_fixed_factor(name, factor):
    """One-point ranges: contrast c = 1 + 0.4 (Keras reads (lower, upper) as [1 - lower,
    1 + upper]), brightness delta = 0.2 * 255."""
    keras = _keras()
    ours = getattr(layers, name)(factor)(X, training=True).data
    theirs = _np(getattr(keras.layers, name)(factor)(X, training=True))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-2)
    mean = X.mean(axis=(1, 2), keepdims=True)
    expected = np.clip((X - mean) * 1.4 + mean if name == "RandomContrast" else X + 51, 0, 255)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-3)


def test_in_a_model_fit_and_predict_and_save(tmp_path):
    from cnnkit.models import load_model
    m = Sequential([layers.Resizing(6, 6, input_shape=(8, 10, 2)), layers.RandomFlip(seed=3),
                    layers.RandomRotation(0.1, seed=3), layers.Rescaling(1 / 255),
                    layers.Flatten(), layers.Dense(2)])
    m.compile("sgd", "mse")
    m.fit(X, np.zeros((3, 2), np.float32), epochs=1, verbose=0)
    p = m.predict(X, verbose=0)
    ref = Sequential([layers.Resizing(6, 6, input_shape=(8, 10, 2)), layers.Rescaling(1 / 255),
                      layers.Flatten(), layers.Dense(2)])
    ref.layers[-1].set_weights(m.layers[-1].get_weights())
    np.testing.assert_allclose(p, ref.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    m.save(tmp_path / "m.cnnkit")
    np.testing.assert_allclose(load_model(tmp_path / "m.cnnkit").predict(X, verbose=0), p,
                               rtol=1e-6, atol=1e-6)


def test_random_layer_after_trainable_layer_refuses_in_training():
    from cnnkit.autograd import Tensor
    conv = layers.Conv2D(2, 1)
    y = conv(Tensor(X / 255))
    with pytest.raises(ValueError, match="RandomFlip 'flip'.*before trainable"):
        layers.RandomFlip(name="flip")(y, training=True)
