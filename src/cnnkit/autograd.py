"""Tensor and reverse-mode automatic differentiation.

This module only routes gradients. Each operation in ``cnnkit.ops`` runs a forward kernel,
then calls :func:`record` with the output array, the input Tensors and a closure that maps
the output gradient to one gradient per input (by calling the matching backward kernel).
``Tensor.backward()`` visits the recorded graph in reverse topological order, calls those
closures and sums the gradients of a Tensor that was used more than once.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .kernels.arith import accumulate as _accumulate
from .kernels.arith import donate as _donate

_state = threading.local()
# sys.getrefcount tells when nothing else holds a gradient array (CPython before 3.14, whose
# borrowed stack references can make the count lower than the references that exist)
_CAN_DONATE = sys.implementation.name == "cpython" and sys.version_info < (3, 14)


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()`` on this thread."""
    return getattr(_state, "enabled", True)


class no_grad:
    """Context manager (and decorator) under which operations record no graph."""

    def __enter__(self) -> no_grad:
        self._prev = is_grad_enabled()
        _state.enabled = False
        return self

    def __exit__(self, *exc: object) -> None:
        _state.enabled = self._prev

    def __call__(self, fn: Callable) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = fn.__doc__
        return wrapper


class enable_grad(no_grad):
    """Context manager that turns recording back on inside ``no_grad()``."""

    def __enter__(self) -> enable_grad:
        self._prev = is_grad_enabled()
        _state.enabled = True
        return self


BackwardFn = Callable[[np.ndarray], Sequence[np.ndarray | None]]


class Node:
    """How a Tensor was made: its input Tensors and the closure giving their gradients."""

    __slots__ = ("parents", "backward", "name")

    def __init__(self, parents: tuple[Tensor | None, ...], backward: BackwardFn, name: str):
        self.parents = parents
        self.backward = backward
        self.name = name


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    arr = np.asarray(data)
    if arr.dtype == np.float64:  # Python floats and lists default to float32
        arr = arr.astype(np.float32)
    return arr


class Tensor:
    """An ndarray with an optional gradient.

    ``Tensor(data, requires_grad=False, dtype=None)``: NumPy arrays keep their dtype; Python
    numbers and lists of floats become float32. ``.grad`` is a NumPy array accumulated over
    ``backward()`` calls until it is set to ``None`` (or ``zero_grad()``).

    ``version`` changes whenever the array may have been written: on every assignment to
    ``.data`` and on every access to it (``t.data[...] = v`` and ``t.data -= d`` included),
    ``numpy()`` and ``mark_changed()``. Caches derived from a Tensor (the inference plan's
    folded weights) read it through :meth:`peek` and are valid while the version stands.
    Code that writes through an array reference kept from earlier calls ``mark_changed()``.
    """

    __array_priority__ = 1000.0
    __slots__ = ("_data", "_version", "requires_grad", "grad", "_node", "name", "__weakref__")

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None):
        arr = _as_array(data, dtype)
        if requires_grad and not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(
                f"only floating-point Tensors can require gradients, got dtype {arr.dtype}")
        self._data: np.ndarray = arr
        self._version = 0
        self.requires_grad: bool = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._node: Node | None = None
        self.name = name

    # ----- the array and its version -----------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The array (shared; the caller may write into it, so the version moves on)."""
        self._version += 1
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._data = value
        self._version += 1

    @property
    def version(self) -> int:
        """A number that changes whenever the array may have been written (see the class)."""
        return self._version

    def peek(self) -> tuple[np.ndarray, int]:
        """(array, version) for a reader that will not write into the array."""
        return self._data, self._version

    def mark_changed(self) -> None:
        """Say that the array was written through a reference kept from earlier."""
        self._version += 1

    # ----- array facts -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self._data, precision=4, threshold=20)}{grad})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        return self._data.item()

    def tolist(self) -> Any:
        return self._data.tolist()

    def detach(self) -> Tensor:
        """A Tensor sharing the data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def requires_grad_(self, flag: bool = True) -> Tensor:
        self.requires_grad = flag
        return self

    # ----- backward ----------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` defaults to 1 for a one-element Tensor; otherwise it must match the shape.
        As in PyTorch, each operation's saved arrays are let go as soon as its backward has
        run (the peak memory of a training step is then that of the forward pass, not of both
        passes); a second backward through the same graph needs ``retain_graph=True`` on the
        first.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a Tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element Tensor, "
                    f"got shape {self.shape}")
            g = np.ones_like(self.data)
        else:
            g = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if g.shape != self.shape:
                raise ValueError(
                    f"backward() gradient shape {g.shape} does not match Tensor shape "
                    f"{self.shape}")
        order = _topological_order(self)
        grads: dict[int, np.ndarray] = {id(self): g}
        owned: set[int] = set()  # keys whose array was made here by a sum (safe to add into)
        while order:
            t = order.pop()  # outputs before inputs; nothing here holds t once it is done
            gt = grads.pop(id(t), None)
            if gt is None:
                continue
            node = t._node
            if node is None:
                if t.grad is None:
                    t.grad = gt if id(t) in owned else gt.copy()
                else:
                    t.grad = t.grad + gt
                continue
            # nothing but this loop holds gt: the backward may write its result into it
            donated = _CAN_DONATE and gt.flags.owndata and gt.flags.writeable and \
                sys.getrefcount(gt) == 2
            if donated:
                _donate(gt)
            try:
                parent_grads = node.backward(gt)
            finally:
                if donated:
                    _donate(None)
            del gt
            _route(node, parent_grads, grads, owned)
            if not retain_graph:
                t._node = _freed(node)
            del node, parent_grads

    # ----- operators -------------------------------------------------------------------
    # + - * / @ ** unary -, indexing, reshape, transpose, T, sum and mean are installed by
    # cnnkit.ops (ops/tensor_methods.py) when it is imported, which ``import cnnkit`` does.

    def argmax(self, axis: int | None = None) -> np.ndarray:
        return self.data.argmax(axis=axis)


def _route(node: Node, parent_grads: Sequence[np.ndarray | None],
           grads: dict[int, np.ndarray], owned: set[int]) -> None:
    """Add each parent's gradient from ``node``'s backward into ``grads`` (by id)."""
    for p, pg in zip(node.parents, parent_grads, strict=True):
        if p is None or pg is None or not p.requires_grad:
            continue
        if pg.shape != p.shape:
            raise RuntimeError(
                f"backward of '{node.name}' gave a gradient of shape {pg.shape} "
                f"for an input of shape {p.shape}")
        key = id(p)
        if key in grads:
            grads[key] = _accumulate(grads[key], pg, key in owned)
            owned.add(key)
        else:
            grads[key] = pg


def _freed(node: Node) -> Node:
    """What stays of ``node`` after its backward ran: its name, and a backward that says the
    saved arrays are gone (no parents, so the graph behind it is let go too)."""
    name = node.name

    def gone(_: np.ndarray) -> Sequence[np.ndarray | None]:
        raise RuntimeError(f"backward through '{name}' a second time: its saved arrays were "
                           f"freed; pass retain_graph=True to the first backward()")
    return Node((), gone, name)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from ``root`` that require grad, inputs before outputs."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._node is not None:
            for p in t._node.parents:
                if p is not None and p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    return order


def as_tensor(x: Any, dtype: Any = None) -> Tensor:
    """``x`` itself if it is a Tensor (of ``dtype`` when given), else a new constant Tensor."""
    if isinstance(x, Tensor):
        if dtype is not None and x.dtype != dtype:
            raise TypeError(f"expected a Tensor of dtype {np.dtype(dtype)}, got {x.dtype}")
        return x
    return Tensor(x, dtype=dtype)


def record(data: np.ndarray, parents: Sequence[Tensor | None], backward: BackwardFn,
           name: str) -> Tensor:
    """Wrap ``data`` as an operation's output; remember how to send gradients to ``parents``.

    ``backward(grad_out)`` returns one array (or None) per parent, in order.
    """
    out = Tensor(np.asarray(data))
    if is_grad_enabled() and any(p is not None and p.requires_grad for p in parents):
        out.requires_grad = True
        out._node = Node(tuple(parents), backward, name)
    return out
