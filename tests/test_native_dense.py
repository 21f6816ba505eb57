"""The batch-invariant dense product (``_dense.c``): accurate against float64, bit for bit
the same row whatever the batch, and what makes a batch-invariant plan's dense layers run on
the whole batch while every sample still equals predicting it alone."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import shared_path

from cnnkit import layers, random, zoo
from cnnkit.io import load_sequential_state_dict, load_state_dict
from cnnkit.kernels import linear
from cnnkit.kernels.native import dense
from cnnkit.models import Sequential
from cnnkit.runtime import compile, invariant

pytestmark = pytest.mark.skipif(not dense.available(),
                                reason="the native dense helper (_dense) is not built")

SHAPES = [(1568, 128), (128, 10), (300, 17), (7, 3), (1, 16), (33, 40)]


def _operands(k: int, m: int, n: int = 37, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)).astype(np.float32),
            rng.standard_normal((k, m)).astype(np.float32))


@pytest.mark.parametrize("k,m", SHAPES)
def test_matches_float64_product(k, m):
    """|y - x w| within the float32 error bound of a K-term sum, K * eps * sum |x| |w|."""
    x, w = _operands(k, m)
    y = dense.rows_matmul(x, w)
    exact = x.astype(np.float64) @ w.astype(np.float64)
    bound = k * np.finfo(np.float32).eps * (np.abs(x).astype(np.float64) @ np.abs(w))
    assert np.all(np.abs(y - exact) <= bound + 1e-30)


@pytest.mark.parametrize("k,m", SHAPES)
def test_every_row_equals_that_row_alone(k, m):
    """Odd batch sizes and offsets (row blocks of 4, the last rows one by one): bit for bit."""
    x, w = _operands(k, m, seed=1)
    alone = np.concatenate([dense.rows_matmul(x[i:i + 1], w) for i in range(len(x))])
    for size in (2, 3, 5, 7, 13, 37):
        for start in (0, 1, 3):
            chunk = x[start:start + size]
            np.testing.assert_array_equal(dense.rows_matmul(chunk, w),
                                          alone[start:start + len(chunk)])


def test_bad_operands_raise():
    x, w = _operands(8, 4)
    with pytest.raises(ValueError, match=r"x \(N, K\) and w \(K, M\)"):
        dense.rows_matmul(x, w[:5])
    with pytest.raises(TypeError, match="float32"):
        dense.rows_matmul(x.astype(np.float64), w)
    assert linear.dense_rows(x.astype(np.float64), w) is None  # the caller's own path


def _mlp():
    """Dense layers with column tails (300 = 18 x 16 + 12) and a folded batch norm."""
    random.seed(4)
    model = Sequential([layers.Input((20, 20, 1)), layers.Rescaling(1 / 255.0),
                        layers.Flatten(), layers.Dense(300, use_bias=False),
                        layers.BatchNormalization(), layers.ReLU(), layers.Dense(10)])
    rng = np.random.default_rng(5)
    for lyr in model.layers:  # moving statistics away from (0, 1): the folding matters
        if isinstance(lyr, layers.BatchNormalization):
            lyr.moving_mean.data[...] = rng.normal(0, 0.5, 300).astype(np.float32)
            lyr.moving_variance.data[...] = rng.uniform(0.5, 2, 300).astype(np.float32)
    return model, (20, 20, 1)


def _ccexam():
    """A trained digits CNN from ../shared (conv 1->32, conv 32->64, dense 3136->128->10)."""
    state = load_state_dict(shared_path("weights", "ccexam_mnist.pth"))
    model = Sequential([
        layers.Input((28, 28, 1)), layers.Rescaling(1 / 255),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10)])
    load_sequential_state_dict(model, state)
    return model, (28, 28, 1)


def _digits(shape, n):
    from cnnkit.datasets import mnist5k

    if shape == (28, 28, 1):
        try:
            (_, _), (xv, _) = mnist5k.load_data()
            return xv[:n].reshape(n, 28, 28, 1).astype(np.float32)
        except (OSError, ValueError):
            pass
    return np.random.default_rng(6).integers(0, 256, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize("arch", ["mlp", "mnist_cnn", "ccexam"])
def test_invariant_plan_dense_on_whole_batch_equals_predicting_alone(arch, monkeypatch):
    """Batches of odd sizes through the batch-invariant plan equal model.predict of each
    sample alone, bit for bit, and the dense layers ran once per batch (not per sample)."""
    model, shape = {"mlp": _mlp, "ccexam": _ccexam,
                    "mnist_cnn": lambda: (zoo.builder("mnist_cnn")(), (28, 28, 1))}[arch]()
    x = _digits(shape, 23)
    alone = np.stack([model.predict(x[i:i + 1].copy())[0] for i in range(len(x))])
    calls = []
    real = dense.rows_matmul
    monkeypatch.setattr(dense, "rows_matmul", lambda a, b, out=None: (calls.append(len(a)),
                                                                     real(a, b, out))[1])
    plan = compile(model, batch_invariant=True)
    for size in (3, 7, 13, 23):
        got = np.concatenate([plan(x[s:s + size]) for s in range(0, len(x), size)])
        np.testing.assert_array_equal(got, alone)
    assert max(calls) == 23 and 13 in calls  # whole batches reached the kernel


def test_invariant_plan_without_the_helper_runs_dense_per_sample():
    """With the helper switched off, each dense layer runs per sample (one-row products)
    and the answers still equal predicting alone."""
    model, shape = _mlp()
    x = _digits(shape, 9)
    dense.set_enabled(False)
    try:
        alone = np.stack([model.predict(x[i:i + 1].copy())[0] for i in range(len(x))])
        np.testing.assert_array_equal(compile(model, batch_invariant=True)(x), alone)
    finally:
        dense.set_enabled(None)


def test_rescaling_runs_on_the_whole_batch():
    """A Rescaling layer computes value by value: the invariant plan keeps its function."""
    model, _ = _mlp()
    plan = compile(model, batch_invariant=True)
    first = plan.steps[0]
    assert first.fn is not None and invariant._row_local(first.step)
