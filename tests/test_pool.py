"""Max, average and global pooling: finite differences (float64) and PyTorch (float32)."""

import numpy as np
import pytest
from helpers import assert_close_scaled, check_vs_torch, gradcheck, torch_or_skip

from cnnkit import Tensor, ops
from cnnkit.kernels import pool as KP

rng = np.random.default_rng(0)

# Odd spatial sizes so that "same" at stride 2 pads asymmetrically (extra cell at the end).
SHAPES = {1: (2, 7, 2), 2: (1, 5, 7, 2), 3: (1, 5, 3, 4, 1)}
MAX = {1: ops.max_pool1d, 2: ops.max_pool2d, 3: ops.max_pool3d}
AVG = {1: ops.avg_pool1d, 2: ops.avg_pool2d, 3: ops.avg_pool3d}


def distinct(shape, dtype=np.float64):
    """Values far apart (no ties or near-ties inside eps), in random order."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.1 - 0.05 * n).astype(dtype)


# ----- finite differences -----------------------------------------------------------------------
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2, 3])
@pytest.mark.parametrize("pool", [2, 3])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_fd_sweep(kind, nd, pool, strides, padding):
    f = (MAX if kind == "max" else AVG)[nd]
    gradcheck(lambda t: f(t, pool, strides, padding), distinct(SHAPES[nd]))


@pytest.mark.parametrize("kw", [
    dict(pool_size=3, strides=2, padding=1),
    dict(pool_size=(3, 2), strides=(1, 2), padding=((1, 0), (0, 1))),
    dict(pool_size=2, strides=1, padding="valid", dilation_rate=2),
    dict(pool_size=3, strides=2, padding="same", dilation_rate=(2, 1)),
    dict(pool_size=2, strides=2, padding="valid", ceil_mode=True),
    dict(pool_size=3, strides=2, padding=1, ceil_mode=True),
])
@pytest.mark.parametrize("kind", ["max", "avg", "avg_include_pad"])
def test_pool_fd_options(kind, kw):
    x = distinct((2, 5, 6, 2))
    if kind == "max":
        gradcheck(lambda t: ops.max_pool(t, **kw), x)
    else:
        gradcheck(lambda t: ops.avg_pool(t, count_include_pad=kind != "avg", **kw), x)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 3, 4, 2), (1, 2, 3, 2, 3)])
def test_global_pool_fd(shape, keepdims):
    x = distinct(shape)
    gradcheck(lambda t: ops.global_average_pool(t, keepdims=keepdims), x)
    gradcheck(lambda t: ops.global_max_pool(t, keepdims=keepdims), x)


# ----- PyTorch ----------------------------------------------------------------------------------
def _torch_pool(torch, kind, xt, nd, pool, strides, pads, dilation=1, ceil_mode=False,
                count_include_pad=False):
    """Reference pooling in NC* layout with Keras conventions reproduced explicitly.

    ``pads`` is one (before, after) pair per spatial axis (possibly asymmetric). Max: pad with
    -inf via F.pad. Average excluding pads: avg_pool of the zero-padded input divided by
    avg_pool of the padded ones mask (= sum / number of real cells).
    """
    F = torch.nn.functional
    flat = [v for pair in reversed(pads) for v in pair]  # F.pad: last axis first
    if kind == "max":
        xp = F.pad(xt, flat, value=-float("inf"))
        fn = getattr(F, f"max_pool{nd}d")
        return fn(xp, pool, strides, 0, dilation=dilation, ceil_mode=ceil_mode)
    fn = getattr(F, f"avg_pool{nd}d")
    xp = F.pad(xt, flat, value=0.0)
    s = fn(xp, pool, strides, 0, ceil_mode=ceil_mode)
    if count_include_pad:
        return s
    ones = F.pad(torch.ones_like(xt), flat, value=0.0)
    return s / fn(ones, pool, strides, 0, ceil_mode=ceil_mode)


def _compare(kind, x, ours, ref_fn):
    """Forward and backward of ``ours`` vs ``ref_fn``, a torch function in NC* layout."""
    check_vs_torch(ours, lambda xt: ref_fn(xt.movedim(-1, 1)).movedim(1, -1), x, what=kind)


CONFIGS = [(2, 2, "valid"), (3, 2, "same"), (3, 1, "same"), (2, 3, "valid"), (3, 2, "valid"),
           (2, 1, "same"), (3, 3, "same")]
TORCH_SHAPES = {1: (3, 11, 4), 2: (2, 9, 7, 3), 3: (2, 5, 7, 6, 2)}


@pytest.mark.parametrize("pool,strides,padding", CONFIGS)
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_vs_torch(kind, nd, pool, strides, padding):
    torch = torch_or_skip()
    x = rng.standard_normal(TORCH_SHAPES[nd]).astype(np.float32)
    sizes = x.shape[1:-1]
    if padding == "same":  # Keras: out = ceil(W/S), total = (out-1)*S + K - W, extra at end
        pads = []
        for w in sizes:
            total = max((-(-w // strides) - 1) * strides + pool - w, 0)
            pads.append((total // 2, total - total // 2))
    else:
        pads = [(0, 0)] * nd
    ours = (MAX if kind == "max" else AVG)[nd]
    _compare(kind, x, lambda t: ours(t, pool, strides, padding),
             lambda xt: _torch_pool(torch, kind, xt, nd, pool, strides, pads))


@pytest.mark.parametrize("kw", [
    dict(pool=3, strides=2, pad=1, ceil_mode=True),
    dict(pool=2, strides=2, pad=0, ceil_mode=True),
    dict(pool=3, strides=2, pad=1, dilation=2),
    dict(pool=2, strides=1, pad=0, dilation=2, ceil_mode=True),
    dict(pool=3, strides=3, pad=1),
])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_options_vs_torch(nd, kw):
    torch = torch_or_skip()
    F = torch.nn.functional
    x = rng.standard_normal(TORCH_SHAPES[nd]).astype(np.float32)
    d, c = kw.get("dilation", 1), kw.get("ceil_mode", False)
    _compare("max", x,
             lambda t: ops.max_pool(t, kw["pool"], kw["strides"], kw["pad"], dilation_rate=d,
                                    ceil_mode=c),
             lambda xt: getattr(F, f"max_pool{nd}d")(xt, kw["pool"], kw["strides"], kw["pad"],
                                                     dilation=d, ceil_mode=c))


@pytest.mark.parametrize("include", [False, True])
@pytest.mark.parametrize("kw", [
    dict(pool=3, strides=2, pad=1, ceil_mode=True),
    dict(pool=2, strides=2, pad=0, ceil_mode=True),
    dict(pool=3, strides=2, pad=1),
    dict(pool=3, strides=1, pad=1),
])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_avg_pool_options_vs_torch(nd, kw, include):
    torch = torch_or_skip()
    F = torch.nn.functional
    x = rng.standard_normal(TORCH_SHAPES[nd]).astype(np.float32)
    c = kw.get("ceil_mode", False)
    _compare("avg", x,
             lambda t: ops.avg_pool(t, kw["pool"], kw["strides"], kw["pad"],
                                    count_include_pad=include, ceil_mode=c),
             lambda xt: getattr(F, f"avg_pool{nd}d")(xt, kw["pool"], kw["strides"], kw["pad"],
                                                     ceil_mode=c, count_include_pad=include))


@pytest.mark.parametrize("pool,strides", [(2, 2), (3, 1), (3, 2)])
def test_max_pool_ties_go_to_first_like_torch(pool, strides):
    torch = torch_or_skip()
    x = rng.integers(0, 3, (2, 7, 8, 3)).astype(np.float32)  # many ties in every window
    _compare("max", x, lambda t: ops.max_pool2d(t, pool, strides),
             lambda xt: torch.nn.functional.max_pool2d(xt, pool, strides))
    xc = Tensor(x, requires_grad=True)
    ops.max_pool2d(xc, pool, strides).sum().backward()
    n_windows = int(np.prod(ops.max_pool2d(x, pool, strides).shape))
    assert xc.grad.sum() == n_windows  # exactly one cell per window takes each gradient


def test_max_pool_tie_example():
    x = np.array([[1.0, 5.0], [5.0, 5.0]]).reshape(1, 2, 2, 1)
    xc = Tensor(x, requires_grad=True)
    ops.max_pool2d(xc, 2).backward(np.array([[[[3.0]]]]))
    np.testing.assert_array_equal(xc.grad[0, :, :, 0], [[0.0, 3.0], [0.0, 0.0]])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_global_pool_vs_torch_adaptive(nd):
    torch = torch_or_skip()
    F = torch.nn.functional
    x = distinct(TORCH_SHAPES[nd], np.float32) / 100
    for kind in ["avg", "max"]:
        ours = ops.global_average_pool if kind == "avg" else ops.global_max_pool
        ref = getattr(F, f"adaptive_{kind}_pool{nd}d")
        _compare(f"global {kind}", x, lambda t, f=ours: f(t, keepdims=True),
                 lambda xt, r=ref: r(xt, 1))
        y = ours(x)
        assert y.shape == (x.shape[0], x.shape[-1])


def test_global_max_pool_ties_first():
    x = np.zeros((1, 2, 2, 2))
    x[0, :, :, 0] = [[1.0, 2.0], [2.0, 0.0]]  # tie at (0, 1) and (1, 0): first wins
    xc = Tensor(x, requires_grad=True)
    ops.global_max_pool(xc).backward(np.ones((1, 2)))
    np.testing.assert_array_equal(xc.grad[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(xc.grad[0, :, :, 1], [[1.0, 0.0], [0.0, 0.0]])


# ----- details ----------------------------------------------------------------------------------
def test_dtypes_and_aliases():
    x32 = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    assert ops.max_pool2d(x32, 2).dtype == np.float32
    assert ops.avg_pool2d(x32.astype(np.float64), 2).dtype == np.float64
    assert ops.max_pool2d(np.ones((1, 4, 4, 1), dtype=np.int64), 2).dtype == np.float32
    assert ops.average_pool2d is ops.avg_pool2d and ops.average_pool is ops.avg_pool
    np.testing.assert_array_equal(ops.avg_pool2d(x32, 2).data, ops.avg_pool(x32, (2, 2)).data)


def test_same_output_shapes():
    x = np.zeros((1, 7, 8, 5, 1), dtype=np.float32)
    assert ops.max_pool3d(x, 3, 2, "same").shape == (1, 4, 4, 3, 1)
    assert ops.avg_pool3d(x, 2, None, "valid").shape == (1, 3, 4, 2, 1)
    assert ops.max_pool1d(np.zeros((2, 9, 3)), 4, 4, "same").shape == (2, 3, 3)


def test_avg_same_excludes_padding_by_hand():
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)  # "same", pool 2, stride 2: pads (0, 1)
    y = ops.avg_pool1d(x, 2, 2, "same").data[0, :, 0]
    np.testing.assert_allclose(y, [1.5, 3.5, 5.0])
    y = ops.avg_pool1d(x, 2, 2, "same", count_include_pad=True).data[0, :, 0]
    np.testing.assert_allclose(y, [1.5, 3.5, 2.5])


def test_kernels_direct():
    x = rng.standard_normal((2, 6, 6, 3))
    out = KP.max_pool_forward(x, (2, 2), (2, 2), "valid")
    np.testing.assert_allclose(out, x.reshape(2, 3, 2, 3, 2, 3).max(axis=(2, 4)))
    g = rng.standard_normal(out.shape)
    gx = KP.avg_pool_backward(g, x.shape, (2, 2))
    np.testing.assert_allclose(gx, np.repeat(np.repeat(g, 2, axis=1), 2, axis=2) / 4)


# ----- bad input --------------------------------------------------------------------------------
def test_bad_inputs():
    with pytest.raises(ValueError, match=r"max_pool2d expects x of rank 4 \(N, H, W, C\), "
                                         r"got rank 3"):
        ops.max_pool2d(np.zeros((5, 5, 1)), 2)
    with pytest.raises(ValueError, match="avg_pool1d expects x of rank 3"):
        ops.avg_pool1d(np.zeros((1, 5, 5, 1)), 2)
    with pytest.raises(ValueError, match="max_pool3d expects x of rank 5"):
        ops.max_pool3d(np.zeros((1, 5, 5, 1)), 2)
    with pytest.raises(ValueError, match="max_pool expects x of rank >= 3"):
        ops.max_pool(np.zeros((5, 5)), 2)
    with pytest.raises(ValueError, match="max_pool2d.*larger than the padded"):
        ops.max_pool2d(np.zeros((1, 2, 2, 1)), 3)
    with pytest.raises(ValueError, match="avg_pool2d.*larger than the padded"):
        ops.avg_pool2d(np.zeros((1, 4, 2, 1)), (2, 3), padding="valid")
    with pytest.raises(ValueError, match="max_pool2d.*padding must be"):
        ops.max_pool2d(np.zeros((1, 4, 4, 1)), 2, padding="full")
    with pytest.raises(ValueError, match="avg_pool2d.*pool_size"):
        ops.avg_pool2d(np.zeros((1, 4, 4, 1)), 0)
    with pytest.raises(ValueError, match="max_pool2d.*strides"):
        ops.max_pool2d(np.zeros((1, 4, 4, 1)), 2, strides=(1, 2, 3))
    with pytest.raises(ValueError, match="global_average_pool expects x of rank >= 3"):
        ops.global_average_pool(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="global_max_pool expects x of rank >= 3"):
        ops.global_max_pool(np.zeros((4, 3)))


# ----- the rows-first path (2-D windows tiling the input), against explicit window loops ---------
def _window_loops(x, kh, kw, reduce):
    """Each output as ``reduce`` over its kh x kw window, window by window (float64)."""
    n, h, w, c = x.shape
    ho, wo = h // kh, w // kw
    y = np.empty((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            y[:, i, j] = reduce(x[:, i * kh:(i + 1) * kh, j * kw:(j + 1) * kw].astype(np.float64),
                                axis=(1, 2))
    return y


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kh,kw,h,w", [(2, 2, 6, 8), (2, 2, 7, 5), (3, 3, 9, 7), (2, 3, 5, 9),
                                       (1, 2, 3, 4), (3, 1, 7, 2), (1, 1, 2, 3)])
@pytest.mark.parametrize("dtype,c", [(np.float32, 3), (np.float64, 3), (np.float32, 24),
                                     (np.float32, 40)])
def test_rows_first_pooling_against_window_loops(monkeypatch, threads, kh, kw, h, w, dtype, c):
    from cnnkit.kernels import parallel as P

    monkeypatch.setattr(P, "MIN_PARALLEL_BYTES", 1)
    monkeypatch.setattr(P, "PIECE_BYTES", 64)
    old = P.get_num_threads()
    P.set_num_threads(threads)
    try:
        x = rng.standard_normal((5, h, w, c)).astype(dtype)
        y_max = KP.max_pool_forward(x, (kh, kw))
        y_avg = KP.avg_pool_forward(x, (kh, kw))
        g = rng.standard_normal(y_avg.shape).astype(dtype)
        gx = KP.avg_pool_backward(g, x.shape, (kh, kw))
    finally:
        P.set_num_threads(old)
    assert y_max.dtype == y_avg.dtype == gx.dtype == dtype
    np.testing.assert_array_equal(y_max, _window_loops(x, kh, kw, np.max).astype(dtype))
    assert_close_scaled(y_avg, _window_loops(x, kh, kw, np.mean), tol=1e-6)
    ref = np.zeros(x.shape)
    ho, wo = h // kh, w // kw
    ref[:, :ho * kh, :wo * kw] = np.repeat(np.repeat(g.astype(np.float64) / (kh * kw), kh, axis=1),
                                           kw, axis=2)
    assert_close_scaled(gx, ref, tol=1e-6)


@pytest.mark.parametrize("shape,strides", [((3, 7, 6, 2), (2, 2)), ((2, 8, 8, 3), (2, 3)),
                                           ((2, 9, 3), (3,))])
def test_single_tap_windows_subsample(shape, strides):
    """1-wide windows at stride s (ResNet's option-A shortcut): y = x[:, ::s, ..., :] (one
    copy), and the gradient goes back to those positions only."""
    x = rng.standard_normal(shape)
    nd = len(shape) - 2
    sl = (slice(None),) + tuple(slice(None, None, s) for s in strides) + (slice(None),)
    y = ops.max_pool(x, (1,) * nd, strides).data
    np.testing.assert_array_equal(y, x[sl])
    g = rng.standard_normal(y.shape)
    xt = Tensor(x, requires_grad=True)
    ops.max_pool(xt, (1,) * nd, strides).backward(g)
    ref = np.zeros_like(x)
    ref[sl] = g
    np.testing.assert_array_equal(xt.grad, ref)
