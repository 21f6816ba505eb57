"""Resizing, zero padding and cropping of the spatial axes of channels-last arrays.

Every resize here is separable: along spatial axis ``a`` the output is ``y = A_a x`` with an
interpolation matrix ``A_a`` of shape (out_a, in_a), so in 2-D ``y[:, :, :, c] = A_h x_c A_w^T``
and the backward pass is the transpose, ``dL/dx_c = A_h^T g_c A_w``. Row ``o`` of ``A`` holds
the weights with which output position ``o`` mixes the input positions:

- source coordinate of output index ``o`` (ONNX Resize ``coordinate_transformation_mode``):
  half_pixel ``(o + 0.5)/s - 0.5``; asymmetric ``o/s``; align_corners ``o (W-1)/(L-1)``;
  pytorch_half_pixel like half_pixel but -0.5 when L = 1; half_pixel_symmetric
  ``W/2 (1 - out/L) + (o + 0.5)/s - 0.5``; tf_crop_and_resize
  ``r0 (W-1) + o (r1 - r0)(W-1)/(L-1)``, where ``s`` is the scale, ``W`` the input length and
  ``L = s W`` the (real-valued) resized length;
- nearest: a single 1 at the rounded coordinate (round_prefer_floor/ceil, floor, ceil);
- linear: weight ``max(0, 1 - |i - x|)`` on the two neighbours; cubic: the Keys kernel
  ``(a+2)|d|^3 - (a+3)|d|^2 + 1`` for ``|d| <= 1``, ``a|d|^3 - 5a|d|^2 + 8a|d| - 4a`` for
  ``1 < |d| < 2`` on four neighbours; antialias stretches the kernel by ``1/s`` when
  downsampling and renormalises the weights to sum 1;
- input indices outside [0, W) are clamped to the edge (edge replication), or with
  ``exclude_outside`` dropped and the remaining weights renormalised.

Integer nearest upsampling (Keras UpSampling) is a repeat: each input value is copied into an
``s_1 x s_2 x ...`` block, and the backward pass sums the gradient over that block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Pairs = Sequence[tuple[int, int]]
# One spatial axis of a resize plan: (A, forward gather table, backward gather table), or None
# where the axis is left unchanged. A gather table (idx, w) lists for every output row its
# nonzero columns and their weights (w None: all weights 1); it replaces the dense product
# when the matrix is sparse enough for gathering to beat the matrix product.
AxisPlan = tuple[np.ndarray, "tuple[np.ndarray, np.ndarray | None] | None",
                 "tuple[np.ndarray, np.ndarray | None] | None"]

COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "half_pixel_symmetric", "align_corners",
                    "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
METHODS = ("nearest", "linear", "cubic")

# Gather instead of a matrix product when the input length is at least this many times the
# number of nonzeros per matrix row (measured: dense BLAS wins on short axes).
_GATHER_RATIO = 60


# ----- integer nearest upsampling (repeat) ----------------------------------------------------
def upsample_nearest_forward(x: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """y[n, i*s_1 + a, j*s_2 + b, ..., c] = x[n, i, j, ..., c] for 0 <= a < s_1, 0 <= b < s_2."""
    k = len(size)
    if x.shape[-1] < 8:  # few channels: per-axis repeat copies faster than one broadcast copy
        for i, s in enumerate(size):
            if s > 1:
                x = np.repeat(x, s, axis=1 + i)
        return x if any(s > 1 for s in size) else x.copy()
    spatial = x.shape[1:1 + k]
    expanded = x.reshape((x.shape[0],) + tuple(d for n in spatial for d in (n, 1))
                         + x.shape[1 + k:])
    blocks = tuple(d for n, s in zip(spatial, size, strict=True) for d in (n, s))
    out = np.broadcast_to(expanded, (x.shape[0],) + blocks + x.shape[1 + k:])
    return out.reshape((x.shape[0],) + tuple(n * s for n, s in zip(spatial, size, strict=True))
                       + x.shape[1 + k:])


def upsample_nearest_backward(g: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """dL/dx[n, i, j, ..., c] = sum over the block of g[n, i*s_1 + a, j*s_2 + b, ..., c]."""
    k = len(size)
    spatial = tuple(n // s for n, s in zip(g.shape[1:1 + k], size, strict=True))
    blocks = tuple(d for n, s in zip(spatial, size, strict=True) for d in (n, s))
    r = g.reshape((g.shape[0],) + blocks + g.shape[1 + k:])
    for i, s in enumerate(size):  # sum the block offsets one axis at a time (loop over taps)
        head = (slice(None),) * (2 + i)
        acc = r[head + (0,)]
        if s > 1:
            acc = acc + r[head + (1,)]
            for j in range(2, s):
                acc += r[head + (j,)]
        r = acc
    return np.ascontiguousarray(r)


# ----- interpolation matrices ------------------------------------------------------------------
def source_coordinates(in_size: int, out_size: int, scale: float, mode: str,
                       roi: tuple[float, float] | None = None
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """Input coordinate (float64) of every output index, and for tf_crop_and_resize the mask
    of outputs whose coordinate lies outside [0, in_size - 1] (None otherwise).

    Follows the ONNX Resize definitions (and the reference implementation's operation order),
    with resized length ``L = scale * in_size`` as a real number.
    """
    o = np.arange(out_size, dtype=np.float64)
    length = scale * in_size
    outside = None
    if mode == "half_pixel":
        x = (o + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        x = np.full(out_size, -0.5) if length == 1 else (o + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        offset = in_size / 2 * (1 - out_size / length)
        x = offset + (o + 0.5) / scale - 0.5
    elif mode == "align_corners":
        x = np.zeros(out_size) if length == 1 else o * (in_size - 1) / (length - 1)
    elif mode == "asymmetric":
        x = o / scale
    elif mode == "tf_crop_and_resize":
        if roi is None:
            raise ValueError("coordinate_transformation_mode 'tf_crop_and_resize' needs a roi")
        r0, r1 = float(roi[0]), float(roi[1])
        if length == 1:
            x = np.full(out_size, (r1 - r0) * (in_size - 1) / 2)
        else:
            x = o * (r1 - r0) * (in_size - 1) / (length - 1)
        x = x + r0 * (in_size - 1)
        outside = (x < 0) | (x > in_size - 1)
    else:
        raise ValueError(f"coordinate_transformation_mode must be one of {COORDINATE_MODES}, "
                         f"got {mode!r}")
    return x, outside


def nearest_indices(x: np.ndarray, in_size: int, nearest_mode: str) -> np.ndarray:
    """Round source coordinates to input indices, clamped to [0, in_size - 1].

    round_prefer_floor: halves go down; round_prefer_ceil: halves go up; floor; ceil.
    """
    f = np.floor(x)
    r = x - f
    if nearest_mode == "round_prefer_floor":
        idx = f + (r > 0.5)
    elif nearest_mode == "round_prefer_ceil":
        idx = f + (r >= 0.5)
    elif nearest_mode == "floor":
        idx = f
    elif nearest_mode == "ceil":
        idx = np.ceil(x)
    else:
        raise ValueError(f"nearest_mode must be one of {NEAREST_MODES}, got {nearest_mode!r}")
    return np.clip(idx, 0, in_size - 1).astype(np.intp)


def _kernel_weights(method: str, d: np.ndarray, a: float) -> np.ndarray:
    """Interpolation kernel at distances d: linear tent, or Keys cubic with parameter a."""
    d = np.abs(d)
    if method == "linear":
        return np.clip(1 - d, 0, None)
    d2, d3 = d * d, d * d * d
    near = (a + 2) * d3 - (a + 3) * d2 + 1
    far = a * d3 - 5 * a * d2 + 8 * a * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def interpolation_matrix(in_size: int, out_size: int, scale: float, method: str = "linear",
                         coordinate_transformation_mode: str = "half_pixel",
                         nearest_mode: str = "round_prefer_floor", cubic_coeff_a: float = -0.75,
                         exclude_outside: bool = False, antialias: bool = False,
                         roi: tuple[float, float] | None = None, dtype: np.dtype | type = np.float64
                         ) -> tuple[np.ndarray, np.ndarray | None]:
    """The (out_size, in_size) matrix A with y = A x along one axis, and the tf_crop_and_resize
    mask of rows to fill with the extrapolation value (those rows of A are zero).

    Linear/cubic: taps i near the source coordinate x get ``k((i - x) s')`` with
    ``s' = min(s, 1)`` under antialias (else 1), normalised under antialias; out-of-range taps
    are clamped to the edge or, with ``exclude_outside``, zeroed and the row renormalised.
    """
    x, outside = source_coordinates(in_size, out_size, scale, coordinate_transformation_mode,
                                    roi)
    rows = np.arange(out_size)
    a_mat = np.zeros((out_size, in_size), dtype=np.float64)
    if method == "nearest":
        a_mat[rows, nearest_indices(x, in_size, nearest_mode)] = 1.0
    elif method in ("linear", "cubic"):
        support = 1.0 if method == "linear" else 2.0
        s_eff = min(scale, 1.0) if antialias else 1.0
        radius = support / s_eff
        n_taps = int(np.ceil(2 * radius)) + 1
        taps = np.floor(x - radius)[:, None] + np.arange(n_taps)[None, :]
        w = _kernel_weights(method, (taps - x[:, None]) * s_eff, cubic_coeff_a)
        if antialias:
            w = w / w.sum(axis=1, keepdims=True)
        if exclude_outside:
            w = np.where((taps < 0) | (taps > in_size - 1), 0.0, w)
            total = w.sum(axis=1, keepdims=True)
            w = w / np.where(total == 0, 1.0, total)
        cols = np.clip(taps, 0, in_size - 1).astype(np.intp)
        np.add.at(a_mat, (np.repeat(rows, n_taps), cols.ravel()), w.ravel())
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if outside is not None:
        a_mat[outside] = 0.0
        if not outside.any():
            outside = None
    return a_mat.astype(dtype, copy=False), outside


def _gather_table(b: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(idx, w), both (rows, M): row r of b has its nonzeros b[r, idx[r, m]] = w[r, m]; None
    when a dense product is the faster way to apply b."""
    nz = b != 0
    counts = nz.sum(axis=1)
    m = int(counts.max(initial=0))
    if m == 0 or b.shape[1] < _GATHER_RATIO * m:
        return None
    r, c = np.nonzero(nz)
    rank = np.arange(r.size) - np.searchsorted(r, r)
    idx = np.zeros((b.shape[0], m), dtype=np.intp)
    w = np.zeros((b.shape[0], m), dtype=b.dtype)
    idx[r, rank] = c
    w[r, rank] = b[r, c]
    if m == 1 and bool(np.all(counts == 1)) and bool(np.all(w == 1)):
        return idx, None
    return idx, w


def plan_axis(a_mat: np.ndarray) -> AxisPlan | None:
    """Precompute how to apply A (forward) and A^T (backward); None if A is the identity."""
    if a_mat.shape[0] == a_mat.shape[1] and np.array_equal(a_mat, np.eye(a_mat.shape[0])):
        return None
    return a_mat, _gather_table(a_mat), _gather_table(np.ascontiguousarray(a_mat.T))


def _apply(x: np.ndarray, b: np.ndarray, table: tuple[np.ndarray, np.ndarray | None] | None,
           axis: int) -> np.ndarray:
    """y = b applied along ``axis``: y[..., o, ...] = sum_i b[o, i] x[..., i, ...]."""
    if table is not None:
        idx, w = table
        if w is None:
            return np.take(x, idx[:, 0], axis=axis)
        wshape = (w.shape[0],) + (1,) * (x.ndim - axis - 1)
        y = np.take(x, idx[:, 0], axis=axis)
        y *= w[:, 0].reshape(wshape)
        for m in range(1, idx.shape[1]):
            t = np.take(x, idx[:, m], axis=axis)
            t *= w[:, m].reshape(wshape)
            y += t
        return y
    shape = x.shape
    lead = int(np.prod(shape[:axis], dtype=np.int64))
    tail = int(np.prod(shape[axis + 1:], dtype=np.int64))
    y = np.matmul(b, x.reshape(lead, shape[axis], tail))
    return y.reshape(shape[:axis] + (b.shape[0],) + shape[axis + 1:])


def resize_forward(x: np.ndarray, plans: Sequence[AxisPlan | None],
                   masks: Sequence[np.ndarray | None] = (), extrapolation_value: float = 0.0
                   ) -> np.ndarray:
    """y = A_1 x A_2^T ... : apply each spatial axis' matrix in turn (axis 1 + i for plan i),
    then write the extrapolation value where any axis' mask is set."""
    y = x
    for i, plan in enumerate(plans):
        if plan is not None:
            y = _apply(y, plan[0], plan[1], 1 + i)
    if any(m is not None for m in masks):
        k = len(plans)
        full = np.zeros(y.shape[1:1 + k], dtype=bool)
        for i, m in enumerate(masks):
            if m is not None:
                full |= m.reshape((1,) * i + (-1,) + (1,) * (k - i - 1))
        y = np.where(full.reshape((1,) + full.shape + (1,) * (y.ndim - 1 - k)),
                     np.asarray(extrapolation_value, dtype=y.dtype), y)
    if y is x:
        y = x.copy()
    return y


def resize_backward(g: np.ndarray, plans: Sequence[AxisPlan | None]) -> np.ndarray:
    """dL/dx = A_1^T g A_2 ...: the transposed matrices in reverse order (rows of A that the
    extrapolation value overwrote are zero, so those outputs send no gradient)."""
    for i in reversed(range(len(plans))):
        plan = plans[i]
        if plan is not None:
            g = _apply(g, plan[0].T, plan[2], 1 + i)
    return np.ascontiguousarray(g)


# ----- zero padding and cropping -----------------------------------------------------------------
def _centre(pads: Pairs, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Index of the unpadded block: batch, spatial axes [b, n - a) of the padded shape, rest."""
    k = len(pads)
    return ((slice(None),) + tuple(slice(b, shape[1 + i] - a) for i, (b, a) in enumerate(pads))
            + (slice(None),) * (len(shape) - 1 - k))


def zero_pad_forward(x: np.ndarray, pads: Pairs) -> np.ndarray:
    """y = x surrounded by (before, after) zeros along each spatial axis."""
    k = len(pads)
    shape = ((x.shape[0],) + tuple(n + b + a for n, (b, a) in zip(x.shape[1:1 + k], pads,
                                                                   strict=True))
             + x.shape[1 + k:])
    y = np.zeros(shape, dtype=x.dtype)
    y[_centre(pads, shape)] = x
    return y


def zero_pad_backward(g: np.ndarray, pads: Pairs) -> np.ndarray:
    """dL/dx = the centre of g (padding cells have no input)."""
    return np.ascontiguousarray(g[_centre(pads, g.shape)])


def crop_forward(x: np.ndarray, crops: Pairs) -> np.ndarray:
    """y = x without (before, after) cells along each spatial axis."""
    return np.ascontiguousarray(x[_centre(crops, x.shape)])


def crop_backward(g: np.ndarray, crops: Pairs) -> np.ndarray:
    """dL/dx = g in the kept block, 0 on the cropped cells (cropping's adjoint is padding)."""
    return zero_pad_forward(g, crops)
