"""Test-time augmentation: predict on several views of the inputs and combine the results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import geometry
from .augment import Augmentation, as_rng

__all__ = ["tta_predict", "TTA_VIEWS"]


def _identity(x: np.ndarray) -> np.ndarray:
    return x


#: Named deterministic views for ``tta_predict``.
TTA_VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": _identity,
    "horizontal_flip": geometry.flip_left_right,
    "vertical_flip": geometry.flip_up_down,
    "rot180": lambda x: geometry.flip_up_down(geometry.flip_left_right(x)),
}


def tta_predict(predict_fn: Callable[[np.ndarray], Any], x: Any,
                augmentations: Sequence[str | Callable[..., Any]] = ("identity",
                                                                     "horizontal_flip"),
                reduce: str | None = "mean",
                rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Combine ``predict_fn`` over augmented copies of ``x`` (N, H, W, C).

    Each entry of ``augmentations`` is a name from ``TTA_VIEWS`` ("identity",
    "horizontal_flip", "vertical_flip", "rot180"), an ``Augmentation`` (called as
    ``aug(x, None, rng)``), or any callable ``f(x) -> x`` (or ``-> (x, y)``). ``predict_fn`` is
    e.g. ``model.predict``. ``reduce`` is "mean", "max" or None (stacked, shape (A, N, ...)).
    """
    if reduce not in ("mean", "max", None):
        raise ValueError(f"tta_predict: reduce must be 'mean', 'max' or None, got {reduce!r}")
    x = geometry.check_images(x, "tta_predict")
    if not augmentations:
        raise ValueError("tta_predict: augmentations must not be empty")
    gen = as_rng(rng)
    preds = []
    for aug in augmentations:
        if isinstance(aug, str):
            if aug not in TTA_VIEWS:
                raise ValueError(f"tta_predict: unknown view {aug!r}; known: "
                                 f"{', '.join(TTA_VIEWS)}")
            view = TTA_VIEWS[aug](x)
        elif isinstance(aug, Augmentation):
            view = aug(x, None, gen)[0]
        elif callable(aug):
            view = aug(x)
            if isinstance(view, tuple):
                view = view[0]
        else:
            raise TypeError(f"tta_predict: augmentations must be names or callables, got "
                            f"{type(aug).__name__}")
        preds.append(np.asarray(predict_fn(np.ascontiguousarray(view))))
    stacked = np.stack(preds)
    if reduce == "mean":
        return stacked.mean(axis=0)
    if reduce == "max":
        return stacked.max(axis=0)
    return stacked
