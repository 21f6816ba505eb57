"""Argument handling shared by the Keras-style losses (losses.py) and the PyTorch-style
criteria (torch_losses.py): the prediction as a float Tensor, targets as constant arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..ops.loss import match_shape

__all__ = ["prediction", "target", "same_shape", "class_ids"]


def prediction(owner: str, y_pred: Any) -> Tensor:
    """``y_pred`` as a Tensor of rank >= 1 (integer input becomes float32)."""
    t = y_pred if isinstance(y_pred, Tensor) else Tensor(np.asarray(y_pred))
    if not np.issubdtype(t.dtype, np.floating):
        t = Tensor(t.data.astype(np.float32))
    if t.ndim < 1:
        raise ValueError(f"{owner} expects y_pred of rank >= 1 (N, ...), got a scalar")
    return t


def target(owner: str, y_true: Any, dtype: np.dtype) -> np.ndarray:
    """``y_true`` as a constant numeric array in ``dtype``."""
    arr = np.asarray(getattr(y_true, "data", y_true))
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{owner} expects numeric y_true, got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def same_shape(owner: str, target: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``target`` in ``shape``, allowing a trailing axis of 1 on either side."""
    return match_shape(owner, "y_true", target, shape)


def class_ids(owner: str, y_true: Any, y_pred: Tensor, ignore_class: int | None = None
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer labels of shape y_pred.shape[:-1] and the mask of labels that count.

    Raises ValueError naming the first label outside [0, C).
    """
    lab = np.asarray(getattr(y_true, "data", y_true))
    shape = y_pred.shape[:-1]
    if lab.shape == shape + (1,):
        lab = lab.reshape(shape)
    if lab.shape != shape:
        raise ValueError(f"{owner} expects integer labels of shape {shape} for y_pred of shape "
                         f"{y_pred.shape}, got shape {lab.shape}")
    if np.issubdtype(lab.dtype, np.floating):
        whole = np.mod(lab, 1) == 0
        if not whole.all():
            raise ValueError(f"{owner}: labels must be whole numbers, got {lab[~whole].flat[0]}")
    elif not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == np.bool_):
        raise TypeError(f"{owner}: labels must be integers, got dtype {lab.dtype}")
    lab = lab.astype(np.int64)
    mask = None if ignore_class is None else lab != ignore_class
    n = y_pred.shape[-1]
    bad = (lab < 0) | (lab >= n)
    if mask is not None:
        bad &= mask
    if bad.any():
        raise ValueError(f"{owner}: label {lab[bad].flat[0]} is out of range for {n} classes "
                         f"(labels must lie in [0, {n}))")
    if mask is not None:
        lab = np.where(mask, lab, 0)
    return lab, mask
