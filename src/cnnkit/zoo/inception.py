"""GoogLeNet (Inception v1, Szegedy et al. 2014) and Inception v3 (Szegedy et al. 2015) in
torchvision's form, without the auxiliary classifiers.

Both are built from ``BasicConv2d`` = conv (no bias) -> BN (eps 0.001) -> ReLU, named
``<module>.conv`` / ``<module>.bn``. torchvision's GoogLeNet uses a 3x3 convolution in the
"5x5" branch (a known deviation from the paper kept for its weights) and ceil-mode max
pooling. Inception v3's average-pool branches count padded zeros (PyTorch's default
``count_include_pad=True``).

Parameters (torchvision convention): GoogLeNet 6,624,904 at 224x224x3; Inception v3
23,834,568 at 299x299x3 (1000 classes). Inception v3 needs inputs of at least 75x75.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..layers.base import KerasTensor
from ..models import Model
from .blocks import avg_pool, batch_norm, conv_norm_act, global_pool, join, max_pool, scale_channels
from .registry import register

__all__ = ["googlenet", "inception_v3"]

_BN = batch_norm(epsilon=1e-3, momentum=0.9)


class _Ctx:
    """Channel scaling shared by one build."""

    def __init__(self, width_mult: float):
        self.width_mult = width_mult

    def conv(self, x: KerasTensor, filters: int, kernel_size: Any, strides: Any = 1,
             padding: Any = 0, *, name: str) -> KerasTensor:
        return conv_norm_act(x, scale_channels(filters, self.width_mult), kernel_size, strides,
                             padding, norm=_BN, act="relu", name=name,
                             names=("conv", "bn", "relu"))


# ----- GoogLeNet -------------------------------------------------------------------------------
def _inception_v1(c: _Ctx, x: KerasTensor, ch1: int, ch3r: int, ch3: int, ch5r: int, ch5: int,
                  pool_proj: int, name: str) -> KerasTensor:
    b1 = c.conv(x, ch1, 1, name=join(name, "branch1"))
    b2 = c.conv(x, ch3r, 1, name=join(name, "branch2.0"))
    b2 = c.conv(b2, ch3, 3, 1, 1, name=join(name, "branch2.1"))
    b3 = c.conv(x, ch5r, 1, name=join(name, "branch3.0"))
    b3 = c.conv(b3, ch5, 3, 1, 1, name=join(name, "branch3.1"))
    b4 = max_pool(x, 3, 1, 1, ceil_mode=True, name=join(name, "branch4.0"))
    b4 = c.conv(b4, pool_proj, 1, name=join(name, "branch4.1"))
    return layers.Concatenate(name=join(name, "concat"))([b1, b2, b3, b4])


@register("googlenet")
def googlenet(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
              include_top: bool = True, pooling: str | None = None,
              classifier_activation: Any = None, dropout: float = 0.2,
              width_mult: float = 1.0, name: str = "googlenet") -> Model:
    """GoogLeNet (torchvision form, ``aux_logits=False``, ``transform_input=False``).
    ``width_mult`` scales every channel count (1.0 = published)."""
    c = _Ctx(width_mult)
    inputs = layers.Input(tuple(input_shape), name="input")
    x = c.conv(inputs, 64, 7, 2, 3, name="conv1")
    x = max_pool(x, 3, 2, ceil_mode=True, name="maxpool1")
    x = c.conv(x, 64, 1, name="conv2")
    x = c.conv(x, 192, 3, 1, 1, name="conv3")
    x = max_pool(x, 3, 2, ceil_mode=True, name="maxpool2")
    x = _inception_v1(c, x, 64, 96, 128, 16, 32, 32, "inception3a")
    x = _inception_v1(c, x, 128, 128, 192, 32, 96, 64, "inception3b")
    x = max_pool(x, 3, 2, ceil_mode=True, name="maxpool3")
    x = _inception_v1(c, x, 192, 96, 208, 16, 48, 64, "inception4a")
    x = _inception_v1(c, x, 160, 112, 224, 24, 64, 64, "inception4b")
    x = _inception_v1(c, x, 128, 128, 256, 24, 64, 64, "inception4c")
    x = _inception_v1(c, x, 112, 144, 288, 32, 64, 64, "inception4d")
    x = _inception_v1(c, x, 256, 160, 320, 32, 128, 128, "inception4e")
    x = max_pool(x, 2, 2, ceil_mode=True, name="maxpool4")
    x = _inception_v1(c, x, 256, 160, 320, 32, 128, 128, "inception5a")
    x = _inception_v1(c, x, 384, 192, 384, 48, 128, 128, "inception5b")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="fc")(x)
    else:
        x = global_pool(x, pooling, "avgpool")
    return Model(inputs, x, name=name)


# ----- Inception v3 ----------------------------------------------------------------------------
def _pool_branch(c: _Ctx, x: KerasTensor, filters: int, name: str) -> KerasTensor:
    p = avg_pool(x, 3, 1, 1, name=join(name, "avg_pool"))
    return c.conv(p, filters, 1, name=join(name, "branch_pool"))


def _inception_a(c: _Ctx, x: KerasTensor, pool_features: int, name: str) -> KerasTensor:
    b1 = c.conv(x, 64, 1, name=join(name, "branch1x1"))
    b5 = c.conv(x, 48, 1, name=join(name, "branch5x5_1"))
    b5 = c.conv(b5, 64, 5, 1, 2, name=join(name, "branch5x5_2"))
    b3 = c.conv(x, 64, 1, name=join(name, "branch3x3dbl_1"))
    b3 = c.conv(b3, 96, 3, 1, 1, name=join(name, "branch3x3dbl_2"))
    b3 = c.conv(b3, 96, 3, 1, 1, name=join(name, "branch3x3dbl_3"))
    bp = _pool_branch(c, x, pool_features, name)
    return layers.Concatenate(name=join(name, "concat"))([b1, b5, b3, bp])


def _inception_b(c: _Ctx, x: KerasTensor, name: str) -> KerasTensor:
    b3 = c.conv(x, 384, 3, 2, name=join(name, "branch3x3"))
    bd = c.conv(x, 64, 1, name=join(name, "branch3x3dbl_1"))
    bd = c.conv(bd, 96, 3, 1, 1, name=join(name, "branch3x3dbl_2"))
    bd = c.conv(bd, 96, 3, 2, name=join(name, "branch3x3dbl_3"))
    bp = max_pool(x, 3, 2, name=join(name, "max_pool"))
    return layers.Concatenate(name=join(name, "concat"))([b3, bd, bp])


def _inception_c(c: _Ctx, x: KerasTensor, c7: int, name: str) -> KerasTensor:
    b1 = c.conv(x, 192, 1, name=join(name, "branch1x1"))
    b7 = c.conv(x, c7, 1, name=join(name, "branch7x7_1"))
    b7 = c.conv(b7, c7, (1, 7), 1, (0, 3), name=join(name, "branch7x7_2"))
    b7 = c.conv(b7, 192, (7, 1), 1, (3, 0), name=join(name, "branch7x7_3"))
    bd = c.conv(x, c7, 1, name=join(name, "branch7x7dbl_1"))
    bd = c.conv(bd, c7, (7, 1), 1, (3, 0), name=join(name, "branch7x7dbl_2"))
    bd = c.conv(bd, c7, (1, 7), 1, (0, 3), name=join(name, "branch7x7dbl_3"))
    bd = c.conv(bd, c7, (7, 1), 1, (3, 0), name=join(name, "branch7x7dbl_4"))
    bd = c.conv(bd, 192, (1, 7), 1, (0, 3), name=join(name, "branch7x7dbl_5"))
    bp = _pool_branch(c, x, 192, name)
    return layers.Concatenate(name=join(name, "concat"))([b1, b7, bd, bp])


def _inception_d(c: _Ctx, x: KerasTensor, name: str) -> KerasTensor:
    b3 = c.conv(x, 192, 1, name=join(name, "branch3x3_1"))
    b3 = c.conv(b3, 320, 3, 2, name=join(name, "branch3x3_2"))
    b7 = c.conv(x, 192, 1, name=join(name, "branch7x7x3_1"))
    b7 = c.conv(b7, 192, (1, 7), 1, (0, 3), name=join(name, "branch7x7x3_2"))
    b7 = c.conv(b7, 192, (7, 1), 1, (3, 0), name=join(name, "branch7x7x3_3"))
    b7 = c.conv(b7, 192, 3, 2, name=join(name, "branch7x7x3_4"))
    bp = max_pool(x, 3, 2, name=join(name, "max_pool"))
    return layers.Concatenate(name=join(name, "concat"))([b3, b7, bp])


def _inception_e(c: _Ctx, x: KerasTensor, name: str) -> KerasTensor:
    b1 = c.conv(x, 320, 1, name=join(name, "branch1x1"))
    b3 = c.conv(x, 384, 1, name=join(name, "branch3x3_1"))
    b3a = c.conv(b3, 384, (1, 3), 1, (0, 1), name=join(name, "branch3x3_2a"))
    b3b = c.conv(b3, 384, (3, 1), 1, (1, 0), name=join(name, "branch3x3_2b"))
    b3 = layers.Concatenate(name=join(name, "concat3x3"))([b3a, b3b])
    bd = c.conv(x, 448, 1, name=join(name, "branch3x3dbl_1"))
    bd = c.conv(bd, 384, 3, 1, 1, name=join(name, "branch3x3dbl_2"))
    bda = c.conv(bd, 384, (1, 3), 1, (0, 1), name=join(name, "branch3x3dbl_3a"))
    bdb = c.conv(bd, 384, (3, 1), 1, (1, 0), name=join(name, "branch3x3dbl_3b"))
    bd = layers.Concatenate(name=join(name, "concat3x3dbl"))([bda, bdb])
    bp = _pool_branch(c, x, 192, name)
    return layers.Concatenate(name=join(name, "concat"))([b1, b3, bd, bp])


@register("inception_v3")
def inception_v3(input_shape: Sequence[int] = (299, 299, 3), classes: int = 1000,
                 include_top: bool = True, pooling: str | None = None,
                 classifier_activation: Any = None, dropout: float = 0.5,
                 width_mult: float = 1.0, name: str = "inception_v3") -> Model:
    """Inception v3 (torchvision form, ``aux_logits=False``, ``transform_input=False``),
    inputs of at least 75x75. ``width_mult`` scales every channel count (1.0 = published)."""
    h, w = input_shape[0], input_shape[1]
    if h is not None and w is not None and min(int(h), int(w)) < 75:
        raise ValueError(f"inception_v3 needs inputs of at least 75x75, got input_shape "
                         f"{tuple(input_shape)}")
    c = _Ctx(width_mult)
    inputs = layers.Input(tuple(input_shape), name="input")
    x = c.conv(inputs, 32, 3, 2, name="Conv2d_1a_3x3")
    x = c.conv(x, 32, 3, name="Conv2d_2a_3x3")
    x = c.conv(x, 64, 3, 1, 1, name="Conv2d_2b_3x3")
    x = max_pool(x, 3, 2, name="maxpool1")
    x = c.conv(x, 80, 1, name="Conv2d_3b_1x1")
    x = c.conv(x, 192, 3, name="Conv2d_4a_3x3")
    x = max_pool(x, 3, 2, name="maxpool2")
    x = _inception_a(c, x, 32, "Mixed_5b")
    x = _inception_a(c, x, 64, "Mixed_5c")
    x = _inception_a(c, x, 64, "Mixed_5d")
    x = _inception_b(c, x, "Mixed_6a")
    x = _inception_c(c, x, 128, "Mixed_6b")
    x = _inception_c(c, x, 160, "Mixed_6c")
    x = _inception_c(c, x, 160, "Mixed_6d")
    x = _inception_c(c, x, 192, "Mixed_6e")
    x = _inception_d(c, x, "Mixed_7a")
    x = _inception_e(c, x, "Mixed_7b")
    x = _inception_e(c, x, "Mixed_7c")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="fc")(x)
    else:
        x = global_pool(x, pooling, "avgpool")
    return Model(inputs, x, name=name)
