"""Helpers every ``cnnkit.ops`` module uses to turn arguments into Tensors and check them."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor, as_tensor, record  # noqa: F401  (re-exported for ops modules)


def floating(x: Any, name: str) -> Tensor:
    """``x`` as a Tensor; a non-floating array is converted to float32."""
    t = as_tensor(x)
    if not np.issubdtype(t.dtype, np.floating):
        t = Tensor(t.data.astype(np.float32))
    return t


def _given_dtype(v: Any) -> np.dtype:
    return v.dtype if isinstance(v, (Tensor, np.ndarray)) else np.asarray(v).dtype


def _passed(name: str, given: dict[str, np.dtype] | None, t: Tensor) -> str:
    """``name`` with its dtype as the caller passed it (and what it was converted to)."""
    g = None if given is None else given.get(name)
    if g is None or g == t.dtype:
        return f"{name} has dtype {t.dtype}"
    return f"{name} was passed as {g} (converted to {t.dtype})"


def same_dtype(op: str, given: dict[str, np.dtype] | None = None,
               **tensors: Tensor | None) -> None:
    """Raise TypeError naming ``op`` if the given floating Tensors differ in dtype; ``given``
    holds the dtypes the caller passed, so a converted operand is reported as passed."""
    named = [(k, t) for k, t in tensors.items() if t is not None]
    first_name, first = named[0]
    for k, t in named[1:]:
        if t.dtype != first.dtype:
            raise TypeError(
                f"{op}: {_passed(k, given, t)} but {_passed(first_name, given, first)}; "
                f"cast one of them so they match")


def floating_operands(op: str, **named: Any) -> dict[str, Tensor | None]:
    """Each non-None operand as a floating Tensor (non-floating ones as float32), all of one
    dtype, else a TypeError naming the dtypes that were passed."""
    given = {k: _given_dtype(v) for k, v in named.items() if v is not None}
    out = {k: (None if v is None else floating(v, k)) for k, v in named.items()}
    same_dtype(op, given, **out)
    return out


def check_rank(op: str, name: str, t: Tensor, rank: int, layout: str) -> None:
    """Raise ValueError if ``t`` does not have ``rank`` dimensions (layout names them)."""
    if t.ndim != rank:
        raise ValueError(
            f"{op} expects {name} of rank {rank} {layout}, got rank {t.ndim} "
            f"(shape {t.shape})")


def operands(op: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two operands of an elementwise op as Tensors of one dtype.

    Python numbers and non-floating arrays take the other operand's floating dtype; two
    floating Tensors of different dtypes raise TypeError.
    """
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    a_arr = a.data if ta else np.asarray(a)
    b_arr = b.data if tb else np.asarray(b)
    fa = np.issubdtype(a_arr.dtype, np.floating)
    fb = np.issubdtype(b_arr.dtype, np.floating)
    if fa and fb and a_arr.dtype != b_arr.dtype:
        # A bare Python float / NumPy scalar adapts; two real arrays must agree.
        if not ta and np.ndim(a) == 0:
            a_arr, fa = a_arr.astype(b_arr.dtype), True
        elif not tb and np.ndim(b) == 0:
            b_arr = b_arr.astype(a_arr.dtype)
        else:
            raise TypeError(f"{op}: operands have dtypes {a_arr.dtype} and {b_arr.dtype}; "
                            f"cast one of them so they match")
    if fa and not fb:
        b_arr = b_arr.astype(a_arr.dtype)
    elif fb and not fa:
        a_arr = a_arr.astype(b_arr.dtype)
    elif not fa and not fb:
        a_arr, b_arr = a_arr.astype(np.float32), b_arr.astype(np.float32)
    return (a if ta and a.data is a_arr else Tensor(a_arr),
            b if tb and b.data is b_arr else Tensor(b_arr))


def channels_last_only(op: str, data_format: Any) -> None:
    """keras.ops' data_format argument: None or "channels_last" (cnnkit is channels-last)."""
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{op} supports only data_format='channels_last' (or None), got "
                         f"{data_format!r}; transpose the input to (batch, ..., channels)")
