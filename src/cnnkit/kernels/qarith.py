"""Integer-domain max pooling, addition and clamping of quantized tensors (channels-last).

- max pooling: the max of the codes of a window (exact: q -> (q - z) s is increasing, so
  the code of the max is the max of the codes); "same" padding reads qmin.
- add: y = clamp(rint(float32(a - za) * (sa / sy) + float32(b - zb) * (sb / sy)) + zy,
  lo, hi) (float32 products and sum in that order; rint half to even).
- clamp: y = min(max(q, lo), hi), a ReLU-type activation on codes (lo = the zero point for
  ReLU; hi = z + rint(cap / s) for a capped one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .native import qarith as native
from .padding import resolve_padding

__all__ = ["max_pool", "add", "clamp"]


def max_pool(q: np.ndarray, pool: tuple, strides: tuple, padding: str, qmin: int,
             limits: tuple[int, int] | None = None) -> np.ndarray:
    """Max over each window ``pool`` at ``strides`` of (N, *spatial, C) codes, then clamped
    to ``limits`` (a fused ReLU-type activation) when given."""
    spatial = q.shape[1:-1]
    pads = resolve_padding(padding, spatial, tuple(pool), tuple(strides), (1,) * len(pool))
    if tuple(pool) == tuple(strides) == (2, 2) and not any(p for pair in pads for p in pair) \
            and native.available():
        lo, hi = limits if limits is not None else (-128, 127) if q.dtype == np.int8 \
            else (0, 255)
        y = native.max_pool_2x2(q, lo, hi)
        if y is not None:
            return y
    out = _max_pool(q, pool, strides, pads, qmin)
    return out if limits is None else clamp(out, *limits)


def _max_pool(q: np.ndarray, pool: tuple, strides: tuple, pads: Any, qmin: int
              ) -> np.ndarray:
    spatial = q.shape[1:-1]
    if any(p for pair in pads for p in pair):
        padded = np.full((q.shape[0], *(n + a + b for n, (a, b) in zip(spatial, pads,
                                                                       strict=True)),
                          q.shape[-1]), qmin, q.dtype)
        padded[(slice(None), *(slice(a, a + n) for n, (a, _) in zip(spatial, pads,
                                                                    strict=True)))] = q
        q = padded
    outs = [(n - k) // s + 1 for n, k, s in zip(q.shape[1:-1], pool, strides, strict=True)]
    out = None
    for taps in np.ndindex(*pool):
        view = q[(slice(None), *(slice(t, t + s * (o - 1) + 1, s)
                                 for t, s, o in zip(taps, strides, outs, strict=True)))]
        out = view.copy() if out is None else np.maximum(out, view, out=out)
    assert out is not None
    return out


def add(a: np.ndarray, b: np.ndarray, qa: tuple[float, int], qb: tuple[float, int],
        qy: tuple[float, int], out_dtype: Any, lo: int, hi: int) -> np.ndarray:
    """The sum of two quantized tensors requantized to (sy, zy) (module docstring)."""
    ma = np.float32(np.float32(qa[0]) / np.float32(qy[0]))
    mb = np.float32(np.float32(qb[0]) / np.float32(qy[0]))
    if native.available():
        y = native.add(a, b, qa[1], qb[1], ma, mb, qy[1], lo, hi, np.dtype(out_dtype))
        if y is not None:
            return y
    t = (a.astype(np.int32) - qa[1]).astype(np.float32) * ma
    t += (b.astype(np.int32) - qb[1]).astype(np.float32) * mb
    q = np.rint(t).astype(np.int32) + qy[1]
    return np.clip(q, lo, hi).astype(out_dtype)


def clamp(q: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """min(max(q, lo), hi) (a new array)."""
    return np.clip(q, lo, hi)
