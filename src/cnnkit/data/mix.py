"""Sample-mixing augmentations: Mixup and CutMix, which mix images and their labels.

Each sample i is paired with sample perm[i] of the same batch (one random permutation per
call) and gets its own mixing weight lam_i ~ Beta(alpha, alpha). Integer labels become one-hot
vectors (``num_classes`` is then required); soft or one-hot labels (N, K) are mixed as they
are. The mixed labels lam_i * y_i + (1 - lam_i) * y_perm[i] sum to 1 whenever the inputs do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .augment import Augmentation, Batch
from .erasing import box_masks
from .geometry import as_float

__all__ = ["Mixup", "CutMix", "one_hot"]


def one_hot(y: Any, num_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """Integer labels (N,) or (N, 1) -> (N, num_classes) one-hot rows."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"one_hot expects integer labels of shape (N,), got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                         f"[{y.min()}, {y.max()}]")
    out = np.zeros((len(y), num_classes), dtype=dtype)
    out[np.arange(len(y)), y.astype(np.int64)] = 1
    return out


def _soft_labels(y: Any, num_classes: int | None, where: str) -> np.ndarray:
    if y is None:
        raise ValueError(f"{where} mixes labels: call it with y (integer or one-hot labels)")
    y = np.asarray(y)
    is_int = np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_
    if is_int and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        if num_classes is None:
            raise ValueError(f"{where} got integer labels: pass num_classes so they can be "
                             f"one-hot encoded")
        return one_hot(y, num_classes)
    if y.ndim != 2:
        raise ValueError(f"{where} expects labels of shape (N,) (integers) or (N, K) "
                         f"(one-hot/soft), got {y.shape}")
    if num_classes is not None and y.shape[1] != num_classes:
        raise ValueError(f"{where}: labels have {y.shape[1]} classes, num_classes is "
                         f"{num_classes}")
    return as_float(y)


class Mixup(Augmentation):
    """Mixup (Zhang et al. 2018): x_i <- lam_i x_i + (1 - lam_i) x_perm[i], same for labels,
    lam_i ~ Beta(alpha, alpha) per sample. Returns float images and float labels (N, K)."""

    def __init__(self, alpha: float = 0.2, num_classes: int | None = None):
        if alpha <= 0:
            raise ValueError(f"Mixup: alpha must be > 0, got {alpha}")
        self.alpha, self.num_classes = float(alpha), num_classes

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        ys = _soft_labels(y, self.num_classes, "Mixup")
        n = x.shape[0]
        lam = rng.beta(self.alpha, self.alpha, n)
        perm = rng.permutation(n)
        xf = as_float(x)
        lx = lam.astype(xf.dtype)[:, None, None, None]
        ly = lam.astype(ys.dtype)[:, None]
        return lx * xf + (1 - lx) * xf[perm], ly * ys + (1 - ly) * ys[perm]

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "num_classes": self.num_classes}


class CutMix(Augmentation):
    """CutMix (Yun et al. 2019): paste a box from x_perm[i] into x_i. The box has side
    ratio sqrt(1 - lam_i) (lam_i ~ Beta(alpha, alpha)), a uniform random centre, and is clipped
    to the image; the label weight of the pasted image is the pasted area fraction
    a_i = box area / (H W): y_i <- (1 - a_i) y_i + a_i y_perm[i]. The image dtype is kept."""

    def __init__(self, alpha: float = 1.0, num_classes: int | None = None):
        if alpha <= 0:
            raise ValueError(f"CutMix: alpha must be > 0, got {alpha}")
        self.alpha, self.num_classes = float(alpha), num_classes

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        ys = _soft_labels(y, self.num_classes, "CutMix")
        n, h, w, _ = x.shape
        lam = rng.beta(self.alpha, self.alpha, n)
        perm = rng.permutation(n)
        cut = np.sqrt(1 - lam)
        bh = (h * cut).astype(np.int64)[:, None]
        bw = (w * cut).astype(np.int64)[:, None]
        cy, cx = rng.integers(0, h, (n, 1)), rng.integers(0, w, (n, 1))
        mask = box_masks(n, h, w, cy, cx, bh, bw)
        area = mask.mean(axis=(1, 2)).astype(ys.dtype)[:, None]
        out = np.where(mask[..., None], x[perm], x)
        return out, (1 - area) * ys + area * ys[perm]

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "num_classes": self.num_classes}
