"""Tensor's arithmetic operators and array methods, installed onto the class by ``cnnkit.ops``.

``cnnkit.autograd`` only routes gradients and imports nothing above ``kernels``; the maths
behind ``a + b``, ``a @ b``, ``a[i]``, ``a.reshape(...)`` lives in ``cnnkit.ops``. Importing
``cnnkit.ops`` (which ``import cnnkit`` always does) calls :func:`install_tensor_methods`, so
every Tensor has these methods before user code runs.
"""

from __future__ import annotations

import types
from typing import Any, NamedTuple

import numpy as np

from ..device import check_device
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
    if not np.issubdtype(self.dtype, np.floating):  # counts stay integers, as torch's
        return Tensor(np.sum(self.data, axis=axis, keepdims=keepdims, dtype=np.int64))
    return arith.sum(self, axis=axis, keepdims=keepdims)


def _mean(self: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    return arith.mean(self, axis=axis, keepdims=keepdims)


class Size(int):
    """``x.size``: the number of elements (NumPy's meaning, an int), and callable as torch's
    ``x.size()`` (the shape) and ``x.size(dim)`` (one dimension)."""

    def __new__(cls, n: int, shape: tuple[int, ...]) -> Size:
        obj = super().__new__(cls, n)
        obj.shape = shape
        return obj

    def __call__(self, dim: int | None = None) -> Any:
        if dim is None:
            return tuple(self.shape)
        if not -len(self.shape) <= dim < len(self.shape):
            raise IndexError(f"dimension {dim} is out of range for a Tensor of rank "
                             f"{len(self.shape)}")
        return self.shape[dim]


class MaxResult(NamedTuple):
    """``x.max(dim=...)``: the maxima and their indices, as torch's ``(values, indices)``."""

    values: Tensor
    indices: Tensor


def _axis(method: str, dim: Any, axis: Any) -> Any:
    if dim is not None and axis is not None:
        raise TypeError(f"Tensor.{method}() takes dim (torch) or axis (NumPy), not both")
    return axis if dim is None else dim


def _no_out(method: str, out: Any) -> None:
    if out is not None:  # np.max(t) / np.argmax(t) pass out=None through to the method
        raise TypeError(f"Tensor.{method}() cannot write into out=; use the returned value")


def _max(self: Tensor, dim: Any = None, keepdim: bool = False, axis: Any = None,
         keepdims: bool | None = None, out: Any = None) -> Any:
    """``x.max()``: the maximum; ``x.max(dim=d)``: (values, indices) along d, as torch;
    ``x.max(axis=d)``: the maxima only, as NumPy."""
    _no_out("max", out)
    keep = keepdim if keepdims is None else keepdims
    if dim is None:
        return arith.max(self, axis=axis, keepdims=keep)
    if axis is not None or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"Tensor.max(dim=...) takes one integer dimension, got {dim!r}")
    values = arith.max(self, axis=int(dim), keepdims=keep)
    return MaxResult(values, _argmax(self, dim=dim, keepdim=keep))


def _argmax(self: Tensor, dim: Any = None, keepdim: bool = False,
            axis: Any = None, out: Any = None) -> Tensor:
    """Index of the first maximum along ``dim`` (of the flattened Tensor when None), as an
    int64 Tensor (torch's ``argmax``; ``axis=`` as NumPy)."""
    _no_out("argmax", out)
    d = _axis("argmax", dim, axis)
    return Tensor(np.asarray(self.data.argmax(axis=d, keepdims=bool(keepdim) and d is not None),
                             dtype=np.int64))


def _compare(name: str, fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        """Elementwise comparison (torch's ``eq``/``ne``/...), a bool Tensor; no gradient."""
        b = other.data if isinstance(other, Tensor) else np.asarray(other)
        return Tensor(fn(self.data, b))
    method.__name__ = name
    return method


def _to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """``x.to(device)`` (torch's habit): the Tensor itself, for the CPU."""
    for d in (*args, *kwargs.values()):
        check_device("Tensor", d)
    return self


def _one(self: Tensor, what: str) -> Any:
    if self.data.size != 1:
        raise ValueError(f"only a one-element Tensor converts to {what}, got shape "
                         f"{self.shape}")
    return self.data.item()


def _bool(self: Tensor) -> bool:
    """Truth of a one-element Tensor; ambiguous for more elements, as NumPy and torch."""
    if self.data.size != 1:
        raise ValueError(f"the truth value of a Tensor of shape {self.shape} is ambiguous; "
                         f"use .any() or .all()")
    return bool(self.data.item())


def _unsqueeze(self: Tensor, dim: int) -> Tensor:
    """A new axis of length 1 at ``dim`` (negative counts from the end of the result)."""
    d = dim + self.ndim + 1 if dim < 0 else dim
    if not 0 <= d <= self.ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a Tensor of rank "
                         f"{self.ndim}")
    return shape.reshape(self, self.shape[:d] + (1,) + self.shape[d:])


def _squeeze(self: Tensor, dim: int | None = None) -> Tensor:
    """Drop axes of length 1 (only ``dim``, when given and of length 1), as torch."""
    if dim is None:
        return shape.reshape(self, tuple(n for n in self.shape if n != 1))
    d = dim + self.ndim if dim < 0 else dim
    if not 0 <= d < self.ndim:
        raise IndexError(f"squeeze: dim {dim} is out of range for a Tensor of rank {self.ndim}")
    if self.shape[d] != 1:
        return self
    return shape.reshape(self, self.shape[:d] + self.shape[d + 1:])


def _view(self: Tensor, *new_shape: Any) -> Tensor:
    """torch's ``x.view(...)``: the same values in a new shape (one entry may be -1)."""
    return shape.reshape(self, _shape_args(new_shape))


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
    "max": _max,
    "argmax": _argmax,
    "view": _view,
    "unsqueeze": _unsqueeze,
    "squeeze": _squeeze,
    **{n: _compare(n, f) for names, f in (
        (("eq", "__eq__"), np.equal), (("ne", "__ne__"), np.not_equal),
        (("gt", "__gt__"), np.greater), (("lt", "__lt__"), np.less),
        (("ge", "__ge__"), np.greater_equal), (("le", "__le__"), np.less_equal))
       for n in names},
    # elementwise == makes Tensors unhashable by default; identity keeps them usable as keys
    "__hash__": object.__hash__,
    "__bool__": _bool,
    "to": _to,
    "cpu": lambda self: self,
    "__float__": lambda self: float(_one(self, "float")),
    "__int__": lambda self: int(_one(self, "int")),
    "size": property(lambda self: Size(self.data.size, self.data.shape)),
}


def install_tensor_methods() -> None:
    """Set Tensor's operators (+ - * / @ ** unary -, indexing) and reshape / transpose / T /
    sum / mean / max / argmax / view / unsqueeze / squeeze / size to the ``cnnkit.ops``
    functions, and the comparisons eq / ne / gt / lt / ge / le. Idempotent."""
    for name, fn in _METHODS.items():
        if isinstance(fn, types.FunctionType):
            fn.__name__ = fn.__qualname__ = name
        setattr(Tensor, name, fn)


install_tensor_methods()
