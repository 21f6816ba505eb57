"""Fused inference steps for the engine: batch-norm folded into the convolution or dense layer
before it, zero padding merged into the next convolution's pads, and ReLU-type activations
applied in place on the buffer that the step just wrote.

Folding (inference batch-norm with moving statistics mu, var, scale gamma, offset beta):

    s  = gamma / sqrt(var + eps)            (per output channel)
    W' = W * s                              (over the kernel's output-channel axis)
    b' = (b - mu) * s + beta                (b = 0 without a bias)

so that conv(x, W') + b' = BN(conv(x, W) + b). The folded weights are recomputed on every
call from the layers' current arrays (six small array operations per layer, ~7 us; about 5%
of ResNet-20 at batch 1), so the engine follows training, ``set_weights`` and in-place edits
without any cache to invalidate (the weight arrays carry no version counter).

A 1x1 convolution runs here as GEMMs over blocks of rows, each followed by its bias and
activation while the block is in cache; other convolutions call the conv kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import layers as L
from .. import ops
from ..kernels import activation as KA
from ..kernels import conv as KC
from ..kernels import linear as KL
from ..kernels import native, parallel
from ..kernels import norm as KN
from ..kernels.padding import resolve_padding
from ..ops import activation as OA

Fn = Callable[[Any], Any]
Piece = Callable[..., Any]  # piece(out, *inputs): writes its result into out


# ----- elementwise work on flat pieces ------------------------------------------------------
# Elementwise passes over outputs smaller than this run in one call: they are memory-bound,
# and splitting them over the kernel threads measured slower up to ~2.5 MB (0.16 vs 0.12 ms
# for an add + ReLU over 8x56x56x24 float32) and only ~10% faster at 8 MB.
ELEMENTWISE_PARALLEL_BYTES = 4 << 20


def elementwise(out: np.ndarray, piece: Piece, *arrays: np.ndarray) -> np.ndarray:
    """out = piece(*arrays) elementwise, over flat pieces spread on the kernel threads when
    the arrays are large and contiguous (one call otherwise); ``out`` may be one of them."""
    if not (out.flags.c_contiguous and all(a.flags.c_contiguous and a.shape == out.shape
                                           for a in arrays)):
        piece(out, *arrays)
        return out
    flats = [a.reshape(-1) for a in (out, *arrays)]
    width = sum(a.itemsize for a in flats)
    if out.nbytes < ELEMENTWISE_PARALLEL_BYTES:
        piece(*flats)
        return out
    parallel.for_rows(flats[0].size, width, lambda r0, r1: piece(*(f[r0:r1] for f in flats)))
    return out


# ----- activations ---------------------------------------------------------------------------
def _relu6_piece(o: np.ndarray, a: np.ndarray) -> None:
    np.clip(a, 0, 6, out=o)


def _capped_piece(cap: float) -> Piece:
    def piece(o: np.ndarray, a: np.ndarray) -> None:
        np.clip(a, 0, cap, out=o)  # = min(max(a, 0), cap)

    return piece


class Act:
    """An activation as the engine applies it: ``piece(out, x)`` for the piecewise-linear ones
    that can run in place, else ``fn(x)`` (a kernel making a new array)."""

    __slots__ = ("piece", "fn")

    def __init__(self, piece: Piece | None = None, fn: Fn | None = None):
        self.piece, self.fn = piece, fn

    def apply(self, z: np.ndarray, inplace: bool) -> np.ndarray:
        """act(z), written into z when ``inplace`` and the activation allows it."""
        if self.piece is not None:
            out = z if inplace else np.empty_like(z)
            if z.nbytes < ELEMENTWISE_PARALLEL_BYTES:
                self.piece(out, z)
                return out
            return elementwise(out, self.piece, z)
        assert self.fn is not None
        return self.fn(z)


RELU = Act(KA.relu_into)
RELU6 = Act(_relu6_piece)


def act_of_function(fn: Any) -> Act | None | bool:
    """The Act for an activation function of ``cnnkit.ops``: None for the identity, False
    when the engine has no form for it (the layer then runs through its own call)."""
    if fn is None or fn is OA._linear:
        return None
    table = {ops.relu: RELU, ops.relu6: RELU6,
             ops.sigmoid: Act(fn=KA.sigmoid_forward), ops.tanh: Act(fn=KA.tanh_forward),
             ops.softmax: Act(fn=lambda z: KA.softmax_forward(z, -1))}
    return table.get(fn, False)


def act_of_layer(layer: Any) -> Act | None | bool:
    """The Act of an activation layer (ReLU, Activation), or False for any other layer."""
    if isinstance(layer, L.ReLU):
        if layer.negative_slope != 0 or layer.threshold != 0:
            return False
        if layer.max_value is None:
            return RELU
        if layer.max_value == 6:
            return RELU6
        return Act(_capped_piece(float(layer.max_value)))
    if isinstance(layer, L.Activation):
        return act_of_function(layer.fn)
    return False


def finish(z: np.ndarray, act: Act | None, inplace: bool = True) -> np.ndarray:
    """act(z) (z itself without an activation)."""
    return z if act is None else act.apply(z, inplace)


# ----- batch-norm folding --------------------------------------------------------------------
def bn_foldable(bn: Any, out_rank: int | None) -> bool:
    """Whether ``bn`` normalises the last axis (the channels) of a tensor of rank
    ``out_rank`` (None: unknown rank, only axis -1 then)."""
    axis = bn.axis
    if isinstance(axis, tuple):
        if len(axis) != 1:
            return False
        axis = axis[0]
    return axis == -1 or (out_rank is not None and axis == out_rank - 1)


def bn_scale_shift(bn: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) with BN(z) = z * s + t for a BatchNormalization layer's moving statistics
    (:func:`cnnkit.kernels.norm.infer_scale_shift`)."""
    return KN.infer_scale_shift(None if bn.gamma is None else bn.gamma.data,
                                None if bn.beta is None else bn.beta.data,
                                bn.moving_mean.data, bn.moving_variance.data, bn.epsilon, dtype)


def folded_params(layer: Any, bn: Any | None, channel_shape: tuple[int, ...] | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """(W', b') of ``layer`` with ``bn`` folded in (the layer's own arrays without ``bn``).
    ``channel_shape``: how the output channels lie on the kernel's last axes ((C, M) for a
    depthwise kernel)."""
    w = layer.kernel.data
    b = layer.bias.data if layer.bias is not None else None
    if bn is None:
        return w, b
    s, t = bn_scale_shift(bn, w.dtype)
    w2 = np.multiply(w, s if channel_shape is None else s.reshape(channel_shape))
    if b is not None:
        t += b * s
    return w2, t


# ----- fused steps ---------------------------------------------------------------------------
def conv_step(conv: Any, bn: Any | None, act: Act | None,
              extra_pads: tuple[tuple[int, int], ...] | None) -> Fn:
    """x -> act(BN(conv(zero_pad(x)))) with BN folded into the kernel, the zero padding into
    the convolution's pads and the activation applied in place."""
    depthwise = isinstance(conv, L.DepthwiseConv2D)
    pads_cache: dict[tuple, Any] = {}

    def pads_for(shape: tuple) -> Any:
        hit = pads_cache.get(shape)
        if hit is None:
            sizes = shape[1:-1]
            if extra_pads is not None:
                sizes = tuple(n + b + a for n, (b, a) in zip(sizes, extra_pads, strict=True))
            hit = resolve_padding(conv.padding, sizes, conv.kernel_size, conv.strides,
                                  conv.dilation_rate)
            if extra_pads is not None:
                hit = tuple((p0 + e0, p1 + e1) for (p0, p1), (e0, e1) in zip(hit, extra_pads,
                                                                            strict=True))
            pads_cache[shape] = hit
        return hit

    strides, dilation = conv.strides, conv.dilation_rate
    if depthwise:
        def run_dw(x: np.ndarray) -> np.ndarray:
            w, b = folded_params(conv, bn, conv.kernel.shape[-2:])
            z = KC.depthwise_conv_forward(x, w, b, strides, pads_for(x.shape), dilation)
            return finish(z, act)

        return run_dw
    groups = conv.groups
    pointwise = all(k == 1 for k in conv.kernel_size) and all(st == 1 for st in strides) \
        and groups == 1

    def run(x: np.ndarray) -> np.ndarray:
        w, b = folded_params(conv, bn)
        pads = pads_for(x.shape)
        if pointwise and x.flags.c_contiguous and not any(p for pair in pads for p in pair):
            return pointwise_conv(x, w.reshape(w.shape[-2:]), b, act)
        if x.ndim == 4 and groups == 1:
            z = small_conv2d(x, w, b, strides, pads, dilation)
            if z is not None:
                return finish(z, act)
        z, _ = KC.conv_forward(x, w, b, strides, pads, dilation, groups, keep_cols=False)
        return finish(z, act)

    return run


# 2-D convolutions with at most SMALL_CONV_PIXELS output pixels (batch x height x width) and
# at least SMALL_CONV_CHANNELS input channels run as one im2col copy and one GEMM: at batch 1
# on small feature maps this measured up to 3.5x faster than the conv kernel's dispatch
# (ResNet-20's 8x8x64 3x3 layers: 72 vs 253 us; 16x16x32: 81 vs 103 us; ResNet-20 whole:
# 2.96 -> 1.93 ms), slower from ~800 pixels on, and no faster for LeNet-5's 6-channel layer.
# With the C helper built (float32) the conv kernel is faster (ResNet-20 batch 1: 1.56 vs 1.92 ms).
SMALL_CONV_PIXELS, SMALL_CONV_CHANNELS = 256, 16


def small_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Any,
                 pads: Any, dilation: Any) -> np.ndarray | None:
    """Z[n, o] = sum_{i, j, c} Xpad[n, o*S + (i, j)*D, c] K[i, j, c, :] + b as
    cols (N*Ho*Wo, KH*KW*C) @ K (KH*KW*C, C_out), for small jobs (None otherwise)."""
    if x.dtype == np.float32 and native.available():
        return None  # the C helper's direct/Winograd kernels are faster at every size
    n, h, wd, c = x.shape
    kh, kw, _, cout = w.shape
    ho, wo = KC.conv_output_sizes((h, wd), (kh, kw), strides, pads, dilation)
    if n * ho * wo > SMALL_CONV_PIXELS or c < SMALL_CONV_CHANNELS or \
            any(p < 0 for pair in pads for p in pair):
        return None
    (pt, pb), (pl, pr) = pads
    xp = x
    if pt or pb or pl or pr:
        xp = np.zeros((n, h + pt + pb, wd + pl + pr, c), dtype=x.dtype)
        xp[:, pt:pt + h, pl:pl + wd] = x
    st = xp.strides
    view = as_strided(xp, (n, ho, wo, kh, kw, c),
                      (st[0], st[1] * strides[0], st[2] * strides[1], st[1] * dilation[0],
                       st[2] * dilation[1], st[3]), writeable=False)
    cols = view.reshape(n * ho * wo, kh * kw * c)  # the im2col copy
    z = np.empty((n, ho, wo, cout), dtype=np.result_type(x, w))
    z2 = z.reshape(-1, cout)
    parallel.matmul(cols, w.reshape(-1, cout), out=z2)  # BLAS held to the kernel threads
    if b is not None:
        z2 += b
    return z


# A 1x1 convolution runs as GEMMs over blocks of rows of about this many output bytes, each
# followed by its bias and activation while the block is still in cache.
POINTWISE_BLOCK_BYTES = 1 << 20


def pointwise_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, act: Act | None
                   ) -> np.ndarray:
    """act(x W + b) over the rows of x (N, ..., C_in) for a 1x1 convolution (w (C_in, C_out)),
    block by block over the kernel threads."""
    cin, cout = w.shape
    rows = x.size // cin
    x2 = x.reshape(rows, cin)
    z = np.empty((*x.shape[:-1], cout), dtype=np.result_type(x, w))
    z2 = z.reshape(rows, cout)
    if rows * cin * cout < SMALL_GEMM_MACS:
        np.matmul(x2, w, out=z2)
        if b is not None:
            z2 += b
        return finish(z, act)
    per = max(1, POINTWISE_BLOCK_BYTES // (cout * z.itemsize))
    blocks = parallel.split(rows, max(-(-rows // per), parallel.get_num_threads()))
    piece = act.piece if act is not None else None

    def body(i: int, _: Any) -> None:
        r0, r1 = blocks[i]
        zb = z2[r0:r1]
        np.matmul(x2[r0:r1], w, out=zb)
        if b is not None:
            zb += b
        if piece is not None:
            piece(zb, zb)

    parallel.run_blocks(len(blocks), body, blas=True)
    if act is not None and piece is None:
        return act.apply(z, True)
    return z


# GEMMs below this many multiply-adds call NumPy's matmul directly: OpenBLAS runs them on one
# thread anyway (its own threshold is 4 x 65536), and the kernel's hand-over bookkeeping
# (holding BLAS's thread count) costs more than the product at batch 1.
SMALL_GEMM_MACS = 1 << 18


def dense_step(dense: Any, bn: Any | None, act: Act | None) -> Fn:
    """x -> act(BN(x W + b)) with BN folded into W and b."""
    def run(x: np.ndarray) -> np.ndarray:
        w, b = folded_params(dense, bn)
        if x.size * w.shape[1] < SMALL_GEMM_MACS:
            y = np.matmul(x.reshape(-1, w.shape[0]), w)
            if b is not None:
                y += b
            return finish(y.reshape(*x.shape[:-1], w.shape[1]), act)
        return finish(KL.dense_forward(x, w, b), act)

    return run


def bn_step(bn: Any, act: Act | None, inplace: bool) -> Fn:
    """x -> act(x * s + t) for channels-last inference batch-norm, written into x when
    ``inplace`` (x is dead after this step and owned by the plan)."""
    def piece(o: np.ndarray, a: np.ndarray, s: np.ndarray, t: np.ndarray) -> None:
        np.multiply(a, s, out=o)
        o += t
        if act is not None and act.piece is not None:
            act.piece(o, o)

    def run(x: np.ndarray) -> np.ndarray:
        s, t = bn_scale_shift(bn, x.dtype)
        c = x.shape[-1]
        ip = inplace and x.flags.c_contiguous
        out = x if ip else np.empty(x.shape, np.result_type(x, s))
        if x.flags.c_contiguous and out.dtype == x.dtype and x.ndim >= 2 and \
                x.nbytes >= ELEMENTWISE_PARALLEL_BYTES:
            x2, o2 = x.reshape(-1, c), out.reshape(-1, c)
            parallel.for_rows(x2.shape[0], c * x.itemsize * 2,
                              lambda r0, r1: piece(o2[r0:r1], x2[r0:r1], s, t))
        else:
            piece(out, x, s, t)
        if act is not None and act.piece is None:
            return act.apply(out, True)
        return out

    return run


_MERGE_PIECES: dict[str, Callable[..., Any]] = {"Add": np.add, "Subtract": np.subtract,
                                                "Multiply": np.multiply}


def merge_step(kind: str, act: Act | None, inplace_arg: int | None, slow: Fn) -> Fn:
    """[x0, x1, ...] -> act(x0 op x1 op ...) for Add / Subtract / Multiply, written into
    input ``inplace_arg`` when that one is dead after this step and owned by the plan (and
    has the result's shape and dtype); inputs of different ranks take ``slow`` (the layer's
    own broadcasting)."""
    ufunc = _MERGE_PIECES[kind]
    act_piece = act.piece if act is not None else None

    def piece(o: np.ndarray, *ins: np.ndarray) -> None:
        ufunc(ins[0], ins[1], out=o)
        for a in ins[2:]:
            ufunc(o, a, out=o)
        if act_piece is not None:
            act_piece(o, o)

    def run(xs: list) -> np.ndarray:
        x0 = xs[0]
        shape, dtype = x0.shape, x0.dtype
        for x in xs:
            if x.shape != shape or x.dtype != dtype:
                if not all(x.ndim == x0.ndim for x in xs):
                    return finish(slow(xs), act, True)
                out = ufunc(xs[0], xs[1])
                for x in xs[2:]:
                    ufunc(out, x, out=out)
                return finish(out, act, True)
        out = xs[inplace_arg] if inplace_arg is not None else np.empty_like(x0)
        if out.nbytes < ELEMENTWISE_PARALLEL_BYTES:
            piece(out, *xs)
        else:
            elementwise(out, piece, *xs)
        if act is not None and act_piece is None:
            return act.apply(out, True)
        return out

    return run


def act_step(act: Act, inplace: bool) -> Fn:
    """x -> act(x), in place when ``inplace``."""
    return lambda x: act.apply(x, inplace)
