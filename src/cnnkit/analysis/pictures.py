"""PNG pictures of a model at work (matplotlib, optional: ``pip install cnnkit[plots]``): an
explanation (input, heat map overlay, top classes), feature-map grids, the first layer's
filters, activation maximisation, and an embedding of the penultimate layer coloured by class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .inspect import activation_maximisation, feature_maps, first_layer_filters, pca, tsne
from .plots import _pyplot, _save


def _show(ax: Any, img: np.ndarray) -> None:
    img = np.asarray(img, dtype=np.float32)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_explanation(image: np.ndarray, heat: np.ndarray, probs: np.ndarray,
                     class_names: Sequence[str] | None, path: Any, title: str = "",
                     top_k: int = 5) -> None:
    """Three panels: the input, the heat map over it, the top-k class probabilities."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6),
                             gridspec_kw={"width_ratios": [1, 1, 1.2]})
    _show(axes[0], image)
    axes[0].set_title("input")
    _show(axes[1], image)
    axes[1].imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1)
    axes[1].set_title(title or "heat map")
    top = np.argsort(-probs)[:top_k][::-1]
    names = [class_names[i] if class_names and i < len(class_names) else str(i) for i in top]
    axes[2].barh(range(len(top)), probs[top], color="tab:blue")
    axes[2].set_yticks(range(len(top)), names)
    axes[2].set_xlim(0, 1)
    axes[2].set_title("top classes")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _grid(tiles: np.ndarray, path: Any, title: str, cols: int | None = None) -> None:
    plt = _pyplot()
    n = len(tiles)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows + 0.4),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i < n:
            _show(ax, tiles[i])
        else:
            ax.axis("off")
    fig.suptitle(title)
    _save(fig, path)
    plt.close(fig)


def plot_feature_maps(model: Any, image: np.ndarray, layer: str, path: Any,
                      max_channels: int = 64) -> None:
    """Every channel (up to ``max_channels``) of ``layer``'s output for one image."""
    fm = feature_maps(model, np.asarray(image, np.float32)[None], layer)[0]
    if fm.ndim != 3:
        raise ValueError(f"layer '{layer}' gives shape {fm.shape}; feature maps need a "
                         f"(height, width, channels) output")
    tiles = np.moveaxis(fm[..., :max_channels], -1, 0)
    _grid(tiles, path, f"{layer}: {fm.shape[0]}x{fm.shape[1]}, {fm.shape[2]} channels")


def plot_filters(model: Any, path: Any) -> None:
    """The first convolution's kernels, one tile per output channel (RGB for 3 inputs)."""
    k = first_layer_filters(model)
    if k.shape[-1] not in (1, 3):
        k = k.mean(-1, keepdims=True)
    _grid(k, path, f"first-layer filters ({k.shape[1]}x{k.shape[2]}, {len(k)} filters)")


def plot_activation_maximisation(model: Any, layer: str, channels: Sequence[int], path: Any,
                                 steps: int = 64) -> None:
    """Inputs that maximise each of ``channels`` of ``layer``."""
    x, _ = activation_maximisation(model, layer, channels, steps=steps)
    _grid(x, path, f"{layer}: inputs maximising channels {list(channels)}")


def plot_embedding(features: np.ndarray, labels: np.ndarray, path: Any,
                   method: str = "pca", class_names: Sequence[str] | None = None) -> None:
    """2-D PCA or t-SNE of ``features`` (N, ...), one colour per class."""
    if method not in ("pca", "tsne"):
        raise ValueError(f"embedding method must be 'pca' or 'tsne', got {method!r}")
    y = pca(features) if method == "pca" else tsne(features)[0]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    labels = np.asarray(labels)
    for c in np.unique(labels):
        sel = labels == c
        name = class_names[c] if class_names and c < len(class_names) else str(c)
        ax.scatter(y[sel, 0], y[sel, 1], s=8, label=name)
    ax.legend(markerscale=2, fontsize=8, loc="best")
    ax.set_title(f"{method.upper()} of the penultimate layer")
    _save(fig, path)
    plt.close(fig)
