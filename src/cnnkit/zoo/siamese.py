"""Siamese networks: one shared embedding tower applied to two (or three) inputs, and the
metric-learning losses that train them.

- :func:`siamese` builds ``Model([x_a, x_b], [e_a, e_b])``: the same tower (one set of
  weights, layer "embedding") maps both inputs to ``embedding_dim``-vectors.
- :func:`contrastive_loss` (Hadsell, Chopra & LeCun 2006), with y = 1 for a similar pair:
  L = 1/2 * mean_i [ y_i d_i^2 + (1 - y_i) max(margin - d_i, 0)^2 ], d_i = ||a_i - b_i||.
- :func:`triplet_loss` (Schroff et al. 2015, FaceNet):
  L = mean_i max(||a_i - p_i||^2 - ||a_i - n_i||^2 + margin, 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers, ops
from ..autograd import Tensor, as_tensor
from ..layers import L2Normalize
from ..models import Model, Sequential
from ..models import register as register_layer
from .registry import register

__all__ = ["siamese", "embedding_tower", "conv_bn_backbone", "L2Normalize", "pair_distance",
           "contrastive_loss", "triplet_loss"]


def conv_bn_backbone(width: int = 32, name: str = "embedding") -> Sequential:
    """Three blocks of conv3x3 (no bias) -> batch norm -> ReLU with ``width``, 2 x ``width``
    and 4 x ``width`` filters, a 2x2 max-pool after the first two: 28x28 -> 7x7 features,
    which :func:`embedding_tower` averages globally."""
    if int(width) < 1:
        raise ValueError(f"conv_bn_backbone: width must be >= 1, got {width}")
    blocks = []
    for k, filters in enumerate((width, 2 * width, 4 * width), start=1):
        blocks += [layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                 name=f"{name}_conv{k}"),
                   layers.BatchNormalization(name=f"{name}_bn{k}"),
                   layers.Activation("relu", name=f"{name}_relu{k}")]
        if k < 3:
            blocks.append(layers.MaxPooling2D(2, name=f"{name}_pool{k}"))
    return Sequential(blocks, name=f"{name}_backbone")


def embedding_tower(input_shape: Sequence[int], embedding_dim: int = 64,
                    backbone: Any = None, l2_normalize: bool = False,
                    name: str = "embedding") -> Model:
    """``backbone`` (default: conv3x3 32 -> maxpool -> conv3x3 64 -> maxpool) -> global
    average pool when the features are spatial -> dense ``embedding_dim``."""
    inputs = layers.Input(tuple(input_shape), name=f"{name}_input")
    if backbone is None:
        backbone = Sequential([
            layers.Conv2D(32, 3, padding="same", activation="relu", name=f"{name}_conv1"),
            layers.MaxPooling2D(2, name=f"{name}_pool1"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name=f"{name}_conv2"),
            layers.MaxPooling2D(2, name=f"{name}_pool2"),
        ], name=f"{name}_backbone")
    x = backbone(inputs)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    elif len(x.shape) != 2:
        x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(embedding_dim, name=f"{name}_dense")(x)
    if l2_normalize:
        x = L2Normalize(name=f"{name}_l2")(x)
    return Model(inputs, x, name=name)


@register_layer
@register("siamese")
def siamese(input_shape: Sequence[int] = (28, 28, 1), embedding_dim: int = 64,
            backbone: Any = None, l2_normalize: bool = False, name: str = "siamese") -> Model:
    """Two inputs, one shared :func:`embedding_tower`, two embeddings:
    ``Model([x_a, x_b], [e_a, e_b])``. Train it with :func:`contrastive_loss`."""
    tower = embedding_tower(input_shape, embedding_dim, backbone, l2_normalize)
    a = layers.Input(tuple(input_shape), name="input_a")
    b = layers.Input(tuple(input_shape), name="input_b")
    return Model([a, b], [tower(a), tower(b)], name=name)


def _vectors(op: str, *xs: Any) -> list[Tensor]:
    ts = [as_tensor(x) for x in xs]
    for t in ts:
        if t.ndim != 2:
            raise ValueError(f"{op} expects embeddings of shape (batch, dim), got shape "
                             f"{t.shape}")
    if len({t.shape for t in ts}) != 1:
        raise ValueError(f"{op} expects embeddings of one shape, got "
                         f"{[t.shape for t in ts]}")
    return ts


def _squared_distance(a: Tensor, b: Tensor) -> Tensor:
    return ops.sum(ops.square(ops.subtract(a, b)), axis=-1)


def pair_distance(a: Any, b: Any, epsilon: float = 1e-12) -> Tensor:
    """Euclidean distance per row, sqrt(sum_j (a_ij - b_ij)^2 + epsilon) (epsilon keeps the
    gradient finite for identical rows)."""
    a, b = _vectors("pair_distance", a, b)
    return ops.sqrt(_squared_distance(a, b) + epsilon)


def contrastive_loss(y_same: Any, a: Any, b: Any, margin: float = 1.0,
                     epsilon: float = 1e-12) -> Tensor:
    """1/2 mean_i [ y_i d_i^2 + (1 - y_i) max(margin - d_i, 0)^2 ] with d_i = ||a_i - b_i||
    and y_i = 1 for a similar pair, 0 for a dissimilar one (Hadsell et al. 2006); the
    kernel is ``ops.contrastive_loss``."""
    return ops.contrastive_loss(y_same, a, b, margin=margin, epsilon=epsilon)


def triplet_loss(anchor: Any, positive: Any, negative: Any, margin: float = 0.2) -> Tensor:
    """mean_i max(||a_i - p_i||^2 - ||a_i - n_i||^2 + margin, 0) (FaceNet's squared form of
    ``ops.triplet_margin_loss``)."""
    return ops.triplet_margin_loss(anchor, positive, negative, margin=margin, squared=True)
