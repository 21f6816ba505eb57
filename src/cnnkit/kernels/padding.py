"""Window geometry shared by convolution and pooling: tuples, padding, output sizes.

Output size along one axis (seeds): ``floor((W + P_before + P_after - D*(K-1) - 1) / S) + 1``,
which is ``floor((W - K + 2P)/S) + 1`` for dilation 1 and symmetric padding P.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Pads = tuple[tuple[int, int], ...]


def normalize_tuple(value: Any, n: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints, as a tuple of ``n`` ints >= ``minimum``."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        out = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n or not all(isinstance(v, int) and not isinstance(v, bool)
                                      for v in value):
            raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
        out = tuple(int(v) for v in value)
    else:
        raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
    if any(v < minimum for v in out):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return out


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras/TensorFlow "same": output ceil(W/S); any odd extra pixel of padding goes at the end.

    total = max((ceil(W/S) - 1)*S + D*(K-1) + 1 - W, 0); before = total // 2.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: Any, sizes: Sequence[int], kernel: Sequence[int],
                    strides: Sequence[int], dilation: Sequence[int] | None = None) -> Pads:
    """Turn ``padding`` into one (before, after) pair per spatial axis.

    ``padding`` is "valid", "same", "causal" (1-D: all padding before), an int (all sides),
    or a sequence with one int or (before, after) pair per axis.
    """
    n = len(sizes)
    dilation = dilation or (1,) * n
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * n
        if mode == "same":
            return tuple(same_padding(w, k, s, d)
                         for w, k, s, d in zip(sizes, kernel, strides, dilation, strict=True))
        if mode == "causal":
            if n != 1:
                raise ValueError(f"padding 'causal' is for 1-D inputs, got {n} spatial axes")
            return ((dilation[0] * (kernel[0] - 1), 0),)
        raise ValueError(
            f"padding must be 'valid', 'same', 'causal', an int or per-axis pairs, "
            f"got {padding!r}")
    if isinstance(padding, int) and not isinstance(padding, bool):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        return ((padding, padding),) * n
    if isinstance(padding, Sequence) and len(padding) == n:
        pairs = []
        for p in padding:
            if isinstance(p, int) and not isinstance(p, bool):
                pairs.append((p, p))
            elif (isinstance(p, Sequence) and len(p) == 2
                  and all(isinstance(v, int) for v in p)):
                pairs.append((int(p[0]), int(p[1])))
            else:
                raise ValueError(f"padding entries must be ints or (before, after) pairs, "
                                 f"got {padding!r}")
        if any(v < 0 for pair in pairs for v in pair):
            raise ValueError(f"padding must be >= 0, got {padding!r}")
        return tuple(pairs)
    raise ValueError(
        f"padding must be 'valid', 'same', an int or {n} per-axis ints/pairs, got {padding!r}")


def output_size(size: int, kernel: int, stride: int, dilation: int, pad: tuple[int, int],
                what: str = "input") -> int:
    """floor((W + P_before + P_after - D*(K-1) - 1) / S) + 1, which must be >= 1."""
    eff = dilation * (kernel - 1) + 1
    padded = size + pad[0] + pad[1]
    if padded < eff:
        raise ValueError(
            f"window of size {eff} (kernel {kernel}, dilation {dilation}) is larger than the "
            f"padded {what} size {padded} (size {size}, padding {pad}): output size would be <= 0")
    return (padded - eff) // stride + 1


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def side_pairs(owner: str, name: str, value: Any, k: int) -> tuple[tuple[int, int], ...]:
    """Keras padding/cropping forms as one (before, after) pair per axis, all >= 0: an int
    (all sides), k ints (symmetric per axis; for k = 1 a pair of ints is (before, after)),
    or k (before, after) pairs."""
    err = ValueError(f"{owner}: {name} must be an int, {k} ints or {k} (before, after) pairs "
                     f"of ints, got {value!r}")
    if _is_int(value):
        pairs = [(int(value), int(value))] * k
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if k == 1 and len(value) == 2 and all(_is_int(v) for v in value):
            pairs = [(int(value[0]), int(value[1]))]
        elif len(value) == k:
            pairs = []
            for p in value:
                if _is_int(p):
                    pairs.append((int(p), int(p)))
                elif (isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2
                      and all(_is_int(v) for v in p)):
                    pairs.append((int(p[0]), int(p[1])))
                else:
                    raise err
        else:
            raise err
    else:
        raise err
    if any(v < 0 for p in pairs for v in p):
        raise ValueError(f"{owner}: {name} must be >= 0, got {value!r}")
    return tuple(pairs)
