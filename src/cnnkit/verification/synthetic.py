"""Extra training classes for metric learning, made without any image of the classes tested.

:func:`stroke_glyphs`: synthetic pen-stroke classes drawn from nothing but a random generator
(no image data), in the spirit of Omniglot's characters. A class is a prototype of 1-3 cubic
Bezier strokes, B(t) = (1-t)^3 P0 + 3(1-t)^2 t P1 + 3(1-t) t^2 P2 + t^3 P3, with control
points uniform in a 20 x 20 square. An instance moves
every control point by N(0, jitter^2) pixels, is scaled so that its larger side spans
``box`` pixels and centred (as MNIST digits are), and is drawn with a pen of radius r:
pixel value clip(1 + r - dist(pixel, stroke), 0, 1).

:func:`chimera_classes`: new classes joined from halves of the given labelled images (the
top half of one label's image over the bottom half of another's, or left and right), each
also in quarter turns.
"""

from __future__ import annotations

import numpy as np

__all__ = ["stroke_glyphs", "chimera_classes"]


def _bezier(cp: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points (..., T, 2) of the cubic Bezier curves with control points cp (..., 4, 2)."""
    t = t[:, None]
    w = ((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3)
    return sum(wk * cp[..., k:k + 1, :] for k, wk in enumerate(w))


def _draw(points: np.ndarray, radius: np.ndarray, size: int) -> np.ndarray:
    """Images (n, size, size): each row's polyline points (n, M, 2) drawn with its pen."""
    yy, xx = np.mgrid[0:size, 0:size]
    pix = np.stack([yy.ravel(), xx.ravel()], 1).astype(np.float32)  # (P, 2)
    # |p - q|^2 = |p|^2 + |q|^2 - 2 p.q, as one matrix product per image
    d2 = ((pix ** 2).sum(1)[None, :, None] + (points ** 2).sum(2)[:, None, :]
          - 2 * np.matmul(pix, points.transpose(0, 2, 1)))
    dist = np.sqrt(np.maximum(d2.min(2), 0))
    return np.clip(1 + radius[:, None] - dist, 0, 1).reshape(-1, size, size)


def stroke_glyphs(n_classes: int, per_class: int, rng: np.random.Generator, size: int = 28,
                  jitter: float = 0.9, box: tuple[float, float] = (15, 20),
                  radius: tuple[float, float] = (0.4, 1.1)
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): ``n_classes`` x ``per_class`` glyphs, float32 (N, size, size, 1) in [0, 1], and
    their class ids 0..n_classes-1 (rows grouped by class). Seeded by ``rng`` alone."""
    if n_classes < 1 or per_class < 1:
        raise ValueError(f"stroke_glyphs expects n_classes >= 1 and per_class >= 1, got "
                         f"{n_classes} and {per_class}")
    if not 0 < box[0] <= box[1] <= size:
        raise ValueError(f"stroke_glyphs expects 0 < box[0] <= box[1] <= size ({size}), "
                         f"got {box}")
    t = np.linspace(0.0, 1.0, 64)
    xs = []
    for n_strokes in rng.integers(1, 4, n_classes):
        proto = rng.uniform(0, 20, (n_strokes, 4, 2))
        cp = proto[None] + rng.normal(0, jitter, (per_class, *proto.shape))
        pts = _bezier(cp, t).reshape(per_class, -1, 2)
        lo, hi = pts.min(1, keepdims=True), pts.max(1, keepdims=True)
        scale = rng.uniform(*box, (per_class, 1, 1)) / np.maximum(
            (hi - lo).max(2, keepdims=True), 1e-6)
        pts = ((pts - (lo + hi) / 2) * scale + (size - 1) / 2).astype(np.float32)
        xs.append(_draw(pts, rng.uniform(*radius, per_class).astype(np.float32), size))
    x = np.concatenate(xs)[..., None].astype(np.float32)
    return x, np.repeat(np.arange(n_classes), per_class)


def chimera_classes(x: np.ndarray, y: np.ndarray, per_class: int, rng: np.random.Generator,
                    turns: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): for each split (rows, then columns), each ordered pair of distinct labels
    (a, b) and each of ``turns`` quarter turns k, one class of ``per_class`` images: the
    first half (top rows or left columns) of a random image of label a joined to the second
    half of a random image of label b, turned k times; ids 0..C-1 in that order. ``x`` is
    (N, H, W[, C]); the same joined images are used for every turn."""
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if x.ndim < 3 or len(x) != y.size:
        raise ValueError(f"chimera_classes expects images (N, H, W[, C]) with one label each, "
                         f"got shape {x.shape} and {y.size} labels")
    labels = np.unique(y)
    if labels.size < 2 or per_class < 1 or not 1 <= turns <= 4:
        raise ValueError(f"chimera_classes needs >= 2 labels, per_class >= 1 and 1 <= turns "
                         f"<= 4, got {labels.size}, {per_class} and {turns}")
    xs = []
    for axis in (1, 2):
        half = x.shape[axis] // 2
        for a in labels:
            for b in labels[labels != a]:
                im = x[rng.choice(np.flatnonzero(y == a), per_class)].copy()
                second = x[rng.choice(np.flatnonzero(y == b), per_class)]
                if axis == 1:
                    im[:, half:] = second[:, half:]
                else:
                    im[:, :, half:] = second[:, :, half:]
                xs += [np.rot90(im, k, axes=(1, 2)) for k in range(turns)]
    return np.concatenate(xs), np.repeat(np.arange(len(xs)), per_class)
