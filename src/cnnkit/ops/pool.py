"""Max, average and global pooling on channels-last Tensors (N, *spatial, C).

``padding`` is "valid", "same" (Keras: output ceil(W/S), any odd extra cell of padding at the
end), an int, or one int / (before, after) pair per spatial axis. Max pooling pads with -inf
and sends the gradient to the first arg-max of each window; average pooling leaves padded
cells out of the count unless ``count_include_pad`` (PyTorch/ONNX).
"""

from __future__ import annotations

from typing import Any

from ..kernels import pool as K
from ..kernels.padding import normalize_tuple
from ._core import Tensor, channels_last_only, floating, record

__all__ = ["max_pool", "max_pool1d", "max_pool2d", "max_pool3d",
           "avg_pool", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "average_pool", "average_pool1d", "average_pool2d", "average_pool3d",
           "global_average_pool", "global_avg_pool", "global_max_pool"]

_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}


def _layout(n: int) -> str:
    return _LAYOUTS.get(n, f"(N, {n} spatial axes, C)")


def _prepare(op: str, x: Any, rank: int | None, pool_size: Any, strides: Any, padding: Any,
             dilation_rate: Any, ceil_mode: bool
             ) -> tuple[Tensor, dict[str, Any]]:
    """Check x and the window arguments; return x and the kernel keyword arguments."""
    x = floating(x, "x")
    if rank is not None and x.ndim != rank:
        raise ValueError(f"{op} expects x of rank {rank} {_layout(rank - 2)}, got rank {x.ndim} "
                         f"(shape {x.shape})")
    if x.ndim < 3:
        raise ValueError(f"{op} expects x of rank >= 3 (N, *spatial, C), got rank {x.ndim} "
                         f"(shape {x.shape})")
    n = x.ndim - 2
    try:
        pool = normalize_tuple(pool_size, n, "pool_size")
        stride = pool if strides is None else normalize_tuple(strides, n, "strides")
        dil = normalize_tuple(dilation_rate, n, "dilation_rate")
        K.pool_geometry(x.shape[1:-1], pool, stride, padding, dil, bool(ceil_mode))
    except ValueError as e:
        raise ValueError(f"{op} on x of shape {x.shape}: {e}") from None
    return x, dict(pool=pool, strides=stride, padding=padding, dilation=dil,
                   ceil_mode=bool(ceil_mode))


def _max(op: str, x: Any, rank: int | None, pool_size: Any, strides: Any, padding: Any,
         dilation_rate: Any, ceil_mode: bool) -> Tensor:
    x, kw = _prepare(op, x, rank, pool_size, strides, padding, dilation_rate, ceil_mode)
    out, winners = K.max_pool_forward(x.data, **kw, return_winners=True)
    return record(out, (x,),
                  lambda g: (K.max_pool_backward(g, x.data, out, **kw, winners=winners),), op)


def _avg(op: str, x: Any, rank: int | None, pool_size: Any, strides: Any, padding: Any,
         count_include_pad: bool, dilation_rate: Any, ceil_mode: bool) -> Tensor:
    x, kw = _prepare(op, x, rank, pool_size, strides, padding, dilation_rate, ceil_mode)
    kw["count_include_pad"] = bool(count_include_pad)
    out = K.avg_pool_forward(x.data, **kw)
    return record(out, (x,), lambda g: (K.avg_pool_backward(g, x.shape, **kw),), op)


def max_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: Any = "valid",
             data_format: str | None = None, dilation_rate: Any = 1,
             ceil_mode: bool = False) -> Tensor:
    """Max pooling over every spatial axis of inputs (N, *spatial, C); ``strides`` default to
    ``pool_size``. ``ceil_mode`` rounds the output size up (PyTorch/ONNX)."""
    channels_last_only("max_pool", data_format)
    return _max("max_pool", inputs, None, pool_size, strides, padding, dilation_rate,
                ceil_mode)


def max_pool1d(x: Any, pool_size: Any, strides: Any = None, padding: Any = "valid",
               dilation_rate: Any = 1, ceil_mode: bool = False) -> Tensor:
    """Max pooling of sequences (N, L, C)."""
    return _max("max_pool1d", x, 3, pool_size, strides, padding, dilation_rate, ceil_mode)


def max_pool2d(x: Any, pool_size: Any, strides: Any = None, padding: Any = "valid",
               dilation_rate: Any = 1, ceil_mode: bool = False) -> Tensor:
    """Max pooling of images (N, H, W, C)."""
    return _max("max_pool2d", x, 4, pool_size, strides, padding, dilation_rate, ceil_mode)


def max_pool3d(x: Any, pool_size: Any, strides: Any = None, padding: Any = "valid",
               dilation_rate: Any = 1, ceil_mode: bool = False) -> Tensor:
    """Max pooling of volumes (N, D, H, W, C)."""
    return _max("max_pool3d", x, 5, pool_size, strides, padding, dilation_rate, ceil_mode)


def avg_pool(inputs: Any, pool_size: Any, strides: Any = None, padding: Any = "valid",
             data_format: str | None = None, count_include_pad: bool = False,
             dilation_rate: Any = 1, ceil_mode: bool = False) -> Tensor:
    """Average pooling over every spatial axis of inputs (N, *spatial, C); padded cells are
    left out of each window's count unless ``count_include_pad``. keras.ops.average_pool."""
    channels_last_only("avg_pool", data_format)
    return _avg("avg_pool", inputs, None, pool_size, strides, padding, count_include_pad,
                dilation_rate, ceil_mode)


def avg_pool1d(x: Any, pool_size: Any, strides: Any = None, padding: Any = "valid",
               count_include_pad: bool = False, dilation_rate: Any = 1,
               ceil_mode: bool = False) -> Tensor:
    """Average pooling of sequences (N, L, C)."""
    return _avg("avg_pool1d", x, 3, pool_size, strides, padding, count_include_pad,
                dilation_rate, ceil_mode)


def avg_pool2d(x: Any, pool_size: Any, strides: Any = None, padding: Any = "valid",
               count_include_pad: bool = False, dilation_rate: Any = 1,
               ceil_mode: bool = False) -> Tensor:
    """Average pooling of images (N, H, W, C)."""
    return _avg("avg_pool2d", x, 4, pool_size, strides, padding, count_include_pad,
                dilation_rate, ceil_mode)


def avg_pool3d(x: Any, pool_size: Any, strides: Any = None, padding: Any = "valid",
               count_include_pad: bool = False, dilation_rate: Any = 1,
               ceil_mode: bool = False) -> Tensor:
    """Average pooling of volumes (N, D, H, W, C)."""
    return _avg("avg_pool3d", x, 5, pool_size, strides, padding, count_include_pad,
                dilation_rate, ceil_mode)


average_pool = avg_pool
average_pool1d = avg_pool1d
average_pool2d = avg_pool2d
average_pool3d = avg_pool3d


def _global_input(op: str, x: Any) -> Tensor:
    x = floating(x, "x")
    if x.ndim < 3:
        raise ValueError(f"{op} expects x of rank >= 3 (N, *spatial, C), got rank {x.ndim} "
                         f"(shape {x.shape})")
    return x


def global_average_pool(x: Any, keepdims: bool = False) -> Tensor:
    """Mean over all spatial axes: (N, *spatial, C) -> (N, C), or (N, 1, ..., 1, C) with
    ``keepdims``."""
    x = _global_input("global_average_pool", x)
    out = K.global_avg_pool_forward(x.data, keepdims)
    return record(out, (x,), lambda g: (K.global_avg_pool_backward(g, x.shape, keepdims),),
                  "global_average_pool")


global_avg_pool = global_average_pool


def global_max_pool(x: Any, keepdims: bool = False) -> Tensor:
    """Max over all spatial axes: (N, *spatial, C) -> (N, C) (or keepdims); the gradient goes to
    the first arg-max."""
    x = _global_input("global_max_pool", x)
    out = K.global_max_pool_forward(x.data, keepdims)
    return record(out, (x,), lambda g: (K.global_max_pool_backward(g, x.data, keepdims),),
                  "global_max_pool")
