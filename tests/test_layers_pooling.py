"""Pooling layers (layers/pooling.py): against PyTorch (Keras "same" reproduced
explicitly) and NumPy reductions."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_scaled, torch_or_skip
from layer_cases import (
    layer_pads,
    to_nc,
    torch_pad,
    tup,
)

from cnnkit import layers as L

rng = np.random.default_rng(0)


POOL_CFGS = [
    (1, "max", dict(), (2, 9, 3)),
    (1, "max", dict(pool_size=3, strides=2, padding="same"), (2, 8, 3)),
    (1, "avg", dict(pool_size=3, strides=2, padding="same"), (2, 9, 3)),
    (2, "max", dict(), (2, 7, 6, 3)),
    (2, "max", dict(pool_size=(3, 2), strides=(2, 1), padding="same"), (2, 7, 6, 3)),
    (2, "avg", dict(pool_size=3), (2, 7, 6, 3)),
    (2, "avg", dict(pool_size=3, strides=2, padding="same"), (2, 8, 7, 3)),
    (3, "max", dict(pool_size=2, padding="same"), (1, 3, 5, 4, 2)),
    (3, "avg", dict(pool_size=(2, 3, 2), strides=1), (1, 3, 5, 4, 2)),
    (3, "avg", dict(pool_size=2, padding="same"), (1, 3, 5, 5, 2)),
]


@pytest.mark.parametrize("nd,kind,kw,shape", POOL_CFGS)
def test_pooling_vs_torch(nd, kind, kw, shape):
    """Keras "same": max pads with -inf; average counts only real cells (sum / count)."""
    torch = torch_or_skip()
    F = torch.nn.functional
    cls = {("max", 1): L.MaxPooling1D, ("max", 2): L.MaxPooling2D, ("max", 3): L.MaxPooling3D,
           ("avg", 1): L.AveragePooling1D, ("avg", 2): L.AveragePooling2D,
           ("avg", 3): L.AveragePooling3D}[kind, nd]
    layer = cls(**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer(x).data
    ps = tup(kw.get("pool_size", 2), nd)
    ss = tup(kw.get("strides") or ps, nd)
    pads = layer_pads(kw.get("padding", "valid"), shape[1:-1], ps, ss, (1,) * nd)
    xt = torch.from_numpy(to_nc(x))
    if kind == "max":
        pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
        ref = pool(torch_pad(torch, xt, pads, -np.inf), ps, ss)
    else:
        pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
        ref = pool(torch_pad(torch, xt, pads), ps, ss) / pool(
            torch_pad(torch, torch.ones_like(xt), pads), ps, ss)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_vs_numpy(nd, keepdims):
    shape = {1: (2, 9, 3), 2: (2, 5, 4, 3), 3: (1, 3, 4, 2, 3)}[nd]
    x = rng.standard_normal(shape).astype(np.float32)
    axes = tuple(range(1, nd + 1))
    for cls, ref in [({1: L.GlobalAveragePooling1D, 2: L.GlobalAveragePooling2D,
                       3: L.GlobalAveragePooling3D}[nd], x.mean(axis=axes, keepdims=keepdims)),
                     ({1: L.GlobalMaxPooling1D, 2: L.GlobalMaxPooling2D,
                       3: L.GlobalMaxPooling3D}[nd], x.max(axis=axes, keepdims=keepdims))]:
        assert_close_scaled(cls(keepdims=keepdims)(x).data, ref, tol=1e-6)
