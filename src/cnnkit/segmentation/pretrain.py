"""Pretraining a U-Net's encoder as a digit classifier, so that the segmentation network starts
out knowing which digit a stroke belongs to (a U-Net trained from scratch on a few thousand
scenes separates strokes from the photo well before it learns digit identity).

``digit_crops`` paints one real digit (mnist5k, the split's own digits) onto a crop of a
photograph exactly as ``make_scenes`` does, with the same train / test regions of the photos;
``encoder_classifier`` is the zoo U-Net's contracting path and bottleneck (the same layer
names) followed by global average pooling and a dense layer; ``copy_encoder`` moves its
weights into a U-Net by layer name; ``pretrain_encoder`` does all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import layers
from ..models import Model
from ..zoo.unet import double_conv
from .data import _crop, _paint, scene_sources

__all__ = ["digit_crops", "encoder_classifier", "copy_encoder", "pretrain_encoder"]


def digit_crops(n: int, seed: int, split: str = "train", size: int = 48,
                backgrounds: list[np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, size, size, 3), labels int64 (n,) in 0..9): one digit (a frame of
    30-44 pixels at a random spot) on a photo crop, with the scenes' colours and noise."""
    photos, x, y, rng = scene_sources("digit_crops", seed, split, size, backgrounds)
    images = np.zeros((n, size, size, 3), np.uint8)
    labels = np.zeros(n, np.int64)
    mask = np.zeros((size, size), np.uint8)
    for i in range(n):
        img = _crop(rng, photos[int(rng.integers(len(photos)))], split, size)
        j = int(rng.integers(len(x)))
        mask[...] = 0
        _paint(rng, img, mask, x[j] / 255.0, 1)
        img += rng.normal(0, 0.02, img.shape)
        images[i] = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
        labels[i] = int(y[j])
    return images, labels


def encoder_classifier(input_shape: Sequence[int] = (48, 48, 3), depth: int = 3,
                       base_filters: int = 16, classes: int = 10, batch_norm: bool = True,
                       rescale: float | None = 1 / 255) -> Model:
    """The zoo U-Net's encoder (``down1`` .. ``down{depth}``, ``bottleneck``; same names and
    shapes) -> global average pooling -> dense logits over ``classes``."""
    inputs = layers.Input(tuple(input_shape), name="input")
    x = layers.Rescaling(rescale, name="rescale")(inputs) if rescale is not None else inputs
    for d in range(depth):
        x = double_conv(x, base_filters * 2 ** d, batch_norm=batch_norm, name=f"down{d + 1}")
        x = layers.MaxPooling2D(2, name=f"down{d + 1}.pool")(x)
    x = double_conv(x, base_filters * 2 ** depth, batch_norm=batch_norm, name="bottleneck")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return Model(inputs, layers.Dense(classes, name="classifier")(x), name="unet_encoder")


def copy_encoder(source: Any, unet: Any) -> int:
    """Copy the weights of every layer of ``source`` that ``unet`` has under the same name
    (shapes must agree); returns the number of layers copied."""
    names = {layer.name: layer for layer in unet.layers}
    n = 0
    for layer in source.layers:
        target = names.get(layer.name)
        if target is not None and layer.weights:
            target.set_weights(layer.get_weights())
            n += 1
    return n


def pretrain_encoder(unet: Any, images: np.ndarray, labels: np.ndarray, epochs: int,
                     depth: int, base_filters: int, batch_size: int = 64, lr: float = 3e-3,
                     seed: int = 0, verbose: int = 2) -> float:
    """Train ``encoder_classifier`` (Adam, cosine decay) on ``images`` and ``labels`` and copy
    its encoder into ``unet``; returns the last epoch's training accuracy."""
    from ..train import losses, optimizers, schedules

    clf = encoder_classifier(images.shape[1:], depth, base_filters, int(labels.max()) + 1)
    steps = -(-len(images) // batch_size) * epochs
    clf.compile(optimizer=optimizers.Adam(learning_rate=schedules.CosineDecay(lr, steps,
                                                                              alpha=0.05)),
                loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"], seed=seed)
    hist = clf.fit(images.astype(np.float32), labels, batch_size=batch_size, epochs=epochs,
                   verbose=verbose)
    if copy_encoder(clf, unet) != sum(1 for la in clf.layers if la.weights) - 1:
        raise ValueError("pretrain_encoder: the U-Net's encoder does not match (depth, "
                         "base_filters and batch_norm must be the U-Net's)")
    return float(hist.history["accuracy"][-1])
