"""Reshaping layers (layers/reshaping.py): up-sampling against PyTorch and NumPy, zero
padding and cropping against NumPy slicing and padding."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_scaled, torch_or_skip
from layer_cases import (
    to_nc,
)

from cnnkit import layers as L

rng = np.random.default_rng(0)


def test_upsampling_vs_torch_and_numpy():
    torch = torch_or_skip()
    F = torch.nn.functional
    x2 = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    for size in [(2, 2), (2, 3), (3, 1)]:
        y = L.UpSampling2D(size, interpolation="bilinear")(x2).data
        ref = F.interpolate(torch.from_numpy(to_nc(x2)), scale_factor=size, mode="bilinear",
                            align_corners=False)
        assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)
        y = L.UpSampling2D(size)(x2).data
        ref = F.interpolate(torch.from_numpy(to_nc(x2)), scale_factor=size, mode="nearest")
        np.testing.assert_array_equal(y, np.moveaxis(ref.numpy(), 1, -1))
    x1 = rng.standard_normal((2, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(L.UpSampling1D(3)(x1).data, np.repeat(x1, 3, axis=1))
    x3 = rng.standard_normal((1, 2, 3, 2, 2)).astype(np.float32)
    ref = np.repeat(np.repeat(np.repeat(x3, 2, axis=1), 1, axis=2), 3, axis=3)
    np.testing.assert_array_equal(L.UpSampling3D((2, 1, 3))(x3).data, ref)


def test_padding_and_cropping_vs_numpy():
    x1 = rng.standard_normal((2, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(L.ZeroPadding1D((1, 2))(x1).data,
                                  np.pad(x1, ((0, 0), (1, 2), (0, 0))))
    np.testing.assert_array_equal(L.ZeroPadding1D(2)(x1).data,
                                  np.pad(x1, ((0, 0), (2, 2), (0, 0))))
    np.testing.assert_array_equal(L.Cropping1D((1, 2))(x1).data, x1[:, 1:4])
    x2 = rng.standard_normal((2, 5, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(L.ZeroPadding2D(((1, 2), (0, 3)))(x2).data,
                                  np.pad(x2, ((0, 0), (1, 2), (0, 3), (0, 0))))
    np.testing.assert_array_equal(L.ZeroPadding2D((1, 2))(x2).data,
                                  np.pad(x2, ((0, 0), (1, 1), (2, 2), (0, 0))))
    np.testing.assert_array_equal(L.Cropping2D(((1, 0), (1, 2)))(x2).data, x2[:, 1:, 1:4])
    np.testing.assert_array_equal(L.Cropping2D((2, 1))(x2).data, x2[:, 2:3, 1:5])
    x3 = rng.standard_normal((1, 3, 3, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(L.ZeroPadding3D(((0, 1), 2, (1, 0)))(x3).data,
                                  np.pad(x3, ((0, 0), (0, 1), (2, 2), (1, 0), (0, 0))))
    np.testing.assert_array_equal(L.Cropping3D(((1, 0), (0, 1), (1, 1)))(x3).data,
                                  x3[:, 1:, :2, 1:3])


def test_cropping_too_much():
    with pytest.raises(ValueError, match=r"Cropping2D '.*': cropping \(2, 2\) removes 4 of the 4"):
        L.Cropping2D(2)(np.zeros((1, 4, 6, 1), np.float32))
