"""Gradient averaging and parameter broadcast over flat float32 buffers.

Gradients go into buckets of at most ``bucket_bytes`` (each a flat float32 array holding
several parameters' gradients end to end), one ``Allreduce`` per bucket. The gradients
are averaged, ``g = sum_r g_r / R``; ranks whose shards differ in size scale their loss by
``R n_r / N`` first (see :mod:`.training`). The loss and its weight ride in the last
bucket's tail, so the global mean loss costs no extra message; so does a flag for a
non-finite loss on any rank."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..autograd import Tensor

__all__ = ["GradientReducer", "broadcast_arrays"]

DEFAULT_BUCKET_BYTES = 8 << 20


def _buckets(sizes: Sequence[int], bucket_bytes: int) -> list[list[int]]:
    """Parameter indices grouped in order, each group at most ``bucket_bytes`` of float32
    (a parameter larger than that gets a bucket of its own)."""
    groups: list[list[int]] = [[]]
    room = bucket_bytes // 4
    used = 0
    for i, n in enumerate(sizes):
        if groups[-1] and used + n > room:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += n
    return [g for g in groups if g]


class GradientReducer:
    """Averages the ``.grad`` of a fixed list of parameters across the ranks of ``group``."""

    def __init__(self, group: Any, params: Sequence[Tensor],
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        self.group, self.params = group, list(params)
        sizes = [int(p.data.size) for p in self.params]
        self.groups = _buckets(sizes, int(bucket_bytes))
        last = len(self.groups) - 1
        self.buffers = [np.zeros(sum(sizes[i] for i in g) + (3 if k == last else 0), np.float32)
                        for k, g in enumerate(self.groups)] or [np.zeros(3, np.float32)]

    def reduce(self, loss: float = 0.0, loss_weight: float = 1.0) -> float:
        """Replace each ``.grad`` with its mean over the ranks (a parameter with no gradient
        counts as zero). Returns the global mean of ``loss`` weighted by ``loss_weight`` (this
        rank's sample count), NaN when any rank's loss was not finite."""
        for k, g in enumerate(self.groups):
            buf, at = self.buffers[k], 0
            for i in g:
                p = self.params[i]
                n = p.data.size
                buf[at:at + n] = 0.0 if p.grad is None else p.grad.reshape(-1)
                at += n
        tail = self.buffers[-1]
        finite = bool(np.isfinite(loss))
        tail[-3:] = (loss_weight, loss_weight * loss if finite else 0.0, 0.0 if finite else 1.0)
        for buf in self.buffers:
            self.group.allreduce_sum(buf)
        total, total_loss, bad = (float(v) for v in tail[-3:])
        scale = np.float32(1.0 / self.group.size)
        for k, g in enumerate(self.groups):
            buf, at = self.buffers[k], 0
            for i in g:
                p = self.params[i]
                n = p.data.size
                p.grad = (buf[at:at + n] * scale).reshape(p.shape).astype(p.dtype, copy=False)
                at += n
        return float("nan") if bad or not total else total_loss / total


def broadcast_arrays(group: Any, arrays: Sequence[np.ndarray], root: int = 0) -> None:
    """Overwrite ``arrays`` (in place) with rank ``root``'s values, one flat buffer per dtype."""
    by_dtype: dict[np.dtype, list[np.ndarray]] = {}
    for a in arrays:
        by_dtype.setdefault(a.dtype, []).append(a)
    for dtype, group_arrays in by_dtype.items():
        flat = np.concatenate([a.reshape(-1) for a in group_arrays]).astype(dtype, copy=False)
        flat = np.ascontiguousarray(flat)
        group.broadcast(flat, root)
        at = 0
        for a in group_arrays:
            a[...] = flat[at:at + a.size].reshape(a.shape)
            at += a.size
