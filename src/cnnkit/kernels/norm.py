"""Batch normalisation (dropout: :mod:`.dropout`).

Batch normalisation normalises every channel (the ``axis`` kept, channels-last: the last one)
over all other axes, M values per channel:

    mu = (1/M) sum x,   var = (1/M) sum (x - mu)^2   (biased),   x_hat = (x - mu) / sqrt(var + eps)
    y = gamma * x_hat + beta

Training uses the batch's mu and var; inference uses the moving averages, which training moves
as Keras 3 does: moving = moving * momentum + batch * (1 - momentum), with the *biased* batch
variance (Keras ``ops.moments``; PyTorch's running_var uses the unbiased one instead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import parallel
from .arith import may_overwrite
from .native import norm as native_norm

BNCache = tuple[np.ndarray, np.ndarray, np.ndarray]  # (x, mu, 1 / sqrt(var + eps))


def bn_axes(ndim: int, axis: int | Sequence[int] = -1) -> tuple[tuple[int, ...],
                                                                  tuple[int, ...]]:
    """(kept channel axes, reduced axes) as sorted non-negative ints."""
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    kept = []
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"axis {a} is out of range for an input of rank {ndim}")
        kept.append(int(a) % ndim)
    kept_t = tuple(sorted(set(kept)))
    return kept_t, tuple(i for i in range(ndim) if i not in kept_t)


def param_shape(x_shape: Sequence[int], kept: Sequence[int]) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel parameter against x: x's size on kept axes, else 1."""
    return tuple(n if i in kept else 1 for i, n in enumerate(x_shape))


def _channel_sum(a: np.ndarray, red: tuple[int, ...]) -> np.ndarray:
    """sum of a over the reduced axes, keepdims (channels-last: one GEMV with a ones vector)."""
    if red == tuple(range(a.ndim - 1)):
        a2 = a.reshape(-1, a.shape[-1])
        s = np.ones(a2.shape[0], dtype=a.dtype) @ a2
        return s.reshape((1,) * (a.ndim - 1) + s.shape)
    return a.sum(axis=red, keepdims=True)


def _channel_dot(a: np.ndarray, b: np.ndarray, red: tuple[int, ...]) -> np.ndarray:
    """sum of a * b over the reduced axes, keepdims, without a full-size temporary when
    channels-last."""
    if red == tuple(range(a.ndim - 1)):
        c = a.shape[-1]
        s = np.einsum("ij,ij->j", a.reshape(-1, c), b.reshape(-1, c))
        return s.reshape((1,) * (a.ndim - 1) + (c,))
    return (a * b).sum(axis=red, keepdims=True)


def _channels_last(red: tuple[int, ...], ndim: int) -> bool:
    return red == tuple(range(ndim - 1))


# Per-channel work on (M, C) with few channels runs NumPy's inner loop over only C elements
# (a broadcast (C,) operand); viewing the array as (M / r, r * C) with the per-channel vectors
# tiled r times gives loops of ~TILE_ELEMS elements (measured 2.2x faster for C = 16).
TILE_ELEMS = 1024


def _tiling(m: int, c: int, itemsize: int = 4) -> int:
    """Rows r folded into one row of the tiled view (M / r, r * C): the largest power of two
    r <= max(1, TILE_ELEMS // C) that divides M; 1 for a small array (done in one piece,
    where the few extra small NumPy calls of the tiled path cost more than they save)."""
    if m * c * itemsize < parallel.MIN_PARALLEL_BYTES:
        return 1
    r_max = 1 << max(0, (TILE_ELEMS // max(c, 1)).bit_length() - 1)
    return math.gcd(m, r_max)


def _tiled(a2: np.ndarray, r: int) -> np.ndarray:
    """(M, C) as (M / r, r * C): a view for a C-contiguous ``a2``."""
    return a2.reshape(a2.shape[0] // r, r * a2.shape[1])


def _fold(v: np.ndarray, r: int) -> np.ndarray:
    """Per-lane sums of length r * C back to per-channel sums (C,)."""
    return v.reshape(r, -1).sum(axis=0) if r > 1 else v


def _lanes(v: np.ndarray, r: int, rows: int, pieces: int = 2) -> np.ndarray:
    """The per-channel vector v (C,) tiled r times along a row and repeated as a contiguous
    (rows, r * C) block: NumPy runs x * block about 1.5x faster than x * row broadcast over
    rows (its loops over same-shaped contiguous operands are faster). For a job of one piece,
    the tiled row (r * C,) only (the block would cost as much as it saves)."""
    if pieces <= 1:
        return np.tile(v, r)
    return np.tile(v, (rows, r))


def _head(block: np.ndarray, n: int) -> np.ndarray:
    """The first n rows of a :func:`_lanes` block (the vector itself when it is one)."""
    return block[:n] if block.ndim == 2 else block


def _use_native(a: np.ndarray) -> bool:
    """The C kernels (:mod:`.native.norm`) take this channels-last array: float32,
    C-contiguous, not empty, and the helper is built and switched on."""
    return (a.dtype == np.float32 and a.flags.c_contiguous and a.size > 0
            and native_norm.available())


def _train_stats_2d(x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and biased variance of (M, C) in one read of x, on the tiled view
    (M / r, L), L = r * C: per row piece p and lane l (n_p rows each), its sum s (a GEMV) and
    M2 = sum (x - s/n_p)^2 (its deviations stay in cache), then Chan et al.'s combination
    over all (piece, lane) groups of a channel: mean = sum s / M,
    var = (sum M2 + sum n_p (s/n_p - mean)^2) / M (as stable as the two-pass formula)."""
    m, c = x2.shape
    r = _tiling(m, c, x2.itemsize)
    xt = _tiled(x2, r)
    ranges = parallel.row_pieces(xt.shape[0], xt.shape[1] * xt.itemsize)
    sums: list[Any] = [None] * len(ranges)
    m2s: list[Any] = [None] * len(ranges)
    ones = np.ones(max(r1 - r0 for r0, r1 in ranges), dtype=x2.dtype)

    def body(i: int, _: Any) -> None:
        r0, r1 = ranges[i]
        xp = xt[r0:r1]
        s = ones[:r1 - r0] @ xp
        xc = xp - s / xp.dtype.type(r1 - r0)
        sums[i] = s
        m2s[i] = np.einsum("ij,ij->j", xc, xc)

    parallel.run_blocks(len(ranges), body, blas=True)
    t = x2.dtype.type
    if len(ranges) == 1 and r == 1:
        return sums[0] / t(m), m2s[0] / t(m)
    n = np.array([r1 - r0 for r0, r1 in ranges], dtype=x2.dtype).reshape(-1, 1, 1)
    s_all = np.stack(sums).reshape(len(ranges), r, c)
    mean = s_all.sum(axis=(0, 1)) / t(m)
    m2 = np.stack(m2s).reshape(len(ranges), r, c).sum(axis=(0, 1))
    if s_all.shape[0] * r > 1:
        d = s_all / n - mean
        m2 += (n * d * d).sum(axis=(0, 1))
    return mean, m2 / t(m)


def _affine_2d(x2: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y = x * a + b per column, piece by piece, on the tiled view."""
    y = np.empty(x2.shape, dtype=x2.dtype)
    r = _tiling(*x2.shape, x2.itemsize)
    xt, yt = _tiled(x2, r), _tiled(y, r)
    ranges = parallel.row_pieces(xt.shape[0], 2 * xt.shape[1] * xt.itemsize)
    rows, k = max(r1 - r0 for r0, r1 in ranges), len(ranges)
    at, bt = _lanes(a, r, rows, k), _lanes(b, r, rows, k)

    def body(i: int, _: Any) -> None:
        r0, r1 = ranges[i]
        n = r1 - r0
        np.multiply(xt[r0:r1], _head(at, n), out=yt[r0:r1])
        yt[r0:r1] += _head(bt, n)

    parallel.run_blocks(len(ranges), body)
    return y


ACTIVATIONS = (None, "relu", "relu6")  # what batch norm fuses: y = act(bn(x))


def act_into(y: np.ndarray, activation: str | None) -> np.ndarray:
    """y = relu(y) or relu6(y) in place (NumPy's clip: NaN and -0 kept)."""
    if activation is not None:
        np.clip(y, 0, 6 if activation == "relu6" else np.inf, out=y)
    return y


def act_mask(g: np.ndarray, y: np.ndarray, activation: str) -> np.ndarray:
    """g * [0 < y] (ReLU) or g * [0 < y < 6] (ReLU6), y the activation's output."""
    m = y > 0
    if activation == "relu6":
        m &= y < 6
    return np.multiply(g, m, dtype=g.dtype)


def batch_norm_train_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                             epsilon: float = 1e-3, axis: int | Sequence[int] = -1,
                             activation: str | None = None
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, BNCache]:
    """y = gamma * (x - mu) / sqrt(var + eps) + beta with the batch mean mu and biased var.

    ``gamma``/``beta`` broadcast against x (shape :func:`param_shape`) or are None (scale 1,
    offset 0). Returns y, mu, var (both in the broadcast shape) and the cache for the
    backward. Channels-last: the statistics take one read of x (:func:`_train_stats_2d`) and
    y = x * a + b (a = gamma / std, b = beta - mu * a) one more, piece by piece in parallel;
    float32 with the C helper (:mod:`.native.norm`, off with ``CNNKIT_NATIVE=0``): the same two
    passes in C, sums in float64, y = (x - mu) * a + beta. ``activation`` "relu" / "relu6":
    y = that activation of the result (in the same pass in C; the backward then needs y).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"batch norm fuses {ACTIVATIONS[1:]}, got {activation!r}")
    _, red = bn_axes(x.ndim, axis)
    eps = x.dtype.type(epsilon)
    if _channels_last(red, x.ndim):
        c = x.shape[-1]
        if _use_native(x):
            y2, mu, var, istd = native_norm.train_forward(x.reshape(-1, c), gamma, beta, epsilon,
                                                          activation)
            shape = (1,) * (x.ndim - 1) + (c,)
            return (y2.reshape(x.shape), mu.reshape(shape), var.reshape(shape),
                    (x, mu.reshape(shape), istd.reshape(shape)))
        x2 = x.reshape(-1, c)
        mean, var = _train_stats_2d(x2)
        inv_std = 1.0 / np.sqrt(var + eps)
        a = inv_std if gamma is None else gamma.reshape(c) * inv_std
        b = -mean * a
        if beta is not None:
            b += beta.reshape(c)
        y = act_into(_affine_2d(x2, a, b), activation).reshape(x.shape)
        shape = (1,) * (x.ndim - 1) + (c,)
        return y, mean.reshape(shape), var.reshape(shape), (x, mean.reshape(shape),
                                                            inv_std.reshape(shape))
    k = x.dtype.type(int(np.prod([x.shape[i] for i in red])))  # M values per channel
    mean = _channel_sum(x, red) / k
    xc = x - mean
    var = _channel_dot(xc, xc, red) / k
    inv_std = 1.0 / np.sqrt(var + eps)
    y = xc * (inv_std if gamma is None else gamma * inv_std)
    if beta is not None:
        y += beta
    return act_into(y, activation), mean, var, (x, mean, inv_std)


def _train_backward_2d(g2: np.ndarray, x2: np.ndarray, mu: np.ndarray, sc: np.ndarray,
                       istd: np.ndarray, m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channels-last batch-norm backward on (M, C), on the tiled view (M / r, r * C).

    First pass per piece: dbeta partial = sum g (GEMV), xc = x - mu written into dx's piece,
    dgamma partial = sum g * xc. Second pass: dx = xc * k2 + k3 + g * sc in place, with
    k2 = -sc * istd * dgamma / M and k3 = -sc * dbeta / M (dgamma already times istd).
    """
    mrows, c = g2.shape
    r = _tiling(mrows, c, g2.itemsize)
    gt, xt = _tiled(g2, r), _tiled(x2, r)
    dx = np.empty(g2.shape, dtype=g2.dtype)
    dxt = _tiled(dx, r)
    ranges = parallel.row_pieces(gt.shape[0], 3 * gt.shape[1] * gt.itemsize)
    rows, k = max(r1 - r0 for r0, r1 in ranges), len(ranges)
    mu_t = _lanes(mu, r, rows, k)
    sums: list[Any] = [None] * len(ranges)
    dots: list[Any] = [None] * len(ranges)
    ones = np.ones(rows, dtype=g2.dtype)

    def stats(i: int, _: Any) -> None:
        r0, r1 = ranges[i]
        gp, d = gt[r0:r1], dxt[r0:r1]
        sums[i] = ones[:r1 - r0] @ gp
        np.subtract(xt[r0:r1], _head(mu_t, r1 - r0), out=d)
        dots[i] = np.einsum("ij,ij->j", gp, d)

    parallel.run_blocks(len(ranges), stats, blas=True)
    dbeta = _fold(sum(sums[1:], sums[0]), r)
    dgamma = _fold(sum(dots[1:], dots[0]), r) * istd
    k2 = _lanes(-sc * istd * dgamma / m, r, rows, k)  # coefficient of (x - mu)
    k3 = _lanes(-sc * dbeta / m, r, rows, k)
    sc_t = _lanes(sc, r, rows, k)

    def body(i: int, _: Any) -> None:
        r0, r1 = ranges[i]
        n = r1 - r0
        d = dxt[r0:r1]
        d *= _head(k2, n)
        d += _head(k3, n)
        d += gt[r0:r1] * _head(sc_t, n)

    parallel.run_blocks(len(ranges), body)
    return dx, dgamma, dbeta


def batch_norm_train_backward(g: np.ndarray, gamma: np.ndarray | None, cache: BNCache,
                              axis: int | Sequence[int] = -1, activation: str | None = None,
                              y: np.ndarray | None = None
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients through the batch statistics (M values per channel, x_hat = (x - mu)/std):

    dbeta = sum g,  dgamma = sum g * x_hat,
    dx = gamma / std * (g - dbeta / M - x_hat * dgamma / M).
    Returns dx, dgamma, dbeta (the last two in the broadcast shape). Channels-last: one read
    of g and x for the two sums (x - mu formed per piece, in cache) and one for dx; float32
    with the C helper (:mod:`.native.norm`): the same two passes in C, dx written into g
    when autograd donated it. With ``activation``, g is the error of y = act(bn(x)) (the
    forward's output): the same with g * [0 < y] (ReLU) or g * [0 < y < 6] (ReLU6), masked
    on the fly in C.
    """
    x, mean, inv_std = cache
    _, red = bn_axes(g.ndim, axis)
    m = g.dtype.type(g.size // inv_std.size)
    scale = inv_std if gamma is None else gamma * inv_std
    act = activation
    if act is not None and not (_use_native(g) and _use_native(x) and _use_native(y)
                                and scale.dtype == np.float32 and _channels_last(red, g.ndim)):
        g, act = act_mask(g, y, act), None
    if _channels_last(red, g.ndim):
        c = g.shape[-1]
        args = (g.reshape(-1, c), x.reshape(-1, c), mean.reshape(c), scale.reshape(c),
                inv_std.reshape(c))
        if _use_native(g) and _use_native(x) and scale.dtype == np.float32:
            # into g itself when autograd donated it (no fresh output to stream in)
            out = args[0] if may_overwrite(g) else None
            dx, dgamma, dbeta = native_norm.train_backward(
                *args, out=out, act=act, y2=None if act is None else y.reshape(-1, c))
        else:
            dx, dgamma, dbeta = _train_backward_2d(*args, m)
        shape = (1,) * (g.ndim - 1) + (c,)
        return dx.reshape(g.shape), dgamma.reshape(shape), dbeta.reshape(shape)
    xc = x - mean
    dbeta = _channel_sum(g, red)
    dgamma = _channel_dot(g, xc, red) * inv_std
    # dx = scale * g - scale * dbeta / M - xc * (scale * inv_std * dgamma / M)
    dx = xc * (scale * inv_std * dgamma / m)
    np.subtract(g * scale, dx, out=dx)
    dx -= scale * dbeta / m
    return dx, dgamma, dbeta


def infer_scale_shift(gamma: np.ndarray | None, beta: np.ndarray | None, mean: np.ndarray,
                      var: np.ndarray, epsilon: float, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with inference batch norm = x * a + b: a = gamma / sqrt(var + eps),
    b = beta - mean * a (gamma = 1 and beta = 0 when absent). Also folds a batch norm into the
    layer before it (W' = W * a, b' = b_layer * a + b)."""
    a = np.add(var, np.asarray(epsilon, dtype), dtype=dtype)
    np.sqrt(a, out=a)
    if gamma is not None:
        np.divide(gamma, a, out=a)
    else:
        np.reciprocal(a, out=a)
    b = np.multiply(mean, a, dtype=dtype)
    if beta is not None:
        np.subtract(beta, b, out=b)
    else:
        np.negative(b, out=b)
    return a, b


def batch_norm_infer_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                             mean: np.ndarray, var: np.ndarray, epsilon: float = 1e-3
                             ) -> np.ndarray:
    """y = gamma * (x - mean) / sqrt(var + eps) + beta with fixed (moving) statistics, computed
    as one affine map y = x * a + b, a = gamma / sqrt(var + eps), b = beta - mean * a.

    All parameters are given in the broadcast shape (:func:`param_shape`).
    """
    a, b = infer_scale_shift(gamma, beta, mean, var, epsilon, x.dtype)
    c = x.shape[-1] if x.ndim else 1
    if x.ndim >= 2 and a.shape[-1] == c and a.size == c and b.size == c and \
            x.flags.c_contiguous:
        return _affine_2d(x.reshape(-1, c), a.reshape(c), b.reshape(c)).reshape(x.shape)
    y = x * a
    y += b
    return y


def batch_norm_infer_backward(g: np.ndarray, x: np.ndarray, gamma: np.ndarray | None,
                              mean: np.ndarray, var: np.ndarray, epsilon: float = 1e-3,
                              axis: int | Sequence[int] = -1
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Affine-map gradients: dx = g * gamma / sqrt(var + eps), dgamma = sum g * x_hat,
    dbeta = sum g (statistics are constants). Returns dx, dgamma, dbeta (broadcast shape)."""
    _, red = bn_axes(x.ndim, axis)
    inv_std = 1.0 / np.sqrt(var + x.dtype.type(epsilon))
    dbeta = _channel_sum(g, red)
    dgamma = _channel_dot(g, x - mean, red) * inv_std
    dx = g * (inv_std if gamma is None else gamma * inv_std)
    return dx, dgamma, dbeta


def moving_average(moving: np.ndarray, batch: np.ndarray, momentum: float) -> np.ndarray:
    """Keras update: moving * momentum + batch * (1 - momentum)."""
    return moving * moving.dtype.type(momentum) + batch * batch.dtype.type(1.0 - momentum)
