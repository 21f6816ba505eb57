"""What one layer costs and which input window it reads: FLOPs per sample and the window
geometry that receptive fields are built from.

FLOP conventions (per sample; one multiply-add is 2 FLOPs, as the multiply and the add are
counted separately, unlike counters that report multiply-adds as FLOPs):

- convolution (any kind) and dense: ``2 * multiply-adds``, plus 1 per output for the bias, plus
  1 per output for a fused activation;
- batch normalisation (inference form ``x * a + b``): 2 per element; Rescaling and
  Normalization: 2 per element; layer/group normalisation: 5 per element (mean, variance,
  normalise, scale, shift);
- an activation (ReLU, sigmoid, swish, ...): 1 per element, whatever its function; softmax: 3
  per element (exp, sum, divide);
- Add/Subtract/Multiply/Maximum/Minimum of n inputs: ``n - 1`` per output element; Average: n;
- max pooling: ``K - 1`` comparisons per output (K cells in the window); average pooling:
  ``K - 1`` adds and 1 divide; global pooling likewise over the whole map;
- shape-only layers (Flatten, Reshape, padding, cropping, Dropout at inference,
  Concatenate): 0.

A layer this module does not know returns None, so that a table can name it rather than
count it as 0 without a word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..kernels.padding import resolve_padding
from . import (
    activation_layers as act,
)
from . import (
    conv,
    conv_transpose,
    core,
    layer_normalization,
    merge,
    normalization,
    pooling,
    regularization,
    reshaping,
)
from .base import Layer

GLOBAL = "global"  # a layer whose every output reads the whole input (Dense, Flatten, ...)


@dataclass(frozen=True)
class Window:
    """One spatial axis of a sliding window: effective kernel, stride, padding before."""

    kernel: int
    stride: float
    pad_before: int


def _elements(shape: Any) -> int:
    if shape is None:
        return 0
    if isinstance(shape, list):
        return sum(_elements(s) for s in shape)
    rest = shape[1:]
    if any(d is None for d in rest):
        return 0
    return int(np.prod([int(d) for d in rest], dtype=np.int64))


def _fused(layer: Layer, out: int) -> int:
    """FLOPs a weight layer adds after its multiply-adds: bias and fused activation."""
    bias = out if getattr(layer, "use_bias", False) else 0
    act = getattr(layer, "activation_name", None)
    return bias + (out if act not in (None, "linear") else 0)


_SHAPE_ONLY = (core.Flatten, core.Reshape, core.Permute, core.Dropout, core.InputLayer,
               merge.Concatenate, reshaping._ZeroPadding, reshaping._Cropping,
               regularization._SpatialDropout)
_PER_ELEMENT = ((normalization.BatchNormalization, 2), (core.Rescaling, 2),
                (core.Normalization, 2), (layer_normalization._AffineNorm, 5),
                (act.Softmax, 3), (act.Activation, 1), (act.ReLU, 1), (act.LeakyReLU, 1),
                (act.ELU, 1), (layer_normalization.PReLU, 1), (reshaping._UpSampling, 0))


def layer_flops(layer: Layer, input_shape: Any, output_shape: Any) -> int | None:
    """FLOPs of ``layer`` for one sample (see the module docstring), None when unknown."""
    out = _elements(output_shape)
    if isinstance(layer, (conv._WindowConv, core.Dense)):
        return 2 * layer.compute_macs(input_shape, output_shape) + _fused(layer, out)
    if isinstance(layer, act.Activation) and getattr(layer, "activation_name", "") == "softmax":
        return 3 * out
    for kind, per in _PER_ELEMENT:
        if isinstance(layer, kind):
            return per * out
    if isinstance(layer, _SHAPE_ONLY):
        return 0
    if isinstance(layer, merge._Merge):
        n = len(input_shape) if isinstance(input_shape, list) else 1
        return (n if isinstance(layer, merge.Average) else n - 1) * out
    if isinstance(layer, pooling._Pooling):
        k = int(np.prod(layer.pool_size))
        return out * (k - 1 + (0 if layer.takes_max else 1))
    if isinstance(layer, (pooling._GlobalPooling, pooling.AdaptiveAveragePooling2D)):
        cells = _elements(input_shape)  # every input cell is read once
        is_max = isinstance(layer, pooling._GlobalPooling) and "Max" in type(layer).__name__
        return cells - out if is_max else cells
    return None


def layer_windows(layer: Layer, input_shape: Any) -> list[Window] | str | None:
    """The window each output cell reads, per spatial axis; ``GLOBAL`` when every output
    reads the whole input; ``[]`` for a per-cell layer (activations, BN, merges); None when
    this module does not know the layer's geometry (transposed convolution, ...)."""
    shape = input_shape[0] if isinstance(input_shape, list) else input_shape
    if isinstance(layer, core.Dense) and shape is not None and len(shape) > 2:
        return []  # a Dense on a feature map acts on each cell
    if isinstance(layer, (core.Dense, core.Flatten, core.Reshape, pooling._GlobalPooling)):
        return GLOBAL
    if isinstance(layer, conv_transpose._ConvTranspose):
        return None
    spatial = list(shape[1:-1]) if shape is not None else []
    if isinstance(layer, (conv._WindowConv, pooling._Pooling)):
        k = layer.kernel_size if isinstance(layer, conv._WindowConv) else layer.pool_size
        d = getattr(layer, "dilation_rate", (1,) * len(k))
        if any(v is None for v in spatial):
            return None
        pads = resolve_padding(layer.padding, spatial, k, layer.strides, d)
        return [Window(dd * (kk - 1) + 1, s, p[0])
                for kk, s, dd, p in zip(k, layer.strides, d, pads, strict=True)]
    if isinstance(layer, reshaping._ZeroPadding):
        return [Window(1, 1, p[0]) for p in layer.padding]
    if isinstance(layer, reshaping._Cropping):
        return [Window(1, 1, -c[0]) for c in layer.cropping]
    if isinstance(layer, reshaping._UpSampling) and layer.interpolation == "nearest":
        return [Window(1, 1 / u, 0) for u in layer.size]
    if isinstance(layer, pooling.AdaptiveAveragePooling2D):
        if any(v is None or v % o for v, o in zip(spatial, layer.output_size, strict=True)):
            return None
        return [Window(v // o, v // o, 0) for v, o in zip(spatial, layer.output_size,
                                                          strict=True)]
    if layer_flops(layer, input_shape, input_shape) is not None:
        return []  # per cell: activations, normalisation, merges, dropout
    return None
