"""Convolution layers (layers/conv.py): outputs and gradients against PyTorch with the
weights copied, float32, 1e-4 relative to the output scale."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_scaled, torch_or_skip
from layer_cases import (
    keras_same_pads,
    kernel_to_torch,
    layer_pads,
    randomize,
    to_nc,
    torch_pad,
    tup,
)

from cnnkit import Tensor
from cnnkit import layers as L

rng = np.random.default_rng(0)


CONV_CFGS = [
    (1, dict(filters=4, kernel_size=3), (2, 9, 3)),
    (1, dict(filters=4, kernel_size=4, strides=2, padding="same"), (2, 9, 3)),
    (1, dict(filters=4, kernel_size=3, dilation_rate=2, padding="causal"), (2, 8, 2)),
    (1, dict(filters=6, kernel_size=2, groups=3, padding="same"), (2, 7, 3)),
    (2, dict(filters=5, kernel_size=3), (2, 7, 8, 3)),
    (2, dict(filters=5, kernel_size=(3, 2), strides=2, padding="same"), (2, 7, 8, 3)),
    (2, dict(filters=4, kernel_size=3, strides=(2, 1), dilation_rate=(1, 2), padding="same",
             groups=2), (2, 9, 8, 4)),
    (2, dict(filters=3, kernel_size=2, use_bias=False, activation="relu"), (1, 5, 5, 2)),
    (3, dict(filters=3, kernel_size=2), (1, 4, 5, 3, 2)),
    (3, dict(filters=2, kernel_size=3, strides=2, padding="same"), (1, 5, 4, 6, 2)),
]


@pytest.mark.parametrize("nd,kw,shape", CONV_CFGS)
def test_conv_vs_torch(nd, kw, shape):
    torch = torch_or_skip()
    F = torch.nn.functional
    layer = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}[nd](**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer(x)
    randomize(layer)
    y = layer(x).data
    w = layer.kernel.data
    b = None if layer.bias is None else torch.from_numpy(layer.bias.data)
    ks, ss, ds = w.shape[:nd], tup(kw.get("strides", 1), nd), tup(kw.get("dilation_rate", 1), nd)
    pads = layer_pads(kw.get("padding", "valid"), shape[1:-1], ks, ss, ds)
    xt = torch_pad(torch, torch.from_numpy(to_nc(x)), pads)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    ref = conv(xt, torch.from_numpy(kernel_to_torch(w)), b, stride=ss, dilation=ds,
               groups=kw.get("groups", 1))
    if kw.get("activation") == "relu":
        ref = torch.relu(ref)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)


def test_conv_gradients_vs_torch():
    """Layer weights receive the same gradients as torch's (weights copied)."""
    torch = torch_or_skip()
    layer = L.Conv2D(4, 3, strides=2, padding="same")
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    layer(x)
    randomize(layer)
    gy = rng.standard_normal(layer.compute_output_shape(x.shape)).astype(np.float32)
    xt_np = Tensor(x.copy(), requires_grad=True)
    layer(xt_np).backward(gy)
    wt = torch.tensor(kernel_to_torch(layer.kernel.data), requires_grad=True)
    bt = torch.tensor(layer.bias.data, requires_grad=True)
    xt = torch.tensor(to_nc(x), requires_grad=True)
    pads = [keras_same_pads(7, 3, 2, 1), keras_same_pads(6, 3, 2, 1)]
    ref = torch.nn.functional.conv2d(torch_pad(torch, xt, pads), wt, bt, stride=2)
    ref.backward(torch.from_numpy(to_nc(gy)))
    assert_close_scaled(layer.kernel.grad, np.transpose(wt.grad.numpy(), (2, 3, 1, 0)))
    assert_close_scaled(layer.bias.grad, bt.grad.numpy())
    assert_close_scaled(xt_np.grad, np.moveaxis(xt.grad.numpy(), 1, -1))


@pytest.mark.parametrize("kw,shape", [
    (dict(kernel_size=3, depth_multiplier=2), (2, 7, 6, 3)),
    (dict(kernel_size=(3, 2), strides=2, padding="same"), (2, 7, 8, 3)),
    (dict(kernel_size=3, dilation_rate=2, padding="same", depth_multiplier=3), (1, 6, 7, 2)),
])
def test_depthwise_vs_torch(kw, shape):
    torch = torch_or_skip()
    layer = L.DepthwiseConv2D(**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    layer(x)
    randomize(layer)
    y = layer(x).data
    w = layer.kernel.data  # (KH, KW, C, M) -> torch (C*M, 1, KH, KW), channel c*M + m
    kh, kw_, c, m = w.shape
    wt = np.ascontiguousarray(w.reshape(kh, kw_, c * m).transpose(2, 0, 1)[:, None])
    ss, ds = tup(kw.get("strides", 1), 2), tup(kw.get("dilation_rate", 1), 2)
    pads = layer_pads(kw.get("padding", "valid"), shape[1:3], (kh, kw_), ss, ds)
    xt = torch_pad(torch, torch.from_numpy(to_nc(x)), pads)
    ref = torch.nn.functional.conv2d(xt, torch.from_numpy(wt), torch.from_numpy(layer.bias.data),
                                     stride=ss, dilation=ds, groups=c)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)


@pytest.mark.parametrize("kw,shape", [
    (dict(filters=5, kernel_size=3, depth_multiplier=2), (2, 7, 6, 3)),
    (dict(filters=4, kernel_size=3, strides=2, padding="same", activation="relu"), (2, 8, 7, 3)),
])
def test_separable_vs_torch(kw, shape):
    torch = torch_or_skip()
    F = torch.nn.functional
    layer = L.SeparableConv2D(**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    layer(x)
    randomize(layer)
    y = layer(x).data
    wd, wp = layer.depthwise_kernel.data, layer.pointwise_kernel.data
    kh, kw_, c, m = wd.shape
    wdt = np.ascontiguousarray(wd.reshape(kh, kw_, c * m).transpose(2, 0, 1)[:, None])
    wpt = np.ascontiguousarray(wp[0, 0].T[:, :, None, None])
    ss = tup(kw.get("strides", 1), 2)
    pads = layer_pads(kw.get("padding", "valid"), shape[1:3], (kh, kw_), ss, (1, 1))
    xt = torch_pad(torch, torch.from_numpy(to_nc(x)), pads)
    mid = F.conv2d(xt, torch.from_numpy(wdt), None, stride=ss, groups=c)
    ref = F.conv2d(mid, torch.from_numpy(wpt), torch.from_numpy(layer.bias.data))
    if kw.get("activation") == "relu":
        ref = torch.relu(ref)
    assert_close_scaled(y, np.moveaxis(ref.numpy(), 1, -1), tol=1e-4)


def keras_deconv_length(w, k, s, d, padding, output_padding):
    """keras.utils.conv_utils.deconv_output_length."""
    e = d * (k - 1) + 1
    if output_padding is None:
        return w * s + max(e - s, 0) if padding == "valid" else w * s
    pad = 0 if padding == "valid" else e // 2
    return (w - 1) * s + e - 2 * pad + output_padding


@pytest.mark.parametrize("nd,kw,shape", [
    (1, dict(filters=4, kernel_size=3, strides=2), (2, 5, 3)),
    (1, dict(filters=2, kernel_size=2, strides=3, padding="same"), (2, 4, 3)),
    (2, dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 4, 5, 3)),
    (2, dict(filters=2, kernel_size=3, strides=2, output_padding=1), (2, 3, 4, 3)),
    (2, dict(filters=2, kernel_size=(4, 3), strides=2, output_padding=(1, 0), padding="same"),
     (1, 3, 4, 2)),
    (2, dict(filters=3, kernel_size=3, dilation_rate=2, padding="same"), (2, 5, 4, 2)),
    (2, dict(filters=2, kernel_size=2, strides=3), (2, 3, 3, 1)),
    (3, dict(filters=2, kernel_size=2, strides=2, padding="same"), (1, 2, 3, 2, 3)),
])
def test_conv_transpose_vs_torch(nd, kw, shape):
    """Reference: torch's full transposed convolution (no padding), then the Keras window
    [pad_before, pad_before + L) of it (zero-extended when L is longer), plus the bias."""
    torch = torch_or_skip()
    F = torch.nn.functional
    cls = {1: L.Conv1DTranspose, 2: L.Conv2DTranspose, 3: L.Conv3DTranspose}[nd]
    layer = cls(**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    layer(x)
    randomize(layer)
    y = layer(x).data
    w = layer.kernel.data
    ks = w.shape[:nd]
    ss, ds = tup(kw.get("strides", 1), nd), tup(kw.get("dilation_rate", 1), nd)
    op = kw.get("output_padding")
    ops_ = [None] * nd if op is None else list(tup(op, nd))
    padding = kw.get("padding", "valid")
    lengths = [keras_deconv_length(shape[1 + a], ks[a], ss[a], ds[a], padding, ops_[a])
               for a in range(nd)]
    assert y.shape == (shape[0], *lengths, kw["filters"])
    full = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd](
        torch.from_numpy(to_nc(x)), torch.from_numpy(kernel_to_torch(w)), None, stride=ss,
        dilation=ds).numpy()
    full = np.moveaxis(full, 1, -1)
    ref = np.zeros(y.shape, np.float64)
    src = [slice(None)]
    dst = [slice(None)]
    for a in range(nd):
        before = 0 if padding == "valid" else keras_same_pads(lengths[a], ks[a], ss[a], ds[a])[0]
        n = min(lengths[a], full.shape[1 + a] - before)
        src.append(slice(before, before + n))
        dst.append(slice(0, n))
    ref[tuple(dst)] = full[tuple(src)]
    ref += layer.bias.data
    assert_close_scaled(y, ref, tol=1e-4)
