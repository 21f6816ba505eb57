"""Connected components of label maps, and a per-component vote: every foreground blob (one
handwritten digit, say) takes the single class that most of its pixels were given, so a
stroke is not split between two digit classes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["connected_components", "component_vote"]


def connected_components(foreground: np.ndarray) -> np.ndarray:
    """Component ids (N, H, W) int64 of boolean maps (N, H, W), 8-connectivity: -1 off the
    foreground, else the smallest flat index (over the whole batch) of a pixel of the blob.
    Min-label propagation to the 8 neighbours, with pointer jumping, until nothing changes."""
    fg = np.asarray(foreground, bool)
    if fg.ndim != 3:
        raise ValueError(f"connected_components expects (N, H, W) maps, got {fg.shape}")
    n, h, w = fg.shape
    big = n * h * w
    lab = np.where(fg, np.arange(big).reshape(fg.shape), big)
    pad = np.full((n, h + 2, w + 2), big, np.int64)
    while True:
        pad[:, 1:-1, 1:-1] = lab
        best = lab.copy()
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                np.minimum(best, pad[:, dy:dy + h, dx:dx + w], out=best)
        new = np.where(fg, best, big)
        flat = np.append(new.ravel(), big)  # pointer jumping: a label's own label
        for _ in range(4):
            new = np.where(fg, flat[new], big)
        if np.array_equal(new, lab):
            return np.where(fg, lab, -1)
        lab = new


def component_vote(labels: np.ndarray, num_classes: int,
                   scores: np.ndarray | None = None) -> np.ndarray:
    """Label maps (N, H, W) where each blob of non-zero labels takes one class: the one with the
    largest summed ``scores`` (N, H, W, C) over the blob, or (None) the most pixels."""
    labels = np.asarray(labels)
    comp = connected_components(labels > 0)
    fg = comp >= 0
    ids, inverse = np.unique(comp[fg], return_inverse=True)
    if scores is None:
        votes = np.zeros((len(ids), num_classes))
        np.add.at(votes, (inverse, labels[fg].astype(np.int64)), 1.0)
    else:
        votes = np.zeros((len(ids), num_classes))
        np.add.at(votes, inverse, np.asarray(scores, np.float64)[fg])
    votes[:, 0] = -np.inf  # a blob stays foreground
    out = labels.copy()
    out[fg] = np.argmax(votes, axis=1)[inverse].astype(labels.dtype)
    return out
