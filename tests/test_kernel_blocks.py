"""The kernels' blocked and multi-threaded paths (kernels/parallel.py): forced onto small
inputs by shrinking the block sizes, checked against PyTorch (float32) and plain NumPy
formulas, and for the same results with one thread and with several."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
from helpers import assert_close_scaled, torch_or_skip

from cnnkit import Tensor, ops
from cnnkit.kernels import activation as KA
from cnnkit.kernels import conv as KC
from cnnkit.kernels import linear as KL
from cnnkit.kernels import norm as KN
from cnnkit.kernels import parallel as P
from cnnkit.kernels.conv import dispatch
from cnnkit.kernels.padding import resolve_padding

rng = np.random.default_rng(7)


def set_thresholds(monkeypatch, **changes):
    """Replace the one conv dispatch thresholds object for this test."""
    monkeypatch.setattr(dispatch, "THRESHOLDS", replace(dispatch.THRESHOLDS, **changes))


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def tiny_blocks(request, monkeypatch):
    """Every blocked kernel cut into many blocks, run on 1 or 2 threads."""
    set_thresholds(monkeypatch, block_bytes=1, depthwise_block_bytes=1)
    monkeypatch.setattr(P, "MIN_PARALLEL_BYTES", 1)
    monkeypatch.setattr(P, "PIECE_BYTES", 64)
    old = P.get_num_threads()
    P.set_num_threads(request.param)
    yield request.param
    P.set_num_threads(old)


def torch_pad(torch, xt, pads):
    flat = []
    for before, after in reversed(pads):
        flat += [before, after]
    return torch.nn.functional.pad(xt, flat)


def torch_conv2d(torch, x, w, b, s, pads, d, groups):
    xt = torch_pad(torch, x.permute(0, 3, 1, 2), pads)
    y = torch.nn.functional.conv2d(xt, w.permute(3, 2, 0, 1), b, stride=s, dilation=d,
                                   groups=groups)
    return y.permute(0, 2, 3, 1)


def grads(fn, arrays, g, torch=None):
    """Output and gradients of sum(fn(*arrays) * g), in cnnkit or (given torch) in PyTorch."""
    if torch is None:
        leaves = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
        out = fn(*leaves)
        out.backward(g.astype(np.float32))
        return [out.data] + [t.grad for t in leaves]
    leaves = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.backward(torch.tensor(g, dtype=torch.float32))
    return [out.detach().numpy()] + [t.grad.numpy() for t in leaves]


def check_all(ours, ref, what):
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        assert a.dtype == np.float32, what
        assert_close_scaled(a, b, tol=1e-4, what=f"{what} [{i}]")


# ----------------------------------------------------------------------------------------
# convolution
# ----------------------------------------------------------------------------------------
CONV_CASES = [  # (x shape, kernel (KH, KW), C_out, stride, padding, dilation, groups)
    ((5, 9, 8, 16), (3, 3), 16, 1, "same", 1, 1),    # flip dX, several batch blocks
    ((5, 9, 8, 6), (3, 3), 16, 1, "same", 1, 1),     # dX by col2im, few channels (tap-major)
    ((5, 9, 8, 16), (3, 3), 32, 2, "same", 1, 1),    # stride 2: col2im, asymmetric pads
    ((4, 12, 11, 1), (5, 5), 6, 1, "valid", 1, 1),   # one input channel (tap-major cols)
    ((4, 12, 11, 3), (3, 3), 8, 1, "same", 2, 1),    # three channels, dilation
    ((4, 9, 8, 8), (3, 3), 12, 1, "same", 1, 2),     # groups
    ((4, 10, 9, 8), (3, 2), 8, 1, ((2, 0), (1, 3)), 2, 1),  # row taps: dilation, pairs
    ((3, 8, 9, 6), (5, 3), 7, 1, ((4, 4), (1, 1)), 1, 1),   # row taps: pads > span (crop)
    ((3, 8, 9, 12), (1, 3), 5, 1, "same", 1, 1),     # one kernel row: full im2col
    ((3, 7, 6, 12), (1, 1), 10, 1, "valid", 1, 1),   # pointwise: row pieces
    ((3, 7, 6, 12), (1, 1), 10, 1, "valid", 1, 2),   # pointwise with groups
]


@pytest.mark.parametrize("shape,k,cout,s,pad,d,groups", CONV_CASES)
def test_conv2d_blocks_against_torch(tiny_blocks, shape, k, cout, s, pad, d, groups):
    torch = torch_or_skip()
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*k, shape[-1] // groups, cout)) * 0.3
    b = rng.standard_normal(cout)
    pads = resolve_padding(pad, shape[1:3], k, (s, s), (d, d))
    g = rng.standard_normal(ops.conv2d(x, w, None, s, pad, d, groups).shape)
    ours = grads(lambda x, w, b: ops.conv2d(x, w, b, s, pad, d, groups), [x, w, b], g)
    ref = grads(lambda x, w, b: torch_conv2d(torch, x, w, b, s, pads, d, groups), [x, w, b],
                g, torch)
    check_all(ours, ref, f"conv2d {shape} k{k} s{s} {pad} d{d} g{groups}")


@pytest.mark.parametrize("method", ["flip", "col2im"])
def test_conv_input_grad_blocks(tiny_blocks, method):
    torch = torch_or_skip()
    x = rng.standard_normal((5, 7, 6, 4))
    w = rng.standard_normal((3, 3, 4, 5))
    pads = ((1, 1), (1, 1))
    g = rng.standard_normal((5, 7, 6, 5))
    dx = KC.conv_input_grad(g.astype(np.float32), w.astype(np.float32), x.shape, (1, 1), pads,
                            (1, 1), 1, method=method)
    ref = grads(lambda x, w: torch_conv2d(torch, x, w, None, 1, pads, 1, 1), [x, w], g,
                torch)[1]
    assert_close_scaled(dx, ref, tol=1e-4)


def test_conv_backward_skips_and_float64(tiny_blocks):
    """need_* flags skip work; float64 stays float64; the blocked dK equals the closed form
    sum over every output position of x-window (x) dZ (plain NumPy)."""
    x = rng.standard_normal((3, 5, 4, 2))
    w = rng.standard_normal((3, 3, 2, 3))
    pads = ((1, 1), (1, 1))
    z, _ = KC.conv_forward(x, w, None, (1, 1), pads, (1, 1))
    assert z.dtype == np.float64
    g = rng.standard_normal(z.shape)
    dx, dw, db = KC.conv_backward(g, x, w, None, (1, 1), pads, (1, 1), need_dx=False,
                                  need_db=False)
    assert dx is None and db is None and dw.dtype == np.float64
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = np.zeros_like(w)
    for a in range(3):
        for c in range(3):
            ref[a, c] = np.einsum("nhwi,nhwo->io", xp[:, a:a + 5, c:c + 4], g)
    np.testing.assert_allclose(dw, ref, rtol=1e-12, atol=1e-12)


def test_batch_blocks_cover_the_batch():
    for n, item, target in [(128, 590_000, 4 << 20), (7, 10, 1), (1, 10**9, 10), (5, 1, 100)]:
        blocks = KC.batch_blocks(n, item, target)
        assert blocks[0][0] == 0 and blocks[-1][1] == n
        assert all(a < b for a, b in blocks)
        assert all(blocks[i][1] == blocks[i + 1][0] for i in range(len(blocks) - 1))
        assert max(b - a for a, b in blocks) <= max(1, target // item)


# ----------------------------------------------------------------------------------------
# depthwise
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mult,s,pad,d", [(1, 1, "same", 1), (1, 2, "same", 1),
                                          (2, 1, "valid", 1), (1, 1, ((2, 0), (1, 3)), 2),
                                          (3, 2, "valid", 1)])
def test_depthwise_row_blocks_against_torch(tiny_blocks, mult, s, pad, d):
    torch = torch_or_skip()
    x = rng.standard_normal((3, 11, 9, 4))
    w = rng.standard_normal((3, 3, 4, mult))
    b = rng.standard_normal(4 * mult)
    pads = resolve_padding(pad, (11, 9), (3, 3), (s, s), (d, d))
    y = KC.depthwise_conv_forward(x.astype(np.float32), w.astype(np.float32),
                                  b.astype(np.float32), (s, s), pads, (d, d))
    xt = torch_pad(torch, torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2), pads)
    wt = torch.tensor(w.reshape(3, 3, 1, 4 * mult), dtype=torch.float32).permute(3, 2, 0, 1)
    ref = torch.nn.functional.conv2d(xt, wt, torch.tensor(b, dtype=torch.float32), stride=s,
                                     dilation=d, groups=4).permute(0, 2, 3, 1).numpy()
    assert y.dtype == np.float32
    assert_close_scaled(y, ref, tol=1e-4)


def test_depthwise_blocks_split_rows_of_large_images(monkeypatch):
    set_thresholds(monkeypatch, depthwise_block_bytes=100)
    blocks = dispatch.depthwise_blocks(2, 10, 40, 1)
    assert {(n0, n1) for n0, n1, _, _ in blocks} == {(0, 1), (1, 2)}
    rows = [(r0, r1) for n0, _, r0, r1 in blocks if n0 == 0]
    assert rows[0][0] == 0 and rows[-1][1] == 10 and len(rows) > 1


# ----------------------------------------------------------------------------------------
# batch norm, activations, pooling, dense
# ----------------------------------------------------------------------------------------
def bn_reference(x, g, gamma, beta, eps):
    """Batch norm forward and backward in float64, straight from the formulas."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    axes = tuple(range(x.ndim - 1))
    mu = x.mean(axes)
    var = ((x - mu) ** 2).mean(axes)
    xh = (x - mu) / np.sqrt(var + eps)
    m = x.size // x.shape[-1]
    dbeta = g.sum(axes)
    dgamma = (g * xh).sum(axes)
    dx = gamma / np.sqrt(var + eps) * (g - dbeta / m - xh * dgamma / m)
    return gamma * xh + beta, mu, var, dx, dgamma, dbeta


@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_batch_norm_pieces(tiny_blocks, offset):
    x = (rng.standard_normal((6, 5, 7, 3)) * 2 + offset).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    gamma = rng.standard_normal(3).astype(np.float32)
    beta = rng.standard_normal(3).astype(np.float32)
    y, mu, var, cache = KN.batch_norm_train_forward(x, gamma.reshape(1, 1, 1, 3),
                                                    beta.reshape(1, 1, 1, 3), 1e-3)
    dx, dgamma, dbeta = KN.batch_norm_train_backward(g, gamma.reshape(1, 1, 1, 3), cache)
    ref = bn_reference(x, g, gamma, beta, 1e-3)
    ours = (y, mu.ravel(), var.ravel(), dx, dgamma.ravel(), dbeta.ravel())
    for name, a, b in zip(("y", "mean", "var", "dx", "dgamma", "dbeta"), ours, ref,
                          strict=True):
        assert a.dtype == np.float32, name
        assert_close_scaled(a, b, tol=2e-5, what=name)
    yi = KN.batch_norm_infer_forward(x, gamma.reshape(1, 1, 1, 3), beta.reshape(1, 1, 1, 3),
                                     mu, var, 1e-3)
    assert_close_scaled(yi, ref[0], tol=2e-5)


def test_relu_pieces(tiny_blocks):
    x = rng.standard_normal((4, 6, 5, 3)).astype(np.float32)
    x[0, 0, 0] = 0.0
    x[1, 1, 1, 0] = 6.0
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(KA.relu_forward(x), np.maximum(x, 0))
    np.testing.assert_array_equal(KA.relu_backward(g, x, None), np.where(x > 0, g, 0))
    np.testing.assert_array_equal(KA.relu6_forward(x * 4), np.clip(x * 4, 0, 6))
    np.testing.assert_array_equal(KA.relu6_backward(g, x * 4, None),
                                  np.where((x * 4 > 0) & (x * 4 < 6), g, 0))
    # a non-contiguous input takes the plain expression
    xt = x.transpose(0, 2, 1, 3)
    np.testing.assert_array_equal(KA.relu_forward(xt), np.maximum(xt, 0))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool,s,pad", [(2, 2, "valid"), (3, 2, "same"), (2, 1, "valid")])
def test_pool_pieces_against_torch(tiny_blocks, kind, pool, s, pad):
    torch = torch_or_skip()
    x = rng.standard_normal((5, 9, 8, 3))
    op = ops.max_pool2d if kind == "max" else ops.avg_pool2d
    y = op(x, pool, s, pad)
    g = rng.standard_normal(y.shape)
    ours = grads(lambda t: op(t, pool, s, pad), [x], g)
    pads = resolve_padding(pad, (9, 8), (pool, pool), (s, s), (1, 1))

    def ref(t):
        tt = t.permute(0, 3, 1, 2)
        if kind == "max":
            tt = torch_pad(torch, tt, pads).clone()
            if any(p for pair in pads for p in pair):  # pad with -inf, as max pooling does
                mask = torch_pad(torch, torch.ones_like(t.permute(0, 3, 1, 2)), pads)
                tt = tt.masked_fill(mask == 0, float("-inf"))
            out = torch.nn.functional.max_pool2d(tt, pool, s)
        else:
            out = torch.nn.functional.avg_pool2d(torch_pad(torch, tt, pads), pool, s)
            ones = torch_pad(torch, torch.ones_like(tt), pads)
            out = out / torch.nn.functional.avg_pool2d(ones, pool, s)  # count real cells
        return out.permute(0, 2, 3, 1)

    check_all(ours, grads(ref, [x], g, torch), f"{kind}_pool {pool} s{s} {pad}")


def test_dense_pieces(tiny_blocks):
    x = rng.standard_normal((37, 5)).astype(np.float32)
    k = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    g = rng.standard_normal((37, 4)).astype(np.float32)
    assert_close_scaled(KL.dense_forward(x, k, b), x.astype(np.float64) @ k + b, tol=1e-5)
    dx, dk, db = KL.dense_backward(g, x, k)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    assert_close_scaled(dx, g64 @ k.T, tol=1e-5)
    assert_close_scaled(dk, x64.T @ g64, tol=1e-5)
    assert_close_scaled(db, g64.sum(0), tol=1e-5)
    assert_close_scaled(P.column_sum(x), x64.sum(0), tol=1e-5)


@pytest.mark.parametrize("shape", [(100352, 6), (1001, 1), (517, 7), (40, 3), (300, 8)])
def test_column_sum_narrow(shape):
    """Few columns: the regrouped sum (rows of ~384 values, a remainder of rows) vs float64."""
    x = rng.standard_normal(shape).astype(np.float32)
    assert_close_scaled(P.column_sum(x), x.astype(np.float64).sum(0), tol=1e-5)
    xt = np.asfortranarray(x)  # not C-contiguous: the GEMV pieces
    assert_close_scaled(P.column_sum(xt), x.astype(np.float64).sum(0), tol=1e-5)


# ----------------------------------------------------------------------------------------
# the pool itself
# ----------------------------------------------------------------------------------------
@pytest.fixture
def restore_threads():
    old = P.get_num_threads()
    yield
    P.set_num_threads(old)


def test_run_blocks_runs_every_block_once_and_reraises(restore_threads):
    P.set_num_threads(2)
    seen = []
    lock = threading.Lock()

    def body(i, ws):
        assert ws == "ws"
        with lock:
            seen.append(i)

    P.run_blocks(50, body, lambda: "ws", blas=True)
    assert sorted(seen) == list(range(50))

    def bad(i, _):
        if i == 3:
            raise KeyError("block 3")

    with pytest.raises(KeyError, match="block 3"):
        P.run_blocks(8, bad)

    def nested(i, _):  # a block that starts blocks itself runs them on its own thread
        P.run_blocks(3, lambda j, __: None)

    P.run_blocks(4, nested)


def test_run_blocks_does_not_wait_for_a_busy_worker(restore_threads):
    """A worker that cannot start (here: stuck in an earlier job) takes no blocks; the caller
    runs them all and returns without waiting for it."""
    P.set_num_threads(2)
    P.run_blocks(2, lambda i, _: None)  # the worker exists
    stuck, release = threading.Event(), threading.Event()

    def block_worker():
        stuck.set()
        release.wait(10)

    P._workers(1)[0].jobs.put(block_worker)
    assert stuck.wait(10)
    try:
        ids = []
        P.run_blocks(6, lambda i, _: ids.append(threading.get_ident()))
        assert ids == [threading.get_ident()] * 6
    finally:
        release.set()
    seen = []
    P.run_blocks(20, lambda i, _: seen.append(i))  # and the pool works again afterwards
    assert sorted(seen) == list(range(20))


def test_run_blocks_from_several_threads(restore_threads):
    P.set_num_threads(3)
    results = {}

    def caller(k):
        out = np.zeros(40)

        def body(i, _):
            out[i] = i * k

        for _ in range(20):
            P.run_blocks(40, body)
        results[k] = out

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for k in range(1, 4):
        np.testing.assert_array_equal(results[k], np.arange(40) * k)


def test_results_do_not_depend_on_thread_count(monkeypatch, restore_threads):
    monkeypatch.setattr(P, "MIN_PARALLEL_BYTES", 1)
    monkeypatch.setattr(P, "PIECE_BYTES", 64)
    set_thresholds(monkeypatch, block_bytes=1)
    x = rng.standard_normal((6, 8, 7, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 5, 4)).astype(np.float32)
    outs = []
    for n in (1, 2, 3):
        P.set_num_threads(n)
        y, mu, var, cache = KN.batch_norm_train_forward(x, None, None)
        z, _ = KC.conv_forward(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1))
        dw = KC.conv_backward(z, x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1))[1]
        outs.append((y, var, z, dw))
    for other in outs[1:]:
        for a, b in zip(outs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_set_num_threads_checks():
    with pytest.raises(ValueError, match="set_num_threads expects an int >= 1"):
        P.set_num_threads(0)
    with pytest.raises(ValueError, match="set_num_threads expects an int >= 1"):
        P.set_num_threads(True)
    assert P.split(3, 5) == [(0, 1), (1, 2), (2, 3)]
    assert P.split(0, 2) == [(0, 0)]
