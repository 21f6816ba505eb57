"""PNG plots with matplotlib (an optional dependency: ``pip install cnnkit[plots]``).

Figures are drawn with the non-interactive Agg backend and written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..files import atomic_write


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("matplotlib is not installed: pip install 'cnnkit[plots]'") from None
    return plt


def _save(fig: Any, path: Any) -> None:
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100, bbox_inches="tight")


LR_KEYS = ("learning_rate", "lr")


def plot_history(history: dict[str, Sequence[float]], path: Any) -> None:
    """Loss (left) and every other metric (middle) per epoch, training solid and held-out
    (``val_``) dashed; the learning rate (right) when the history has one."""
    plt = _pyplot()
    lr_key = next((k for k in LR_KEYS if k in history), None)
    fig, axes = plt.subplots(1, 3 if lr_key else 2, figsize=(15 if lr_key else 10, 4))
    ax_loss, ax_metric = axes[0], axes[1]
    for key, values in history.items():
        if key.startswith("val_") or key in LR_KEYS:
            continue
        ax = ax_loss if key == "loss" else ax_metric
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o", label=key)
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="s", linestyle="--",
                    label=f"held-out {key}")
    ax_loss.set_title("loss")
    ax_metric.set_title("metrics")
    if lr_key:
        lr = history[lr_key]
        axes[2].plot(np.arange(1, len(lr) + 1), lr, marker="o", color="tab:green")
        axes[2].set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(ax.lines) > 1:
            ax.legend()
    _save(fig, path)
    plt.close(fig)


def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str] | None, path: Any,
                          normalize: bool = True) -> None:
    """Heat map of a confusion matrix (rows: true class, columns: predicted)."""
    plt = _pyplot()
    cm = np.asarray(cm)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    k = cm.shape[0]
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    names += [str(i) for i in range(len(names), k)]
    fig, ax = plt.subplots(figsize=(1 + 0.6 * k, 1 + 0.6 * k))
    ax.imshow(shown, cmap="Blues", vmin=0)
    ax.set_xticks(range(k), names[:k], rotation=45, ha="right")
    ax.set_yticks(range(k), names[:k])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if shown[i, j] > 0.5 * shown.max() else "black")
    _save(fig, path)
    plt.close(fig)
