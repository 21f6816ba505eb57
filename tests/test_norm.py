"""Batch normalisation and dropout: finite differences (float64), PyTorch (float32), statistics."""

import numpy as np
import pytest
from helpers import assert_close_scaled, gradcheck, torch_or_skip

from cnnkit import Tensor, ops

rng = np.random.default_rng(1)


def _stats(c, dtype=np.float64):
    return (rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2.0, c).astype(dtype))


# ----- batch norm: finite differences -----------------------------------------------------------
@pytest.mark.parametrize("affine", ["both", "no_scale", "no_center", "none"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape,axis", [((5, 3), -1), ((2, 3, 3, 2), -1), ((3, 4, 2), -1),
                                        ((2, 3, 2, 2), 1), ((2, 2, 2, 3, 2), 4)])
def test_batch_norm_fd(shape, axis, training, affine):
    c = shape[axis]
    x = rng.standard_normal(shape) * 2 + 0.5
    gamma = rng.uniform(0.5, 1.5, c)
    beta = rng.standard_normal(c)
    mm, mv = _stats(c)
    use_g = affine in ("both", "no_center")
    use_b = affine in ("both", "no_scale")
    arrays = [x] + ([gamma] if use_g else []) + ([beta] if use_b else [])

    def f(xt, *params):
        params = list(params)
        g = params.pop(0) if use_g else None
        b = params.pop(0) if use_b else None
        return ops.batch_norm(xt, g, b, mm.copy(), mv.copy(), training, axis=axis)

    gradcheck(f, *arrays)


def test_batch_norm_inference_by_hand():
    x = rng.standard_normal((4, 3, 2))
    gamma, beta = rng.uniform(0.5, 1.5, 2), rng.standard_normal(2)
    mm, mv = _stats(2)
    y = ops.batch_norm(x, gamma, beta, mm, mv, training=False, epsilon=1e-3)
    np.testing.assert_allclose(y.data, gamma * (x - mm) / np.sqrt(mv + 1e-3) + beta, rtol=1e-12)


def test_batch_norm_moving_update_in_place():
    x = rng.standard_normal((6, 4, 3)) * 3 + 1
    mm, mv = _stats(3)
    mm0, mv0 = mm.copy(), mv.copy()
    mm_t = Tensor(mm.copy())
    ops.batch_norm(x, None, None, mm, mv, training=True, momentum=0.9)
    ops.batch_norm(x, None, None, mm_t, Tensor(mv.copy()), training=True, momentum=0.9)
    flat = x.reshape(-1, 3)
    np.testing.assert_allclose(mm, 0.9 * mm0 + 0.1 * flat.mean(0), rtol=1e-12)
    np.testing.assert_allclose(mv, 0.9 * mv0 + 0.1 * flat.var(0), rtol=1e-12)  # biased
    np.testing.assert_allclose(mm_t.data, mm, rtol=1e-12)
    before = mm.copy()
    ops.batch_norm(x, None, None, mm, mv, training=False)  # inference leaves them alone
    np.testing.assert_array_equal(mm, before)
    ops.batch_norm(x, None, None, None, None, training=True)  # no stats to update is fine


# ----- batch norm: PyTorch ----------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 5, 3, 6), (7, 5), (3, 9, 4), (2, 3, 4, 5, 3)])
def test_batch_norm_vs_torch(shape, training):
    torch = torch_or_skip()
    F = torch.nn.functional
    c = shape[-1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    mm, mv = _stats(c, np.float32)
    mm0, mv0 = mm.copy(), mv.copy()

    xt = torch.tensor(np.moveaxis(x, -1, 1), requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    rm, rv = torch.tensor(mm0), torch.tensor(mv0)
    # Keras momentum 0.99 (weight of the old value) is PyTorch momentum 0.01.
    yt = F.batch_norm(xt, rm, rv, gt, bt, training=training, momentum=0.01, eps=1e-3)

    xc, gc, bc = (Tensor(a, requires_grad=True) for a in (x, gamma, beta))
    y = ops.batch_norm(xc, gc, bc, mm, mv, training)
    assert y.dtype == np.float32
    assert_close_scaled(y.data, np.moveaxis(yt.detach().numpy(), 1, -1), tol=1e-4, what="bn y")
    w = rng.standard_normal(shape).astype(np.float32)
    (yt * torch.tensor(np.moveaxis(w, -1, 1))).sum().backward()
    y.backward(w)
    assert_close_scaled(xc.grad, np.moveaxis(xt.grad.numpy(), 1, -1), tol=1e-4, what="dx")
    assert_close_scaled(gc.grad, gt.grad.numpy(), tol=1e-4, what="dgamma")
    assert_close_scaled(bc.grad, bt.grad.numpy(), tol=1e-4, what="dbeta")

    if not training:
        np.testing.assert_array_equal(mm, mm0)
        np.testing.assert_array_equal(mv, mv0)
        return
    assert_close_scaled(mm, rm.numpy(), tol=1e-5, what="moving mean")
    # torch's running_var uses the unbiased batch variance s2_u = M/(M-1) * s2_b; Keras 3 uses
    # the biased s2_b. Get s2_u from torch (momentum 1 makes running_var the batch variance) and
    # convert: keras = torch_running - 0.01 * (s2_u - s2_b) = torch_running - 0.01 * s2_u / M.
    m = x.size // c
    rm1, rv1 = torch.zeros(c), torch.ones(c)
    F.batch_norm(xt.detach(), rm1, rv1, training=True, momentum=1.0, eps=1e-3)
    expected_var = rv.numpy() - 0.01 * rv1.numpy() / m
    assert_close_scaled(mv, expected_var, tol=1e-5, what="moving var")


def test_batch_norm_channels_first_vs_torch():
    torch = torch_or_skip()
    F = torch.nn.functional
    x = rng.standard_normal((3, 4, 5, 5)).astype(np.float32)
    gamma, beta = np.full(4, 1.5, np.float32), np.full(4, -0.5, np.float32)
    mm, mv = np.zeros(4, np.float32), np.ones(4, np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.batch_norm(xt, torch.zeros(4), torch.ones(4), torch.tensor(gamma), torch.tensor(beta),
                      training=True, momentum=0.01, eps=1e-3)
    xc = Tensor(x, requires_grad=True)
    y = ops.batch_norm(xc, gamma, beta, mm, mv, True, axis=1)
    assert_close_scaled(y.data, yt.detach().numpy(), tol=1e-4)
    w = rng.standard_normal(x.shape).astype(np.float32)
    (yt * torch.tensor(w)).sum().backward()
    y.backward(w)
    assert_close_scaled(xc.grad, xt.grad.numpy(), tol=1e-4)


def test_batch_norm_bad_inputs():
    x = np.zeros((4, 3), np.float32)
    p32 = np.ones(3, np.float32)
    with pytest.raises(TypeError, match="gamma has dtype float64 but x has dtype float32"):
        ops.batch_norm(x, np.ones(3), p32, p32.copy(), p32.copy(), True)
    with pytest.raises(TypeError, match="moving_var has dtype float64"):
        ops.batch_norm(x, p32, p32, p32.copy(), np.ones(3), True)
    with pytest.raises(ValueError, match=r"batch_norm expects gamma of shape \(3,\).*got shape"):
        ops.batch_norm(x, np.ones(4, np.float32), None, None, None, True)
    with pytest.raises(ValueError, match="batch_norm expects moving_mean of shape"):
        ops.batch_norm(x, None, None, np.ones(2, np.float32), p32.copy(), False)
    with pytest.raises(ValueError, match="inference mode.*needs moving_mean"):
        ops.batch_norm(x, p32, p32, None, None, False)
    with pytest.raises(ValueError, match="batch_norm expects x of rank >= 2"):
        ops.batch_norm(np.zeros(3, np.float32), None, None, None, None, True)
    with pytest.raises(ValueError, match="batch_norm: axis 2 is out of range"):
        ops.batch_norm(x, None, None, None, None, True, axis=2)
    with pytest.raises(TypeError, match="Tensor or a NumPy array"):
        ops.batch_norm(x, None, None, [0.0, 0.0, 0.0], p32.copy(), True)


# ----- dropout ----------------------------------------------------------------------------------
def test_dropout_fd_and_mask_gradient():
    x = rng.standard_normal((3, 4, 5))
    f = lambda t: ops.dropout(t, 0.4, training=True, rng=np.random.default_rng(7))  # noqa: E731
    gradcheck(f, x)
    xc = Tensor(x, requires_grad=True)
    y = f(xc)
    y.backward(np.ones(x.shape))
    kept = y.data != 0
    assert 0 < kept.sum() < x.size
    np.testing.assert_allclose(xc.grad, kept / 0.6)  # mask * 1/(1 - rate)
    np.testing.assert_allclose(y.data[kept], x[kept] / 0.6)


def test_dropout_statistics():
    x = np.ones((200, 500), np.float32)
    y = ops.dropout(x, 0.3, training=True, rng=np.random.default_rng(0)).data
    assert y.dtype == np.float32
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02  # inverted scaling keeps the mean
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    y64 = ops.dropout(x.astype(np.float64), 0.5, training=True).data  # default rng
    assert y64.dtype == np.float64 and abs((y64 == 0).mean() - 0.5) < 0.01


def test_dropout_inference_and_rate_zero_are_identity():
    x = rng.standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(ops.dropout(x, 0.5).data, x)
    np.testing.assert_array_equal(ops.dropout(x, 0.5, training=False).data, x)
    np.testing.assert_array_equal(ops.dropout(x, 0.0, training=True).data, x)
    np.testing.assert_array_equal(ops.spatial_dropout(x[:, :, None], 0.5).data, x[:, :, None])


def test_dropout_reproducible_with_seed():
    x = np.ones((10, 10))
    a = ops.dropout(x, 0.5, True, rng=np.random.default_rng(3)).data
    b = ops.dropout(x, 0.5, True, rng=np.random.default_rng(3)).data
    c = ops.dropout(x, 0.5, True, rng=np.random.default_rng(4)).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_noise_shape():
    x = np.ones((8, 6, 5))
    y = ops.dropout(x, 0.5, True, noise_shape=(8, 1, 5), rng=np.random.default_rng(0)).data
    assert np.all(y == y[:, :1, :])  # the mask is shared along axis 1
    assert 0 < (y == 0).mean() < 1
    y2 = ops.dropout(x, 0.5, True, noise_shape=(None, 1, None),
                     rng=np.random.default_rng(0)).data
    np.testing.assert_array_equal(y, y2)
    gradcheck(lambda t: ops.dropout(t, 0.5, True, noise_shape=(3, 1, 2),
                                    rng=np.random.default_rng(1)), rng.standard_normal((3, 4, 2)))


@pytest.mark.parametrize("shape", [(4, 30, 16), (4, 6, 7, 16), (2, 3, 4, 5, 16)])
def test_spatial_dropout_drops_whole_channels(shape):
    x = rng.uniform(1.0, 2.0, shape)
    y = ops.spatial_dropout(x, 0.5, training=True, rng=np.random.default_rng(2)).data
    axes = tuple(range(1, len(shape) - 1))
    dropped = (y == 0).all(axis=axes)
    kept = np.isclose(y, x * 2).all(axis=axes)
    assert np.all(dropped ^ kept)  # each (sample, channel) is dropped or kept entirely
    assert 0 < dropped.sum() < dropped.size
    gradcheck(lambda t: ops.spatial_dropout(t, 0.3, True, rng=np.random.default_rng(5)),
              rng.standard_normal((2, 3, 2, 4)))


def test_dropout_bad_inputs():
    x = np.ones((2, 3))
    for rate in [-0.1, 1.0, 1.5, "0.5", True]:
        with pytest.raises(ValueError, match=r"dropout expects rate in \[0, 1\)"):
            ops.dropout(x, rate, training=True)
    with pytest.raises(ValueError, match=r"spatial_dropout expects rate in \[0, 1\)"):
        ops.spatial_dropout(np.ones((2, 3, 4)), 1.0)
    with pytest.raises(ValueError, match="spatial_dropout expects x of rank >= 3"):
        ops.spatial_dropout(x, 0.5, training=True)
    with pytest.raises(ValueError, match="dropout expects noise_shape"):
        ops.dropout(x, 0.5, True, noise_shape=(2, 2))
    with pytest.raises(ValueError, match="dropout expects noise_shape"):
        ops.dropout(x, 0.5, True, noise_shape=(2,))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        ops.dropout(x, 0.5, True, rng=3)


# ----- batch norm kernels: the tiled (M / r, r * C) channels-last path ---------------------------
def _bn_reference64(x, g, gamma, beta, eps):
    """Training-mode batch norm forward and backward in float64, from the formulas."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    axes = tuple(range(x.ndim - 1))
    mu, var = x.mean(axes), x.var(axes)
    xh = (x - mu) / np.sqrt(var + eps)
    m = x.size // x.shape[-1]
    dbeta, dgamma = g.sum(axes), (g * xh).sum(axes)
    dx = gamma / np.sqrt(var + eps) * (g - dbeta / m - xh * dgamma / m)
    return gamma * xh + beta, mu, var, dx, dgamma, dbeta


@pytest.mark.parametrize("tile", [1, 8, 1024])
@pytest.mark.parametrize("shape", [(16, 4, 4, 16), (6, 5, 7, 3), (8, 3, 3, 1), (5, 6, 64),
                                   (9, 7, 5)])
@pytest.mark.parametrize("offset", [0.0, 40.0])
def test_batch_norm_tiled_kernels(monkeypatch, shape, tile, offset):
    from cnnkit.kernels import norm as KN
    from cnnkit.kernels import parallel as P

    monkeypatch.setattr(KN, "TILE_ELEMS", tile)
    monkeypatch.setattr(P, "MIN_PARALLEL_BYTES", 1)
    monkeypatch.setattr(P, "PIECE_BYTES", 256)
    c = shape[-1]
    x = (rng.standard_normal(shape) * 2 + offset).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    pshape = (1,) * (len(shape) - 1) + (c,)
    y, mu, var, cache = KN.batch_norm_train_forward(x, gamma.reshape(pshape),
                                                    beta.reshape(pshape), 1e-3)
    dx, dgamma, dbeta = KN.batch_norm_train_backward(g, gamma.reshape(pshape), cache)
    ref = _bn_reference64(x, g, gamma, beta, 1e-3)
    ours = (y, mu.ravel(), var.ravel(), dx, dgamma.ravel(), dbeta.ravel())
    for name, a, b in zip(("y", "mean", "var", "dx", "dgamma", "dbeta"), ours, ref,
                          strict=True):
        assert a.dtype == np.float32 and a.shape == b.shape, name
        assert_close_scaled(a, b, tol=2e-5, what=name)
    yi = KN.batch_norm_infer_forward(x, gamma.reshape(pshape), beta.reshape(pshape), mu, var,
                                     1e-3)
    assert_close_scaled(yi, ref[0], tol=2e-5)


def test_batch_norm_tiling_factor(monkeypatch):
    from cnnkit.kernels import norm as KN
    from cnnkit.kernels import parallel as P

    assert KN._tiling(128 * 32 * 32, 16) == 64  # 1024 // 16
    assert KN._tiling(128 * 8 * 8, 64) == 16
    assert KN._tiling(210, 3) == 1  # small: one piece, not tiled
    monkeypatch.setattr(P, "MIN_PARALLEL_BYTES", 1)
    assert KN._tiling(210, 3) == 2  # largest power of two <= 341 dividing 210
    assert KN._tiling(9, 16) == 1
    assert KN._tiling(7, 5000) == 1
