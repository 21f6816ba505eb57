"""The array functions behind the runtime's steps: each ``*_fn`` returns ``fn(x) -> y``
computing one (possibly fused) step with the forward kernels, reading the layers' weight
arrays at call time.

Batch-norm folding (inference statistics mu, var, scale gamma, offset beta):

    s  = gamma / sqrt(var + eps)            (per output channel)
    W' = W * s                              (over the kernel's output-channel axis)
    b' = (b - mu) * s + beta                (b = 0 without a bias)

so that conv(x, W') + b' = BN(conv(x, W) + b). Each step keeps what it derives from the
weights (the folded W' and b', the Winograd transform of W', a batch-norm's s and t) in a
:class:`.param_cache.StepCache`, recomputed when a source Tensor's array or version changed,
so a plan follows training, ``set_weights`` and ``t.data[...] = v`` edits (see
:mod:`.param_cache`). Besides those caches and one of resolved pads per input shape (both
idempotent), nothing is kept between calls, so the functions may run on several threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..kernels import conv as conv_kernels
from ..kernels import linear as linear_kernels
from ..kernels import norm as norm_kernels
from ..kernels import parallel
from ..kernels import pool as pool_kernels
from ..kernels.conv import dispatch
from ..kernels.conv import inference as conv_inference
from ..kernels.padding import resolve_padding
from . import activations
from .activations import Act, finish
from .param_cache import StepCache, read

Fn = Callable[[Any], Any]
Pads = tuple[tuple[int, int], ...]


def bn_scale_shift(bn: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) with BN(z) = z * s + t for a batch-norm layer's moving statistics."""
    return norm_kernels.infer_scale_shift(read(bn.gamma), read(bn.beta), read(bn.moving_mean),
                                          read(bn.moving_variance), bn.epsilon, dtype)


def bn_sources(bn: Any | None) -> tuple:
    """The Tensors a batch-norm's inference form is computed from (empty for None)."""
    if bn is None:
        return ()
    return bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance


class Folded:
    """A layer's folded (W', b') and the forms the kernels derive from W' (``transforms``,
    filled on first use: the Winograd U)."""

    __slots__ = ("w", "b", "transforms")

    def __init__(self, wb: tuple[np.ndarray, np.ndarray | None]) -> None:
        self.w, self.b = wb
        self.transforms: dict = {}


def folded_cached(cache: StepCache, layer: Any, bn: Any | None,
                  channel_shape: tuple[int, ...] | None = None) -> Folded:
    """:func:`folded_params` through ``cache`` (recomputed when a weight changed)."""
    return cache.get((layer.kernel, layer.bias, *bn_sources(bn)),
                     lambda: Folded(folded_params(layer, bn, channel_shape)))


def folded_params(layer: Any, bn: Any | None, channel_shape: tuple[int, ...] | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """(W', b') of ``layer`` with ``bn`` folded in (the layer's own arrays without ``bn``).
    ``channel_shape``: how the output channels lie on the kernel's last axes ((C, M) for a
    depthwise kernel)."""
    w, b = read(layer.kernel), read(layer.bias)
    if bn is None:
        return w, b
    s, t = bn_scale_shift(bn, w.dtype)
    w2 = np.multiply(w, s if channel_shape is None else s.reshape(channel_shape))
    if b is not None:
        t += b * s
    return w2, t


def pads_resolver(conv: Any, extra_pads: Pads | None) -> Callable[[tuple], Any]:
    """pads_for(input shape): the convolution's own pads plus ``extra_pads`` (a zero padding
    merged in), cached per shape."""
    cache: dict[tuple, Any] = {}

    def pads_for(shape: tuple) -> Any:
        hit = cache.get(shape)
        if hit is None:
            sizes = shape[1:-1]
            if extra_pads is not None:
                sizes = tuple(n + b + a for n, (b, a) in zip(sizes, extra_pads, strict=True))
            hit = resolve_padding(conv.padding, sizes, conv.kernel_size, conv.strides,
                                  conv.dilation_rate)
            if extra_pads is not None:
                hit = tuple((p0 + e0, p1 + e1) for (p0, p1), (e0, e1) in zip(hit, extra_pads,
                                                                            strict=True))
            cache[shape] = hit
        return hit

    return pads_for


def conv_fn(conv: Any, depthwise: bool, bn: Any | None, act: Act | None,
            extra_pads: Pads | None) -> Fn:
    """x -> act(BN(conv(zero_pad(x)))) with BN folded into the kernel, the zero padding into
    the convolution's pads and an in-place activation applied on the new buffer."""
    pads_for = pads_resolver(conv, extra_pads)
    strides, dilation = conv.strides, conv.dilation_rate
    cache = StepCache()
    if depthwise:
        def run_depthwise(x: np.ndarray) -> np.ndarray:
            f = folded_cached(cache, conv, bn, conv.kernel.shape[-2:])
            w, b = f.w, f.b
            z = conv_kernels.depthwise_conv_forward(x, w, b, strides, pads_for(x.shape), dilation)
            return finish(z, act)

        return run_depthwise
    groups = conv.groups
    pointwise = all(k == 1 for k in conv.kernel_size) and groups == 1
    step = tuple(slice(None, None, st) for st in strides) if any(st > 1 for st in strides) \
        else None
    piece = act.piece if act is not None else None

    def run(x: np.ndarray) -> np.ndarray:
        f = folded_cached(cache, conv, bn)
        w, b = f.w, f.b
        pads = pads_for(x.shape)
        if pointwise and x.ndim >= 3 and not any(p for pair in pads for p in pair):
            if step is not None:  # a strided 1x1: the GEMM on the kept pixels
                x = np.ascontiguousarray(x[(slice(None), *step)])
            if x.flags.c_contiguous:
                z = conv_inference.pointwise_conv(x, w.reshape(w.shape[-2:]), b, piece)
                return z if piece is not None else finish(z, act)
        if x.ndim == 4 and groups == 1:
            z = conv_inference.small_conv2d(x, w, b, strides, pads, dilation)
            if z is not None:
                return finish(z, act)
        z, _ = conv_kernels.conv_forward(x, w, b, strides, pads, dilation, groups,
                                         keep_cols=False, transforms=f.transforms)
        return finish(z, act)

    return run


def dense_fn(dense: Any, bn: Any | None, act: Act | None, rows: bool = False) -> Fn:
    """x -> act(BN(x W + b)) with BN folded into W and b. One sample (and every batch when
    ``rows``) goes through ``linear.dense_rows`` where it applies: each row summed alike, so
    a batch-invariant plan (``rows``) gives every sample what predicting it alone gives."""
    cache = StepCache()

    def run(x: np.ndarray) -> np.ndarray:
        f = folded_cached(cache, dense, bn)
        w, b = f.w, f.b
        if rows or len(x) == 1:
            y = linear_kernels.dense_rows(x, w)
            if y is not None:
                if b is not None:
                    y += b
                return finish(y, act)
        if x.size * w.shape[1] < dispatch.THRESHOLDS.small_gemm_macs:
            y = np.matmul(x.reshape(-1, w.shape[0]), w)
            if b is not None:
                y += b
            return finish(y.reshape(*x.shape[:-1], w.shape[1]), act)
        return finish(linear_kernels.dense_forward(x, w, b), act)

    return run


def dense_rows_apply(dense: Any, bn: Any | None, x: np.ndarray) -> bool:
    """Whether :func:`dense_fn` with ``rows`` computes every sample of ``x`` as at batch 1
    (the C helper is there and takes these dtypes)."""
    from ..kernels.native import dense as native_dense

    w = read(dense.kernel)
    dtype = w.dtype if bn is None else np.result_type(w, read(bn.moving_variance))
    return x.dtype == np.float32 and dtype == np.float32 and native_dense.available()


def affine_fn(bn: Any, act: Act | None, inplace: bool) -> Fn:
    """x -> act(x * s + t) for channels-last inference batch-norm, written into x when
    ``inplace`` (x is dead after this step and owned by the plan)."""
    def piece(o: np.ndarray, a: np.ndarray, s: np.ndarray, t: np.ndarray) -> None:
        np.multiply(a, s, out=o)
        o += t
        if act is not None and act.piece is not None:
            act.piece(o, o)

    cache = StepCache()

    def run(x: np.ndarray) -> np.ndarray:
        s, t = cache.get(bn_sources(bn), lambda: bn_scale_shift(bn, x.dtype), x.dtype)
        c = x.shape[-1]
        ip = inplace and x.flags.c_contiguous
        out = x if ip else np.empty(x.shape, np.result_type(x, s))
        if x.flags.c_contiguous and out.dtype == x.dtype and x.ndim >= 2 and \
                x.nbytes >= activations.ELEMENTWISE_PARALLEL_BYTES:
            x2, o2 = x.reshape(-1, c), out.reshape(-1, c)
            parallel.for_rows(x2.shape[0], c * x.itemsize * 2,
                              lambda r0, r1: piece(o2[r0:r1], x2[r0:r1], s, t))
        else:
            piece(out, x, s, t)
        if act is not None and act.piece is None:
            return act.apply(out, True)
        return out

    return run


def merge_fn(ufunc: Any, act: Act | None, inplace_arg: int | None, slow: Fn) -> Fn:
    """[x0, x1, ...] -> act(x0 op x1 op ...) for an elementwise ufunc, written into input
    ``inplace_arg`` when that one is dead after this step and owned by the plan (and has the
    result's shape and dtype); inputs of different ranks take ``slow`` (the layer's own
    broadcasting)."""
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
        if out.nbytes < activations.ELEMENTWISE_PARALLEL_BYTES:
            piece(out, *xs)
        else:
            activations.elementwise(out, piece, *xs)
        if act is not None and act_piece is None:
            return act.apply(out, True)
        return out

    return run


def zero_pad_fn(pads: Pads) -> Fn:
    """x -> x with pads[i] = (before, after) zeros around spatial axis i."""
    def zero_pad(x: np.ndarray) -> np.ndarray:
        shape = (x.shape[0], *(n + b + a for n, (b, a) in zip(x.shape[1:-1], pads,
                                                                strict=True)), x.shape[-1])
        out = np.zeros(shape, dtype=x.dtype)
        out[(slice(None), *(slice(b, b + n) for n, (b, _) in zip(x.shape[1:-1], pads,
                                                                  strict=True)))] = x
        return out

    return zero_pad


def _pairs_2x2(x: np.ndarray, ufunc: Any) -> np.ndarray:
    """ufunc over the 2x2 windows at stride 2 of (N, H, W, C) ("valid": an odd last row or
    column is dropped): ufunc(ufunc(x[2i, 2j], x[2i+1, 2j]), ufunc(x[2i, 2j+1], x[2i+1, 2j+1]))
    as two passes over strided views."""
    h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    rows = ufunc(x[:, 0:h:2, :w], x[:, 1:h:2, :w])
    return ufunc(rows[:, :, 0::2], rows[:, :, 1::2])


def pool_fn(is_max: bool, pool: tuple, strides: tuple, padding: str) -> Fn:
    """The pooling kernels for large inputs; small 2x2 / stride 2 "valid" windows as two
    passes over strided views (less overhead: ~5 us instead of 25-55 us at batch 1); a window
    of one tap at any stride is a strided view of x (max or mean over one value is the value)."""
    if all(p == 1 for p in pool):
        index = (slice(None), *(slice(None, None, s) for s in strides))
        return lambda x: x[index]
    kernel = pool_kernels.max_pool_forward if is_max else pool_kernels.avg_pool_forward
    if pool == (2, 2) and strides == (2, 2) and padding == "valid":
        def small_pairs(x: np.ndarray) -> np.ndarray:
            if x.nbytes >= parallel.MIN_PARALLEL_BYTES:
                return kernel(x, pool, strides, "valid")
            if is_max:
                return _pairs_2x2(x, np.maximum)
            out = _pairs_2x2(x, np.add)
            out *= out.dtype.type(0.25)
            return out

        return small_pairs
    return lambda x: kernel(x, pool, strides, padding)


def _clamp(act: Act | None) -> tuple[float, float]:
    """(lo, hi) of a clamp activation's bounds (None: no clamp)."""
    if act is None:
        return conv_inference.NO_CLAMP
    lo, hi = act.bounds  # type: ignore[misc]
    return float(lo), np.inf if hi is None else float(hi)


def conv_pool_fn(conv_step: Any, pool_step: Any) -> Fn:
    """x -> post(pool(pre(conv(x)))) for a ``steps.Conv`` and the 2x2 ``steps.Pool`` after it
    (pre, post: their clamp activations, or none): the C helper's fused kernel where it
    takes the convolution (``conv_inference.conv_pool``), else the two steps."""
    layer, bn = conv_step.layer, conv_step.affine
    pads_for = pads_resolver(layer, conv_step.extra_pads)
    strides, dilation = layer.strides, layer.dilation_rate
    avg, pre, post = not pool_step.is_max, _clamp(conv_step.act), _clamp(pool_step.act)
    apart = [conv_step.build((False,)), pool_step.build((True,))]
    cache = StepCache()

    def run(x: np.ndarray) -> np.ndarray:
        if x.ndim == 4 and x.dtype == np.float32:
            f = folded_cached(cache, layer, bn)
            p = conv_inference.conv_pool(x, f.w, f.b, strides, pads_for(x.shape), dilation,
                                         avg, pre, post, f.transforms)
            if p is not None:
                return p
        return apart[1](apart[0](x))

    return run


def conv_batch_invariant(conv: Any, depthwise: bool, bn: Any | None, extra_pads: Pads | None,
                         x: np.ndarray) -> bool:
    """Whether :func:`conv_fn` computes every sample of ``x`` exactly as it would at batch 1:
    true when the C kernels take the convolution with the same plan (direct or Winograd) at
    both sizes (each output pixel from its own window, in a fixed order)."""
    from ..kernels import native

    if depthwise or conv.groups != 1 or x.ndim != 4 or not native.available():
        return False
    if all(k == 1 for k in conv.kernel_size):
        return False  # 1x1: a GEMM
    w, b = folded_params(conv, bn)
    pads = pads_resolver(conv, extra_pads)(x.shape)
    strides, dilation = conv.strides, conv.dilation_rate
    if any(conv_inference.small_conv_applies(a, w, strides, pads, dilation) for a in (x, x[:1])):
        return False  # a GEMM at batch 1 or N
    whole = dispatch.native_plan(x, w, b, strides, pads, dilation, 1)
    return whole is not None and whole == dispatch.native_plan(x[:1], w, b, strides, pads,
                                                               dilation, 1)
