"""Batch normalisation and dropout on Tensors (channels-last: the channel axis is the last).

``batch_norm`` in training mode normalises with the batch statistics and moves the moving mean
and variance in place, as Keras 3 does (momentum 0.99, biased batch variance); in inference
mode it uses the moving statistics. ``dropout`` is inverted dropout (kept units scaled by
1/(1 - rate)) and acts only when ``training``; its randomness comes from ``rng``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..kernels import dropout as KD
from ..kernels import norm as K
from ._core import Tensor, as_tensor, floating, record, same_dtype

__all__ = ["batch_norm", "dropout", "spatial_dropout"]

_default_rng = np.random.default_rng()


def _param(op: str, name: str, p: Any, x: Tensor, pshape: tuple[int, ...],
           bshape: tuple[int, ...]) -> Tensor | None:
    """A per-channel parameter as a Tensor of shape ``pshape`` or ``bshape``."""
    if p is None:
        return None
    t = as_tensor(p)
    if not np.issubdtype(t.dtype, np.floating):
        t = Tensor(t.data.astype(x.dtype))
    if t.shape not in (pshape, bshape):
        raise ValueError(f"{op} expects {name} of shape {pshape} (one value per channel of x "
                         f"with shape {x.shape}), got shape {t.shape}")
    return t


def _moving(op: str, name: str, m: Any, x: Tensor, pshape: tuple[int, ...],
            bshape: tuple[int, ...]) -> np.ndarray | None:
    """The array behind a moving statistic (updated in place), checked for shape and dtype."""
    if m is None:
        return None
    arr = m.data if isinstance(m, Tensor) else m
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{op} expects {name} to be a Tensor or a NumPy array (it is updated "
                        f"in place), got {type(m).__name__}")
    if arr.dtype != x.dtype:
        raise TypeError(f"{op}: {name} has dtype {arr.dtype} but x has dtype {x.dtype}; "
                        f"cast one of them so they match")
    if arr.shape not in (pshape, bshape):
        raise ValueError(f"{op} expects {name} of shape {pshape} (one value per channel of x "
                         f"with shape {x.shape}), got shape {arr.shape}")
    return arr


def _bn_shapes(op: str, x: Tensor, axis: int | Sequence[int]
               ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(per-channel shape, broadcastable shape) of the parameters for x and ``axis``."""
    if x.ndim < 2:
        raise ValueError(f"{op} expects x of rank >= 2 (N, ..., C), got rank {x.ndim} "
                         f"(shape {x.shape})")
    try:
        kept, _ = K.bn_axes(x.ndim, axis)
    except ValueError as e:
        raise ValueError(f"{op}: {e}") from None
    return tuple(x.shape[a] for a in kept), K.param_shape(x.shape, kept)


def _check_momentum_epsilon(op: str, momentum: float, epsilon: float) -> None:
    if not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"{op} expects momentum in [0, 1], got {momentum}")
    if not float(epsilon) > 0.0:
        raise ValueError(f"{op} expects epsilon > 0, got {epsilon}")


def _bn_train(x: Tensor, gam: np.ndarray | None, bet: np.ndarray | None,
              mm: np.ndarray | None, mv: np.ndarray | None, momentum: float, epsilon: float,
              axis: int | Sequence[int], activation: str | None
              ) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Normalise with the batch statistics, move the moving ones in place
    (moving = moving * momentum + batch * (1 - momentum)); (y, g -> (dx, dgamma, dbeta))."""
    y, mean, var, cache = K.batch_norm_train_forward(x.data, gam, bet, epsilon, axis,
                                                     activation)
    if mm is not None:
        mm[...] = K.moving_average(mm, mean.reshape(mm.shape), momentum)
    if mv is not None:
        mv[...] = K.moving_average(mv, var.reshape(mv.shape), momentum)

    def backward(g: np.ndarray) -> Any:
        return K.batch_norm_train_backward(g, gam, cache, axis, activation, y)
    return y, backward


def _bn_infer(op: str, x: Tensor, gam: np.ndarray | None, bet: np.ndarray | None,
              mm: np.ndarray | None, mv: np.ndarray | None, bshape: tuple[int, ...],
              epsilon: float, axis: int | Sequence[int], activation: str | None
              ) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Normalise with the moving statistics (copied now); (y, g -> (dx, dgamma, dbeta))."""
    if mm is None or mv is None:
        raise ValueError(f"{op} in inference mode (training=False) needs moving_mean and "
                         f"moving_var, got None")
    mean, var = mm.reshape(bshape).copy(), mv.reshape(bshape).copy()
    y = K.act_into(K.batch_norm_infer_forward(x.data, gam, bet, mean, var, epsilon), activation)

    def backward(g: np.ndarray) -> Any:
        if activation is not None:
            g = K.act_mask(g, y, activation)
        return K.batch_norm_infer_backward(g, x.data, gam, mean, var, epsilon, axis)
    return y, backward


def batch_norm(x: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any,
               training: bool, momentum: float = 0.99, epsilon: float = 1e-3,
               axis: int | Sequence[int] = -1, activation: str | None = None) -> Tensor:
    """Batch normalisation of x over every axis but ``axis`` (the channel axis).

    Args:
        x: input, e.g. (N, H, W, C).
        gamma, beta: scale and offset of shape (C,) (or None: scale 1 / offset 0).
        moving_mean, moving_var: Tensors or arrays of shape (C,); in training mode they are
            updated in place: moving = moving * momentum + batch * (1 - momentum), with the
            biased batch variance (Keras 3). May be None in training mode (no update).
        training: batch statistics (True) or the moving statistics (False).
        momentum, epsilon: Keras defaults 0.99 and 1e-3.
        axis: channel axis (or axes) kept; -1 for channels-last.
        activation: None, "relu" or "relu6": return relu(bn(x)) / relu6(bn(x)) as one op
            (one pass fewer each way, and the batch norm's own output is never stored).
    Returns the normalised Tensor; gradients flow to x, gamma and beta.
    """
    op = "batch_norm"
    x = floating(x, "x")
    pshape, bshape = _bn_shapes(op, x, axis)
    g_t = _param(op, "gamma", gamma, x, pshape, bshape)
    b_t = _param(op, "beta", beta, x, pshape, bshape)
    same_dtype(op, x=x, gamma=g_t, beta=b_t)
    mm = _moving(op, "moving_mean", moving_mean, x, pshape, bshape)
    mv = _moving(op, "moving_var", moving_var, x, pshape, bshape)
    _check_momentum_epsilon(op, momentum, epsilon)
    if activation not in K.ACTIVATIONS:
        raise ValueError(f"{op} fuses activation None, 'relu' or 'relu6', got {activation!r}")
    gam = None if g_t is None else g_t.data.reshape(bshape)
    bet = None if b_t is None else b_t.data.reshape(bshape)
    if training:
        y, kernel_backward = _bn_train(x, gam, bet, mm, mv, momentum, epsilon, axis,
                                       activation)
    else:
        y, kernel_backward = _bn_infer(op, x, gam, bet, mm, mv, bshape, epsilon, axis,
                                       activation)

    def backward(g: np.ndarray) -> tuple[Any, ...]:
        dx, dgamma, dbeta = kernel_backward(g)
        return (dx, None if g_t is None else dgamma.reshape(g_t.shape),
                None if b_t is None else dbeta.reshape(b_t.shape))

    return record(y, (x, g_t, b_t), backward, op)


def _check_rate(op: str, rate: Any) -> float:
    if (not isinstance(rate, numbers.Real) or isinstance(rate, bool)
            or not 0.0 <= float(rate) < 1.0):
        raise ValueError(f"{op} expects rate in [0, 1), got {rate!r}")
    return float(rate)


def _check_rng(op: str, rng: Any) -> np.random.Generator:
    if rng is None:
        return _default_rng
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op} expects rng to be a numpy.random.Generator or None, "
                        f"got {type(rng).__name__}")
    return rng


def _drop(op: str, x: Tensor, rate: float, noise_shape: tuple[int, ...],
          rng: np.random.Generator) -> Tensor:
    mask = KD.dropout_mask(x.shape, rate, rng, noise_shape, x.dtype)
    return record(KD.dropout_forward(x.data, mask), (x,),
                  lambda g: (KD.dropout_backward(g, mask),), op)


def dropout(x: Any, rate: float, training: bool = False, noise_shape: Any = None,
            rng: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: in training, each unit is zeroed with probability ``rate`` and the
    rest are scaled by 1/(1 - rate); outside training, x is returned unchanged.

    ``noise_shape`` (Keras): the shape of the random mask, broadcast over the axes where it is
    1; None entries take x's size. ``rng`` defaults to a module-level generator.
    """
    op = "dropout"
    rate = _check_rate(op, rate)
    x = floating(x, "x")
    rng = _check_rng(op, rng)
    if noise_shape is None:
        shape = x.shape
    else:
        ns = tuple(noise_shape)
        if len(ns) != x.ndim or not all(
                d is None or (isinstance(d, (int, np.integer)) and d in (1, n))
                for d, n in zip(ns, x.shape, strict=False)):
            raise ValueError(f"{op} expects noise_shape of {x.ndim} entries, each 1, None or "
                             f"the size of x's axis (x shape {x.shape}), got {noise_shape!r}")
        shape = tuple(n if d is None else int(d) for d, n in zip(ns, x.shape, strict=True))
    if not training or rate == 0.0:
        return x
    return _drop(op, x, rate, shape, rng)


def spatial_dropout(x: Any, rate: float, training: bool = False,
                    rng: np.random.Generator | None = None) -> Tensor:
    """Dropout of whole channels: one mask value per (sample, channel), shape (N, 1, ..., 1, C),
    shared by every spatial position (Keras SpatialDropout1D/2D/3D)."""
    op = "spatial_dropout"
    rate = _check_rate(op, rate)
    x = floating(x, "x")
    if x.ndim < 3:
        raise ValueError(f"{op} expects x of rank >= 3 (N, *spatial, C), got rank {x.ndim} "
                         f"(shape {x.shape})")
    rng = _check_rng(op, rng)
    if not training or rate == 0.0:
        return x
    return _drop(op, x, rate, (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],), rng)
