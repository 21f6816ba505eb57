"""Elementwise arithmetic, matmul and reductions on Tensors (NumPy broadcasting)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels import add_activation as KAA
from ..kernels import arith as K
from ._core import Tensor, floating, floating_operands, operands, record

__all__ = ["add", "subtract", "multiply", "divide", "power", "negative", "matmul", "sum",
           "mean", "max", "exp", "log", "sqrt", "abs", "square", "clip", "cast"]


def add(x1: Any, x2: Any, activation: str | None = None) -> Tensor:
    """x1 + x2 (argument names as keras.ops); ``activation`` "relu" / "relu6": that
    activation of the sum as one op (operands of one shape; the sum itself is never kept)."""
    a, b = operands("add", x1, x2)
    if activation is not None:
        if activation not in ("relu", "relu6") or a.shape != b.shape:
            raise ValueError(f"add fuses activation 'relu' or 'relu6' for operands of one "
                             f"shape, got {activation!r} for shapes {a.shape}, {b.shape}")
        y = KAA.add_act_forward(a.data, b.data, activation)
        return record(y, (a, b), lambda g: KAA.add_act_backward(g, y, activation), "add_act")
    return record(a.data + b.data, (a, b),
                  lambda g: K.add_backward(g, a.shape, b.shape), "add")


def subtract(x1: Any, x2: Any) -> Tensor:
    """x1 - x2 (argument names as keras.ops)."""
    a, b = operands("subtract", x1, x2)
    return record(a.data - b.data, (a, b),
                  lambda g: K.subtract_backward(g, a.shape, b.shape), "subtract")


def multiply(x1: Any, x2: Any) -> Tensor:
    """x1 * x2 (argument names as keras.ops)."""
    a, b = operands("multiply", x1, x2)
    return record(a.data * b.data, (a, b),
                  lambda g: K.multiply_backward(g, a.data, b.data), "multiply")


def divide(x1: Any, x2: Any) -> Tensor:
    """x1 / x2 (argument names as keras.ops)."""
    a, b = operands("divide", x1, x2)
    return record(a.data / b.data, (a, b),
                  lambda g: K.divide_backward(g, a.data, b.data), "divide")


def power(x1: Any, x2: Any) -> Tensor:
    """x1 ** x2."""
    a, p = operands("power", x1, x2)
    z = K.power_forward(a.data, p.data)
    return record(z, (a, p),
                  lambda g: K.power_backward(g, a.data, p.data, z, p.requires_grad), "power")


def negative(x: Any) -> Tensor:
    """-x."""
    a = floating(x, "x")
    return record(-a.data, (a,), lambda g: (-g,), "negative")


def matmul(x1: Any, x2: Any) -> Tensor:
    """x1 @ x2 with NumPy's matmul rules (batched, broadcast)."""
    t = floating_operands("matmul", x1=x1, x2=x2)
    a, b = t["x1"], t["x2"]
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs arrays of rank >= 1, got shapes {a.shape} and {b.shape}")
    ka, kb = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        raise ValueError(f"matmul: inner dimensions differ: a has shape {a.shape}, "
                         f"b has shape {b.shape}")
    return record(a.data @ b.data, (a, b),
                  lambda g: K.matmul_backward(g, a.data, b.data), "matmul")


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all axes when None)."""
    x = floating(x, "x")
    axes = K.normalize_axes(axis, x.ndim)
    return record(x.data.sum(axis=axes, keepdims=keepdims), (x,),
                  lambda g: (K.sum_backward(g, x.shape, axes, keepdims),), "sum")


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes when None)."""
    x = floating(x, "x")
    axes = K.normalize_axes(axis, x.ndim)
    return record(x.data.mean(axis=axes, keepdims=keepdims), (x,),
                  lambda g: (K.mean_backward(g, x.shape, axes, keepdims),), "mean")


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; the gradient is shared equally among tied maxima."""
    x = floating(x, "x")
    axes = K.normalize_axes(axis, x.ndim)
    z = x.data.max(axis=axes, keepdims=keepdims)
    return record(z, (x,),
                  lambda g: (K.max_reduce_backward(g, x.data, z, axes, keepdims),), "max")


def _unary(name: str, x: Any, f: Any, df: Any) -> Tensor:
    x = floating(x, "x")
    z = f(x.data)
    return record(z, (x,), lambda g: (g * df(x.data, z),), name)


def exp(x: Any) -> Tensor:
    """e^x; d/dx = e^x."""
    return _unary("exp", x, np.exp, lambda a, z: z)


def log(x: Any) -> Tensor:
    """ln x; d/dx = 1/x."""
    return _unary("log", x, np.log, lambda a, z: 1 / a)


def sqrt(x: Any) -> Tensor:
    """sqrt x; d/dx = 1/(2 sqrt x)."""
    return _unary("sqrt", x, np.sqrt, lambda a, z: 0.5 / z)


def abs(x: Any) -> Tensor:  # noqa: A001
    """|x|; d/dx = sign(x) (0 at 0)."""
    return _unary("abs", x, np.abs, lambda a, z: np.sign(a))


def square(x: Any) -> Tensor:
    """x^2; d/dx = 2x."""
    return _unary("square", x, np.square, lambda a, z: 2 * a)




def clip(x: Any, x_min: float | None, x_max: float | None) -> Tensor:
    """min(max(x, x_min), x_max); d/dx = 1 for x_min <= x <= x_max, else 0."""
    x = floating(x, "x")
    low, high = x_min, x_max
    z = np.clip(x.data, low, high)
    return record(z, (x,), lambda g: (K.clip_backward(g, x.data, low, high),), "clip")


def cast(x: Any, dtype: Any) -> Tensor:
    """x converted to ``dtype``; between floating dtypes the gradient flows back converted to
    x's dtype (dL/dx = cast(dL/dy)), from or to other dtypes there is none."""
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    to = np.dtype(dtype)
    z = x.data.astype(to)
    if to.kind != "f" or x.dtype.kind != "f":
        return Tensor(z)
    return record(z, (x,), lambda g: (g.astype(x.dtype),), "cast")
