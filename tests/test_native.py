"""The optional native convolution kernels (kernels/native/_conv.c via kernels/native/conv.py),
checked against the NumPy im2col path (in float64, an independent reference), over shapes, strides,
paddings (cropping ones too), dilations, odd sizes and batch 1; the dispatch in kernels/conv/;
and the switch CNNKIT_NATIVE=0."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from helpers import assert_close_scaled

from cnnkit.kernels import conv as KC
from cnnkit.kernels import native
from cnnkit.kernels import parallel as P
from cnnkit.kernels.conv import dispatch
from cnnkit.kernels.native import loader
from cnnkit.kernels.padding import resolve_padding

pytestmark = pytest.mark.skipif(
    native.library_path() is None,
    reason="the native helper is not built (no C compiler at install time); "
           "cnnkit uses its NumPy kernels")

rng = np.random.default_rng(11)


def set_thresholds(monkeypatch, **changes):
    """Replace the one conv dispatch thresholds object for this test."""
    monkeypatch.setattr(dispatch, "THRESHOLDS", replace(dispatch.THRESHOLDS, **changes))

# (n, (h, w), c_in, c_out, (kh, kw), (sh, sw), padding, (dh, dw))
CASES = [
    (2, (8, 7), 4, 8, (3, 3), (1, 1), "same", (1, 1)),
    (1, (9, 9), 1, 6, (5, 5), (1, 1), "same", (1, 1)),
    (3, (14, 14), 6, 16, (5, 5), (1, 1), "valid", (1, 1)),
    (2, (11, 13), 3, 32, (3, 3), (1, 1), "same", (1, 1)),
    (2, (10, 9), 16, 16, (3, 3), (2, 2), "same", (1, 1)),
    (1, (7, 9), 5, 17, (3, 2), (2, 1), "valid", (2, 1)),
    (2, (12, 11), 33, 40, (5, 3), (3, 2), "same", (1, 2)),
    (1, (6, 5), 2, 3, (2, 2), (1, 1), ((2, 3), (0, 1)), (2, 2)),
    (2, (9, 8), 7, 9, (3, 3), (1, 2), ((-1, 2), (3, -1)), (1, 1)),
    (1, (5, 23), 8, 64, (1, 3), (1, 1), ((0, 0), (1, 1)), (1, 3)),
    (2, (4, 4), 64, 33, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    (1, (3, 3), 1, 1, (3, 3), (1, 1), ((2, 2), (2, 2)), (1, 1)),
    # 3x3 stride 1 with 16+ channels: Winograd F(2x2, 3x3) in the dispatch (odd sizes: a
    # partial last tile; channels not a multiple of the vector width: the scalar transforms)
    (2, (9, 7), 16, 16, (3, 3), (1, 1), "same", (1, 1)),
    (1, (6, 5), 32, 20, (3, 3), (1, 1), "valid", (1, 1)),
    (3, (5, 8), 17, 48, (3, 3), (1, 1), ((2, 0), (1, 2)), (1, 1)),
    (2, (8, 8), 64, 64, (3, 3), (1, 1), "same", (1, 1)),
    # dK tiles of 6 rows x 16 lanes (AVX2): 45 rows (not a multiple of 6), 24 outputs (a
    # zero-padded second block), and U-Net's 32 -> 16 at 16x16
    (2, (10, 10), 5, 24, (3, 3), (1, 1), "same", (1, 1)),
    (2, (16, 16), 32, 16, (3, 3), (1, 1), "same", (1, 1)),
]


def _ids(case):
    n, hw, ci, co, k, s, p, d = case
    return f"n{n}-{hw[0]}x{hw[1]}-{ci}to{co}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-{p}-d{d[0]}{d[1]}"


def _arrays(case):
    n, hw, ci, co, k, s, p, d = case
    # explicit pairs are used as given: negative amounts crop (as in the transposed
    # convolution's and the flipped-kernel dX's internal calls)
    pads = p if isinstance(p, tuple) else resolve_padding(p, hw, k, s, d)
    x = rng.standard_normal((n, *hw, ci)).astype(np.float32)
    w = (rng.standard_normal((*k, ci, co)) / np.sqrt(k[0] * k[1] * ci)).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32)
    out = KC.conv_output_sizes(hw, k, s, pads, d)
    g = rng.standard_normal((n, *out, co)).astype(np.float32)
    return x, w, b, g, s, pads, d


def _reference(x, w, b, g, s, pads, d):
    """Z, dX, dK, db by the NumPy path in float64."""
    native.set_enabled(False)
    try:
        x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, w, b, g))
        z, _ = KC.conv_forward(x64, w64, b64, s, pads, d, keep_cols=False)
        dx, dw, db = KC.conv_backward(g64, x64, w64, None, s, pads, d)
    finally:
        native.set_enabled(None)
    return z, dx, dw, db


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_native_functions_match_numpy(case):
    """The three C kernels called directly (also where the dispatch would not use them)."""
    x, w, b, g, s, pads, d = _arrays(case)
    z_ref, dx_ref, dw_ref, _ = _reference(x, w, b, g, s, pads, d)
    tl = (pads[0][0], pads[1][0])
    z = np.full(z_ref.shape, np.nan, dtype=np.float32)
    native.forward(x, w, b, z, s, d, tl)
    assert_close_scaled(z, z_ref, tol=1e-5, what="forward")
    z0 = np.full(z_ref.shape, np.nan, dtype=np.float32)
    native.forward(x, w, None, z0, s, d, tl)
    assert_close_scaled(z0, z_ref - b, tol=1e-5, what="forward without bias")
    dx = np.full(x.shape, np.nan, dtype=np.float32)
    native.input_grad(g, w, dx, s, d, tl)
    assert_close_scaled(dx, dx_ref, tol=1e-5, what="input_grad (scatter)")
    dw = np.full(w.shape, np.nan, dtype=np.float32)
    native.kernel_grad(x, g, dw, s, d, tl)
    assert_close_scaled(dw, dw_ref, tol=1e-5, what="kernel_grad")


# cases for native.input_grad_rowrun: KW*Cin <= 32, dilation 1 along the width
ROWRUN_CASES = [c for c in CASES if c[4][1] * c[2] <= native.ROWRUN_MAX and c[7][1] == 1] + [
    (3, (14, 14), 6, 16, (5, 5), (1, 1), "same", (1, 1)),
    (2, (12, 10), 3, 5, (9, 3), (1, 1), "valid", (1, 1)),  # KH > 8: rows in two groups
    (2, (13, 12), 4, 12, (3, 7), (2, 1), ((1, 2), (3, 0)), (2, 1)),
    (1, (8, 9), 2, 7, (3, 16), (1, 1), ((0, 0), (8, 7)), (1, 1)),  # a run of exactly 32
    (2, (10, 9), 1, 6, (5, 5), (3, 2), "same", (1, 1)),
]


@pytest.mark.parametrize("case", ROWRUN_CASES, ids=_ids)
def test_input_grad_rowrun_matches_numpy(case):
    """dX by one vector of KW*Cin lanes per output pixel and kernel row vs the NumPy path."""
    x, w, b, g, s, pads, d = _arrays(case)
    _, dx_ref, _, _ = _reference(x, w, b, g, s, pads, d)
    dx = np.full(x.shape, np.nan, dtype=np.float32)
    native.input_grad_rowrun(g, w, dx, s, d[0], (pads[0][0], pads[1][0]))
    assert_close_scaled(dx, dx_ref, tol=1e-5, what="input_grad_rowrun")


def test_input_grad_rowrun_rejects_long_runs():
    g = np.zeros((1, 2, 2, 4), np.float32)
    with pytest.raises(ValueError):
        native.input_grad_rowrun(g, np.zeros((3, 3, 11, 4), np.float32),
                                 np.zeros((1, 4, 4, 11), np.float32), (1, 1), 1, (0, 0))


@pytest.mark.parametrize("case", [c for c in CASES if c[4] == (3, 3)] + [
    (2, (4, 3), 5, 9, (3, 3), (1, 1), ((-1, 1), (1, 3)), (1, 1)),
    (1, (1, 1), 16, 16, (3, 3), (1, 1), "same", (1, 1))], ids=_ids)
def test_winograd_matches_numpy(case):
    """Winograd F(2x2, 3x3) forward and F(3x3, 2x2) dK called directly, any channel counts,
    against the float64 NumPy path (stride and dilation ignored: stride-1 kernels)."""
    n, hw, ci, co, k, _, p, _ = case
    case = (n, hw, ci, co, k, (1, 1), p, (1, 1))
    x, w, b, g, s, pads, d = _arrays(case)
    z_ref, _, _, _ = _reference(x, w, b, g, s, pads, d)
    u = native.winograd_kernel(w)
    for bias, ref in ((b, z_ref), (None, z_ref - b)):
        z = np.full(z_ref.shape, np.nan, dtype=np.float32)
        native.forward_winograd(x, u, co, bias, z, (pads[0][0], pads[1][0]))
        assert_close_scaled(z, ref, tol=1e-5, what=f"winograd (bias {bias is not None})")
    with pytest.raises(ValueError, match="3x3"):
        native.winograd_kernel(np.zeros((2, 3, ci, co), dtype=np.float32))
    _, _, dw_ref, _ = _reference(x, w, b, g, s, pads, d)
    dw = np.full(w.shape, np.nan, dtype=np.float32)
    native.kernel_grad_winograd(x, g, dw, (pads[0][0], pads[1][0]))
    assert_close_scaled(dw, dw_ref, tol=1e-5, what="kernel_grad_winograd")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_dispatch_matches_numpy(case, threads, monkeypatch):
    """conv_forward / conv_backward / conv_input_grad with the helper on (batch cut into
    blocks on 1 or 2 threads) against the float32 and float64 NumPy paths."""
    # small batches on the library's pool, Winograd for narrow outputs too
    set_thresholds(monkeypatch, native_min_parallel_macs=0, native_min_pool_macs=0,
                   winograd_min_width=0)
    old = P.get_num_threads()
    P.set_num_threads(threads)
    try:
        x, w, b, g, s, pads, d = _arrays(case)
        z_ref, dx_ref, dw_ref, db_ref = _reference(x, w, b, g, s, pads, d)
        native.set_enabled(False)
        z32, _ = KC.conv_forward(x, w, b, s, pads, d, keep_cols=False)
        dx32, dw32, db32 = KC.conv_backward(g, x, w, None, s, pads, d)
        native.set_enabled(None)
        z, _ = KC.conv_forward(x, w, b, s, pads, d, keep_cols=False)
        dx, dw, db = KC.conv_backward(g, x, w, None, s, pads, d)
        dxi = KC.conv_input_grad(g, w, x.shape, s, pads, d)
    finally:
        P.set_num_threads(old)
        native.set_enabled(None)
    for ours, ours32, ref, what in [(z, z32, z_ref, "Z"), (dx, dx32, dx_ref, "dX"),
                                    (dxi, dx32, dx_ref, "conv_input_grad"),
                                    (dw, dw32, dw_ref, "dK"), (db, db32, db_ref, "db")]:
        assert ours.dtype == np.float32, what
        assert_close_scaled(ours, ref, tol=1e-5, what=what)
        assert_close_scaled(ours, ours32, tol=1e-5, what=f"{what} vs float32 NumPy")


def test_dispatch_uses_native_for_lenet_shapes(monkeypatch):
    """The dispatch really calls the C kernels for a LeNet-sized float32 layer, and does not
    for float64, groups > 1 or 1x1 kernels."""
    if not native.available():
        pytest.skip("native helper switched off (CNNKIT_NATIVE=0)")
    # one call per kernel
    set_thresholds(monkeypatch, native_min_pool_macs=1 << 62, winograd_min_width=0)
    calls = []
    for name in ("forward", "forward_winograd", "input_grad", "input_grad_rowrun",
                 "kernel_grad", "kernel_grad_winograd"):
        real = getattr(native, name)
        monkeypatch.setattr(native, name,
                            lambda *a, _real=real, _name=name: (calls.append(_name), _real(*a)))
    x = rng.standard_normal((2, 14, 14, 6)).astype(np.float32)
    w = rng.standard_normal((5, 5, 6, 16)).astype(np.float32)
    z, _ = KC.conv_forward(x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1))
    KC.conv_backward(np.ones_like(z), x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1))
    # dX of 6 input channels: one KW*Cin run per kernel row
    assert calls == ["forward", "kernel_grad", "input_grad_rowrun"]
    calls.clear()
    x8 = rng.standard_normal((2, 14, 14, 8)).astype(np.float32)
    w8 = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    z, _ = KC.conv_forward(x8, w8, None, (1, 1), ((0, 0), (0, 0)), (1, 1))
    KC.conv_backward(np.ones_like(z), x8, w8, None, (1, 1), ((0, 0), (0, 0)), (1, 1))
    assert calls == ["forward", "kernel_grad", "forward"]  # dX at stride 1: the flip kernel
    calls.clear()
    x16 = rng.standard_normal((2, 8, 8, 16)).astype(np.float32)
    w16 = rng.standard_normal((3, 3, 16, 32)).astype(np.float32)
    z, _ = KC.conv_forward(x16, w16, None, (1, 1), ((1, 1), (1, 1)), (1, 1))
    KC.conv_backward(np.ones_like(z), x16, w16, None, (1, 1), ((1, 1), (1, 1)), (1, 1))
    assert calls == ["forward", "kernel_grad", "forward"]  # 16 channels: direct
    calls.clear()
    w32 = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    x32 = rng.standard_normal((2, 8, 8, 32)).astype(np.float32)
    z, _ = KC.conv_forward(x32, w32, None, (1, 1), ((1, 1), (1, 1)), (1, 1))
    KC.conv_backward(np.ones_like(z), x32, w32, None, (1, 1), ((1, 1), (1, 1)), (1, 1),
                     need_dw=False)
    assert calls == ["forward_winograd", "forward_winograd"]
    calls.clear()
    KC.conv_backward(np.ones((2, 8, 8, 32), np.float32), x32,
                     rng.standard_normal((3, 3, 32, 32)).astype(np.float32), None, (1, 1),
                     ((1, 1), (1, 1)), (1, 1), need_dx=False)
    assert calls == ["kernel_grad_winograd"]
    calls.clear()
    KC.conv_forward(x.astype(np.float64), w.astype(np.float64), None, (1, 1),
                    ((0, 0), (0, 0)), (1, 1))
    KC.conv_forward(x, w.reshape(5, 5, 3, 32)[:, :, :, :16].copy(), None, (1, 1),
                    ((0, 0), (0, 0)), (1, 1), groups=2)
    KC.conv_forward(x, w[:1, :1].copy(), None, (1, 1), ((0, 0), (0, 0)), (1, 1))
    assert calls == []


def test_native_off_by_environment(monkeypatch):
    """CNNKIT_NATIVE=0 switches the helper off, in-process and in a fresh interpreter."""
    monkeypatch.setenv("CNNKIT_NATIVE", "0")
    loader.reread_env()  # the variable is read once; a change in-process is re-read
    assert not native.available()

    def boom(*_):
        raise AssertionError("native kernel called although CNNKIT_NATIVE=0")
    for name in ("forward", "forward_winograd", "input_grad", "input_grad_rowrun",
                 "kernel_grad", "kernel_grad_winograd"):
        monkeypatch.setattr(native, name, boom)
    x = rng.standard_normal((2, 8, 8, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    z, _ = KC.conv_forward(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1))
    KC.conv_backward(np.ones_like(z), x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1))
    monkeypatch.setenv("CNNKIT_NATIVE", "1")
    loader.reread_env()
    assert native.available()
    env = {**os.environ, "CNNKIT_NATIVE": "0"}
    code = "import cnnkit.kernels.native as n; print(n.available(), n.library_path() is None)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
    monkeypatch.undo()
    loader.reread_env()


@pytest.mark.parametrize("case", [c for c in CASES if c[0] <= 2], ids=_ids)
def test_row_ranges_match_numpy(case):
    """forward / forward_winograd over row ranges (odd cuts too), each range written into an
    output that is NaN elsewhere: the pieces together give the float64 NumPy result, and no
    call writes outside its rows."""
    x, w, b, g, s, pads, d = _arrays(case)
    z_ref = _reference(x, w, b, g, s, pads, d)[0]
    tl = (pads[0][0], pads[1][0])
    oh = z_ref.shape[1]
    cuts = sorted({0, 1, oh // 2, oh - 1, oh} - {-1})
    wino = case[4] == (3, 3) and s == (1, 1) and d == (1, 1)
    u = native.winograd_kernel(w) if wino else None
    z = np.full(z_ref.shape, np.nan, dtype=np.float32)
    for y0, y1 in zip(cuts[:-1], cuts[1:], strict=True):
        part = np.full(z_ref.shape, np.nan, dtype=np.float32)
        if wino:
            native.forward_winograd(x, u, w.shape[-1], b, part, tl, (y0, y1))
        else:
            native.forward(x, w, b, part, s, d, tl, (y0, y1))
        assert np.isnan(part[:, :y0]).all() and np.isnan(part[:, y1:]).all()
        z[:, y0:y1] = part[:, y0:y1]
    assert_close_scaled(z, z_ref, tol=1e-5, what="row pieces")


@pytest.mark.parametrize("case", [c for c in CASES if c[0] <= 2] + [
    (3, (10, 9), 8, 16, (3, 3), (1, 1), "same", (1, 1)),
    (3, (9, 7), 16, 16, (3, 3), (1, 1), "same", (1, 1))], ids=_ids)
def test_forward_pieces_match_numpy(case):
    """forward_pieces (row pieces on the library's pool), direct and Winograd, for several
    piece and thread counts, against the float64 NumPy path; bit-identical to one call."""
    x, w, b, g, s, pads, d = _arrays(case)
    z_ref = _reference(x, w, b, g, s, pads, d)[0]
    tl = (pads[0][0], pads[1][0])
    wino = case[4] == (3, 3) and s == (1, 1) and d == (1, 1)
    for u in [None, native.winograd_kernel(w)] if wino else [None]:
        one = np.full(z_ref.shape, np.nan, dtype=np.float32)
        if u is None:
            native.forward(x, w, b, one, s, d, tl)
        else:
            native.forward_winograd(x, u, w.shape[-1], b, one, tl)
        for per, threads in ((1, 2), (2, 2), (3, 3), (5, 2), (2, 1), (40, 2)):
            z = np.full(z_ref.shape, np.nan, dtype=np.float32)
            native.forward_pieces(x, w, u, b, z, s, d, tl, per, threads)
            assert_close_scaled(z, z_ref, tol=1e-5, what=f"pieces {per} on {threads}")
            np.testing.assert_array_equal(z, one)


def test_forward_pieces_from_several_threads_and_after_fork():
    """Callers on several Python threads at once (one uses the pool, the others run their
    pieces themselves), many calls in a row, and a forked child (its own pool)."""
    import threading

    x = rng.standard_normal((1, 20, 18, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    ref = np.empty((1, 20, 18, 16), dtype=np.float32)
    native.forward(x, w, None, ref, (1, 1), (1, 1), (1, 1))
    bad = []

    def caller():
        for _ in range(200):
            z = np.full_like(ref, np.nan)
            native.forward_pieces(x, w, None, None, z, (1, 1), (1, 1), (1, 1), 3, 2)
            if not np.array_equal(z, ref):
                bad.append(1)
    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad
    if not hasattr(os, "fork"):
        return
    pid = os.fork()
    if pid == 0:  # child: the parent's pool threads are gone; a new pool must start
        ok = False
        try:
            ok = True
            for _ in range(20):
                z = np.full_like(ref, np.nan)
                native.forward_pieces(x, w, None, None, z, (1, 1), (1, 1), (1, 1), 2, 2)
                ok = ok and np.array_equal(z, ref)
        finally:
            os._exit(0 if ok else 1)  # never return into pytest in the child
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_small_batches_use_the_pool(monkeypatch):
    """Batch 1-7 forward jobs go to forward_pieces (rows per image: the thread count at
    batch 1), larger batches and one thread to batch blocks."""
    if not native.available():
        pytest.skip("native helper switched off (CNNKIT_NATIVE=0)")
    calls = []
    real = native.forward_pieces
    monkeypatch.setattr(native, "forward_pieces",
                        lambda *a: (calls.append(a[8:]), real(*a)))
    set_thresholds(monkeypatch, native_min_pool_macs=0)
    old = P.get_num_threads()
    try:
        P.set_num_threads(2)
        for n in (1, 3, 8):
            x = rng.standard_normal((n, 8, 8, 4)).astype(np.float32)
            KC.conv_forward(x, rng.standard_normal((3, 3, 4, 8)).astype(np.float32), None,
                            (1, 1), ((1, 1), (1, 1)), (1, 1))
        assert calls == [(2, 2), (2, 2)]
        P.set_num_threads(1)
        KC.conv_forward(x[:1], rng.standard_normal((3, 3, 4, 8)).astype(np.float32), None,
                        (1, 1), ((1, 1), (1, 1)), (1, 1))
        assert len(calls) == 2
    finally:
        P.set_num_threads(old)


def test_dk_same_for_any_thread_count(monkeypatch):
    """dK's partial sums are added in block order: bit-identical with 1 and 2 threads."""
    set_thresholds(monkeypatch, native_min_parallel_macs=0)
    x = rng.standard_normal((9, 10, 10, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    g = rng.standard_normal((9, 10, 10, 16)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    old = P.get_num_threads()
    try:
        results = []
        for t in (1, 2):
            P.set_num_threads(t)
            results.append(KC.conv_backward(g, x, w, None, (1, 1), pads, (1, 1)))
    finally:
        P.set_num_threads(old)
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_rejects_wrong_dtype_or_layout():
    x = np.zeros((1, 4, 4, 2), dtype=np.float64)
    w = np.zeros((3, 3, 2, 8), dtype=np.float32)
    z = np.zeros((1, 2, 2, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="float32"):
        native.forward(x, w, None, z, (1, 1), (1, 1), (0, 0))
    with pytest.raises(ValueError, match="float32"):
        native.forward(x.astype(np.float32), w[:, :, :, ::2], None, z[..., :4], (1, 1),
                       (1, 1), (0, 0))


def test_first_load_from_several_threads(monkeypatch):
    """The library is loaded once, also when kernel threads ask for it at the same time."""
    import threading

    monkeypatch.setitem(native._state, "loaded", False)
    monkeypatch.setitem(native._state, "lib", None)
    seen = []
    start = threading.Barrier(4)

    def worker():
        start.wait()
        seen.append(native._load())
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 4 and all(lib is not None and lib is seen[0] for lib in seen)


def test_cached_plan_follows_shapes_and_switch(monkeypatch):
    """conv_forward's cached native plan: a new plan per input shape, list arguments (not
    hashable) take the uncached path, and switching the helper off takes effect at once."""
    x = rng.standard_normal((2, 9, 8, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 8)).astype(np.float32)
    ref = _reference(x, w, np.zeros(8, np.float32), np.zeros((2, 9, 8, 8), np.float32),
                     (1, 1), ((1, 1), (1, 1)), (1, 1))[0]
    for pads in (((1, 1), (1, 1)), [[1, 1], [1, 1]]):
        z, _ = KC.conv_forward(x, w, None, (1, 1), pads, (1, 1))
        assert_close_scaled(z, ref, tol=1e-5, what=f"pads {pads!r}")
    z1, _ = KC.conv_forward(x[:1, :5], w, None, (1, 1), ((1, 1), (1, 1)), (1, 1))
    assert z1.shape == (1, 5, 8, 8)
    assert_close_scaled(z1[:, :4], ref[:1, :4], tol=1e-5, what="other shape")

    def boom(*_):
        raise AssertionError("native kernel called although switched off")
    monkeypatch.setattr(native, "forward_pieces", boom)
    monkeypatch.setattr(native, "forward", boom)
    native.set_enabled(False)
    try:
        z, _ = KC.conv_forward(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1))
    finally:
        native.set_enabled(None)
    assert_close_scaled(z, ref, tol=1e-5, what="switched off")


# (n, (h, w), c, (kh, kw), (sh, sw), padding, (dh, dw))
DW_CASES = [
    (2, (9, 8), 17, (3, 3), (1, 1), "same", (1, 1)),
    (1, (12, 11), 32, (3, 3), (2, 2), "same", (1, 1)),
    (3, (7, 9), 5, (3, 3), (2, 1), "valid", (1, 1)),
    (2, (10, 10), 33, (5, 5), (1, 1), "same", (1, 1)),
    (1, (11, 13), 16, (3, 2), (1, 2), ((2, 0), (0, 3)), (2, 1)),
    (2, (6, 6), 48, (7, 7), (1, 1), ((3, 3), (3, 3)), (1, 1)),
    (1, (5, 4), 8, (1, 1), (2, 2), "valid", (1, 1)),
    (1, (2, 3), 20, (3, 3), (1, 1), ((4, 4), (4, 4)), (1, 1)),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: f"n{c[0]}-{c[1]}-c{c[2]}-k{c[3]}-s{c[4]}"
                                                        f"-{c[5]}-d{c[6]}")
def test_depthwise_native_matches_numpy(case, threads, monkeypatch):
    """The C depthwise forward (called directly, over row ranges, and through the dispatch in
    pieces on 1 or 2 threads) against the float64 NumPy einsum path."""
    n, hw, c, k, s, p, d = case
    pads = p if isinstance(p, tuple) else resolve_padding(p, hw, k, s, d)
    x = rng.standard_normal((n, *hw, c)).astype(np.float32)
    w = rng.standard_normal((*k, c, 1)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    native.set_enabled(False)
    try:
        ref = KC.depthwise_conv_forward(x.astype(np.float64), w.astype(np.float64),
                                        b.astype(np.float64), s, pads, d)
        ref0 = KC.depthwise_conv_forward(x.astype(np.float64), w.astype(np.float64), None, s,
                                         pads, d)
    finally:
        native.set_enabled(None)
    tl = (pads[0][0], pads[1][0])
    z = np.full(ref.shape, np.nan, dtype=np.float32)
    native.depthwise_forward(x, np.ascontiguousarray(w[..., 0]), b, z, s, d, tl)
    assert_close_scaled(z, ref, tol=1e-5, what="depthwise_forward")
    z = np.full(ref.shape, np.nan, dtype=np.float32)
    oh = ref.shape[1]
    for y0, y1 in ((0, oh // 2), (oh // 2, oh)):
        native.depthwise_forward(x, np.ascontiguousarray(w[..., 0]), None, z, s, d, tl,
                                 (y0, y1))
    assert_close_scaled(z, ref0, tol=1e-5, what="depthwise_forward rows, no bias")
    set_thresholds(monkeypatch, native_depthwise_parallel_macs=0)
    old = P.get_num_threads()
    P.set_num_threads(threads)
    try:
        z = KC.depthwise_conv_forward(x, w, b, s, pads, d)
        zc, _ = KC.conv_forward(x, w.reshape(*k, 1, c), b, s, pads, d, groups=c)
    finally:
        P.set_num_threads(old)
    assert z.dtype == np.float32
    assert_close_scaled(z, ref, tol=1e-5, what="dispatch")
    assert_close_scaled(zc, ref, tol=1e-5, what="conv_forward groups == C")


def test_depthwise_dispatch_falls_back(monkeypatch):
    """Multiplier > 1, float64, cropping pads and 1-D inputs keep the NumPy path (forward
    and backward)."""
    def boom(*_):
        raise AssertionError("C depthwise kernel called")
    monkeypatch.setattr(native, "depthwise_forward", boom)
    monkeypatch.setattr(native, "depthwise_backward", boom)
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    KC.depthwise_conv_backward(np.ones((2, 6, 6, 8), np.float32), x,
                               np.ones((3, 3, 4, 2), np.float32), (1, 1), ((1, 1), (1, 1)),
                               (1, 1))
    KC.depthwise_conv_backward(np.ones((2, 6, 6, 4)), x.astype(np.float64),
                               np.ones((3, 3, 4, 1)), (1, 1), ((1, 1), (1, 1)), (1, 1))
    KC.depthwise_conv_forward(x, np.ones((3, 3, 4, 2), np.float32), None, (1, 1),
                              ((1, 1), (1, 1)), (1, 1))
    KC.depthwise_conv_forward(x.astype(np.float64), np.ones((3, 3, 4, 1)), None, (1, 1),
                              ((1, 1), (1, 1)), (1, 1))
    KC.depthwise_conv_forward(x, np.ones((3, 3, 4, 1), np.float32), None, (1, 1),
                              ((-1, 1), (1, 1)), (1, 1))
    KC.depthwise_conv_forward(x[:, 0], np.ones((3, 4, 1), np.float32), None, (1,),
                              ((1, 1),), (1,))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: f"n{c[0]}-{c[1]}-c{c[2]}-k{c[3]}-s{c[4]}"
                                                        f"-{c[5]}-d{c[6]}")
def test_depthwise_backward_native_matches_numpy(case, threads, monkeypatch):
    """The C depthwise dX and dK (called directly, and through depthwise_conv_backward /
    conv_backward in batch blocks on 1 or 2 threads) against the float64 NumPy path."""
    n, hw, c, k, s, p, d = case
    pads = p if isinstance(p, tuple) else resolve_padding(p, hw, k, s, d)
    x = rng.standard_normal((n, *hw, c)).astype(np.float32)
    w = rng.standard_normal((*k, c, 1)).astype(np.float32)
    out = KC.conv_output_sizes(hw, k, s, pads, d)
    g = rng.standard_normal((n, *out, c)).astype(np.float32)
    native.set_enabled(False)
    try:
        dx_ref, dw_ref, db_ref = KC.depthwise_conv_backward(
            g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), s, pads, d)
    finally:
        native.set_enabled(None)
    dx = np.full(x.shape, np.nan, dtype=np.float32)
    dk = np.full(k + (c,), np.nan, dtype=np.float32)
    native.depthwise_backward(x, g, np.ascontiguousarray(w[..., 0]), dx, dk, s, d,
                              (pads[0][0], pads[1][0]))
    assert_close_scaled(dx, dx_ref, tol=1e-5, what="depthwise_backward dX")
    assert_close_scaled(dk, dw_ref[..., 0], tol=1e-5, what="depthwise_backward dK")
    set_thresholds(monkeypatch, native_min_parallel_macs=0)
    old = P.get_num_threads()
    P.set_num_threads(threads)
    try:
        got = KC.depthwise_conv_backward(g, x, w, s, pads, d)
        only_dk = KC.depthwise_conv_backward(g, x, w, s, pads, d, need_dx=False, need_db=False)
        via_conv = KC.conv_backward(g, x, w.reshape(*k, 1, c), None, s, pads, d, groups=c)
    finally:
        P.set_num_threads(old)
    for ours, ref, what in zip(got, (dx_ref, dw_ref, db_ref), ("dX", "dK", "db"), strict=True):
        assert ours.dtype == np.float32
        assert_close_scaled(ours, ref, tol=1e-5, what=what)
    assert only_dk[0] is None and only_dk[2] is None
    np.testing.assert_array_equal(only_dk[1], got[1])
    assert_close_scaled(via_conv[1], dw_ref.reshape(*k, 1, c), tol=1e-5, what="conv_backward")


def test_depthwise_dk_same_for_any_thread_count(monkeypatch):
    """dK's partial sums per batch block are added in block order: bit-identical with 1 and 2
    threads."""
    set_thresholds(monkeypatch, native_min_parallel_macs=0)
    x = rng.standard_normal((9, 10, 10, 24)).astype(np.float32)
    w = rng.standard_normal((3, 3, 24, 1)).astype(np.float32)
    g = rng.standard_normal((9, 10, 10, 24)).astype(np.float32)
    old = P.get_num_threads()
    try:
        results = []
        for t in (1, 2):
            P.set_num_threads(t)
            results.append(KC.depthwise_conv_backward(g, x, w, (1, 1), ((1, 1), (1, 1)),
                                                      (1, 1)))
    finally:
        P.set_num_threads(old)
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
