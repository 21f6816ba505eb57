"""The optional native training batch-norm kernels (kernels/native/_norm.c via
kernels/native/norm.py), checked against the batch-norm formulas evaluated in float64 NumPy and
against PyTorch (F.batch_norm in training mode, gradients by autograd), over 2-D and 4-D
shapes, C = 1, odd sizes (vector chunks plus a tail) and batch 1; that results do not depend
on the thread count; the dispatch in kernels/norm.py; and the switch CNNKIT_NATIVE=0."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import assert_close_scaled

from cnnkit.kernels import norm as KN
from cnnkit.kernels import parallel as P
from cnnkit.kernels.native import loader
from cnnkit.kernels.native import norm as native_norm

pytestmark = pytest.mark.skipif(
    native_norm.library_path() is None,
    reason="the native batch-norm helper is not built (no C compiler at install time); "
           "cnnkit uses its NumPy kernels")

rng = np.random.default_rng(5)
EPS = 1e-3

SHAPES = [(64, 16), (7, 1), (3, 33), (1, 5), (2, 4, 4, 1), (2, 5, 7, 3), (1, 6, 5, 24),
          (3, 9, 9, 17), (2, 6, 6, 40), (1, 3, 3, 64), (16, 32, 32, 16), (4, 11, 13, 48)]


def _on() -> None:
    if not native_norm.available():
        pytest.skip("native helper switched off (CNNKIT_NATIVE=0)")


def _on_and_off(fn):
    """{True: fn() with the C helper on, False: fn() on the NumPy path}."""
    results = {}
    for flag in (True, False):
        native_norm.set_enabled(flag)
        try:
            results[flag] = fn()
        finally:
            native_norm.set_enabled(None)
    return results


def _data(shape: tuple[int, ...], offset: float = 0.5, spread: float = 2.0):
    c = shape[-1]
    pshape = (1,) * (len(shape) - 1) + (c,)
    x = (rng.standard_normal(shape) * spread + offset).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    gamma = rng.standard_normal(pshape).astype(np.float32)
    beta = rng.standard_normal(pshape).astype(np.float32)
    return x, g, gamma, beta


def _reference(x, g, gamma, beta):
    """Training batch norm and its gradients, in float64 (biased variance)."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    gamma, beta = gamma.astype(np.float64), beta.astype(np.float64)
    red = tuple(range(x.ndim - 1))
    m = x.size // x.shape[-1]
    mu = x.mean(axis=red, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=red, keepdims=True)
    istd = 1.0 / np.sqrt(var + EPS)
    xhat = (x - mu) * istd
    y = gamma * xhat + beta
    dbeta = g.sum(axis=red, keepdims=True)
    dgamma = (g * xhat).sum(axis=red, keepdims=True)
    dx = gamma * istd / m * (m * g - dbeta - xhat * dgamma)
    return y, mu, var, dx, dgamma, dbeta


def _ours(x, g, gamma, beta):
    y, mu, var, cache = KN.batch_norm_train_forward(x, gamma, beta, EPS)
    dx, dgamma, dbeta = KN.batch_norm_train_backward(g, gamma, cache)
    return y, mu, var, dx, dgamma, dbeta


NAMES = ("y", "mu", "var", "dx", "dgamma", "dbeta")


@pytest.mark.parametrize("shape", SHAPES)
def test_native_matches_float64_formula(shape):
    _on()
    x, g, gamma, beta = _data(shape)
    ours = _ours(x, g, gamma, beta)
    for name, a, ref in zip(NAMES, ours, _reference(x, g, gamma, beta), strict=True):
        assert a.dtype == np.float32, name
        assert_close_scaled(a, ref, tol=2e-5, what=f"{shape} {name}")


@pytest.mark.parametrize("shape", [(64, 16), (2, 5, 7, 3), (1, 6, 5, 24), (16, 32, 32, 16)])
def test_native_matches_numpy_path(shape):
    """Within float32 rounding of the NumPy path (CNNKIT_NATIVE=0 semantics)."""
    _on()
    x, g, gamma, beta = _data(shape)
    ours = _ours(x, g, gamma, beta)
    native_norm.set_enabled(False)
    try:
        ref = _ours(x, g, gamma, beta)
    finally:
        native_norm.set_enabled(None)
    for name, a, b in zip(NAMES, ours, ref, strict=True):
        assert_close_scaled(a, b, tol=2e-5, what=f"{shape} {name}")


@pytest.mark.parametrize("shape", [(32, 8), (5, 1), (2, 5, 7, 3), (1, 6, 5, 24),
                                   (4, 8, 8, 16)])
def test_native_matches_torch(shape):
    torch = pytest.importorskip("torch")
    _on()
    x, g, gamma, beta = _data(shape)
    c = shape[-1]
    perm = (0, x.ndim - 1, *range(1, x.ndim - 1))  # channels-first for torch
    xt = torch.tensor(x.transpose(perm).astype(np.float64), requires_grad=True)
    gt = torch.tensor(gamma.reshape(c).astype(np.float64), requires_grad=True)
    bt = torch.tensor(beta.reshape(c).astype(np.float64), requires_grad=True)
    yt = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=EPS)
    yt.backward(torch.tensor(g.transpose(perm).astype(np.float64)))
    back = np.argsort(perm)
    y, _, _, dx, dgamma, dbeta = _ours(x, g, gamma, beta)
    assert_close_scaled(y, yt.detach().numpy().transpose(back), tol=2e-5, what="y")
    assert_close_scaled(dx, xt.grad.numpy().transpose(back), tol=2e-5, what="dx")
    assert_close_scaled(dgamma.reshape(c), gt.grad.numpy(), tol=2e-5, what="dgamma")
    assert_close_scaled(dbeta.reshape(c), bt.grad.numpy(), tol=2e-5, what="dbeta")


def test_no_gamma_beta():
    _on()
    x, g, gamma, beta = _data((3, 5, 5, 20))
    y, mu, var, cache = KN.batch_norm_train_forward(x, None, None, EPS)
    dx, dgamma, dbeta = KN.batch_norm_train_backward(g, None, cache)
    one, zero = np.ones_like(gamma), np.zeros_like(beta)
    ref = _reference(x, g, one, zero)
    for name, a, b in zip(NAMES, (y, mu, var, dx, dgamma, dbeta), ref, strict=True):
        assert_close_scaled(a, b, tol=2e-5, what=name)


def test_large_mean_accuracy():
    """Data far from zero (mean 1000, std 0.1): the variance is at least as accurate as the
    NumPy path's, and close to float64."""
    _on()
    x, g, gamma, beta = _data((8, 16, 16, 16), offset=1000.0, spread=0.1)
    _, _, var, _ = KN.batch_norm_train_forward(x, gamma, beta, EPS)
    native_norm.set_enabled(False)
    try:
        _, _, var_np, _ = KN.batch_norm_train_forward(x, gamma, beta, EPS)
    finally:
        native_norm.set_enabled(None)
    ref = _reference(x, g, gamma, beta)[2]
    err = np.abs(var - ref).max()
    assert err <= max(np.abs(var_np - ref).max(), 1e-7 * ref.max()) + 1e-12
    assert err <= 1e-6 * ref.max()


def test_threads_do_not_change_results(monkeypatch):
    """Partial sums combine in block order: 1 and 2 threads give bit-identical results."""
    _on()
    monkeypatch.setattr(native_norm, "BLOCK_BYTES", 1 << 18)
    x, g, gamma, beta = _data((8, 32, 32, 33))  # several row blocks, odd ones included
    assert len(native_norm._blocks(8 * 32 * 32, 33, 1)) > 3
    before = P.get_num_threads()
    try:
        P.set_num_threads(1)
        one = _ours(x, g, gamma, beta)
        P.set_num_threads(2)
        two = _ours(x, g, gamma, beta)
    finally:
        P.set_num_threads(before)
    for name, a, b in zip(NAMES, one, two, strict=True):
        assert np.array_equal(a, b), name


def test_dispatch(monkeypatch):
    """float32 channels-last training BN calls the C kernels; float64 and other axes do not."""
    _on()
    calls = []
    for name in ("train_forward", "train_backward"):
        real = getattr(native_norm, name)
        monkeypatch.setattr(native_norm, name,
                            lambda *a, _real=real, _name=name, **kw: (calls.append(_name),
                                                                     _real(*a, **kw))[1])
    x, g, gamma, beta = _data((2, 4, 4, 8))
    _ours(x, g, gamma, beta)
    assert calls == ["train_forward", "train_backward"]
    calls.clear()
    _ours(x.astype(np.float64), g.astype(np.float64), gamma.astype(np.float64),
          beta.astype(np.float64))
    xc = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # channels first: axis=1
    _, _, _, cache = KN.batch_norm_train_forward(xc, gamma.reshape(1, 8, 1, 1), None, EPS,
                                                 axis=1)
    KN.batch_norm_train_backward(xc, gamma.reshape(1, 8, 1, 1), cache, axis=1)
    assert calls == []


def test_native_off_by_environment(monkeypatch):
    """CNNKIT_NATIVE=0 switches the helper off, in-process and in a fresh interpreter; the
    NumPy path still gives the same values."""
    x, g, gamma, beta = _data((2, 5, 5, 16))
    monkeypatch.setenv("CNNKIT_NATIVE", "0")
    loader.reread_env()  # the variable is read once; a change in-process is re-read
    assert not native_norm.available()

    def boom(*_, **__):
        raise AssertionError("native kernel called although CNNKIT_NATIVE=0")
    monkeypatch.setattr(native_norm, "train_forward", boom)
    monkeypatch.setattr(native_norm, "train_backward", boom)
    for name, a, b in zip(NAMES, _ours(x, g, gamma, beta), _reference(x, g, gamma, beta),
                          strict=True):
        assert_close_scaled(a, b, tol=2e-5, what=name)
    monkeypatch.setenv("CNNKIT_NATIVE", "1")
    loader.reread_env()
    assert native_norm.available()
    env = {**os.environ, "CNNKIT_NATIVE": "0"}
    code = ("import cnnkit.kernels.native.norm as n; "
            "print(n.available(), n.library_path() is None)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
    monkeypatch.undo()
    loader.reread_env()


def test_donated_gradient_is_overwritten():
    """A donated output gradient (autograd's, see kernels.arith.donate) receives dx; the values
    are those of the float64 formula."""
    from cnnkit.kernels import arith
    _on()
    x, g, gamma, beta = _data((4, 8, 8, 16))
    ref = _reference(x, g, gamma, beta)
    _, _, _, cache = KN.batch_norm_train_forward(x, gamma, beta, EPS)
    gd = g.copy()
    arith.donate(gd)
    try:
        dx, dgamma, dbeta = KN.batch_norm_train_backward(gd, gamma, cache)
    finally:
        arith.donate(None)
    assert np.shares_memory(dx, gd)
    for name, a, b in zip(NAMES[3:], (dx, dgamma, dbeta), ref[3:], strict=True):
        assert_close_scaled(a, b, tol=2e-5, what=name)


@pytest.mark.parametrize("shape", [(7,), (16,), (3, 37), (2, 5, 5, 16), (16, 32, 32, 16)])
def test_relu_backward_matches_numpy(shape):
    """g * [x > 0] bit for bit as NumPy's g * (x > 0) (NaN, inf and signed zeros included),
    into a fresh array and into a donated g."""
    from cnnkit.kernels import activation as KA
    from cnnkit.kernels import arith
    _on()
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    flat_x, flat_g = x.reshape(-1), g.reshape(-1)
    flat_x[:6] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0][:flat_x.size]
    flat_g[-4:] = [np.nan, np.inf, -np.inf, -1.0][-flat_g.size:]
    with np.errstate(invalid="ignore"):  # inf * 0
        ref = g * (x > 0)
    got = KA.relu_backward(g, x, None)
    assert got.dtype == np.float32 and not np.shares_memory(got, g)
    np.testing.assert_array_equal(got, ref)
    assert np.array_equal(np.signbit(got), np.signbit(ref))
    gd = g.copy()
    arith.donate(gd)
    try:
        got = KA.relu_backward(gd, x, None)
    finally:
        arith.donate(None)
    assert np.shares_memory(got, gd)
    np.testing.assert_array_equal(got, ref)
    assert np.array_equal(np.signbit(got), np.signbit(ref))


@pytest.mark.parametrize("shape", [(7,), (16,), (3, 37), (16, 32, 32, 16)])
def test_relu_forward_matches_numpy(shape):
    """max(x, 0) bit for bit as NumPy's clip(x, 0, inf): NaN and -0 kept, negatives to +0."""
    from cnnkit.kernels import activation as KA
    _on()
    x = rng.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[:6] = [0.0, -0.0, np.nan, np.inf, -np.inf, -1.0][:x.size]
    ref = np.clip(x, 0, np.inf)
    got = KA.relu_forward(x)
    np.testing.assert_array_equal(got, ref)
    assert np.array_equal(np.signbit(got), np.signbit(ref))


@pytest.mark.parametrize("shape", [(2, 8, 8, 16), (3, 7, 9, 32), (1, 28, 28, 48), (64, 4, 4, 16)])
def test_max_pool_2x2_matches_numpy(shape):
    """The C 2x2 / stride-2 tournament gives NumPy's outputs (up to the sign of a zero max),
    comparisons and gradient bit for bit (ties to the first tap, NaN, odd sizes cropped), and
    PyTorch's max_pool2d outputs and gradient."""
    from cnnkit.kernels import pool as KPo
    _on()
    x = np.round(rng.standard_normal(shape) * 2).astype(np.float32)  # many ties
    x.reshape(-1)[:6] = [np.nan, 0.0, -0.0, 0.0, np.inf, -np.inf]
    g = rng.standard_normal((shape[0], shape[1] // 2, shape[2] // 2, shape[3]))
    g = g.astype(np.float32)

    def pool():
        y, win = KPo.max_pool_forward(x, (2, 2), return_winners=True)
        return (y, *win, KPo.max_pool_backward(g, x, y, (2, 2), winners=win))
    results = _on_and_off(pool)
    for a, b in zip(results[True], results[False], strict=True):
        np.testing.assert_array_equal(a, b)  # (max(-0, +0) may be either zero in NumPy)
    assert np.array_equal(np.signbit(results[True][-1]), np.signbit(results[False][-1]))
    torch = pytest.importorskip("torch")
    xf = x.copy()
    xf.reshape(-1)[:6] = 0.0  # PyTorch routes NaN windows differently; finite data only
    y, win = KPo.max_pool_forward(xf, (2, 2), return_winners=True)
    gx = KPo.max_pool_backward(g, xf, y, (2, 2), winners=win)
    xt = torch.tensor(xf.transpose(0, 3, 1, 2), requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, 2)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(y, yt.detach().numpy().transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(gx, xt.grad.numpy().transpose(0, 2, 3, 1))


def test_max_pool_dispatch(monkeypatch):
    """2x2 / stride-2 float32 pooling with 16k channels calls the C kernels; 6 channels,
    float64 or padding do not."""
    from cnnkit.kernels import pool as KPo
    _on()
    calls = []
    for name in ("max_pool_2x2_forward", "max_pool_2x2_backward"):
        real = getattr(native_norm, name)
        monkeypatch.setattr(native_norm, name,
                            lambda *a, _real=real, _name=name: (calls.append(_name), _real(*a))[1])

    def run(x, **kw):
        y, win = KPo.max_pool_forward(x, (2, 2), return_winners=True, **kw)
        KPo.max_pool_backward(np.ones_like(y), x, y, (2, 2), winners=win, **kw)
    run(rng.standard_normal((2, 6, 6, 16)).astype(np.float32))
    assert calls == ["max_pool_2x2_forward", "max_pool_2x2_backward"]
    calls.clear()
    run(rng.standard_normal((2, 6, 6, 6)).astype(np.float32))
    run(rng.standard_normal((2, 6, 6, 16)))
    run(rng.standard_normal((2, 5, 5, 16)).astype(np.float32), padding="same")
    assert calls == []


@pytest.mark.parametrize("shape", [(2, 8, 8, 16), (3, 7, 9, 6), (128, 28, 28, 6), (2, 10, 10, 1),
                                   (1, 5, 4, 3), (2, 6, 6, 20), (4, 3, 2, 8)])
def test_avg_pool_2x2_matches_numpy(shape):
    """The C 2x2 / stride-2 average pooling gives NumPy's outputs (bit for bit where NumPy
    also sums the rows first) and gradient bit for bit (odd sizes: last row / column
    dropped, their gradient 0), and
    PyTorch's avg_pool2d within float32 rounding."""
    from cnnkit.kernels import pool as KPo
    _on()
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal((shape[0], shape[1] // 2, shape[2] // 2, shape[3]))
    g = g.astype(np.float32)
    results = _on_and_off(lambda: (KPo.avg_pool_forward(x, (2, 2)),
                                   KPo.avg_pool_backward(g, x.shape, (2, 2))))
    # the NumPy path sums the rows first for few channels (as the C kernel: bit for bit),
    # else the taps in row-major order (then within float32 rounding)
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-6, atol=1e-7)
    if shape[-1] <= 16:
        np.testing.assert_array_equal(results[True][0], results[False][0])
    np.testing.assert_array_equal(results[True][1], results[False][1])
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    yt = torch.nn.functional.avg_pool2d(xt, 2)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(results[True][0], yt.detach().numpy().transpose(0, 2, 3, 1),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(results[True][1], xt.grad.numpy().transpose(0, 2, 3, 1))


def test_avg_pool_dispatch(monkeypatch):
    """2x2 / stride-2 float32 average pooling calls the C kernels (any channel count);
    float64, padding, 3x3 windows or a non-contiguous input (forward) do not."""
    from cnnkit.kernels import pool as KPo
    _on()
    calls = []
    for name in ("avg_pool_2x2_forward", "avg_pool_2x2_backward"):
        real = getattr(native_norm, name)
        monkeypatch.setattr(native_norm, name,
                            lambda *a, _real=real, _name=name: (calls.append(_name), _real(*a))[1])

    def run(x, pool=(2, 2), **kw):
        y = KPo.avg_pool_forward(x, pool, **kw)
        KPo.avg_pool_backward(np.ones_like(y), x.shape, pool, **kw)
    run(rng.standard_normal((2, 6, 6, 6)).astype(np.float32))
    assert calls == ["avg_pool_2x2_forward", "avg_pool_2x2_backward"]
    calls.clear()
    run(rng.standard_normal((2, 6, 6, 6)))
    run(rng.standard_normal((2, 5, 5, 16)).astype(np.float32), padding="same")
    run(rng.standard_normal((2, 6, 6, 4)).astype(np.float32), pool=(3, 3))
    assert calls == []
    KPo.avg_pool_forward(rng.standard_normal((2, 6, 6, 8)).astype(np.float32)[..., ::2], (2, 2))
    assert calls == []


def test_avg_pool_2x2_rejects_wrong_shapes():
    x = np.zeros((2, 4, 4, 3), np.float32)
    with pytest.raises(ValueError):
        native_norm.avg_pool_2x2_forward(x, np.zeros((2, 2, 2, 4), np.float32), 0, 2)
    with pytest.raises(ValueError):
        native_norm.avg_pool_2x2_backward(np.zeros((2, 2, 2, 3)), x, 0, 2)


def test_pool_2x2_batch_pieces_match_numpy(monkeypatch):
    """The C pooling kernels cut into batch pieces over two threads (the large-input path,
    forced here) give the NumPy path's results."""
    from cnnkit.kernels import parallel as KP
    from cnnkit.kernels import pool as KPo
    from cnnkit.kernels import pool_windows as KPw
    _on()
    monkeypatch.setattr(KPw, "NATIVE_POOL_MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(KP, "MIN_PARALLEL_BYTES", 1)
    monkeypatch.setattr(KP, "PIECE_BYTES", 4096)
    KP.set_num_threads(2)
    try:
        x = rng.standard_normal((9, 8, 6, 16)).astype(np.float32)
        g = rng.standard_normal((9, 4, 3, 16)).astype(np.float32)

        def pools():
            y, win = KPo.max_pool_forward(x, (2, 2), return_winners=True)
            return (y, KPo.max_pool_backward(g, x, y, (2, 2), winners=win),
                    KPo.avg_pool_forward(x, (2, 2)), KPo.avg_pool_backward(g, x.shape, (2, 2)))
        results = _on_and_off(pools)
    finally:
        KP.set_num_threads(KP._env_threads())
    for a, b in zip(results[True], results[False], strict=True):
        np.testing.assert_array_equal(a, b)
