"""Tensor's arithmetic operators and array methods, installed onto the class by ``cnnkit.ops``.

``cnnkit.autograd`` only routes gradients and imports nothing above ``kernels``; the maths
behind ``a + b``, ``a @ b``, ``a[i]``, ``a.reshape(...)`` lives in ``cnnkit.ops``. Importing
``cnnkit.ops`` (which ``import cnnkit`` always does) calls :func:`install_tensor_methods`, so
every Tensor has these methods before user code runs.
"""

from __future__ import annotations

from typing import Any

from . import arith, shape
from ._core import Tensor


def _shape_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` both mean the tuple (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return args


def _reshape(self: Tensor, *new_shape: Any) -> Tensor:
    return shape.reshape(self, _shape_args(new_shape))


def _transpose(self: Tensor, *axes: Any) -> Tensor:
    return shape.transpose(self, _shape_args(axes) or None)


def _sum(self: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    return arith.sum(self, axis=axis, keepdims=keepdims)


def _mean(self: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    return arith.mean(self, axis=axis, keepdims=keepdims)


_METHODS = {
    "__add__": lambda self, other: arith.add(self, other),
    "__radd__": lambda self, other: arith.add(other, self),
    "__sub__": lambda self, other: arith.subtract(self, other),
    "__rsub__": lambda self, other: arith.subtract(other, self),
    "__mul__": lambda self, other: arith.multiply(self, other),
    "__rmul__": lambda self, other: arith.multiply(other, self),
    "__truediv__": lambda self, other: arith.divide(self, other),
    "__rtruediv__": lambda self, other: arith.divide(other, self),
    "__matmul__": lambda self, other: arith.matmul(self, other),
    "__rmatmul__": lambda self, other: arith.matmul(other, self),
    "__pow__": lambda self, other: arith.power(self, other),
    "__neg__": lambda self: arith.negative(self),
    "__getitem__": lambda self, index: shape.getitem(self, index),
    "reshape": _reshape,
    "transpose": _transpose,
    "T": property(lambda self: shape.transpose(self, None)),
    "sum": _sum,
    "mean": _mean,
}


def install_tensor_methods() -> None:
    """Set Tensor's operators (+ - * / @ ** unary -, indexing) and reshape / transpose / T /
    sum / mean to the ``cnnkit.ops`` functions. Idempotent."""
    for name, fn in _METHODS.items():
        if callable(fn):
            fn.__name__ = fn.__qualname__ = name
        setattr(Tensor, name, fn)


install_tensor_methods()
