"""Depthwise and separable convolution, channels-last, with channel multiplier M:

    Z[n, o, c*M + m]  = sum_t X[n, o*S + t*D - P, c] K[t, c, m] + b[c*M + m]
    dX[n, i, c]       = sum_{o, t: o*S + t*D - P = i} sum_m dZ[n, o, c*M + m] K[t, c, m]
    dK[t, c, m]       = sum_{n, o} dZ[n, o, c*M + m] X[n, o*S + t*D - P, c]
    separable         Z = pointwise(depthwise(X, K_d), K_p) + b

NumPy: block by block (:func:`.dispatch.depthwise_blocks`), the block's input copied
zero-padded into a small buffer and one ``einsum`` over its strided window view, so the taps'
products never go through memory. float32 2-D with multiplier 1: the C kernels instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import native, parallel
from ..padding import Pads
from . import dispatch
from .geometry import Ints, conv_output_sizes, tap_boxes, zero_border
from .im2col import bias_grad

# the C kernel's limits (native/_conv.c): taps per kernel, kernel rows
NATIVE_MAX_TAPS, NATIVE_MAX_ROWS = 49, 16


def _native_fits(x: np.ndarray, w: np.ndarray, pads: Pads, arrays: tuple) -> bool:
    """float32, 2-D, multiplier 1, no cropping pads, within the C kernel's tap limits."""
    return (x.ndim == 4 and w.shape[-1] == 1 and x.shape[0] > 0
            and w.shape[0] * w.shape[1] <= NATIVE_MAX_TAPS and w.shape[0] <= NATIVE_MAX_ROWS
            and not any(p < 0 for pair in pads for p in pair)
            and all(a.dtype == np.float32 for a in arrays if a is not None)
            and native.available())


def _native_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                    pads: Pads, dilation: Ints) -> np.ndarray:
    """Z by the C kernel: one call, or (large jobs) image row pieces on the kernel threads."""
    out = conv_output_sizes(x.shape[1:-1], w.shape[:2], strides, pads, dilation)
    x = np.ascontiguousarray(x)
    k = np.ascontiguousarray(w.reshape(w.shape[:3]))
    b = None if b is None else np.ascontiguousarray(b)
    n, c = x.shape[0], x.shape[-1]
    z = np.empty((n, *out, c), dtype=np.float32)
    st, dl, tl = tuple(strides), tuple(dilation), (pads[0][0], pads[1][0])
    threads = parallel.get_num_threads()
    macs = z.size * w.shape[0] * w.shape[1]
    if macs < dispatch.THRESHOLDS.native_depthwise_parallel_macs or threads <= 1:
        native.depthwise_forward(x, k, b, z, st, dl, tl)
        return z
    per = max(1, -(-2 * threads // n))
    pieces = [(i, r0, r1) for i in range(n) for r0, r1 in parallel.split(out[0], per)]

    def body(j: int, _: Any) -> None:
        i, r0, r1 = pieces[j]
        native.depthwise_forward(x[i:i + 1], k, b, z[i:i + 1], st, dl, tl, (r0, r1))

    parallel.run_blocks(len(pieces), body)
    return z


def _forward_cropping(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, z: np.ndarray,
                      strides: Ints, pads: Pads, dilation: Ints) -> np.ndarray:
    """Z with cropping (negative) pads: the plain loop over the taps."""
    c, mult = w.shape[-2:]
    z[...] = 0
    xr = x if mult == 1 else np.repeat(x, mult, axis=-1)
    wt = w.reshape(-1, c * mult)
    lead = (slice(None),)
    for ti, dst, src, _ in tap_boxes(x.shape[1:-1], z.shape[1:-1], w.shape[:-2], strides,
                                     pads, dilation):
        if dst is not None:
            z[lead + dst] += xr[lead + src] * wt[ti]
    if b is not None:
        z += b
    return z


def _forward_einsum(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, z: np.ndarray,
                    strides: Ints, pads: Pads, dilation: Ints) -> np.ndarray:
    """Z block by block: zero-padded input rows in a buffer, one einsum over its windows."""
    nd = x.ndim - 2
    ksize, (c, mult), sizes, out_sizes = w.shape[:nd], w.shape[nd:], x.shape[1:-1], z.shape[1:-1]
    eff = [d * (k - 1) + 1 for k, d in zip(ksize, dilation, strict=True)]
    padded = [s_ + p0 + p1 for s_, (p0, p1) in zip(sizes, pads, strict=True)]
    blocks = dispatch.depthwise_blocks(x.shape[0], out_sizes[0],
                                       int(np.prod(padded[1:])) * c * x.itemsize, strides[0])
    nb = max(n1 - n0 for n0, n1, _, _ in blocks)
    rmax = max((r1 - r0 - 1) * strides[0] + eff[0] for _, _, r0, r1 in blocks)
    spec = f"a{'uvwxyz'[:nd]}{'defghijk'[:nd]}c,{'defghijk'[:nd]}cm->a{'uvwxyz'[:nd]}cm"
    w_c = w.astype(z.dtype, copy=False)
    inner = tuple(slice(p0, p0 + s_) for s_, (p0, _) in zip(sizes[1:], pads[1:], strict=True))

    def workspace() -> np.ndarray:
        buf = np.empty((nb, rmax, *padded[1:], c), dtype=x.dtype)
        zero_border(buf, pads[1:], first_axis=2)  # rows are zeroed per block as needed
        return buf

    def body(i: int, buf: np.ndarray) -> None:
        n0, n1, r0, r1 = blocks[i]
        lo = r0 * strides[0] - pads[0][0]  # first input row read, in unpadded coordinates
        rows = (r1 - r0 - 1) * strides[0] + eff[0]
        ra, rb = max(lo, 0), min(lo + rows, sizes[0])
        xb = buf[:n1 - n0, :rows]
        xb[:, :max(ra - lo, 0)] = 0
        xb[:, max(rb - lo, 0):] = 0
        xb[(slice(None), slice(ra - lo, rb - lo), *inner)] = x[n0:n1, ra:rb]
        st = xb.strides
        view = as_strided(xb, shape=(n1 - n0, r1 - r0, *out_sizes[1:], *ksize, c),
                          strides=(st[0], *(st[1 + a] * strides[a] for a in range(nd)),
                                   *(st[1 + a] * dilation[a] for a in range(nd)), st[-1]),
                          writeable=False)
        zb = z[n0:n1, r0:r1].reshape(n1 - n0, r1 - r0, *out_sizes[1:], c, mult)
        np.einsum(spec, view, w_c, out=zb)
        if b is not None:
            zb += b.reshape(c, mult)

    parallel.run_blocks(len(blocks), body, workspace)
    return z


def depthwise_conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                           strides: Ints, pads: Pads, dilation: Ints) -> np.ndarray:
    """Z[n, o, c*M + m] = sum_t X[n, o*S + t*D - P, c] K[t, c, m] + b[c*M + m];
    x (N, *spatial, C), w (*K, C, M)."""
    if _native_fits(x, w, pads, (x, w, b)):
        return _native_forward(x, w, b, strides, pads, dilation)
    nd = x.ndim - 2
    out_sizes = conv_output_sizes(x.shape[1:-1], w.shape[:nd], strides, pads, dilation)
    z = np.empty((x.shape[0], *out_sizes, w.shape[-2] * w.shape[-1]),
                 dtype=np.result_type(x, w))
    if any(p < 0 for pair in pads for p in pair):
        return _forward_cropping(x, w, b, z, strides, pads, dilation)
    return _forward_einsum(x, w, b, z, strides, pads, dilation)


def _native_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, strides: Ints, pads: Pads,
                     dilation: Ints, need_dx: bool, need_dw: bool
                     ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(dX, dK) by the C kernel: batch blocks on the kernel threads, dK's partial sums
    added in block order."""
    x = np.ascontiguousarray(x)
    g = np.ascontiguousarray(g)
    k = np.ascontiguousarray(w.reshape(w.shape[:3]))
    st, dl, tl = tuple(strides), tuple(dilation), (pads[0][0], pads[1][0])
    blocks = dispatch.native_blocks(x.shape[0], g.size * k.shape[0] * k.shape[1])
    dx = np.empty(x.shape, dtype=np.float32) if need_dx else None
    parts = [np.empty(k.shape, dtype=np.float32) if need_dw else None for _ in blocks]

    def body(i: int, _: Any) -> None:
        n0, n1 = blocks[i]
        native.depthwise_backward(x[n0:n1], g[n0:n1], k, None if dx is None else dx[n0:n1],
                                  parts[i], st, dl, tl)

    parallel.run_blocks(len(blocks), body)
    if not need_dw:
        return dx, None
    dk = parts[0]
    for part in parts[1:]:
        dk += part
    return dx, dk.reshape(w.shape)


def _numpy_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, strides: Ints, pads: Pads,
                    dilation: Ints, need_dx: bool, need_dw: bool
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(dX, dK) tap by tap: dX's input box += dZ's box * K[t]; dK[t] = sum X's box * dZ's."""
    nd = x.ndim - 2
    ksize, (c, mult) = w.shape[:nd], w.shape[nd:]
    wt = w.reshape(-1, c * mult)
    xr = x if (mult == 1 or not need_dw) else np.repeat(x, mult, axis=-1)
    dxr = np.zeros((*x.shape[:-1], c * mult), dtype=g.dtype) if need_dx else None
    dwt = np.zeros_like(wt) if need_dw else None
    axes = "abcdefgh"[:nd + 1]
    lead = (slice(None),)
    for ti, dst, src, _ in tap_boxes(x.shape[1:-1], g.shape[1:-1], ksize, strides, pads,
                                     dilation):
        if dst is None:
            continue
        gs = g[lead + dst]
        if dxr is not None:
            dxr[lead + src] += gs * wt[ti]
        if dwt is not None:
            dwt[ti] = np.einsum(f"{axes}z,{axes}z->z", xr[lead + src], gs)
    dx = None
    if dxr is not None:
        dx = dxr if mult == 1 else dxr.reshape(*x.shape, mult).sum(axis=-1)
    return dx, (None if dwt is None else dwt.reshape(w.shape))


def depthwise_conv_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, strides: Ints,
                            pads: Pads, dilation: Ints, need_dx: bool = True,
                            need_dw: bool = True, need_db: bool = True
                            ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dX, dK, db) of :func:`depthwise_conv_forward` for output error dZ = ``g`` (see the
    module docstring); gradients whose ``need_*`` flag is False are None."""
    db = bias_grad(g) if need_db else None
    if not (need_dx or need_dw):
        return None, None, db
    if _native_fits(x, w, pads, (x, w, g)):
        return (*_native_backward(g, x, w, strides, pads, dilation, need_dx, need_dw), db)
    return (*_numpy_backward(g, x, w, strides, pads, dilation, need_dx, need_dw), db)


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
    db = bias_grad(g) if need_db else None
    dx = ddw = None
    if need_dx or need_dwk:
        dd = (g2 @ pw2.T).reshape(d.shape)
        dx, ddw, _ = depthwise_conv_backward(dd, x, dw_kernel, strides, pads, dilation,
                                             need_dx, need_dwk, False)
    return dx, ddw, dpw, db
