"""Connected components of label maps, and a per-component vote: every foreground blob (one
handwritten digit, say) takes the single class that most of its pixels were given, so a
stroke is not split between two digit classes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["connected_components", "blob_extents", "component_vote"]


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


def blob_extents(comp: np.ndarray, ids: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """(len(ids), 2) int: the height and width of each blob's bounding box,
    max(row) - min(row) + 1 and max(col) - min(col) + 1 over its pixels."""
    rows, cols = np.nonzero(comp >= 0)[1:]
    ext = np.zeros((len(ids), 2), np.int64)
    for k, v in enumerate((rows, cols)):
        lo = np.full(len(ids), comp.shape[1 + k], np.int64)
        hi = np.full(len(ids), -1, np.int64)
        np.minimum.at(lo, inverse, v)
        np.maximum.at(hi, inverse, v)
        ext[:, k] = hi - lo + 1
    return ext


def component_vote(labels: np.ndarray, num_classes: int, scores: np.ndarray | None = None,
                   max_extent: int | None = None) -> np.ndarray:
    """Label maps (N, H, W) where each blob of non-zero labels takes one class: the one with the
    largest summed ``scores`` (N, H, W, C) over the blob, or (None) the most pixels. With
    ``max_extent``, only blobs whose bounding box is at most that many pixels high and wide
    (one object, not several touching ones) are voted; larger blobs keep their labels."""
    labels = np.asarray(labels)
    comp = connected_components(labels > 0)
    fg = comp >= 0
    ids, inverse = np.unique(comp[fg], return_inverse=True)
    votes = np.zeros((len(ids), num_classes))
    if scores is None:
        np.add.at(votes, (inverse, labels[fg].astype(np.int64)), 1.0)
    else:
        np.add.at(votes, inverse, np.asarray(scores, np.float64)[fg])
    votes[:, 0] = -np.inf  # a blob stays foreground
    voted = np.argmax(votes, axis=1)[inverse].astype(labels.dtype)
    if max_extent is not None:
        small = (blob_extents(comp, ids, inverse) <= max_extent).all(axis=1)
        voted = np.where(small[inverse], voted, labels[fg])
    out = labels.copy()
    out[fg] = voted
    return out
