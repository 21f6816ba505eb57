"""Paths the training round of 2026-12-03 added, against PyTorch in float64: 1x1
convolutions at strides > 1 (ResNet's shortcut projections) as the 1x1 stride-1 GEMM of the
strided subset of x (forward, dX, dK, db), and Winograd dK on images up to 64x64."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_scaled, torch_or_skip

from cnnkit.kernels import conv as KC


@pytest.mark.parametrize("n,h,w,cin,cout,s,pads", [
    (2, 8, 8, 16, 32, 2, ((0, 0), (0, 0))),
    (2, 7, 9, 8, 12, 2, ((0, 0), (0, 0))),      # odd sizes: the last row / column is read
    (1, 7, 7, 8, 16, 3, ((0, 0), (0, 0))),
    (2, 8, 8, 8, 4, 2, ((0, 1), (0, 1))),       # padding after: the general path
    (2, 6, 10, 5, 7, 2, ((0, 0), (0, 0))),
])
def test_strided_1x1_matches_torch(n, h, w, cin, cout, s, pads):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    k = rng.standard_normal((1, 1, cin, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    z, cols = KC.conv_forward(x, k, b, (s, s), pads, (1, 1))
    g = rng.standard_normal(z.shape).astype(np.float32)
    dx, dk, db = KC.conv_backward(g, x, k, cols, (s, s), pads, (1, 1))
    dx_only = KC.conv_input_grad(g, k, x.shape, (s, s), pads, (1, 1))
    xt = torch.tensor(x.transpose(0, 3, 1, 2).astype(np.float64), requires_grad=True)
    kt = torch.tensor(k.transpose(3, 2, 0, 1).astype(np.float64), requires_grad=True)
    bt = torch.tensor(b.astype(np.float64), requires_grad=True)
    xp = torch.nn.functional.pad(xt, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    zt = torch.nn.functional.conv2d(xp, kt, bt, stride=s)
    zt.backward(torch.tensor(g.transpose(0, 3, 1, 2).astype(np.float64)))
    assert z.dtype == dx.dtype == dk.dtype == np.float32
    assert_close_scaled(z, zt.detach().numpy().transpose(0, 2, 3, 1), 1e-5, "forward")
    assert_close_scaled(dx, xt.grad.numpy().transpose(0, 2, 3, 1), 1e-5, "dX")
    assert_close_scaled(dx_only, xt.grad.numpy().transpose(0, 2, 3, 1), 1e-5, "dX alone")
    assert_close_scaled(dk, kt.grad.numpy().transpose(2, 3, 1, 0), 1e-5, "dK")
    assert_close_scaled(db, bt.grad.numpy(), 1e-5, "db")


@pytest.mark.parametrize("n,h,c", [(2, 40, 32), (1, 64, 32), (2, 33, 48)])
def test_winograd_dk_on_larger_images_matches_torch(n, h, c):
    torch = torch_or_skip()
    from cnnkit.kernels.conv import dispatch

    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, h, h, c)).astype(np.float32)
    k = rng.standard_normal((3, 3, c, c)).astype(np.float32)
    g = rng.standard_normal((n, h, h, c)).astype(np.float32)
    assert dispatch.winograd_dk(k.shape, (1, 1), (1, 1), h * h)
    _, dk, _ = KC.conv_backward(g, x, k, None, (1, 1), ((1, 1), (1, 1)), (1, 1),
                                need_dx=False, need_db=False)
    xt = torch.tensor(x.transpose(0, 3, 1, 2).astype(np.float64))
    kt = torch.tensor(k.transpose(3, 2, 0, 1).astype(np.float64), requires_grad=True)
    torch.nn.functional.conv2d(xt, kt, padding=1).backward(
        torch.tensor(g.transpose(0, 3, 1, 2).astype(np.float64)))
    assert_close_scaled(dk, kt.grad.numpy().transpose(2, 3, 1, 0), 1e-5, "dK")


@pytest.mark.parametrize("xs,ks,s,pads", [
    ((2, 15, 15, 16), (3, 3, 16, 24), 2, ((0, 1), (0, 1))),
    ((2, 16, 16, 8), (3, 3, 8, 8), 2, ((1, 1), (1, 1))),
    ((1, 23, 23, 3), (7, 7, 3, 16), 2, ((2, 3), (2, 3))),
])
def test_strided_dk_by_im2col_matches_torch(xs, ks, s, pads):
    """Strided layers' dK by im2col + GEMM (dispatch.im2col_dk), dX by the C kernels."""
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    x = rng.standard_normal(xs).astype(np.float32)
    k = rng.standard_normal(ks).astype(np.float32)
    z, cols = KC.conv_forward(x, k, None, (s, s), pads, (1, 1))
    g = rng.standard_normal(z.shape).astype(np.float32)
    dx, dk, _ = KC.conv_backward(g, x, k, cols, (s, s), pads, (1, 1), need_db=False)
    xt = torch.tensor(x.transpose(0, 3, 1, 2).astype(np.float64), requires_grad=True)
    kt = torch.tensor(k.transpose(3, 2, 0, 1).astype(np.float64), requires_grad=True)
    xp = torch.nn.functional.pad(xt, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    torch.nn.functional.conv2d(xp, kt, stride=s).backward(
        torch.tensor(g.transpose(0, 3, 1, 2).astype(np.float64)))
    assert_close_scaled(dx, xt.grad.numpy().transpose(0, 2, 3, 1), 1e-5, "dX")
    assert_close_scaled(dk, kt.grad.numpy().transpose(2, 3, 1, 0), 1e-5, "dK")
