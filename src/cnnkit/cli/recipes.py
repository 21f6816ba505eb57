"""Training recipes: the default settings per data set, the named augmentation pipelines and
learning-rate schedules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import UsageError

DEFAULTS = {
    "mnist5k": {"model": "mnist_cnn", "epochs": 15, "batch_size": 64, "lr": 2e-3,
                "schedule": "cosine", "augment": "light"},
    "fashion-mnist": {"model": "mnist_cnn", "epochs": 10, "batch_size": 128, "lr": 2e-3,
                      "schedule": "cosine", "augment": "flip"},
    "mnist": {"model": "mnist_cnn", "epochs": 4, "batch_size": 128, "lr": 2e-3,
              "schedule": "cosine", "augment": "none"},
    "folder": {"model": "mnist_cnn", "epochs": 15, "batch_size": 32, "lr": 1e-3,
               "schedule": "cosine", "augment": "flip"},
}
AUGMENTS = ("none", "light", "flip", "standard")
SCHEDULES = ("none", "constant", "cosine", "onecycle", "step", "exponential")


def check_names(recipe: dict, optimizer: str) -> None:
    """Reject an unknown --augment, --schedule or --optimizer before any work starts."""
    from ..train import optimizers

    if recipe["augment"] not in AUGMENTS:
        raise UsageError(f"unknown --augment {recipe['augment']!r}: use none, light, flip or "
                         f"standard")
    if recipe["schedule"] not in SCHEDULES:
        raise UsageError(f"unknown --schedule {recipe['schedule']!r}: use none, cosine, "
                         f"onecycle, step or exponential")
    try:
        optimizers.get(optimizer, learning_rate=recipe["lr"])
    except ValueError as e:
        raise UsageError(f"--optimizer: {e}") from None


def augmentation(kind: str, image_shape: Sequence[int]) -> Any:
    """The named augmentation pipeline for images of ``image_shape`` (H, W, C)."""
    from .. import data

    h, w = int(image_shape[0]), int(image_shape[1])
    if kind == "none":
        return None
    if kind == "light":
        return data.Compose([data.RandomAffine(degrees=10, translate=(0.1, 0.1),
                                               scale=(0.9, 1.1))])
    if kind == "flip":
        return data.Compose([data.RandomFlip("horizontal"),
                             data.RandomCrop(h, w, padding=2)])
    if kind == "standard":
        return data.Compose([data.RandomFlip("horizontal"),
                             data.RandomAffine(degrees=10, translate=(0.1, 0.1),
                                               scale=(0.9, 1.1))])
    raise UsageError(f"unknown --augment {kind!r}: use none, light, flip or standard")


def schedule(kind: str, lr: float, steps: int) -> Any:
    """The learning rate: a constant or the named schedule over ``steps`` steps."""
    from ..train import schedules

    if kind in ("none", "constant"):
        return lr
    if kind == "cosine":
        return schedules.CosineDecay(lr, steps)
    if kind == "onecycle":
        return schedules.OneCycle(lr, steps)
    if kind == "step":
        return schedules.StepDecay(lr, max(1, steps // 3), 0.1)
    if kind == "exponential":
        return schedules.ExponentialDecay(lr, max(1, steps), 0.01)
    raise UsageError(f"unknown --schedule {kind!r}: use none, cosine, onecycle, step or "
                     f"exponential")
