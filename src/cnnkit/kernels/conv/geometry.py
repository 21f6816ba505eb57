"""Convolution geometry, channels-last: output sizes, which output box each kernel tap reads,
zero padding (negative pads crop) and the strided window view im2col copies.

Along one spatial axis with stride S, dilation D and padding P before, output position o and
kernel tap t read input position i = o*S + t*D - P (zero outside the input).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..padding import Pads, output_size

Ints = Sequence[int]
# per tap along one axis: (first output position, end output position, first input position)
# of the output box whose reads land inside the input
AxisRanges = list[tuple[int, int, int]]
# per kernel tap: flat index, output-box slices, input slices (None: empty box), border
TapBox = tuple[int, Any, Any, Any]


def conv_output_sizes(sizes: Ints, ksize: Ints, strides: Ints, pads: Pads, dilation: Ints,
                      what: str = "input") -> tuple[int, ...]:
    """Output size per axis: floor((W + P_b + P_a - D*(K-1) - 1) / S) + 1 (must be >= 1)."""
    return tuple(output_size(w, k, s, d, p, what)
                 for w, k, s, d, p in zip(sizes, ksize, strides, dilation, pads, strict=True))


def axis_ranges(size_in: int, size_out: int, k: int, s: int, d: int, pb: int) -> AxisRanges:
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


def tap_boxes(in_sizes: Ints, out_sizes: Ints, ksize: Ints, strides: Ints, pads: Pads,
              dilation: Ints) -> list[TapBox]:
    """Per kernel tap (row-major over the kernel axes): its flat index, the output-box
    slices, the matching strided input slices (or None when the box is empty) and the
    (lo, hi) output range per axis the box covers."""
    ranges = [axis_ranges(w, o, k, s, d, p[0])
              for w, o, k, s, d, p in zip(in_sizes, out_sizes, ksize, strides, dilation, pads,
                                          strict=True)]
    boxes: list[TapBox] = []
    for ti, tap in enumerate(itertools.product(*(range(k) for k in ksize))):
        dst, src, border = [], [], []
        for a, t in enumerate(tap):
            lo, hi, start = ranges[a][t]
            if hi <= lo:
                break
            dst.append(slice(lo, hi))
            src.append(slice(start, start + (hi - lo - 1) * strides[a] + 1, strides[a]))
            border.append((lo, hi))
        else:
            boxes.append((ti, tuple(dst), tuple(src), border))
            continue
        boxes.append((ti, None, None, None))
    return boxes


def is_depthwise(x_shape: tuple[int, ...], groups: int) -> bool:
    """groups == C_in > 1: every group holds one input channel (depthwise as groups), which
    the direct depthwise kernel does faster than a batched GEMM of C_in tiny matrices."""
    return groups > 1 and groups == x_shape[-1]


def is_pointwise(ksize: Ints, strides: Ints, pads: Pads, in_sizes: Ints,
                 out_sizes: Ints) -> bool:
    """A 1x1 convolution at stride 1 without padding: a plain GEMM over the pixels."""
    return (all(k == 1 for k in ksize) and all(s == 1 for s in strides)
            and all(p == (0, 0) for p in pads) and tuple(in_sizes) == tuple(out_sizes))


def crop_grow(sizes: Ints, pads: Pads) -> tuple[tuple[slice, ...], list[tuple[int, int]]]:
    """Negative pads crop: (crop slices of the spatial axes, the zero padding left to add)."""
    crop = tuple(slice(max(-b, 0), w - max(-e, 0)) for w, (b, e) in zip(sizes, pads,
                                                                          strict=True))
    return crop, [(max(b, 0), max(e, 0)) for b, e in pads]


def pad_spatial(x: np.ndarray, pads: Pads) -> np.ndarray:
    """Zero-pad (or, for negative amounts, crop) the spatial axes of a channels-last array."""
    if all(p == (0, 0) for p in pads):
        return x
    crop, grow = crop_grow(x.shape[1:-1], pads)
    x = x[(slice(None), *crop)]
    if all(p == (0, 0) for p in grow):
        return x
    xp = np.zeros((x.shape[0], *(w + b + e for w, (b, e) in zip(x.shape[1:-1], grow,
                                                                  strict=True)), x.shape[-1]),
                  dtype=x.dtype)
    xp[(slice(None), *(slice(b, b + w) for w, (b, _) in zip(x.shape[1:-1], grow, strict=True)))
       ] = x
    return xp


def zero_border(buf: np.ndarray, grow: Sequence[tuple[int, int]], first_axis: int = 1) -> None:
    """Zero the (before, after) border slabs of ``buf``'s spatial axes (from ``first_axis``)."""
    for a, (b, e) in enumerate(grow):
        axis = first_axis + a
        idx = [slice(None)] * buf.ndim
        if b:
            idx[axis] = slice(0, b)
            buf[tuple(idx)] = 0
        if e:
            idx[axis] = slice(buf.shape[axis] - e, buf.shape[axis])
            buf[tuple(idx)] = 0


def pad_buffer(block_shape: tuple[int, ...], pads: Pads, dtype: Any) -> np.ndarray | None:
    """A buffer for one padded block with a zero border (None when the pads only crop).
    Blocks write only its interior, so the border stays zero from block to block."""
    crop, grow = crop_grow(block_shape[1:-1], pads)
    if not any(b or e for b, e in grow):
        return None
    sizes = [s.stop - s.start + b + e for s, (b, e) in zip(crop, grow, strict=True)]
    buf = np.empty((block_shape[0], *sizes, block_shape[-1]), dtype=dtype)
    zero_border(buf, grow)
    return buf


def padded_block(xb: np.ndarray, pads: Pads, buf: np.ndarray | None) -> np.ndarray:
    """xb zero-padded (negative pads crop) inside ``buf`` (from :func:`pad_buffer`)."""
    crop, grow = crop_grow(xb.shape[1:-1], pads)
    xb = xb[(slice(None), *crop)]
    if buf is None:
        return xb
    dst = buf[:xb.shape[0]]
    dst[(slice(None), *(slice(b, b + w) for w, (b, _) in zip(xb.shape[1:-1], grow,
                                                             strict=True)))] = xb
    return dst


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


def flip_pads(ksize: Ints, pads: Pads, dilation: Ints, x_sizes: Ints, o_sizes: Ints) -> Pads:
    """Pads of dZ for dX as a full convolution (stride 1, E = D*(K-1) + 1): E-1-P_before
    before, the rest after."""
    out = []
    for a, k in enumerate(ksize):
        eff = dilation[a] * (k - 1) + 1
        before = eff - 1 - pads[a][0]
        out.append((before, x_sizes[a] - o_sizes[a] - before + eff - 1))
    return tuple(out)
