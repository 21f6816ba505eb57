"""BatchNormalization (layers/normalization.py): against PyTorch, moving statistics in
closed form, frozen layers, float64 gradients against central differences."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_scaled, gradcheck, torch_or_skip
from layer_cases import (
    randomize,
    to_nc,
)

from cnnkit import Tensor
from cnnkit import layers as L

rng = np.random.default_rng(0)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("shape", [(4, 5, 6, 3), (5, 7, 2), (6, 4)])
def test_batchnorm_vs_torch(training, shape):
    """Keras momentum 0.99 = torch momentum 0.01; torch's running variance is unbiased."""
    torch = torch_or_skip()
    layer = L.BatchNormalization(momentum=0.9, epsilon=1e-3)
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    layer(x)
    randomize(layer)
    gamma, beta, mm, mv = layer.get_weights()
    y = layer(x, training=training).data
    rm, rv = torch.from_numpy(mm.copy()), torch.from_numpy(mv.copy())
    ref = torch.nn.functional.batch_norm(
        torch.from_numpy(to_nc(x)), rm, rv, torch.from_numpy(gamma), torch.from_numpy(beta),
        training=training, momentum=0.1, eps=1e-3)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)
    assert_close_scaled(layer.moving_mean.data, rm.numpy(), tol=1e-5)
    if training:
        n = x.size // shape[-1]
        x64 = x.reshape(-1, shape[-1]).astype(np.float64)
        # torch moved with the unbiased variance (ddof=1); Keras moves with the biased one
        expected = rv.numpy() - 0.1 * x64.var(axis=0, ddof=1) + 0.1 * x64.var(axis=0)
        assert n > 1 and not np.allclose(expected, rv.numpy())
        assert_close_scaled(layer.moving_variance.data, expected, tol=1e-5)
    else:
        np.testing.assert_array_equal(layer.moving_variance.data, mv)


def test_batchnorm_gradients_vs_torch():
    torch = torch_or_skip()
    layer = L.BatchNormalization()
    x = rng.standard_normal((3, 4, 5, 2)).astype(np.float32)
    layer(x)
    randomize(layer)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    xt_np = Tensor(x.copy(), requires_grad=True)
    layer(xt_np, training=True).backward(gy)
    g = torch.tensor(layer.gamma.data.copy(), requires_grad=True)
    b = torch.tensor(layer.beta.data.copy(), requires_grad=True)
    xt = torch.tensor(to_nc(x), requires_grad=True)
    torch.nn.functional.batch_norm(xt, None, None, g, b, training=True, eps=1e-3).backward(
        torch.from_numpy(to_nc(gy)))
    assert_close_scaled(layer.gamma.grad, g.grad.numpy())
    assert_close_scaled(layer.beta.grad, b.grad.numpy())
    assert_close_scaled(xt_np.grad, np.moveaxis(xt.grad.numpy(), 1, -1))


def test_batchnorm_moving_stats_closed_form():
    """moving = momentum * moving + (1 - momentum) * batch statistic (biased variance)."""
    layer = L.BatchNormalization(momentum=0.8)
    xs = [(rng.standard_normal((6, 3, 3, 2)) * s + s).astype(np.float32) for s in (1.0, 3.0)]
    layer(xs[0], training=False)
    mm, mv = np.zeros(2), np.ones(2)
    for x in xs:
        flat = x.reshape(-1, 2).astype(np.float64)
        layer(x, training=True)
        mm = 0.8 * mm + 0.2 * flat.mean(axis=0)
        mv = 0.8 * mv + 0.2 * flat.var(axis=0)
        np.testing.assert_allclose(layer.moving_mean.data, mm, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.moving_variance.data, mv, rtol=1e-5, atol=1e-6)
    before = layer.get_weights()
    layer(xs[0], training=False)
    for a, b in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_batchnorm_frozen_keeps_stats_and_uses_them():
    layer = L.BatchNormalization()
    x = (rng.standard_normal((8, 4, 4, 3)) * 2 + 5).astype(np.float32)
    layer(x)
    randomize(layer)
    layer.trainable = False
    before = layer.get_weights()
    y_train = layer(x, training=True).data
    for a, b in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    gamma, beta, mm, mv = before
    expected = gamma * (x - mm) / np.sqrt(mv + 1e-3) + beta
    assert_close_scaled(y_train, expected, tol=1e-5)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 4
    layer.trainable = True
    layer(x, training=True)
    assert not np.allclose(layer.moving_mean.data, mm)


def test_batchnorm_float64_gradcheck():
    layer = L.BatchNormalization(dtype="float64")
    x = rng.standard_normal((3, 2, 2, 2))
    layer(x)
    randomize(layer)
    layer.moving_mean.data[...] = 0.0  # training calls move the statistics; output ignores them
    gradcheck(lambda t: layer(t, training=True), x)
