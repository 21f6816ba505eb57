"""Output shapes of hand-written ``call`` methods, found by dry runs (as Keras 3 infers them).

A layer or subclassed model that writes ``call`` but not ``compute_output_shape`` is run twice
under ``no_grad`` on zeros: each unknown (None) dimension gets a different trial size in the two
runs, and an output dimension that differs between them is unknown (None) in the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..autograd import Tensor, no_grad

# trial sizes of an unknown batch axis and of other unknown axes, one per run
_BATCH_TRIALS = (2, 3)
_AXIS_TRIALS = (32, 40)


def _is_shape(s: Any) -> bool:
    return isinstance(s, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer))
                                                 for d in s)


def _zeros(shape: Any, run: int, dtype: Any) -> Any:
    if not _is_shape(shape):
        return [_zeros(s, run, dtype) for s in shape]
    dims = [(_BATCH_TRIALS if i == 0 else _AXIS_TRIALS)[run] if d is None else int(d)
            for i, d in enumerate(shape)]
    return Tensor(np.zeros(dims, dtype=dtype))


def _shape_of(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_shape_of(v) for v in value]
    return tuple(int(d) for d in np.shape(value.data if isinstance(value, Tensor) else value))


def merge_shapes(a: Any, b: Any) -> Any:
    """The shape two runs agree on: dimensions that differ become None."""
    if isinstance(a, list):
        return [merge_shapes(x, y) for x, y in zip(a, b, strict=True)]
    if len(a) != len(b):
        raise ValueError(f"the output rank changed with the input size ({a} vs {b})")
    return tuple(x if x == y else None for x, y in zip(a, b, strict=True))


def trace(fn: Callable[[Any], Any], input_shape: Any, dtype: Any = "float32",
          watch: Sequence[Any] = ()) -> tuple[Any, dict[int, tuple[Any, Any]]]:
    """``fn``'s output shape for ``input_shape`` (batch axis first, None = unknown), and for
    each layer in ``watch`` that ``fn`` calls: id -> (input shape, output shape) of its last
    call."""
    seen: list[dict[int, tuple[Any, Any]]] = [{}, {}]
    outs = []
    for run in (0, 1):
        for layer in watch:
            layer.call = _recorder(layer, seen[run])
        try:
            with no_grad():
                outs.append(_shape_of(fn(_zeros(input_shape, run, dtype))))
        finally:
            for layer in watch:
                vars(layer).pop("call", None)
    calls = {k: (merge_shapes(v[0], seen[1][k][0]), merge_shapes(v[1], seen[1][k][1]))
             for k, v in seen[0].items() if k in seen[1]}
    return merge_shapes(outs[0], outs[1]), calls


def _recorder(layer: Any, into: dict[int, tuple[Any, Any]]) -> Callable[..., Any]:
    call = type(layer).call.__get__(layer)

    def recorded(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        out = call(inputs, *args, **kwargs)
        into[id(layer)] = (_shape_of(inputs), _shape_of(out))
        return out
    return recorded


def writes_own_call(cls: type) -> bool:
    """Whether ``cls`` (a user's class, not cnnkit's) defines ``call`` below the class that
    defines ``compute_output_shape``, so the inherited shape rule does not describe it."""
    owner_call = next(c for c in cls.__mro__ if "call" in vars(c))
    owner_shape = next(c for c in cls.__mro__ if "compute_output_shape" in vars(c))
    if owner_call.__module__.startswith("cnnkit."):
        return False
    return owner_call is not owner_shape and issubclass(owner_call, owner_shape)


def infer_output_shape(layer: Any, input_shape: Any) -> Any:
    """``layer``'s output shape by dry runs of ``layer(...)`` (cached per input shape)."""
    key = repr(input_shape)
    cache = vars(layer).setdefault("_inferred_shapes", {})
    if key not in cache:
        cache[key] = trace(lambda x: layer(x, training=False), input_shape, layer.dtype)[0]
    return cache[key]
