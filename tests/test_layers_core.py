"""Core layers (layers/core.py): outputs against NumPy formulas, dropout scaling,
Normalization.adapt."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_scaled
from layer_cases import (
    CASES,
    make_input,
    randomize,
)

from cnnkit import layers as L

rng = np.random.default_rng(0)


def core_reference(case_id: str, layer, x):
    w = layer.get_weights()
    if case_id == "dense":
        return np.tanh(x @ w[0] + w[1])
    if case_id == "dense_3d_nobias":
        return x @ w[0]
    if case_id == "flatten":
        return x.reshape(x.shape[0], -1)
    if case_id == "reshape":
        return x.reshape(x.shape[0], 4, -1)
    if case_id == "permute":
        return x.transpose(0, 2, 1)
    if case_id == "activation":
        return np.maximum(x, 0)
    if case_id == "relu6":
        return np.clip(x, 0, 6)  # the test scales x by 4 to reach the cap
    if case_id == "leaky_relu":
        return np.where(x > 0, x, 0.2 * x)
    if case_id == "elu":
        return np.where(x > 0, x, 0.5 * (np.exp(x) - 1))
    if case_id == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if case_id == "dropout":
        return x
    if case_id == "embedding":
        return w[0][x]
    if case_id == "rescaling":
        return x / 255 - 0.5
    if case_id == "normalization":
        return (x - w[0]) / np.sqrt(w[1])
    raise KeyError(case_id)


CORE = ["dense", "dense_3d_nobias", "flatten", "reshape", "permute", "activation", "relu6",
        "leaky_relu", "elu", "softmax", "dropout", "embedding", "rescaling", "normalization"]


@pytest.mark.parametrize("case", [c for c in CASES if c.id in CORE], ids=CORE)
def test_core_layers_vs_numpy(case):
    layer = case.make()
    x = make_input(case)
    if case.id == "relu6":
        x = x * 4
    layer(x)
    randomize(layer)
    y = layer(x).data
    assert_close_scaled(y, core_reference(case.id, layer, x), tol=1e-5)


def test_dropout_training_scales_kept_units():
    x = rng.uniform(1, 2, (50, 40)).astype(np.float32)
    y = L.Dropout(0.25, seed=0)(x, training=True).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-6)
    assert 0.65 < kept.mean() < 0.85


def test_normalization_adapt():
    x = (rng.standard_normal((40, 3)) * [1, 2, 3] + [0, 1, 2]).astype(np.float32)
    layer = L.Normalization()
    layer.adapt(x)
    y = layer(x).data
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=0), 1, atol=1e-4)
