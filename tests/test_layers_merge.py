"""Merge layers (layers/merge.py): outputs and gradients against NumPy, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import Tensor
from cnnkit import layers as L

rng = np.random.default_rng(0)


def test_merges_vs_numpy():
    a = rng.standard_normal((2, 4, 3)).astype(np.float32)
    b = rng.standard_normal((2, 1, 3)).astype(np.float32)
    c = rng.standard_normal((2, 3)).astype(np.float32)  # lower rank: (2, 1, 3) per Keras
    c3 = c[:, None, :]
    np.testing.assert_allclose(L.Add()([a, b, c]).data, a + b + c3, rtol=1e-6)
    np.testing.assert_allclose(L.Subtract()([a, b]).data, a - b, rtol=1e-6)
    np.testing.assert_allclose(L.Multiply()([a, b, c]).data, a * b * c3, rtol=1e-6)
    np.testing.assert_allclose(L.Average()([a, b, c]).data, (a + b + c3) / 3, rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_array_equal(L.Maximum()([a, b, c]).data,
                                  np.maximum(np.maximum(a, b), c3))
    np.testing.assert_array_equal(L.Minimum()([a, b]).data, np.minimum(a, b))
    d = rng.standard_normal((2, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(L.Concatenate()([a, d]).data, np.concatenate([a, d], -1))
    np.testing.assert_array_equal(L.Concatenate(axis=1)([a, b]).data,
                                  np.concatenate([a, b], 1))


def test_merge_gradients():
    """Broadcast inputs receive gradients reduced back to their shapes."""
    a = Tensor(rng.standard_normal((2, 4, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal((2, 1, 3)), requires_grad=True)
    L.Add()([a, b]).backward(np.ones((2, 4, 3)))
    np.testing.assert_allclose(a.grad, np.ones((2, 4, 3)))
    np.testing.assert_allclose(b.grad, np.full((2, 1, 3), 4.0))
    a.zero_grad()
    b.zero_grad()
    y = L.Maximum()([a, b])
    y.backward(np.ones((2, 4, 3)))
    picked_a = a.data > b.data
    np.testing.assert_allclose(a.grad, picked_a.astype(float))
    np.testing.assert_allclose(b.grad, (~picked_a).sum(axis=1, keepdims=True))
    a.zero_grad()
    b.zero_grad()
    L.Concatenate(axis=1)([a, b]).backward(np.arange(2 * 5 * 3.0).reshape(2, 5, 3))
    g = np.arange(2 * 5 * 3.0).reshape(2, 5, 3)
    np.testing.assert_allclose(a.grad, g[:, :4])
    np.testing.assert_allclose(b.grad, g[:, 4:])


def test_merge_bad_inputs():
    a = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(ValueError, match=r"Add '.*' must be called on a list of inputs"):
        L.Add()(a)
    with pytest.raises(ValueError, match=r"cannot broadcast inputs of shapes \(2, 4, 3\), "
                                         r"\(2, 4, 2\)"):
        L.Add()([a, np.zeros((2, 4, 2), np.float32)])
    with pytest.raises(ValueError, match="same batch size"):
        L.Multiply()([a, np.zeros((3, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="expects exactly 2 inputs, got 3"):
        L.Subtract()([a, a, a])
    with pytest.raises(ValueError, match=r"match on every axis except the concatenation axis "
                                         r"-1, got shapes \(2, 4, 3\), \(2, 5, 3\)"):
        L.Concatenate()([a, np.zeros((2, 5, 3), np.float32)])
    with pytest.raises(ValueError, match="same rank"):
        L.Concatenate()([a, np.zeros((2, 3), np.float32)])
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        L.Concatenate(axis=3)([a, a])
    with pytest.raises(ValueError, match="expects a single input"):
        L.Conv1D(2, 1)([a, a])
    with pytest.raises(ValueError, match="cannot broadcast"):
        L.Maximum()([L.Input((4, 3)), L.Input((5, 3))])
