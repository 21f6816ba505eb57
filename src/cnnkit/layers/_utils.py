"""Argument checks and shape arithmetic shared by the layer modules: channels-last only,
Keras-style int-or-tuple arguments, window output lengths, and the standard error messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops
from ..kernels.padding import normalize_tuple, output_size, resolve_padding
from .base import Layer

LAYOUTS = {1: "(batch, steps, channels)", 2: "(batch, height, width, channels)",
           3: "(batch, depth, height, width, channels)"}


def check_data_format(cls_name: str, data_format: Any) -> None:
    """Only channels-last is supported; anything else is a ValueError naming the layer."""
    if data_format is None or data_format == "channels_last":
        return
    if data_format == "channels_first":
        raise ValueError(f"{cls_name} supports only data_format='channels_last' (cnnkit is "
                         f"channels-last: (batch, ..., channels)), got 'channels_first'; "
                         f"transpose the input (e.g. with a Permute layer) instead")
    raise ValueError(f"{cls_name}: data_format must be 'channels_last' (or None), "
                     f"got {data_format!r}")


def check_padding_mode(cls_name: str, padding: Any, allowed: Sequence[str]) -> str:
    """``padding`` lower-cased if it is one of ``allowed``, else a ValueError naming the layer."""
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise ValueError(f"{cls_name}: padding must be one of {tuple(allowed)}, got {padding!r}")
    return padding.lower()


def tuple_arg(cls_name: str, value: Any, n: int, name: str, minimum: int = 1
              ) -> tuple[int, ...]:
    """An int or ``n`` ints as a tuple (Keras ``standardize_tuple``), errors naming the layer."""
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = [int(v) if isinstance(v, np.integer) else v for v in value]
    try:
        return normalize_tuple(value, n, name, minimum)
    except ValueError as e:
        raise ValueError(f"{cls_name}: {e}") from None


def single_shape(layer: Layer, input_shape: Any) -> tuple:
    """The shape of a single-input layer's input; a list of inputs is a ValueError."""
    if isinstance(input_shape, list):
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects a single input, got a "
                         f"list of {len(input_shape)} inputs")
    return tuple(input_shape)


def check_rank(layer: Layer, shape: tuple, rank: int) -> None:
    """Rank ``rank + 2`` (batch, *spatial, channels) or a ValueError naming the layer."""
    if len(shape) != rank + 2:
        raise rank_error(layer, rank + 2, LAYOUTS[rank], shape)


def window_length(layer: Layer, shape: tuple, axis: int, kernel: int, stride: int,
                  dilation: int, padding: str, what: str = "kernel") -> int | None:
    """Output length of a sliding window along spatial ``axis`` (None stays None):
    floor((W + P_before + P_after - D*(K-1) - 1) / S) + 1 with the Keras padding of ``padding``.
    """
    size = shape[1 + axis]
    if size is None:
        return None
    pads = resolve_padding(padding, (size,), (kernel,), (stride,), (dilation,))
    try:
        return output_size(int(size), kernel, stride, dilation, pads[0])
    except ValueError as e:
        raise ValueError(f"{type(layer).__name__} '{layer.name}': the {what} does not fit spatial "
                         f"axis {axis} of input shape {shape}: {e}") from None


def known_prod(values: Sequence[Any]) -> int:
    """Product of sizes, 0 when any is unknown (None): a count that cannot be known yet."""
    if any(v is None for v in values):
        return 0
    return int(np.prod([int(v) for v in values], dtype=np.int64))


def activation_arg(activation: Any) -> tuple[Any, Any]:
    """(function or None for the identity, name for the config)."""
    if activation is None:
        return None, None
    fn = ops.get_activation(activation)
    name = activation if isinstance(activation, str) else getattr(activation, "__name__",
                                                                  "custom")
    if isinstance(name, str) and name.lower() == "linear":
        return None, name
    return fn, name


def channels_error(layer: Layer, expected: int, got: int, shape: Any, what: str = "channels"
                   ) -> ValueError:
    """The standard message for a channel mismatch."""
    return ValueError(f"{type(layer).__name__} '{layer.name}' expects {expected} input {what}, "
                      f"got {got} (input shape {tuple(shape)})")


def rank_error(layer: Layer, expected: int, layout: str, shape: Any) -> ValueError:
    """The standard message for an input of the wrong rank (``layout`` names the axes)."""
    return ValueError(f"{type(layer).__name__} '{layer.name}' expects inputs of rank {expected} "
                      f"{layout}, got rank {len(shape)} (input shape {tuple(shape)})")
