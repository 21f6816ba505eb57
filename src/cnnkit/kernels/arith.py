"""Elementwise arithmetic with NumPy broadcasting, matmul, and reductions.

For z = f(a, b) broadcast to a common shape, dL/da is dL/dz * dz/da summed over every axis
along which ``a`` was broadcast (:func:`unbroadcast`).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes NumPy broadcasting added or stretched to reach its shape."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def add_backward(g: np.ndarray, a_shape: tuple, b_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """z = a + b: dz/da = 1, dz/db = 1."""
    return unbroadcast(g, a_shape), unbroadcast(g, b_shape)


def subtract_backward(g: np.ndarray, a_shape: tuple, b_shape: tuple
                      ) -> tuple[np.ndarray, np.ndarray]:
    """z = a - b: dz/da = 1, dz/db = -1."""
    return unbroadcast(g, a_shape), unbroadcast(-g, b_shape)


def multiply_backward(g: np.ndarray, a: np.ndarray, b: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """z = a * b: dz/da = b, dz/db = a."""
    return unbroadcast(g * b, a.shape), unbroadcast(g * a, b.shape)


def divide_backward(g: np.ndarray, a: np.ndarray, b: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """z = a / b: dz/da = 1/b, dz/db = -a/b^2."""
    ga = g / b
    return unbroadcast(ga, a.shape), unbroadcast(-ga * a / b, b.shape)


def power_forward(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    """z = a ** p."""
    return np.power(a, p)


def power_backward(g: np.ndarray, a: np.ndarray, p: np.ndarray, z: np.ndarray,
                   need_p: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """z = a^p: dz/da = p * a^(p-1), dz/dp = z * ln(a) (taken as 0 where a <= 0)."""
    ga = unbroadcast(g * p * np.power(a, p - 1), a.shape)
    if not need_p:
        return ga, None
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
    return ga, unbroadcast(g * z * log_a, np.shape(p))


def matmul_backward(g: np.ndarray, a: np.ndarray, b: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """z = a @ b (NumPy matmul rules): dL/da = g @ b^T, dL/db = a^T @ g, summed over broadcast."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    if b.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    ga = g2 @ np.swapaxes(b2, -1, -2)
    gb = np.swapaxes(a2, -1, -2) @ g2
    if a.ndim == 1:
        ga = ga[..., 0, :]
    if b.ndim == 1:
        gb = gb[..., 0]
    return unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """Axis argument (None, int or sequence; negatives allowed) as sorted non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for an array of rank {ndim}")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def sum_backward(g: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...],
                 keepdims: bool) -> np.ndarray:
    """z = sum over axes of a: dz/da = 1 at every summed element."""
    if not keepdims:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape).copy()


def mean_backward(g: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...],
                  keepdims: bool) -> np.ndarray:
    """z = mean over axes of a: dz/da = 1/n, n the number of elements averaged."""
    n = int(np.prod([shape[a] for a in axes])) if axes else 1
    return sum_backward(g, shape, axes, keepdims) / np.asarray(n, dtype=g.dtype)


def max_reduce_backward(g: np.ndarray, a: np.ndarray, z: np.ndarray, axes: tuple[int, ...],
                        keepdims: bool) -> np.ndarray:
    """z = max over axes: the gradient goes to the maximal elements, split evenly on ties."""
    if not keepdims:
        g = np.expand_dims(g, axes)
        z = np.expand_dims(z, axes)
    mask = a == z
    count = mask.sum(axis=axes, keepdims=True)
    return np.where(mask, g / count, 0).astype(a.dtype)


def clip_backward(g: np.ndarray, x: np.ndarray, low: float | None, high: float | None
                  ) -> np.ndarray:
    """z = clip(x, low, high): dz/dx = 1 where low <= x <= high, else 0."""
    inside = np.ones(x.shape, dtype=bool)
    if low is not None:
        inside &= x >= low
    if high is not None:
        inside &= x <= high
    return np.where(inside, g, 0).astype(g.dtype)


def accumulate(a: np.ndarray, b: np.ndarray, in_place: bool = False) -> np.ndarray:
    """a + b for two gradients of one shape; into ``a`` itself when ``in_place`` (the caller
    owns ``a``) and the sum keeps a's dtype. (Splitting the add over the kernel threads
    measured slower: one NumPy add already runs at memory speed.)"""
    if in_place and a.flags.writeable and a.shape == np.broadcast_shapes(a.shape, b.shape) \
            and np.result_type(a, b) == a.dtype:
        a += b
        return a
    return a + b


# ----- gradient arrays a backward kernel may overwrite --------------------------------------
_donated = threading.local()


def donate(a: np.ndarray | None) -> None:
    """Mark ``a`` (or nothing, with None) as the output gradient that the backward running now
    on this thread may overwrite with its result: autograd does this when no one else holds a
    reference to the array (see ``Tensor.backward``)."""
    _donated.array = a


def may_overwrite(a: np.ndarray) -> bool:
    """True if ``a`` is the donated gradient array (see :func:`donate`); the donation is used
    up by the first kernel that asks, so only one result is ever written into it. (A backward
    closure that gives its gradient to such a kernel must not read it afterwards.)"""
    if a is getattr(_donated, "array", None):
        _donated.array = None
        return True
    return False
