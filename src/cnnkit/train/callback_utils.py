"""Helpers shared by the callback modules: a log value as a float, the monitored quantity
and whether it should go down or up, and printing a message."""

from __future__ import annotations

import sys
import warnings
from typing import Any, TextIO

import numpy as np

from .callback_base import Logs


def _scalar(value: Any) -> float:
    """A log value (float, NumPy scalar or array, Tensor) as a Python float."""
    arr = np.asarray(getattr(value, "data", value))
    if arr.size != 1:
        raise ValueError(f"expected a single number in the logs, got an array of shape "
                         f"{arr.shape}")
    return float(arr.reshape(()))


_MAX_WORDS = ("acc", "precision", "recall", "f1", "fbeta", "auc", "iou", "dice", "psnr",
              "ssim", "r2")


def _direction(owner: str, monitor: str, mode: str) -> str:
    """'min' or 'max' for ``mode`` ("min", "max", or "auto": max for accuracy-like names)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.lower()
    if name.endswith("loss"):
        return "min"
    return "max" if any(w in name for w in _MAX_WORDS) else "min"


def _monitor_value(owner: str, monitor: str, logs: Logs) -> float | None:
    logs = logs or {}
    if monitor not in logs:
        warnings.warn(f"{owner}: the monitored quantity '{monitor}' is not in the logs "
                      f"(available: {', '.join(sorted(logs)) or 'none'}); skipping this epoch",
                      stacklevel=3)
        return None
    return _scalar(logs[monitor])


def _say(message: str, stream: TextIO | None = None) -> None:
    out = sys.stdout if stream is None else stream
    out.write(message + "\n")
    out.flush()
