"""The image warp behind cnnkit's geometric augmentations and preprocessing layers: one
vectorised, per-sample affine gather over batches (N, H, W, C).

Coordinates: pixel centres sit at integers; ``x`` is the column, ``y`` the row (pointing down).
A warp is given by its *inverse* map: output pixel (row i, column j) of sample n takes the input
value at ``(x', y', 1)^T = A[n] @ (j, i, 1)^T``, sampled bilinearly or at the nearest pixel.
Angles are in degrees, positive = counter-clockwise on screen. Used by :mod:`cnnkit.data.geometry`
and :mod:`cnnkit.layers.preprocessing` (which cannot import ``data``, a layer above them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_images", "as_float", "check_choice", "affine_transform", "sample",
           "affine_matrix", "warp_forward", "FILL_MODES", "INTERPOLATIONS"]

FILL_MODES = ("constant", "nearest", "reflect", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")


def check_images(x: Any, where: str) -> np.ndarray:
    """``x`` as an array of rank 4 (N, H, W, C), else ValueError naming ``where``."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{where} expects x of rank 4 (N, H, W, C), got rank {x.ndim} "
                         f"(shape {x.shape})")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise TypeError(f"{where} expects a numeric image array, got dtype {x.dtype}")
    return x


def as_float(x: np.ndarray) -> np.ndarray:
    """float32 and float64 arrays unchanged; any other dtype (uint8, ints, float16) -> float32."""
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


def check_choice(where: str, name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{where}: {name} must be one of {', '.join(map(repr, allowed))}, "
                         f"got {value!r}")
    return value


def _per_sample(value: Any, n: int, name: str) -> np.ndarray:
    """A scalar or an (N,) array as float64 of shape (N,)."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return np.full(n, float(v))
    if v.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) (one per sample), "
                         f"got shape {v.shape}")
    return v


def _map_index(idx: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Integer indices outside [0, size) folded back in: nearest (edge), reflect
    (d c b a | a b c d | d c b a) or wrap (periodic)."""
    if mode == "nearest":
        return np.clip(idx, 0, size - 1)
    if mode == "wrap":
        return np.mod(idx, size)
    m = np.mod(idx, 2 * size)
    return np.where(m >= size, 2 * size - 1 - m, m)


def _snap(c: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Coordinates within ``tol`` of an integer set to it (so 90-degree turns are exact)."""
    r = np.rint(c)
    return np.where(np.abs(c - r) < tol, r, c)


def affine_transform(x: Any, matrix: Any, output_shape: tuple[int, int] | None = None,
                     interpolation: str = "bilinear", fill_mode: str = "constant",
                     fill_value: float = 0.0) -> np.ndarray:
    """Warp every image by its own inverse affine map (one batched gather).

    out[n, i, j, :] = sum_k w_k * x[n, y_k, x_k, :] over the (up to) four pixels around
    (x', y') = A[n] @ (j, i, 1), with bilinear weights w = (1 - fx)(1 - fy), fx(1 - fy),
    (1 - fx) fy, fx fy; ``nearest`` takes the single pixel round(x', y'). Pixels outside the
    input take ``fill_value`` (``constant``) or a folded index (``nearest``, ``reflect``,
    ``wrap``).

    Args:
        x: images (N, H, W, C), any numeric dtype.
        matrix: (N, 2, 3) or (N, 3, 3) per-sample inverse maps, or one (2, 3)/(3, 3) for all.
        output_shape: (H_out, W_out), default (H, W).
    Returns:
        float32 images (float64 if ``x`` is float64) of shape (N, H_out, W_out, C).
    """
    x = check_images(x, "affine_transform")
    check_choice("affine_transform", "interpolation", interpolation, INTERPOLATIONS)
    check_choice("affine_transform", "fill_mode", fill_mode, FILL_MODES)
    n, h, w, _ = x.shape
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 2:
        m = np.broadcast_to(m, (n, *m.shape))
    if m.shape not in ((n, 2, 3), (n, 3, 3)):
        raise ValueError(f"affine_transform expects matrix of shape ({n}, 2, 3) or ({n}, 3, 3),"
                         f" got {m.shape}")
    ho, wo = (h, w) if output_shape is None else (int(output_shape[0]), int(output_shape[1]))
    if ho < 1 or wo < 1:
        raise ValueError(f"affine_transform: output_shape must be positive, got {(ho, wo)}")
    jj = np.arange(wo, dtype=np.float64)[None, None, :]
    ii = np.arange(ho, dtype=np.float64)[None, :, None]
    a = m[:, :2, :, None, None]
    sx = a[:, 0, 0] * jj + a[:, 0, 1] * ii + a[:, 0, 2]  # (N, Ho, Wo)
    sy = a[:, 1, 0] * jj + a[:, 1, 1] * ii + a[:, 1, 2]
    return sample(x, sx, sy, interpolation, fill_mode, fill_value)


def sample(x: np.ndarray, sx: np.ndarray, sy: np.ndarray, interpolation: str = "bilinear",
           fill_mode: str = "constant", fill_value: float = 0.0) -> np.ndarray:
    """Images (N, H, W, C) sampled at per-sample coordinates: column ``sx`` and row ``sy``,
    arrays broadcasting to (N, H_out, W_out); returns float (N, H_out, W_out, C)."""
    x = check_images(x, "sample")
    check_choice("sample", "interpolation", interpolation, INTERPOLATIONS)
    check_choice("sample", "fill_mode", fill_mode, FILL_MODES)
    n, h, w, c = x.shape
    sx, sy = np.broadcast_arrays(_snap(np.asarray(sx, np.float64)),
                                 _snap(np.asarray(sy, np.float64)))
    if sx.ndim != 3 or sx.shape[0] != n:
        raise ValueError(f"sample expects coordinates of shape ({n}, H_out, W_out), got "
                         f"{sx.shape}")
    xf = as_float(x)
    cols = _corners(sx, w, interpolation, fill_mode, xf.dtype)
    rows = _corners(sy, h, interpolation, fill_mode, xf.dtype)
    base = (np.arange(n, dtype=np.int64) * (h * w))[:, None, None]
    idx, wts = [], []
    for r, wr in rows:
        rbase = base + r * w
        for col, wc in cols:
            idx.append(rbase + col)
            wts.append(wr * wc)
    values = xf.reshape(n * h * w, c).take(np.stack(idx), axis=0)  # (K, N, Ho, Wo, C)
    out = values[0] * wts[0][..., None]
    for v, wt in zip(values[1:], wts[1:], strict=True):
        out += v * wt[..., None]
    if fill_mode == "constant" and fill_value != 0:
        out += (xf.dtype.type(fill_value) * (1 - sum(wts)))[..., None]
    return out


def _corners(coord: np.ndarray, size: int, interpolation: str, fill_mode: str,
             dtype: np.dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """Along one axis: the neighbouring integer indices of ``coord`` (folded into range) and
    their weights, [(floor, 1 - frac), (floor + 1, frac)] or [(round, 1)] for nearest; with
    ``constant`` fill an index outside [0, size) gets weight 0."""
    if interpolation == "nearest":
        pairs = [(np.floor(coord + 0.5).astype(np.int64), np.ones(coord.shape, dtype))]
    else:
        lo = np.floor(coord)
        frac = (coord - lo).astype(dtype)
        lo = lo.astype(np.int64)
        pairs = [(lo, 1 - frac), (lo + 1, frac)]
    out = []
    for i, wt in pairs:
        if fill_mode == "constant":
            wt = wt * ((i >= 0) & (i < size))
            i = np.clip(i, 0, size - 1)
        else:
            i = _map_index(i, size, fill_mode)
        out.append((i, wt))
    return out


def _eye(n: int) -> np.ndarray:
    return np.broadcast_to(np.eye(3), (n, 3, 3)).copy()


def affine_matrix(n: int, angle: Any = 0.0, tx: Any = 0.0, ty: Any = 0.0, scale_x: Any = 1.0,
                  scale_y: Any = 1.0, shear_x: Any = 0.0, shear_y: Any = 0.0) -> np.ndarray:
    """Forward maps (N, 3, 3) about the image centre: F = T(tx, ty) R(angle) Sh S.

    R = [[cos a, sin a], [-sin a, cos a]] (counter-clockwise on screen, y pointing down),
    Sh = [[1, shear_x], [shear_y, 1]] (shear factors, not angles), S = diag(scale_x, scale_y).
    Each argument is a scalar or one value per sample.
    """
    a = np.deg2rad(_per_sample(angle, n, "angle"))
    cos, sin = np.cos(a), np.sin(a)
    r = _eye(n)
    r[:, 0, 0], r[:, 0, 1], r[:, 1, 0], r[:, 1, 1] = cos, sin, -sin, cos
    sh = _eye(n)
    sh[:, 0, 1], sh[:, 1, 0] = _per_sample(shear_x, n, "shear_x"), _per_sample(shear_y, n,
                                                                                "shear_y")
    s = _eye(n)
    s[:, 0, 0], s[:, 1, 1] = _per_sample(scale_x, n, "scale_x"), _per_sample(scale_y, n,
                                                                              "scale_y")
    t = _eye(n)
    t[:, 0, 2], t[:, 1, 2] = _per_sample(tx, n, "tx"), _per_sample(ty, n, "ty")
    return t @ r @ sh @ s


def _inverse_about_centre(forward: np.ndarray, in_hw: tuple[int, int],
                          out_hw: tuple[int, int]) -> np.ndarray:
    """Inverse map in pixel coordinates for a forward map given about the image centres:
    A = T(c_in) F^-1 T(-c_out), with c = ((W - 1) / 2, (H - 1) / 2)."""
    n = forward.shape[0]
    c_in, c_out = _eye(n), _eye(n)
    c_in[:, 0, 2], c_in[:, 1, 2] = (in_hw[1] - 1) / 2, (in_hw[0] - 1) / 2
    c_out[:, 0, 2], c_out[:, 1, 2] = -(out_hw[1] - 1) / 2, -(out_hw[0] - 1) / 2
    return c_in @ np.linalg.inv(forward) @ c_out


def warp_forward(x: np.ndarray, forward: np.ndarray, interpolation: str, fill_mode: str,
                  fill_value: float) -> np.ndarray:
    hw = x.shape[1:3]
    return affine_transform(x, _inverse_about_centre(forward, hw, hw), None, interpolation,
                            fill_mode, fill_value)
