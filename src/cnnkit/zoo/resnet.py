"""ResNet (He et al. 2015) in torchvision's form, and the CIFAR ResNets of the same paper.

ImageNet ResNets (torchvision ``resnet18`` ... ``resnet152``, v1.5: the stride of a bottleneck
sits on its 3x3 convolution): conv7x7/2 -> BN -> ReLU -> maxpool3x3/2 -> four stages of
basic (2 convs) or bottleneck (1x1, 3x3, 1x1 with 4x expansion) blocks with 64/128/256/512
base channels -> global average pool -> fc. Projection shortcuts (1x1 conv + BN,
``downsample``) where the shape changes. BN eps 1e-5 and momentum 0.1 (PyTorch), layer names
as torchvision's module paths.

Parameter counts (torchvision convention, 224x224x3, 1000 classes): ResNet-18 11,689,512;
-34 21,797,672; -50 25,557,032; -101 44,549,160; -152 60,192,808.

CIFAR ResNets (section 4.2 of the paper, ``resnet20``/``32``/``44``/``56``/``110``): 32x32
inputs, conv3x3 16 -> three stages of n basic blocks with 16/32/64 channels (n = (depth-2)/6)
-> global average pool -> fc. ``shortcut="A"`` (the paper's CIFAR choice, default):
parameter-free shortcuts that subsample by 2 and append zero channels; ``shortcut="B"``: 1x1
projection + BN where the shape changes. ResNet-20 with option A has 269,722 parameters
(torchvision convention; 0.27M in the paper).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..layers.base import KerasTensor
from ..models import Model
from .blocks import TORCH_BN, Norm, conv2d, global_pool, join, max_pool, scale_channels
from .registry import register

__all__ = ["basic_block", "bottleneck_block", "resnet", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152", "resnet_cifar", "resnet20", "resnet32", "resnet44",
           "resnet56", "resnet110"]


def _shortcut(x: KerasTensor, filters: int, strides: int, norm: Norm, name: str) -> KerasTensor:
    if strides == 1 and int(x.shape[-1]) == filters:
        return x
    s = conv2d(x, filters, 1, strides, 0, use_bias=False, name=join(name, "downsample.0"))
    return norm(join(name, "downsample.1"))(s)


def basic_block(x: KerasTensor, filters: int, strides: int = 1, *, norm: Norm = TORCH_BN,
                act: str = "relu", name: str) -> KerasTensor:
    """conv3x3(strides) -> BN -> act -> conv3x3 -> BN, plus the shortcut, then act
    (expansion 1)."""
    shortcut = _shortcut(x, filters, strides, norm, name)
    y = conv2d(x, filters, 3, strides, 1, use_bias=False, name=join(name, "conv1"))
    y = norm(join(name, "bn1"))(y)
    y = layers.Activation(act, name=join(name, "relu1"))(y)
    y = conv2d(y, filters, 3, 1, 1, use_bias=False, name=join(name, "conv2"))
    y = norm(join(name, "bn2"))(y)
    y = layers.Add(name=join(name, "add"))([y, shortcut])
    return layers.Activation(act, name=join(name, "relu"))(y)


def bottleneck_block(x: KerasTensor, filters: int, strides: int = 1, *, norm: Norm = TORCH_BN,
                     act: str = "relu", expansion: int = 4, name: str) -> KerasTensor:
    """conv1x1 -> BN -> act -> conv3x3(strides) -> BN -> act -> conv1x1 (filters*expansion)
    -> BN, plus the shortcut, then act (ResNet v1.5)."""
    out = filters * expansion
    shortcut = _shortcut(x, out, strides, norm, name)
    y = conv2d(x, filters, 1, 1, 0, use_bias=False, name=join(name, "conv1"))
    y = norm(join(name, "bn1"))(y)
    y = layers.Activation(act, name=join(name, "relu1"))(y)
    y = conv2d(y, filters, 3, strides, 1, use_bias=False, name=join(name, "conv2"))
    y = norm(join(name, "bn2"))(y)
    y = layers.Activation(act, name=join(name, "relu2"))(y)
    y = conv2d(y, out, 1, 1, 0, use_bias=False, name=join(name, "conv3"))
    y = norm(join(name, "bn3"))(y)
    y = layers.Add(name=join(name, "add"))([y, shortcut])
    return layers.Activation(act, name=join(name, "relu"))(y)


def resnet(block: str, stage_blocks: Sequence[int], input_shape: Sequence[int] = (224, 224, 3),
           classes: int = 1000, include_top: bool = True, pooling: str | None = None,
           classifier_activation: Any = None, width_mult: float = 1.0,
           norm: Norm = TORCH_BN, name: str = "resnet") -> Model:
    """A torchvision-form ResNet.

    Args:
        block: "basic" or "bottleneck".
        stage_blocks: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
        input_shape: (H, W, C) without the batch axis.
        classes: outputs of the final ``fc`` layer.
        include_top: with the pooling + fc head (else the last feature map, see ``pooling``).
        pooling: for ``include_top=False``: None, "avg" or "max".
        classifier_activation: None for logits (torchvision) or e.g. "softmax".
        width_mult: scales every channel count (1.0 = published; smaller for quick tests).
        norm: normalisation factory (default PyTorch BatchNorm2d).
    """
    if block not in ("basic", "bottleneck"):
        raise ValueError(f"resnet block must be 'basic' or 'bottleneck', got {block!r}")
    fn = basic_block if block == "basic" else bottleneck_block
    inputs = layers.Input(tuple(input_shape), name="input")
    x = conv2d(inputs, scale_channels(64, width_mult), 7, 2, 3, use_bias=False, name="conv1")
    x = norm("bn1")(x)
    x = layers.ReLU(name="relu")(x)
    x = max_pool(x, 3, 2, 1, name="maxpool")
    for i, (base, n) in enumerate(zip((64, 128, 256, 512), stage_blocks, strict=True)):
        for j in range(n):
            strides = 2 if i > 0 and j == 0 else 1
            x = fn(x, scale_channels(base, width_mult), strides, norm=norm,
                   name=f"layer{i + 1}.{j}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="fc")(x)
    else:
        x = global_pool(x, pooling, "avgpool")
    return Model(inputs, x, name=name)


def _imagenet(block: str, stages: tuple[int, ...], default_name: str):
    def build(input_shape: Sequence[int] = (224, 224, 3), classes: int = 1000,
              include_top: bool = True, pooling: str | None = None,
              classifier_activation: Any = None, width_mult: float = 1.0,
              name: str = default_name) -> Model:
        return resnet(block, stages, input_shape, classes, include_top, pooling,
                      classifier_activation, width_mult, name=name)

    build.__name__ = default_name
    build.__doc__ = (f"{default_name} (torchvision form): {block} blocks {stages}. See "
                     f":func:`resnet` for the arguments.")
    return register(default_name)(build)


resnet18 = _imagenet("basic", (2, 2, 2, 2), "resnet18")
resnet34 = _imagenet("basic", (3, 4, 6, 3), "resnet34")
resnet50 = _imagenet("bottleneck", (3, 4, 6, 3), "resnet50")
resnet101 = _imagenet("bottleneck", (3, 4, 23, 3), "resnet101")
resnet152 = _imagenet("bottleneck", (3, 8, 36, 3), "resnet152")


# ----- CIFAR ResNets ---------------------------------------------------------------------------
def _cifar_block(x: KerasTensor, filters: int, strides: int, shortcut: str, norm: Norm,
                 name: str) -> KerasTensor:
    cin = int(x.shape[-1])
    if strides == 1 and cin == filters:
        short = x
    elif shortcut == "A":
        if filters != 2 * cin:
            raise ValueError(f"option A shortcuts double the channels; block {name} goes from "
                             f"{cin} to {filters}")
        sub = layers.MaxPooling2D(1, strides=strides, name=join(name, "shortcut_subsample"))(x)
        zeros = layers.Subtract(name=join(name, "shortcut_zeros"))([sub, sub])
        short = layers.Concatenate(name=join(name, "shortcut"))([sub, zeros])
    elif shortcut == "B":
        short = conv2d(x, filters, 1, strides, 0, use_bias=False,
                       name=join(name, "downsample.0"))
        short = norm(join(name, "downsample.1"))(short)
    else:
        raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")
    y = conv2d(x, filters, 3, strides, 1, use_bias=False, name=join(name, "conv1"))
    y = norm(join(name, "bn1"))(y)
    y = layers.ReLU(name=join(name, "relu1"))(y)
    y = conv2d(y, filters, 3, 1, 1, use_bias=False, name=join(name, "conv2"))
    y = norm(join(name, "bn2"))(y)
    y = layers.Add(name=join(name, "add"))([y, short])
    return layers.ReLU(name=join(name, "relu"))(y)


def resnet_cifar(depth: int = 20, input_shape: Sequence[int] = (32, 32, 3), classes: int = 10,
                 shortcut: str = "A", include_top: bool = True, pooling: str | None = None,
                 classifier_activation: Any = None, width_mult: float = 1.0,
                 norm: Norm = TORCH_BN, name: str | None = None) -> Model:
    """The CIFAR-10 ResNet of He et al. (2015, section 4.2) with ``depth = 6n + 2`` layers:
    conv3x3 16 -> 3 stages of n basic blocks (16, 32, 64 channels; the 2nd and 3rd start with
    stride 2) -> global average pool -> fc. ``shortcut`` "A" (paper) or "B" (projection)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n + 2 (20, 32, 44, 56, 110, ...), "
                         f"got {depth}")
    n = (depth - 2) // 6
    inputs = layers.Input(tuple(input_shape), name="input")
    x = conv2d(inputs, scale_channels(16, width_mult), 3, 1, 1, use_bias=False, name="conv1")
    x = norm("bn1")(x)
    x = layers.ReLU(name="relu")(x)
    for i, base in enumerate((16, 32, 64)):
        for j in range(n):
            strides = 2 if i > 0 and j == 0 else 1
            x = _cifar_block(x, scale_channels(base, width_mult), strides, shortcut, norm,
                             f"layer{i + 1}.{j}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="fc")(x)
    else:
        x = global_pool(x, pooling, "avgpool")
    return Model(inputs, x, name=name or f"resnet{depth}")


def _cifar(depth: int):
    def build(input_shape: Sequence[int] = (32, 32, 3), classes: int = 10, shortcut: str = "A",
              include_top: bool = True, pooling: str | None = None,
              classifier_activation: Any = None, width_mult: float = 1.0,
              name: str | None = None) -> Model:
        return resnet_cifar(depth, input_shape, classes, shortcut, include_top, pooling,
                            classifier_activation, width_mult, name=name)

    build.__name__ = f"resnet{depth}"
    build.__doc__ = (f"CIFAR ResNet-{depth} ({(depth - 2) // 6} blocks per stage). See "
                     f":func:`resnet_cifar`.")
    return register(f"resnet{depth}")(build)


resnet20 = _cifar(20)
resnet32 = _cifar(32)
resnet44 = _cifar(44)
resnet56 = _cifar(56)
resnet110 = _cifar(110)
