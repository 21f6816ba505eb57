"""Convolution kernels, channels-last: N-d convolution (groups, dilation), depthwise, separable
and transposed convolution, each with its backward pass.

Notation (seeds, extended to N spatial axes, stride S, dilation D, padding P_before):

    forward  Z[n, o, k] = sum_{t, c} X[n, o*S + t*D - P, c] * K[t, c, k] + b[k]
    dX       dX[n, i, c] = sum_{o, t: o*S + t*D - P = i} sum_k dZ[n, o, k] * K[t, c, k]
             (the seeds' "full convolution of the output error, dilated by the stride and
             padded, with the spatially flipped kernel")
    dK       dK[t, c, k] = sum_{n, o} dZ[n, o, k] * X[n, o*S + t*D - P, c]
    db       db[k] = sum_{n, o} dZ[n, o, k]

Implementation (im2col + GEMM, channels-last):

- ``im2col`` gathers, for every output position, the T = prod(K) input pixels its window
  covers into ``cols`` of shape (N, *O, G, T, C_in/G): the input is zero-padded once and a
  strided window view of it is copied in one pass (sequential writes; measured ~2x faster
  than one strided copy per tap).
- forward: one GEMM ``cols (M, T*C) @ K (T*C, C_out)`` with M = N*prod(O); for groups a
  batched GEMM over the group axis (``np.matmul`` on strided views, no Python loop over
  groups). groups == C_in (depthwise as groups) goes to the direct depthwise kernel instead.
- dK: ``cols^T @ dZ``, reusing the forward's ``cols``; db: a GEMV with a ones vector.
- dX, two algorithms (``conv_input_grad``): at stride 1, the seeds' full convolution: dZ
  padded by E-1-P (E = D*(K-1)+1) and convolved with the flipped, channel-swapped kernel (an
  im2col copy + one GEMM); otherwise (or when dZ has more channels than X, where the im2col of
  dZ would be the larger matrix) ``dcols = dZ @ K^T`` (one GEMM) followed by ``col2im``, T
  strided in-place adds into dX (no ``np.add.at``). Timings: bench/RESULTS.md.

Transposed convolution is exactly the input gradient of a convolution, so its forward is
``conv_input_grad`` and its backward is a convolution forward (for dX) and the convolution
weight gradient with the roles of input and output error swapped (for dK).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .padding import Pads, output_size, resolve_padding, same_padding

Ints = Sequence[int]
# Per spatial axis and per tap index along it: (first output position, end output position,
# first input position) of the output box whose window tap lands inside the input.
_AxisRanges = list[tuple[int, int, int]]


# ----------------------------------------------------------------------------------------
# geometry helpers
# ----------------------------------------------------------------------------------------
def conv_output_sizes(sizes: Ints, ksize: Ints, strides: Ints, pads: Pads, dilation: Ints,
                      what: str = "input") -> tuple[int, ...]:
    """Output size per axis: floor((W + P_b + P_a - D*(K-1) - 1) / S) + 1 (must be >= 1)."""
    return tuple(output_size(w, k, s, d, p, what)
                 for w, k, s, d, p in zip(sizes, ksize, strides, dilation, pads, strict=True))


def _axis_ranges(size_in: int, size_out: int, k: int, s: int, d: int, pb: int) -> _AxisRanges:
    """For each tap t: output positions o in [lo, hi) read input o*s + t*d - pb in range."""
    out = []
    for t in range(k):
        off = t * d - pb  # input index read by output position 0
        lo = 0 if off >= 0 else (-off + s - 1) // s  # smallest o with o*s + off >= 0
        last = size_in - 1 - off  # largest o has o*s <= last
        hi = last // s + 1 if last >= 0 else 0
        lo = min(lo, size_out)
        hi = max(min(hi, size_out), lo)
        out.append((lo, hi, lo * s + off))
    return out


def _tap_boxes(in_sizes: Ints, out_sizes: Ints, ksize: Ints, strides: Ints, pads: Pads,
               dilation: Ints) -> list[tuple[int, tuple, tuple, list]]:
    """Per kernel tap (row-major over the kernel axes): its flat index, the output-box
    slices, the matching strided input slices (or None when the box is empty) and the
    border (axis, lo, hi) the box leaves uncovered."""
    ranges = [_axis_ranges(w, o, k, s, d, p[0])
              for w, o, k, s, d, p in zip(in_sizes, out_sizes, ksize, strides, dilation, pads,
                                          strict=True)]
    boxes = []
    for ti, tap in enumerate(itertools.product(*(range(k) for k in ksize))):
        dst, src, border, empty = [], [], [], False
        for a, t in enumerate(tap):
            lo, hi, start = ranges[a][t]
            if hi <= lo:
                empty = True
                break
            dst.append(slice(lo, hi))
            src.append(slice(start, start + (hi - lo - 1) * strides[a] + 1, strides[a]))
            border.append((lo, hi))
        if empty:
            boxes.append((ti, None, None, None))
        else:
            boxes.append((ti, tuple(dst), tuple(src), border))
    return boxes


def _is_depthwise(x_shape: tuple[int, ...], groups: int) -> bool:
    """groups == C_in > 1: every group holds one input channel (depthwise as groups), which
    the direct depthwise kernel does faster than a batched GEMM of C_in tiny matrices."""
    return groups > 1 and groups == x_shape[-1]


def _is_pointwise(ksize: Ints, strides: Ints, pads: Pads, in_sizes: Ints,
                  out_sizes: Ints) -> bool:
    return (all(k == 1 for k in ksize) and all(s == 1 for s in strides)
            and all(p == (0, 0) for p in pads) and tuple(in_sizes) == tuple(out_sizes))


# ----------------------------------------------------------------------------------------
# im2col / col2im
# ----------------------------------------------------------------------------------------
def pad_spatial(x: np.ndarray, pads: Pads) -> np.ndarray:
    """Zero-pad (or, for negative amounts, crop) the spatial axes of a channels-last array."""
    if all(p == (0, 0) for p in pads):
        return x
    crop = tuple(slice(max(-b, 0), x.shape[1 + a] - max(-e, 0))
                 for a, (b, e) in enumerate(pads))
    x = x[(slice(None), *crop)]
    grow = [(max(b, 0), max(e, 0)) for b, e in pads]
    if all(p == (0, 0) for p in grow):
        return x
    xp = np.zeros((x.shape[0], *(w + b + e for w, (b, e) in zip(x.shape[1:-1], grow,
                                                                  strict=True)), x.shape[-1]),
                  dtype=x.dtype)
    xp[(slice(None), *(slice(b, b + w) for w, (b, _) in zip(x.shape[1:-1], grow, strict=True)))
       ] = x
    return xp


def window_view(xp: np.ndarray, ksize: Ints, strides: Ints, dilation: Ints, out_sizes: Ints,
                groups: int = 1) -> np.ndarray:
    """Read-only strided view V[n, *o, g, *t, c] = XP[n, o*S + t*D, g*Cg + c] of an already
    padded array (no copy)."""
    nd = len(ksize)
    st = xp.strides
    cg = xp.shape[-1] // groups
    shape = (xp.shape[0], *out_sizes, groups, *ksize, cg)
    strides = (st[0], *(st[1 + a] * strides[a] for a in range(nd)), cg * st[-1],
               *(st[1 + a] * dilation[a] for a in range(nd)), st[-1])
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def im2col(x: np.ndarray, ksize: Ints, strides: Ints, pads: Pads, dilation: Ints,
           out_sizes: Ints, groups: int = 1) -> np.ndarray:
    """cols[n, *o, g, t, c] = X[n, o*S + t*D - P, g*Cg + c] (0 outside X), shape
    (N, *O, G, T, Cg): pad once, then one contiguous copy of the strided window view (the
    copy writes ``cols`` sequentially, which measured ~2x faster than one copy per tap)."""
    n, cg = x.shape[0], x.shape[-1] // groups
    if _is_pointwise(ksize, strides, pads, x.shape[1:-1], out_sizes):
        return x.reshape(n, *out_sizes, groups, 1, cg)
    view = window_view(pad_spatial(x, pads), ksize, strides, dilation, out_sizes, groups)
    cols = np.empty(view.shape, dtype=x.dtype)
    cols[...] = view
    return cols.reshape(n, *out_sizes, groups, int(np.prod(ksize)), cg)


def col2im(dcols: np.ndarray, x_shape: tuple[int, ...], ksize: Ints, strides: Ints,
           pads: Pads, dilation: Ints, groups: int = 1) -> np.ndarray:
    """Adjoint of :func:`im2col`: dX[n, o*S + t*D - P, g*Cg + c] += dcols[n, *o, g, t, c],
    as one strided in-place add per tap."""
    nd = len(x_shape) - 2
    out_sizes = dcols.shape[1:1 + nd]
    in_sizes = x_shape[1:-1]
    cg = x_shape[-1] // groups
    if _is_pointwise(ksize, strides, pads, in_sizes, out_sizes):
        return dcols.reshape(x_shape)
    dx = np.zeros(x_shape, dtype=dcols.dtype)
    dxg = dx.reshape(*x_shape[:-1], groups, cg)
    lead = (slice(None),)
    for ti, dst, src, _ in _tap_boxes(in_sizes, out_sizes, ksize, strides, pads, dilation):
        if dst is not None:
            dxg[lead + src] += dcols[..., ti, :][lead + dst]
    return dx


# ----------------------------------------------------------------------------------------
# GEMM on cols (groups as a batch axis)
# ----------------------------------------------------------------------------------------
def _kernel_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """(*K, Cg, C_out) -> (G, T*Cg, C_out/G); output channel g*Og + j belongs to group g."""
    nd = w.ndim - 2
    taps = int(np.prod(w.shape[:nd]))
    cg, cout = w.shape[-2], w.shape[-1]
    if groups == 1:
        return w.reshape(1, taps * cg, cout)
    og = cout // groups
    return w.reshape(taps, cg, groups, og).transpose(2, 0, 1, 3).reshape(groups, taps * cg, og)


def _kernel_from_matrix(wm: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`_kernel_matrix`."""
    groups = wm.shape[0]
    if groups == 1:
        return wm.reshape(w_shape)
    taps = int(np.prod(w_shape[:-2]))
    cg, og = w_shape[-2], wm.shape[-1]
    return wm.reshape(groups, taps, cg, og).transpose(1, 2, 0, 3).reshape(w_shape)


def _cols_times_kernel(cols: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """(N, *O, G, T, Cg) x (G, T*Cg, Og) -> (M, G*Og) with M = N*prod(O)."""
    groups, tc, og = wm.shape
    c2 = cols.reshape(-1, groups, tc)
    if groups == 1:
        return c2[:, 0, :] @ wm[0]
    out = np.empty((c2.shape[0], groups, og), dtype=cols.dtype)
    np.matmul(c2.transpose(1, 0, 2), wm, out=out.transpose(1, 0, 2))
    return out.reshape(c2.shape[0], groups * og)


def _error_times_kernel_t(g2: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """dcols = dZ @ K^T per group: (M, G*Og) x (G, T*Cg, Og) -> (M, G, T*Cg)."""
    groups, tc, og = wm.shape
    if groups == 1:
        return (g2 @ wm[0].T)[:, None, :]
    out = np.empty((g2.shape[0], groups, tc), dtype=g2.dtype)
    g3 = g2.reshape(-1, groups, og)
    np.matmul(g3.transpose(1, 0, 2), wm.transpose(0, 2, 1), out=out.transpose(1, 0, 2))
    return out


def _cols_t_times_error(cols: np.ndarray, g2: np.ndarray, groups: int) -> np.ndarray:
    """dK matrix = cols^T @ dZ per group: -> (G, T*Cg, Og)."""
    m = g2.shape[0]
    c2 = cols.reshape(m, groups, -1)
    if groups == 1:
        return (c2[:, 0, :].T @ g2)[None]
    g3 = g2.reshape(m, groups, -1)
    return np.matmul(c2.transpose(1, 2, 0), g3.transpose(1, 0, 2))


# ----------------------------------------------------------------------------------------
# N-d convolution
# ----------------------------------------------------------------------------------------
def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                 pads: Pads, dilation: Ints, groups: int = 1, keep_cols: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Z[n, o, g*Og + k] = sum_{t, c} X[n, o*S + t*D - P, g*Cg + c] K[t, c, g*Og + k] + b.

    x (N, *spatial, C_in), w (*K, C_in/groups, C_out), b (C_out,) or None. Returns Z and the
    im2col matrix (the backward's cache for dK) when ``keep_cols``.
    """
    nd = x.ndim - 2
    ksize = w.shape[:nd]
    if _is_depthwise(x.shape, groups):
        wd = w.reshape(*ksize, groups, w.shape[-1] // groups)
        return depthwise_conv_forward(x, wd, b, strides, pads, dilation), None
    out_sizes = conv_output_sizes(x.shape[1:-1], ksize, strides, pads, dilation)
    cols = im2col(x, ksize, strides, pads, dilation, out_sizes, groups)
    z = _cols_times_kernel(cols, _kernel_matrix(w, groups))
    if b is not None:
        z += b
    return z.reshape(x.shape[0], *out_sizes, w.shape[-1]), (cols if keep_cols else None)


def flip_kernel(w: np.ndarray, groups: int = 1) -> np.ndarray:
    """The kernel of the seeds' full convolution for dX: spatially flipped, input and output
    channels swapped within each group. (*K, Cg, G*Og) -> (*K, Og, G*Cg) with
    Kf[t', j, g*Cg + c] = K[K-1-t', c, g*Og + j]."""
    nd = w.ndim - 2
    ksize, cg, cout = w.shape[:nd], w.shape[-2], w.shape[-1]
    og = cout // groups
    wr = w[(slice(None, None, -1),) * nd].reshape(*ksize, cg, groups, og)
    return np.ascontiguousarray(np.moveaxis(wr, (nd, nd + 2), (nd + 2, nd))
                                ).reshape(*ksize, og, groups * cg)


def conv_input_grad(g: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], strides: Ints,
                    pads: Pads, dilation: Ints, groups: int = 1, method: str = "auto"
                    ) -> np.ndarray:
    """dX[n, i, c] = sum_{o, t: o*S + t*D - P = i} sum_k dZ[n, o, k] K[t, c, k].

    ``method="col2im"``: dcols = dZ @ K^T (one GEMM), then col2im (one strided add per tap).
    ``method="flip"`` (stride 1 only): the seeds' full convolution, i.e. a stride-1 convolution
    of dZ padded by (E-1-P_before, ...) with the flipped kernel (:func:`flip_kernel`): one
    contiguous im2col copy and one GEMM. ``"auto"`` takes "flip" at stride 1 when its im2col
    matrix is no larger than col2im's dcols (measured faster there: a single copy beats T
    read-modify-write passes), else "col2im".
    """
    nd = g.ndim - 2
    ksize = w.shape[:nd]
    if method == "auto" and _is_depthwise(x_shape, groups):
        wd = w.reshape(*ksize, groups, w.shape[-1] // groups)
        x0 = np.empty(x_shape, dtype=g.dtype)  # only its shape is read
        return depthwise_conv_backward(g, x0, wd, strides, pads, dilation, True, False,
                                       False)[0]
    x_sizes, o_sizes = tuple(x_shape[1:-1]), g.shape[1:-1]
    stride1 = all(s == 1 for s in strides)
    if method == "auto":
        flip_size = int(np.prod(x_sizes)) * g.shape[-1]
        col_size = int(np.prod(o_sizes)) * x_shape[-1]
        method = "flip" if stride1 and flip_size <= col_size else "col2im"
    if method == "flip":
        if not stride1:
            raise ValueError("method 'flip' needs stride 1")
        fpads = []
        for a in range(nd):
            eff = dilation[a] * (ksize[a] - 1) + 1
            before = eff - 1 - pads[a][0]
            fpads.append((before, x_sizes[a] - o_sizes[a] - before + eff - 1))
        cols = im2col(g, ksize, strides, tuple(fpads), dilation, x_sizes, groups)
        dx = _cols_times_kernel(cols, _kernel_matrix(flip_kernel(w, groups), groups))
        return dx.reshape(x_shape)
    wm = _kernel_matrix(w, groups)
    dcols = _error_times_kernel_t(g.reshape(-1, g.shape[-1]), wm)
    dcols = dcols.reshape(*g.shape[:-1], groups, int(np.prod(ksize)), w.shape[-2])
    return col2im(dcols, tuple(x_shape), ksize, strides, pads, dilation, groups)


def _bias_grad(g: np.ndarray) -> np.ndarray:
    """db[k] = sum over all rows of dZ[..., k] (a GEMV with a ones vector: faster than a
    column reduction)."""
    g2 = g.reshape(-1, g.shape[-1])
    return np.ones(g2.shape[0], dtype=g.dtype) @ g2


def conv_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, cols: np.ndarray | None,
                  strides: Ints, pads: Pads, dilation: Ints, groups: int = 1,
                  need_dx: bool = True, need_dw: bool = True, need_db: bool = True
                  ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dX, dK, db) of :func:`conv_forward` for output error dZ = ``g``.

    dK[t, c, k] = sum_{n, o} dZ[n, o, k] X[n, o*S + t*D - P, c] = cols^T @ dZ;
    dX by :func:`conv_input_grad`; db[k] = sum_{n, o} dZ[n, o, k]. Gradients whose ``need_*``
    flag is False are skipped (None), e.g. dX for a network's input.
    """
    nd = x.ndim - 2
    if _is_depthwise(x.shape, groups):
        wd = w.reshape(*w.shape[:nd], groups, w.shape[-1] // groups)
        dx, dw, db = depthwise_conv_backward(g, x, wd, strides, pads, dilation, need_dx,
                                             need_dw, need_db)
        return dx, (None if dw is None else dw.reshape(w.shape)), db
    g2 = g.reshape(-1, g.shape[-1])
    dx = dw = db = None
    if need_dw:
        if cols is None:
            cols = im2col(x, w.shape[:nd], strides, pads, dilation, g.shape[1:-1], groups)
        dw = _kernel_from_matrix(_cols_t_times_error(cols, g2, groups), w.shape)
    if need_dx:
        dx = conv_input_grad(g, w, x.shape, strides, pads, dilation, groups)
    if need_db:
        db = _bias_grad(g)
    return dx, dw, db


# ----------------------------------------------------------------------------------------
# depthwise and separable 2-D convolution
# ----------------------------------------------------------------------------------------
def depthwise_conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                           strides: Ints, pads: Pads, dilation: Ints) -> np.ndarray:
    """Z[n, o, c*M + m] = sum_t X[n, o*S + t*D - P, c] K[t, c, m] + b[c*M + m].

    x (N, *spatial, C), w (*K, C, M). A direct kernel: per tap, one elementwise
    multiply-accumulate over the output box that tap reads inside X (no GEMM, no loop over
    channels). For M > 1 the input channels are first repeated M times (channel c*M + m holds
    X[..., c]) so every output channel again sees exactly one input channel.
    """
    nd = x.ndim - 2
    ksize, (c, mult) = w.shape[:nd], w.shape[nd:]
    out_sizes = conv_output_sizes(x.shape[1:-1], ksize, strides, pads, dilation)
    xr = x if mult == 1 else np.repeat(x, mult, axis=-1)
    wt = w.reshape(-1, c * mult)
    z = np.zeros((x.shape[0], *out_sizes, c * mult), dtype=x.dtype)
    lead = (slice(None),)
    for ti, dst, src, _ in _tap_boxes(x.shape[1:-1], out_sizes, ksize, strides, pads,
                                      dilation):
        if dst is not None:
            z[lead + dst] += xr[lead + src] * wt[ti]
    if b is not None:
        z += b
    return z


def depthwise_conv_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, strides: Ints,
                            pads: Pads, dilation: Ints, need_dx: bool = True,
                            need_dw: bool = True, need_db: bool = True
                            ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """dX[n, i, c] = sum_{o, t: o*S + t*D - P = i} sum_m dZ[n, o, c*M + m] K[t, c, m];
    dK[t, c, m] = sum_{n, o} dZ[n, o, c*M + m] X[n, o*S + t*D - P, c]; db = sum_{n, o} dZ."""
    nd = x.ndim - 2
    ksize, (c, mult) = w.shape[:nd], w.shape[nd:]
    wt = w.reshape(-1, c * mult)
    xr = x if (mult == 1 or not need_dw) else np.repeat(x, mult, axis=-1)
    dxr = np.zeros((*x.shape[:-1], c * mult), dtype=g.dtype) if need_dx else None
    dwt = np.zeros_like(wt) if need_dw else None
    axes = "".join("abcdefgh"[:nd + 1])
    lead = (slice(None),)
    for ti, dst, src, _ in _tap_boxes(x.shape[1:-1], g.shape[1:-1], ksize, strides, pads,
                                      dilation):
        if dst is None:
            continue
        gs = g[lead + dst]
        if need_dx:
            dxr[lead + src] += gs * wt[ti]
        if need_dw:
            dwt[ti] = np.einsum(f"{axes}z,{axes}z->z", xr[lead + src], gs)
    dx = None
    if need_dx:
        dx = dxr if mult == 1 else dxr.reshape(*x.shape, mult).sum(axis=-1)
    dw = dwt.reshape(w.shape) if need_dw else None
    db = _bias_grad(g) if need_db else None
    return dx, dw, db


def separable_conv_forward(x: np.ndarray, dw_kernel: np.ndarray, pw_kernel: np.ndarray,
                           b: np.ndarray | None, strides: Ints, pads: Pads, dilation: Ints
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Z = pointwise(depthwise(X, K_d), K_p) + b: a depthwise conv (no bias) then a 1x1 conv
    with kernel (1, ..., 1, C*M, C_out) and the bias. Returns Z and the depthwise output."""
    d = depthwise_conv_forward(x, dw_kernel, None, strides, pads, dilation)
    z = d.reshape(-1, d.shape[-1]) @ pw_kernel.reshape(pw_kernel.shape[-2:])
    if b is not None:
        z += b
    return z.reshape(*d.shape[:-1], pw_kernel.shape[-1]), d


def separable_conv_backward(g: np.ndarray, x: np.ndarray, dw_kernel: np.ndarray,
                            pw_kernel: np.ndarray, d: np.ndarray, strides: Ints, pads: Pads,
                            dilation: Ints, need_dx: bool = True, need_dwk: bool = True,
                            need_pwk: bool = True, need_db: bool = True
                            ) -> tuple[np.ndarray | None, ...]:
    """(dX, dK_d, dK_p, db): pointwise backward (dD = dZ @ K_p^T, dK_p = D^T @ dZ), then the
    depthwise backward of dD."""
    g2 = g.reshape(-1, g.shape[-1])
    pw2 = pw_kernel.reshape(pw_kernel.shape[-2:])
    dpw = (d.reshape(-1, d.shape[-1]).T @ g2).reshape(pw_kernel.shape) if need_pwk else None
    db = _bias_grad(g) if need_db else None
    dx = ddw = None
    if need_dx or need_dwk:
        dd = (g2 @ pw2.T).reshape(d.shape)
        dx, ddw, _ = depthwise_conv_backward(dd, x, dw_kernel, strides, pads, dilation,
                                             need_dx, need_dwk, False)
    return dx, ddw, dpw, db


# ----------------------------------------------------------------------------------------
# transposed convolution
# ----------------------------------------------------------------------------------------
def conv_transpose_geometry(in_sizes: Ints, ksize: Ints, strides: Ints, padding: Any,
                            output_padding: Ints | None, dilation: Ints
                            ) -> tuple[tuple[int, ...], Pads]:
    """Output sizes and the pads of the convolution this transposed convolution inverts.

    With E = D*(K-1) + 1 and W the input size along an axis:
    - "valid" (Keras): P = (0, 0); L = W*S + max(E - S, 0) without output_padding, else
      (W-1)*S + E + output_padding.
    - "same" (Keras/TF): L = W*S without output_padding, else (W-1)*S + E - 2*(E//2) +
      output_padding; P = the Keras "same" pads of a convolution on L.
    - int p or per-axis p / (p_b, p_a) (PyTorch): the output is cropped by the padding,
      L = (W-1)*S - p_b - p_a + E + output_padding.
    Raises ValueError when L < 1 or when the convolution on L would not give back W.
    """
    nd = len(in_sizes)
    op = tuple(output_padding) if output_padding is not None else None
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid', 'same', an int or per-axis ints/pairs "
                             f"for a transposed convolution, got {padding!r}")
        sizes, pads = [], []
        for a in range(nd):
            w, k, s, d = in_sizes[a], ksize[a], strides[a], dilation[a]
            e = d * (k - 1) + 1
            if mode == "valid":
                size = w * s + max(e - s, 0) if op is None else (w - 1) * s + e + op[a]
                pad = (0, 0)
            else:
                size = w * s if op is None else (w - 1) * s + e - 2 * (e // 2) + op[a]
                pad = same_padding(size, k, s, d)
            sizes.append(size)
            pads.append(pad)
    else:
        pads = list(resolve_padding(padding, in_sizes, ksize, strides, dilation))
        sizes = [(w - 1) * s - p[0] - p[1] + d * (k - 1) + 1 + (op[a] if op else 0)
                 for a, (w, k, s, d, p) in enumerate(zip(in_sizes, ksize, strides, dilation,
                                                         pads, strict=True))]
    for a in range(nd):
        if sizes[a] < 1:
            raise ValueError(f"output size along spatial axis {a} would be {sizes[a]} (input "
                             f"size {in_sizes[a]}, kernel {ksize[a]}, stride {strides[a]}, "
                             f"dilation {dilation[a]}, padding {pads[a]}); it must be >= 1")
        back = (sizes[a] + pads[a][0] + pads[a][1] - dilation[a] * (ksize[a] - 1) - 1)
        if back < 0 or back // strides[a] + 1 < in_sizes[a]:
            raise ValueError(f"output size {sizes[a]} along spatial axis {a} is too small for "
                             f"input size {in_sizes[a]} with padding {padding!r}")
    return tuple(sizes), tuple(pads)


def conv_transpose_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                           pads: Pads, dilation: Ints, out_sizes: Ints) -> np.ndarray:
    """Y[n, o*S + t*D - P, c] += sum_k X[n, o, k] K[t, c, k], then + b[c]: the input gradient of
    a convolution with kernel K (*K, C_out, C_in) on a (N, *out_sizes, C_out) input."""
    y = conv_input_grad(x, w, (x.shape[0], *out_sizes, w.shape[-2]), strides, pads, dilation)
    if b is not None:
        y += b
    return y


def conv_transpose_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, strides: Ints,
                            pads: Pads, dilation: Ints, need_dx: bool = True,
                            need_dw: bool = True, need_db: bool = True
                            ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """dX = conv(dY, K) (a convolution forward); dK[t, c, k] = sum_{n,o} dY[n, o*S + t*D - P, c]
    X[n, o, k] (the convolution weight gradient with the roles swapped); db = sum dY."""
    nd = x.ndim - 2
    dx = dw = db = None
    if need_dx or need_dw:
        cols = im2col(g, w.shape[:nd], strides, pads, dilation, x.shape[1:-1])
        c2 = cols.reshape(-1, cols.shape[-2] * cols.shape[-1])
        x2 = x.reshape(-1, x.shape[-1])
        if need_dx:
            dx = (c2 @ w.reshape(-1, w.shape[-1])).reshape(x.shape)
        if need_dw:
            dw = (c2.T @ x2).reshape(w.shape)
    if need_db:
        db = _bias_grad(g)
    return dx, dw, db
