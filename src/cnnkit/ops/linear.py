"""Dense (fully connected) op over the last axis: y = x @ kernel + bias."""

from __future__ import annotations

from typing import Any

from ..kernels import linear as K
from ._core import Tensor, floating_operands, record

__all__ = ["dense"]


def dense(x: Any, kernel: Any, bias: Any = None) -> Tensor:
    """y = x @ kernel + bias for x of shape (..., in), kernel (in, out), bias (out,).

    Every leading axis of x is a batch axis; the kernel gradient is summed over all of them.
    """
    t = floating_operands("dense", x=x, kernel=kernel, bias=bias)
    x, kernel, b = t["x"], t["kernel"], t["bias"]
    if x.ndim < 2:
        raise ValueError(f"dense expects x of rank >= 2 (..., in_features), got rank {x.ndim} "
                         f"(shape {x.shape})")
    if kernel.ndim != 2:
        raise ValueError(f"dense expects kernel of rank 2 (in_features, out_features), got rank "
                         f"{kernel.ndim} (shape {kernel.shape})")
    n_in, n_out = kernel.shape
    if x.shape[-1] != n_in:
        raise ValueError(f"dense: kernel of shape {kernel.shape} expects {n_in} input features "
                         f"in the last axis of x, got {x.shape[-1]} (x shape {x.shape})")
    if b is not None and b.shape != (n_out,):
        raise ValueError(f"dense expects bias of shape ({n_out},) to match kernel of shape "
                         f"{kernel.shape}, got shape {b.shape}")
    y = K.dense_forward(x.data, kernel.data, None if b is None else b.data)

    def backward(g):
        return K.dense_backward(g, x.data, kernel.data, need_x=x.requires_grad,
                                need_kernel=kernel.requires_grad,
                                need_bias=b is not None and b.requires_grad)

    return record(y, (x, kernel, b), backward, "dense")
