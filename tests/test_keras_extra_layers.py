"""LayerNormalization, GroupNormalization and PReLU: gradients vs finite differences (float64),
outputs and gradients vs PyTorch, outputs vs Keras 3, configs round trip."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import check_vs_torch, gradcheck

from cnnkit import Tensor, layers, ops

rng = np.random.default_rng(0)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras is not on the torch backend")
    return keras


@pytest.mark.parametrize("axis", [-1, (1, 2, 3), (2, 3)])
def test_layer_norm_gradcheck(axis):
    x = rng.standard_normal((2, 3, 4, 5))
    shape = tuple(x.shape[a] for a in ((axis,) if isinstance(axis, int) else axis))
    g, b = rng.standard_normal(shape), rng.standard_normal(shape)
    gradcheck(lambda x, g, b: ops.layer_norm(x, g, b, axis=axis, epsilon=1e-3), x, g, b)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_gradcheck(groups):
    x = rng.standard_normal((2, 3, 2, 6))
    g, b = rng.standard_normal(6), rng.standard_normal(6)
    gradcheck(lambda x, g, b: ops.group_norm(x, groups, g, b, epsilon=1e-3), x, g, b)


def test_prelu_gradcheck():
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    a = rng.standard_normal((1, 5))
    gradcheck(ops.prelu, x, a)


def test_layer_norm_vs_torch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 6, 8)).astype(np.float32)
    g, b = rng.standard_normal(8), rng.standard_normal(8)
    check_vs_torch(lambda x, g, b: ops.layer_norm(x, g, b, epsilon=1e-5),
                   lambda x, g, b: torch.nn.functional.layer_norm(x, (8,), g, b, eps=1e-5),
                   x, g, b, what="layer_norm")


def test_group_norm_vs_torch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 5, 4, 6)).astype(np.float32)
    g, b = rng.standard_normal(6), rng.standard_normal(6)

    def theirs(x, g, b):
        y = torch.nn.functional.group_norm(x.permute(0, 3, 1, 2), 3, g, b, eps=1e-3)
        return y.permute(0, 2, 3, 1)
    check_vs_torch(lambda x, g, b: ops.group_norm(x, 3, g, b, epsilon=1e-3), theirs, x, g, b,
                   what="group_norm")


def test_prelu_vs_torch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    a = rng.standard_normal(3).astype(np.float32)

    def theirs(x, a):
        return torch.nn.functional.prelu(x.permute(0, 3, 1, 2), a).permute(0, 2, 3, 1)
    check_vs_torch(lambda x, a: ops.prelu(x, a.reshape(1, 1, 3)), theirs, x, a, what="prelu")


def _same_as_keras(ours, theirs, x):
    y = ours(x)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    ref = np.asarray(theirs(x).detach().cpu().numpy())
    np.testing.assert_allclose(y.data, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", [-1, [2, 3]])  # keras-torch takes trailing axes only
def test_layer_normalization_vs_keras(axis):
    keras = _keras()
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    ours = layers.LayerNormalization(axis=axis, gamma_initializer="random_normal",
                                     beta_initializer="random_normal")
    _same_as_keras(ours, keras.layers.LayerNormalization(axis=axis), x)


@pytest.mark.parametrize("axis, shape", [(-1, (2, 4, 5, 8)), (1, (2, 8, 4, 5)),
                                         (2, (3, 5, 6)), (-3, (2, 6, 3, 4))])
def test_group_normalization_vs_keras(axis, shape):
    keras = _keras()
    x = rng.standard_normal(shape).astype(np.float32)
    ours = layers.GroupNormalization(groups=2, axis=axis, gamma_initializer="random_normal",
                                     beta_initializer="random_normal")
    _same_as_keras(ours, keras.layers.GroupNormalization(groups=2, axis=axis), x)


def test_group_normalization_channels_first_gradient():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    layer = layers.GroupNormalization(groups=2, axis=1, gamma_initializer="random_normal")
    t = Tensor(x, requires_grad=True)
    (layer(t) ** 2).sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    g = torch.tensor(layer.gamma.data)
    (torch.nn.functional.group_norm(tx, 2, g, None, eps=1e-3) ** 2).sum().backward()
    np.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_prelu_vs_keras_shared_axes():
    keras = _keras()
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    ours = layers.PReLU(shared_axes=[1, 2], alpha_initializer="random_normal")
    _ = ours(x)
    assert ours.alpha.shape == (1, 1, 3)
    _same_as_keras(ours, keras.layers.PReLU(shared_axes=[1, 2]), x)


def test_defaults_match_keras():
    keras = _keras()
    for name in ("LayerNormalization", "GroupNormalization", "PReLU"):
        ours = getattr(layers, name)().get_config()
        theirs = getattr(keras.layers, name)().get_config()
        for key in ("axis", "epsilon", "center", "scale", "groups", "shared_axes"):
            if key in theirs:
                assert ours[key] == theirs[key], (name, key)


@pytest.mark.parametrize("make", [
    lambda: layers.LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False),
    lambda: layers.GroupNormalization(groups=2, scale=False, gamma_constraint="non_neg"),
    lambda: layers.PReLU(shared_axes=[1], alpha_constraint="max_norm"),
])
def test_config_round_trip(make):
    a = make()
    b = type(a).from_config(a.get_config())
    assert b.get_config() == a.get_config()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    a_out = a(x)
    b(x)
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(b(x).data, a_out.data)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="groups=3"):
        layers.GroupNormalization(groups=3)(np.zeros((1, 2, 2, 4), np.float32))
    with pytest.raises(ValueError, match="shared_axes"):
        layers.PReLU(shared_axes=[0])
    with pytest.raises(ValueError, match="epsilon"):
        layers.LayerNormalization(epsilon=0)


def test_sequential_with_new_layers_saves_and_loads(tmp_path):
    from cnnkit.models import Sequential, load_model
    m = Sequential([layers.Conv2D(4, 3, input_shape=(6, 6, 2)), layers.GroupNormalization(2),
                    layers.PReLU(shared_axes=[1, 2]), layers.Flatten(),
                    layers.LayerNormalization(), layers.Dense(3)])
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    y = m.predict(x, verbose=0)
    m.save(tmp_path / "m.cnnkit")
    m2 = load_model(tmp_path / "m.cnnkit")
    np.testing.assert_allclose(m2.predict(x, verbose=0), y, rtol=1e-6, atol=1e-6)
