"""EfficientNet B0-B7 (Tan & Le 2019) in torchvision's form.

B0: conv3x3/2 (32) -> 16 MBConv blocks in 7 stages -> conv1x1 (1280) -> global average pool
-> dropout -> fc. An MBConv block is [1x1 expansion (ratio 6) -> BN -> SiLU] -> depthwise
kxk -> BN -> SiLU -> squeeze-and-excitation (SiLU, sigmoid gate, squeeze = in/4) -> 1x1
projection -> BN, with stochastic depth (probability rising linearly to 0.2 over the blocks;
a per-sample Dropout, training only) on the residual.

Compound scaling: Bi multiplies every width by w (channels rounded to multiples of 8) and
every stage depth by d (rounded up), at resolution r:

======  =====  =====  ====  =======  ==========================
model   w      d      r     dropout  parameters (torchvision)
======  =====  =====  ====  =======  ==========================
B0      1.0    1.0    224   0.2      5,288,548
B1      1.0    1.1    240   0.2      7,794,184
B2      1.1    1.2    260   0.3      9,109,994
B3      1.2    1.4    300   0.3      12,233,232
B4      1.4    1.8    380   0.4      19,341,616
B5      1.6    2.2    456   0.4      30,389,784
B6      1.8    2.6    528   0.5      43,040,704
B7      2.0    3.1    600   0.5      66,347,960
======  =====  =====  ====  =======  ==========================

r is the paper's resolution and the default ``input_shape`` (torchvision's B2 weights were
evaluated at 288). BN: torchvision uses PyTorch's default (eps 1e-5, momentum 0.1) for B0-B4
and eps 1e-3 / momentum 0.01 for B5-B7 (weights ported from TensorFlow); so does cnnkit.
Layer names are torchvision's (``features.2.0.block.1.0``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import layers
from ..layers.base import KerasTensor
from ..models import Model
from .blocks import (
    TORCH_BN,
    Norm,
    batch_norm,
    conv_norm_act,
    global_pool,
    join,
    make_divisible,
    squeeze_excite,
)
from .registry import register

__all__ = ["efficientnet", "mbconv", "EFFICIENTNET_PARAMS"] + [
    f"efficientnet_b{i}" for i in range(8)]

# (width, depth, resolution, dropout)
EFFICIENTNET_PARAMS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5),
}

# B0 stages: (expand ratio, kernel, stride, input channels, output channels, layers)
_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
           (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
           (6, 3, 1, 192, 320, 1)]


def mbconv(x: KerasTensor, filters: int, kernel: int, strides: int, expand_ratio: float, *,
           norm: Norm = TORCH_BN, drop_prob: float = 0.0, name: str) -> KerasTensor:
    """EfficientNet's MBConv block (torchvision names ``<name>.block.*``)."""
    cin = int(x.shape[-1])
    expanded = make_divisible(cin * expand_ratio, 8)
    y, j = x, 0
    if expanded != cin:
        y = conv_norm_act(y, expanded, 1, norm=norm, act="silu", name=join(name, "block.0"))
        j = 1
    y = conv_norm_act(y, expanded, kernel, strides, groups=expanded, norm=norm, act="silu",
                      name=join(name, f"block.{j}"))
    y = squeeze_excite(y, max(1, cin // 4), act="silu", gate="sigmoid",
                       name=join(name, f"block.{j + 1}"))
    y = conv_norm_act(y, filters, 1, norm=norm, act=None, name=join(name, f"block.{j + 2}"))
    if strides == 1 and cin == filters:
        if drop_prob > 0:
            y = layers.Dropout(drop_prob, noise_shape=(None, 1, 1, 1),
                               name=join(name, "stochastic_depth"))(y)
        y = layers.Add(name=join(name, "add"))([x, y])
    return y


def efficientnet(width_mult: float = 1.0, depth_mult: float = 1.0,
                 input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
                 dropout: float = 0.2, stochastic_depth_prob: float = 0.2,
                 include_top: bool = True, pooling: str | None = None,
                 classifier_activation: Any = None, norm: Norm = TORCH_BN,
                 name: str = "efficientnet") -> Model:
    """An EfficientNet scaled from B0 by ``width_mult`` and ``depth_mult`` (torchvision form).
    ``stochastic_depth_prob`` is the drop probability of the last block's residual branch
    (block i of n uses prob * i / n)."""

    def width(c: int) -> int:
        return make_divisible(c * width_mult, 8)

    def depth(n: int) -> int:
        return int(math.ceil(n * depth_mult))

    total = sum(depth(s[5]) for s in _STAGES)
    inputs = layers.Input(tuple(input_shape), name="input")
    x = conv_norm_act(inputs, width(_STAGES[0][3]), 3, 2, norm=norm, act="silu",
                      name="features.0")
    block_id = 0
    for i, (t, k, s, _, c, n) in enumerate(_STAGES, start=1):
        for j in range(depth(n)):
            p = stochastic_depth_prob * block_id / total
            x = mbconv(x, width(c), k, s if j == 0 else 1, t, norm=norm, drop_prob=p,
                       name=f"features.{i}.{j}")
            block_id += 1
    x = conv_norm_act(x, 4 * int(x.shape[-1]), 1, norm=norm, act="silu",
                      name=f"features.{len(_STAGES) + 1}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dropout(dropout, name="classifier.0")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="classifier.1")(x)
    else:
        x = global_pool(x, pooling, "avgpool")
    return Model(inputs, x, name=name)


def _variant(key: str):
    w, d, r, drop = EFFICIENTNET_PARAMS[key]
    norm = TORCH_BN if key in ("b0", "b1", "b2", "b3", "b4") else batch_norm(1e-3, 0.99)
    default_name = f"efficientnet_{key}"

    def build(input_shape: Sequence[int] = (r, r, 3), classes: int = 1000,
              include_top: bool = True, pooling: str | None = None,
              classifier_activation: Any = None, dropout: float = drop,
              stochastic_depth_prob: float = 0.2, name: str = default_name) -> Model:
        return efficientnet(w, d, input_shape, classes, dropout, stochastic_depth_prob,
                            include_top, pooling, classifier_activation, norm, name)

    build.__name__ = default_name
    build.__doc__ = (f"EfficientNet-{key.upper()}: width x{w}, depth x{d}, {r}x{r} inputs, "
                     f"dropout {drop}. See :func:`efficientnet`.")
    return register(default_name)(build)


efficientnet_b0 = _variant("b0")
efficientnet_b1 = _variant("b1")
efficientnet_b2 = _variant("b2")
efficientnet_b3 = _variant("b3")
efficientnet_b4 = _variant("b4")
efficientnet_b5 = _variant("b5")
efficientnet_b6 = _variant("b6")
efficientnet_b7 = _variant("b7")
