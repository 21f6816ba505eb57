"""The inference plan's cached weights (batch-norm folded into the kernels, Winograd
transforms, scale and shift) never go stale: after a predict, each way of changing the
weights (``t.data[...] =``, ``set_weights``, an optimizer step, a training call moving the
batch-norm statistics) changes the next predict's output to what a NumPy computation of the
layers with the new weights gives; and unchanged weights are not recomputed."""

import numpy as np
import pytest

import cnnkit
from cnnkit import layers, runtime
from cnnkit.models import Sequential
from cnnkit.runtime import param_cache

rng = np.random.default_rng(7)


def a(t):
    """The array of t without moving its version (so the plan's cache is really exercised)."""
    return t.peek()[0]


def reference(model, x):
    """conv 3x3 "same" -> BN (moving statistics) -> ReLU -> global average -> dense, in NumPy
    (float64) from the layers' current arrays."""
    conv, bn, _, _, dense = model.layers
    k = a(conv.kernel).astype(np.float64)
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # N,H,W,C,3,3
    z = np.einsum("nhwcij,ijco->nhwo", win, k) + a(conv.bias)
    s = a(bn.gamma) / np.sqrt(a(bn.moving_variance) + bn.epsilon)
    z = (z - a(bn.moving_mean)) * s + a(bn.beta)
    z = np.maximum(z, 0).mean(axis=(1, 2))
    return z @ a(dense.kernel) + a(dense.bias)


def make_model(shape=(8, 8, 16), filters=32):
    """(16, 16, 64) -> 64 at batch 1 takes the Winograd kernels (a cached transform)."""
    model = Sequential([layers.Input(shape), layers.Conv2D(filters, 3, padding="same"),
                        layers.BatchNormalization(), layers.ReLU(),
                        layers.GlobalAveragePooling2D(), layers.Dense(5)])
    bn = model.layers[1]
    bn.moving_mean.data[...] = rng.normal(0, 0.3, filters)
    bn.moving_variance.data[...] = rng.uniform(0.5, 2, filters)
    return model


def predict(model, x):
    with cnnkit.no_grad():
        return model(x, training=False).data


def check(model, x):
    np.testing.assert_allclose(predict(model, x), reference(model, x), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("batch, shape, filters", [(1, (8, 8, 16), 32), (4, (8, 8, 16), 32),
                                                   (1, (16, 16, 64), 64)])
def test_in_place_edits_and_set_weights_reach_the_next_predict(batch, shape, filters):
    model = make_model(shape, filters)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    check(model, x)
    first = predict(model, x)
    conv, bn = model.layers[0], model.layers[1]
    conv.kernel.data[...] = rng.standard_normal(conv.kernel.shape) * 0.2
    check(model, x)
    bn.moving_variance.data[...] *= 3.0
    bn.gamma.data -= 0.5
    check(model, x)
    halved = [w * 0.5 for w in model.get_weights()]
    check(model, x)
    model.set_weights(halved)
    check(model, x)
    assert not np.allclose(predict(model, x), first)


def test_training_updates_reach_the_next_predict():
    model = make_model()
    model.compile(optimizer=cnnkit.optimizers.SGD(0.1), loss="mse")
    x = rng.standard_normal((4, 8, 8, 16)).astype(np.float32)
    y = rng.standard_normal((4, 5)).astype(np.float32)
    check(model, x)
    mean_before = a(model.layers[1].moving_mean).copy()
    model.train_on_batch(x, y)  # optimizer step and batch-norm statistics moved
    assert not np.allclose(a(model.layers[1].moving_mean), mean_before)
    check(model, x)


def test_unchanged_weights_are_folded_once_and_invalidate_all():
    model = make_model()
    x = rng.standard_normal((1, 8, 8, 16)).astype(np.float32)
    plan = runtime.compile(model)
    caches = [c.cell_contents for s in plan.steps for c in (s.fn.__closure__ or ())
              if isinstance(c.cell_contents, param_cache.StepCache)]
    assert caches, "the conv and dense steps keep a cache"
    for _ in range(3):
        np.testing.assert_allclose(plan(x), reference(model, x), rtol=2e-4, atol=2e-4)
    assert all(c.misses == 1 for c in caches)
    kept = model.layers[0].kernel.peek()[0]  # a reference kept from before: no version move
    kept *= -1.0
    param_cache.invalidate_all()
    np.testing.assert_allclose(plan(x), reference(model, x), rtol=2e-4, atol=2e-4)
    assert all(c.misses == 2 for c in caches)


def test_tensor_version_moves_on_writes_not_on_peek():
    t = cnnkit.Tensor(np.zeros(3, np.float32))
    v = t.version
    t.peek()
    _ = t.shape, t.dtype, len(t)
    assert t.version == v
    t.data[0] = 1.0
    assert t.version > v
    v = t.version
    t.mark_changed()
    assert t.version > v
