"""DenseNet (Huang et al. 2016), the DenseNet-BC form of torchvision.

conv7x7/2 (64) -> BN -> ReLU -> maxpool3x3/2 -> dense blocks separated by transitions ->
BN -> ReLU -> global average pool -> fc. A dense layer is BN -> ReLU -> conv1x1
(bn_size * growth_rate) -> BN -> ReLU -> conv3x3 (growth_rate), its output concatenated to
its input; a transition is BN -> ReLU -> conv1x1 (half the channels) -> avgpool2x2/2.
Layer names are torchvision's (``features.denseblock1.denselayer1.conv1``, ...).

Parameters (torchvision convention, 224x224x3, 1000 classes): DenseNet-121 7,978,856;
DenseNet-169 14,149,480; DenseNet-201 20,013,928; DenseNet-161 28,681,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..layers.base import KerasTensor
from ..models import Model
from .blocks import TORCH_BN, Norm, avg_pool, conv2d, global_pool, join, max_pool
from .registry import register

__all__ = ["densenet", "densenet121", "densenet169", "densenet201", "densenet161"]


def _dense_layer(x: KerasTensor, growth_rate: int, bn_size: int, norm: Norm, drop_rate: float,
                 name: str) -> KerasTensor:
    y = norm(join(name, "norm1"))(x)
    y = layers.ReLU(name=join(name, "relu1"))(y)
    y = conv2d(y, bn_size * growth_rate, 1, 1, 0, use_bias=False, name=join(name, "conv1"))
    y = norm(join(name, "norm2"))(y)
    y = layers.ReLU(name=join(name, "relu2"))(y)
    y = conv2d(y, growth_rate, 3, 1, 1, use_bias=False, name=join(name, "conv2"))
    if drop_rate > 0:
        y = layers.Dropout(drop_rate, name=join(name, "dropout"))(y)
    return y


def densenet(block_config: Sequence[int] = (6, 12, 24, 16), growth_rate: int = 32,
             num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0.0,
             input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
             include_top: bool = True, pooling: str | None = None,
             classifier_activation: Any = None, norm: Norm = TORCH_BN,
             name: str = "densenet") -> Model:
    """A torchvision-form DenseNet-BC.

    Args:
        block_config: dense layers per block ((6, 12, 24, 16) is DenseNet-121).
        growth_rate: channels each dense layer adds (k).
        num_init_features: channels of the first convolution.
        bn_size: bottleneck width multiplier (the 1x1 conv has bn_size * k channels).
        drop_rate: dropout after each dense layer.
        input_shape, classes, include_top, pooling, classifier_activation: as Keras
            applications (logits by default, as torchvision).
    """
    inputs = layers.Input(tuple(input_shape), name="input")
    x = conv2d(inputs, num_init_features, 7, 2, 3, use_bias=False, name="features.conv0")
    x = norm("features.norm0")(x)
    x = layers.ReLU(name="features.relu0")(x)
    x = max_pool(x, 3, 2, 1, name="features.pool0")
    channels = num_init_features
    for i, n in enumerate(block_config):
        block = f"features.denseblock{i + 1}"
        feats = [x]
        for j in range(n):
            inp = feats[0] if len(feats) == 1 else layers.Concatenate(
                name=join(block, f"concat{j + 1}"))(list(feats))
            feats.append(_dense_layer(inp, growth_rate, bn_size, norm, drop_rate,
                                      join(block, f"denselayer{j + 1}")))
        x = layers.Concatenate(name=join(block, "concat"))(list(feats))
        channels += n * growth_rate
        if i != len(block_config) - 1:
            t = f"features.transition{i + 1}"
            x = norm(join(t, "norm"))(x)
            x = layers.ReLU(name=join(t, "relu"))(x)
            channels //= 2
            x = conv2d(x, channels, 1, 1, 0, use_bias=False, name=join(t, "conv"))
            x = avg_pool(x, 2, 2, name=join(t, "pool"))
    x = norm("features.norm5")(x)
    x = layers.ReLU(name="features.relu5")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="classifier")(x)
    else:
        x = global_pool(x, pooling, "avgpool")
    return Model(inputs, x, name=name)


def _densenet(default_name: str, block_config: tuple[int, ...], growth_rate: int,
              num_init_features: int):
    def build(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
              include_top: bool = True, pooling: str | None = None,
              classifier_activation: Any = None, growth_rate: int = growth_rate,
              num_init_features: int = num_init_features, bn_size: int = 4,
              drop_rate: float = 0.0, name: str = default_name) -> Model:
        return densenet(block_config, growth_rate, num_init_features, bn_size, drop_rate,
                        input_shape, classes, include_top, pooling, classifier_activation,
                        name=name)

    build.__name__ = default_name
    build.__doc__ = (f"{default_name}: blocks {block_config}, growth rate {growth_rate}, "
                     f"{num_init_features} initial features. See :func:`densenet`.")
    return register(default_name)(build)


densenet121 = _densenet("densenet121", (6, 12, 24, 16), 32, 64)
densenet169 = _densenet("densenet169", (6, 12, 32, 32), 32, 64)
densenet201 = _densenet("densenet201", (6, 12, 48, 32), 32, 64)
densenet161 = _densenet("densenet161", (6, 12, 36, 24), 48, 96)
