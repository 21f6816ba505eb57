"""Layer normalisation, group normalisation and PReLU on Tensors (channels-last).

layer_norm: y = gamma * (x - mean) / sqrt(var + eps) + beta, statistics per sample over
``axis``; group_norm: the same with statistics per sample and group of C/G channels over the
spatial axes; prelu: y = max(x, 0) + alpha * min(x, 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..kernels import layer_norm as K
from ._core import Tensor, as_tensor, floating, record, same_dtype

__all__ = ["layer_norm", "group_norm", "prelu"]


def _axes(op: str, ndim: int, axis: int | Sequence[int]) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if not axes or any(not -ndim <= int(a) < ndim for a in axes):
        raise ValueError(f"{op}: axis {axis!r} is out of range for x of rank {ndim}")
    return tuple(sorted({int(a) % ndim for a in axes}))


def _affine(op: str, p: Any, name: str, x: Tensor, bshape: tuple[int, ...]) -> Tensor | None:
    if p is None:
        return None
    t = as_tensor(p)
    if t.size != int(np.prod(bshape)):
        raise ValueError(f"{op} expects {name} with {int(np.prod(bshape))} values (shape "
                         f"{tuple(s for s in bshape if s != 1)}) for x of shape {x.shape}, got "
                         f"shape {t.shape}")
    return t


def _normalize(op: str, x: Tensor, gamma: Tensor | None, beta: Tensor | None,
               view: tuple[int, ...], red: tuple[int, ...], bshape: tuple[int, ...],
               epsilon: float) -> Tensor:
    """Normalise x (seen with shape ``view``) over ``red``, then y = gamma * xhat + beta."""
    if not float(epsilon) > 0.0:
        raise ValueError(f"{op} expects epsilon > 0, got {epsilon}")
    same_dtype(op, x=x, gamma=gamma, beta=beta)
    xhat, cache = K.normalize_forward(x.data.reshape(view), red, float(epsilon))
    xhat = xhat.reshape(x.shape)
    gam = None if gamma is None else gamma.data.reshape(bshape)
    y = xhat if gam is None else xhat * gam
    if beta is not None:
        y = y + beta.data.reshape(bshape)
    keep = tuple(i for i, s in enumerate(bshape) if s == 1)

    def backward(g: np.ndarray) -> tuple[Any, ...]:
        gh = g if gam is None else g * gam
        dx = K.normalize_backward(gh.reshape(view), cache).reshape(x.shape)
        dg = None if gamma is None else (g * xhat).sum(axis=keep).reshape(gamma.shape)
        db = None if beta is None else g.sum(axis=keep).reshape(beta.shape)
        return dx, dg, db
    return record(y.astype(x.dtype), (x, gamma, beta), backward, op)


def layer_norm(x: Any, gamma: Any = None, beta: Any = None, axis: int | Sequence[int] = -1,
               epsilon: float = 1e-3) -> Tensor:
    """Keras LayerNormalization: statistics over ``axis`` per sample; gamma and beta have the
    sizes of x along ``axis``."""
    op = "layer_norm"
    x = floating(x, "x")
    red = _axes(op, x.ndim, axis)
    bshape = tuple(s if i in red else 1 for i, s in enumerate(x.shape))
    g, b = _affine(op, gamma, "gamma", x, bshape), _affine(op, beta, "beta", x, bshape)
    return _normalize(op, x, g, b, x.shape, red, bshape, epsilon)


def group_norm(x: Any, groups: int, gamma: Any = None, beta: Any = None,
               epsilon: float = 1e-3) -> Tensor:
    """Keras GroupNormalization (channels-last): the C channels split into ``groups`` groups of
    C/G; statistics per sample and group over the spatial axes and the group's channels."""
    op = "group_norm"
    x = floating(x, "x")
    if x.ndim < 2:
        raise ValueError(f"{op} expects x of rank >= 2 (N, ..., C), got shape {x.shape}")
    if groups < 1 or x.shape[-1] % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {x.shape[-1]} channels of x "
                         f"(shape {x.shape})")
    view, red = K.group_view(x.shape, int(groups))
    bshape = (1,) * (x.ndim - 1) + (x.shape[-1],)
    g, b = _affine(op, gamma, "gamma", x, bshape), _affine(op, beta, "beta", x, bshape)
    return _normalize(op, x, g, b, view, red, bshape, epsilon)


def prelu(x: Any, alpha: Any) -> Tensor:
    """y = max(x, 0) + alpha * min(x, 0); alpha broadcasts against x without its batch axis."""
    op = "prelu"
    x = floating(x, "x")
    a = as_tensor(alpha)
    try:
        np.broadcast_shapes(a.shape, x.shape)
    except ValueError:
        raise ValueError(f"{op}: alpha of shape {a.shape} does not broadcast against x of "
                         f"shape {x.shape}") from None
    same_dtype(op, x=x, alpha=a)

    def backward(g: np.ndarray) -> tuple[Any, ...]:
        return K.prelu_backward(g, x.data, a.data)
    return record(K.prelu_forward(x.data, a.data), (x, a), backward, op)
