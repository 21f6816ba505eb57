"""Optional compiled helper: training batch-norm kernels (``_norm.c``) loaded with ctypes.

Built by ``pip install`` as an optional extension (setup.py): without it :func:`available` is
False and :mod:`cnnkit.kernels.norm` keeps its NumPy path. ``CNNKIT_NATIVE=0`` switches it off,
as it does the convolution helper; :func:`set_enabled` does the same at run time (tests).

Arrays are float32, C-contiguous, seen as (M, C) (channels last). Rows are cut into blocks
of about BLOCK_BYTES (by the sizes only, never the thread count); each block's float64
partial sums are added in block order, so results do not depend on the thread count. ctypes
releases the GIL, so the pool's threads run blocks side by side.

    forward   mu = t + s1 / M,  var = (s2 - s1^2 / M) / M   (s1 = sum (x - t),
              s2 = sum (x - t)^2 in float64, t = x's first row),
              y = (x - mu) * gamma / sqrt(var + eps) + beta
    backward  dbeta = sum g,  dgamma = istd * sum g (x - mu),
              dx = sc * g - (x - mu) * sc * istd * dgamma / M - sc * dbeta / M,
              sc = gamma * istd
    relu_forward   y = 0 if x < 0 else x   (NumPy's clip(x, 0, inf): NaN and -0 kept)
    relu_backward  dx = g * [x > 0]   (the ReLU before or after a batch norm)
    act = 1 / 2    batch norm fused with the ReLU / ReLU6 reading only its output:
              y = act(bn(x)); backward: the batch-norm backward of g * [0 < y (< 6)]
    max_pool_2x2_*  2x2 max pooling at stride 2, the tournament form of :mod:`cnnkit.kernels.pool`
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from .. import parallel
from .loader import NativeLibrary

__all__ = ["SIGNATURES", "available", "set_enabled", "library_path", "variant",
           "train_forward", "train_backward", "relu_forward", "relu_backward",
           "max_pool_2x2_forward", "max_pool_2x2_backward",
           "avg_pool_2x2_forward", "avg_pool_2x2_backward"]

_P = ctypes.c_void_p
_I64 = ctypes.c_int64

# name -> (restype, argtypes) of every function of _norm.c
SIGNATURES = {
    "cnk_bn_stats": (None, [_P, _I64, _I64, _P, _P, _P]),
    "cnk_bn_grad_sums": (None, [_P, _P, _I64, _I64, _P, _P, _P]),
    "cnk_bn_normalize": (None, [_P, _I64, _I64, _P, _P, _P, _P]),
    "cnk_bn_grad_input": (None, [_P, _P, _I64, _I64, _P, _P, _P, _P, _P]),
    "cnk_bn_normalize_act": (None, [_P, _I64, _I64, _P, _P, _P, _P, _I64]),
    "cnk_bn_grad_sums_act": (None, [_P, _P, _P, _I64, _I64, _P, _P, _P, _I64, _P]),
    "cnk_bn_grad_input_act": (None, [_P, _P, _P, _I64, _I64, _P, _P, _P, _P, _P, _I64]),
    "cnk_relu_backward": (None, [_P, _P, _I64, _P]),
    "cnk_relu_forward": (None, [_P, _I64, _P]),
    "cnk_maxpool2x2_forward": (None, [_P, *[_I64] * 4, _P, _P, _P, _P]),
    "cnk_maxpool2x2_backward": (None, [_P, _P, _P, _P, *[_I64] * 4, _P]),
    "cnk_avgpool2x2_forward": (None, [_P, *[_I64] * 4, _P]),
    "cnk_avgpool2x2_backward": (None, [_P, *[_I64] * 4, _P]),
}

_LIB = NativeLibrary("_norm", SIGNATURES)
_state = _LIB.state
_load = _LIB.load
library_path = _LIB.path
set_enabled = _LIB.set_enabled
available = _LIB.available
variant = _LIB.variant


def _addr(a: np.ndarray) -> int:
    """The data address of a C-contiguous array."""
    if not a.flags.c_contiguous:
        raise ValueError("native batch-norm kernels take C-contiguous arrays")
    return int(a.ctypes.data)


# Row blocks cover about this many bytes of the arrays a pass touches: larger than the NumPy
# kernels' pieces (a C pass needs no cache blocking, and fewer hand-overs measured 10-30%
# faster on 2-8 MiB arrays); jobs under parallel.MIN_PARALLEL_BYTES are one block.
BLOCK_BYTES = 4 << 20


def _blocks(m: int, c: int, arrays: int) -> list[tuple[int, int]]:
    """Row blocks of (M, C) for a pass touching ``arrays`` float32 arrays of that shape (the cut
    depends on the sizes only, never on the thread count)."""
    total = m * arrays * c * 4
    if total < parallel.MIN_PARALLEL_BYTES:
        return [(0, m)]
    return parallel.split(m, -(-total // BLOCK_BYTES))


def _run(ranges: list[tuple[int, int]], body: Any) -> None:
    """body(i, r0, r1) over the row blocks i, spread over the pool's threads."""
    if len(ranges) == 1:
        body(0, *ranges[0])
    else:
        parallel.run_blocks(len(ranges), lambda i, _: body(i, *ranges[i]))


def _f32(v: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(v, dtype=np.float32)


# fused activations: name -> the C kernels' act code
ACTS = {None: 0, "relu": 1, "relu6": 2}
TILE_ROWS = 64  # _norm.c's TILE_ROWS: rows of the masked error per scratch tile


def train_forward(x2: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                  eps: float, act: str | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """y, mu, var (biased), inv_std of x2 (M, C) float32 (M >= 1); gamma/beta (C,) or None;
    ``act`` "relu" / "relu6": y is that activation of the batch norm's output."""
    lib = _load()
    assert lib is not None
    m, c = x2.shape
    xa = _addr(x2)
    t = x2[0].copy()
    ranges = _blocks(m, c, 1)
    part = np.empty((len(ranges), 2, c), dtype=np.float64)
    row = c * 4

    def stats(i: int, r0: int, r1: int) -> None:
        lib.cnk_bn_stats(xa + r0 * row, r1 - r0, c, t.ctypes.data, part[i, 0].ctypes.data,
                         part[i, 1].ctypes.data)

    _run(ranges, stats)
    s = part[0] if len(ranges) == 1 else part.sum(axis=0)  # block order along axis 0
    s1, s2 = s[0], s[1]
    mean64 = t + s1 / m
    var64 = np.maximum(s2 - s1 * s1 / m, 0.0) / m
    mean, var = mean64.astype(np.float32), var64.astype(np.float32)
    inv_std = (1.0 / np.sqrt(var64 + eps)).astype(np.float32)
    a = _f32(inv_std if gamma is None else gamma.reshape(c) * inv_std)
    b = np.zeros(c, np.float32) if beta is None else _f32(beta.reshape(c))
    y = np.empty_like(x2)
    ya = _addr(y)
    ranges2 = _blocks(m, c, 2)

    code = ACTS[act]

    def norm(_: int, r0: int, r1: int) -> None:
        if code:
            lib.cnk_bn_normalize_act(xa + r0 * row, r1 - r0, c, mean.ctypes.data,
                                     a.ctypes.data, b.ctypes.data, ya + r0 * row, code)
        else:
            lib.cnk_bn_normalize(xa + r0 * row, r1 - r0, c, mean.ctypes.data, a.ctypes.data,
                                 b.ctypes.data, ya + r0 * row)

    _run(ranges2, norm)
    return y, mean, var, inv_std


def train_backward(g2: np.ndarray, x2: np.ndarray, mu: np.ndarray, sc: np.ndarray,
                   istd: np.ndarray, out: np.ndarray | None = None,
                   act: str | None = None, y2: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dx, dgamma, dbeta of batch norm on (M, C) float32 for output error g2; mu, sc = gamma *
    istd and istd are (C,). dx goes into ``out`` when given (g2 itself is allowed). With
    ``act``, g2 is the error of act(bn(x)) and y2 that activation's output (M, C)."""
    lib = _load()
    assert lib is not None
    m, c = g2.shape
    ga, xa, row = _addr(g2), _addr(x2), c * 4
    mu, sc, istd = _f32(mu), _f32(sc), _f32(istd)
    ranges = _blocks(m, c, 2)  # the cut of the partial sums: the same with or without act
    part = np.empty((len(ranges), 2, c), dtype=np.float64)

    code = ACTS[act]
    ya = _addr(y2) if code else 0

    def sums(i: int, r0: int, r1: int) -> None:
        if code:
            scratch = np.empty(TILE_ROWS * c, dtype=np.float32)
            lib.cnk_bn_grad_sums_act(ga + r0 * row, ya + r0 * row, xa + r0 * row, r1 - r0, c,
                                     mu.ctypes.data, part[i, 0].ctypes.data,
                                     part[i, 1].ctypes.data, code, scratch.ctypes.data)
        else:
            lib.cnk_bn_grad_sums(ga + r0 * row, xa + r0 * row, r1 - r0, c, mu.ctypes.data,
                                 part[i, 0].ctypes.data, part[i, 1].ctypes.data)

    _run(ranges, sums)
    s = part[0] if len(ranges) == 1 else part.sum(axis=0)
    dbeta64, dgamma64 = s[0], s[1] * istd
    dbeta, dgamma = dbeta64.astype(np.float32), dgamma64.astype(np.float32)
    k2 = (-sc * istd * dgamma64 / m).astype(np.float32)
    k3 = (-sc * dbeta64 / m).astype(np.float32)
    dx = np.empty_like(g2) if out is None else out
    if dx.shape != g2.shape or dx.dtype != np.float32:
        raise ValueError("dx must be a float32 array of g's shape")
    da = _addr(dx)
    ranges2 = _blocks(m, c, 4 if code else 3)

    def grad(_: int, r0: int, r1: int) -> None:
        if code:
            lib.cnk_bn_grad_input_act(ga + r0 * row, ya + r0 * row, xa + r0 * row, r1 - r0, c,
                                      mu.ctypes.data, sc.ctypes.data, k2.ctypes.data,
                                      k3.ctypes.data, da + r0 * row, code)
        else:
            lib.cnk_bn_grad_input(ga + r0 * row, xa + r0 * row, r1 - r0, c, mu.ctypes.data,
                                  sc.ctypes.data, k2.ctypes.data, k3.ctypes.data,
                                  da + r0 * row)

    _run(ranges2, grad)
    return dx, dgamma, dbeta


def relu_backward(g: np.ndarray, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = g * [x > 0] elementwise (as NumPy's g * (x > 0), NaN and -0 included) for
    float32 C-contiguous arrays of one shape; ``out`` may be g itself."""
    lib = _load()
    assert lib is not None
    if not (g.shape == x.shape == out.shape and g.dtype == x.dtype == out.dtype == np.float32):
        raise ValueError("relu_backward takes float32 arrays of one shape")
    ga, xa, oa, n = _addr(g), _addr(x), _addr(out), g.size

    def body(_: int, r0: int, r1: int) -> None:
        lib.cnk_relu_backward(ga + 4 * r0, xa + 4 * r0, r1 - r0, oa + 4 * r0)

    _run(_blocks(n, 1, 3), body)
    return out


def relu_forward(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = clip(x, 0, inf) elementwise (0 where x < 0, else x: NaN and -0 kept) for float32
    C-contiguous arrays of one shape."""
    lib = _load()
    assert lib is not None
    if not (x.shape == out.shape and x.dtype == out.dtype == np.float32):
        raise ValueError("relu_forward takes float32 arrays of one shape")
    xa, oa = _addr(x), _addr(out)

    def body(_: int, r0: int, r1: int) -> None:
        lib.cnk_relu_forward(xa + 4 * r0, r1 - r0, oa + 4 * r0)

    _run(_blocks(x.size, 1, 2), body)
    return out


def _pool_ok(a: np.ndarray, b: np.ndarray) -> None:
    if a.dtype != np.float32 or b.dtype != np.float32 or a.ndim != 4 or a.shape[-1] % 16:
        raise ValueError("2x2 max pooling takes float32 (N, H, W, C) arrays, C % 16 == 0")


def max_pool_2x2_forward(x: np.ndarray, y: np.ndarray, m01: np.ndarray, m23: np.ndarray,
                         mab: np.ndarray, n0: int, n1: int) -> None:
    """Images n0..n1 of y = 2x2 max pool of x (N, H, W, C) at stride 2 (no padding) and the
    tournament's comparisons m01 = x01 > x00, m23 = x11 > x10, mab = b > a (bool arrays of
    y's shape); a = max(x00, x01), b = max(x10, x11), y = max(b, a) as NumPy's maximum."""
    lib = _load()
    assert lib is not None
    _pool_ok(x, y)
    n, h, w, c = x.shape
    per_x, per_y = h * w * c * 4, y[0].size
    lib.cnk_maxpool2x2_forward(_addr(x) + n0 * per_x, n1 - n0, h, w, c,
                               _addr(y) + n0 * per_y * 4, _addr(m01) + n0 * per_y,
                               _addr(m23) + n0 * per_y, _addr(mab) + n0 * per_y)


def max_pool_2x2_backward(g: np.ndarray, m01: np.ndarray, m23: np.ndarray, mab: np.ndarray,
                          gx: np.ndarray, n0: int, n1: int) -> None:
    """Images n0..n1 of dL/dx of :func:`max_pool_2x2_forward`: g to each window's winning tap
    (as g * mask), 0 to the others; cells outside whole windows are left as they are."""
    lib = _load()
    assert lib is not None
    _pool_ok(gx, g)
    n, h, w, c = gx.shape
    per_x, per_y = h * w * c * 4, g[0].size
    lib.cnk_maxpool2x2_backward(_addr(g) + n0 * per_y * 4, _addr(m01) + n0 * per_y,
                                _addr(m23) + n0 * per_y, _addr(mab) + n0 * per_y,
                                n1 - n0, h, w, c, _addr(gx) + n0 * per_x)


def _avg_ok(a: np.ndarray, b: np.ndarray) -> None:
    if (a.dtype != np.float32 or b.dtype != np.float32 or a.ndim != 4 or b.ndim != 4
            or not (a.flags.c_contiguous and b.flags.c_contiguous)
            or b.shape != (a.shape[0], a.shape[1] // 2, a.shape[2] // 2, a.shape[3])):
        raise ValueError("2x2 average pooling takes C-contiguous float32 (N, H, W, C) and "
                         "(N, H // 2, W // 2, C) arrays")


def avg_pool_2x2_forward(x: np.ndarray, y: np.ndarray, n0: int, n1: int) -> None:
    """Images n0..n1 of y = 2x2 average pool of x (N, H, W, C) at stride 2 (no padding):
    y = ((x00 + x10) + (x01 + x11)) * 0.25 (odd last row / column dropped)."""
    lib = _load()
    assert lib is not None
    _avg_ok(x, y)
    n, h, w, c = x.shape
    lib.cnk_avgpool2x2_forward(_addr(x) + n0 * x[0].nbytes, n1 - n0, h, w, c,
                               _addr(y) + n0 * y[0].nbytes)


def avg_pool_2x2_backward(g: np.ndarray, gx: np.ndarray, n0: int, n1: int) -> None:
    """Images n0..n1 of dL/dx of :func:`avg_pool_2x2_forward`: g * 0.25 to each of a
    window's four cells, 0 to an odd last row / column."""
    lib = _load()
    assert lib is not None
    _avg_ok(gx, g)
    n, h, w, c = gx.shape
    lib.cnk_avgpool2x2_backward(_addr(g) + n0 * g[0].nbytes, n1 - n0, h, w, c,
                                _addr(gx) + n0 * gx[0].nbytes)
