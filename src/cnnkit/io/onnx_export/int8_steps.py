"""ONNX forms of the int8 steps (:mod:`cnnkit.runtime.steps`) that give ONNX Runtime the same
integers as cnnkit's kernels, in standard-domain operators only.

Each form repeats cnnkit's arithmetic operation for operation:

- integer convolution / depthwise / dense: ``ConvInteger`` (x zero point in, weights
  symmetric; ONNX Runtime pads with the zero point, as cnnkit does) gives the exact int32
  sums; then ``Add`` (int32 bias, zero-point term excluded: ConvInteger subtracts it),
  ``Cast`` to float32, ``Mul`` by the float32 multiplier, and for codes
  ``QuantizeLinear(t, scale 1, zero point yz)`` = clamp(rint(t) + yz) (t / 1 is exact; rint
  is round half to even in both), then ``Clip`` to a fused activation's codes. A dense layer
  is a 1x1 ConvInteger: ``MatMulInteger`` of uint8 by int8 saturates int16 pair sums in
  ONNX Runtime's AVX2 kernel (measured: wrong sums), ConvInteger does not;
- quantize: ``Mul`` by float32(1 / s), then ``QuantizeLinear`` with scale 1 (cnnkit
  multiplies by the inverse; QuantizeLinear would divide, which differs at rare ties);
- dequantize: ``DequantizeLinear`` ((q - z) * s in float32, as cnnkit);
- add: each input ``Cast`` to int32, ``Sub`` its zero point, ``Cast`` to float32, ``Mul`` by
  s_in / s_out, ``Add``, ``QuantizeLinear`` with scale 1 (not DequantizeLinear -> Add ->
  QuantizeLinear, which ONNX Runtime would fuse into its own QLinearAdd);
- max pooling and clamps: ``MaxPool`` and ``Clip`` on the codes (exact).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...kernels import quantize as qk
from ...kernels.padding import resolve_padding
from ...runtime.compute import pads_resolver
from .graph import Graph, Value
from .layout import as_cf, as_last

FLOAT = 1  # onnx.TensorProto.FLOAT


def _tensor_type(g: Graph, dtype: Any) -> int:
    return int(g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


def _one(g: Graph) -> str:
    return g.const(np.float32(1.0), "one")


def requant_codes(g: Graph, t: str, yz: int, dtype: Any, limits: tuple[int, int] | None,
                  base: str) -> str:
    """clamp(rint(t) + yz, lo, hi) as ``dtype`` codes (float32 ``t``)."""
    q = g.node("QuantizeLinear", [t, _one(g), g.const(yz, "zero_point", dtype)], base
               if limits is None else f"{base}/quantize")
    if limits is not None and tuple(limits) != qk.qrange(dtype):
        q = g.node("Clip", [q, g.const(limits[0], "code_min", dtype),
                            g.const(limits[1], "code_max", dtype)], base)
    return q


def quantize(g: Graph, x: Value, scale: float, zero: int, dtype: Any, base: str) -> Value:
    """clamp(rint(x * float32(1 / s)) + z) (:func:`cnnkit.kernels.quantize.quantize`)."""
    inv = np.float32(1.0) / np.float32(scale)
    t = g.node("Mul", [x.name, g.const(inv, "inv_scale", np.float32)], f"{base}/scaled")
    return x.named(requant_codes(g, t, zero, dtype, None, base), dtype=np.dtype(dtype))


def dequantize(g: Graph, q: Value, scale: float, zero: int, base: str) -> Value:
    """(q - z) * s in float32."""
    y = g.node("DequantizeLinear", [q.name, g.const(np.float32(scale), "scale"),
                                    g.const(zero, "zero_point", q.dtype)], base)
    return q.named(y, dtype=np.dtype(np.float32))


def _conv_kernel(wq: np.ndarray, kind: str) -> np.ndarray:
    """cnnkit's int8 weights in ConvInteger's (COUT, C / group, KH, KW) layout."""
    if kind == "depthwise":  # (KH, KW, C) -> (C, 1, KH, KW)
        return np.ascontiguousarray(wq.transpose(2, 0, 1)[:, None])
    return np.ascontiguousarray(wq.transpose(3, 2, 0, 1))  # (KH, KW, C, CO)


def dense_codes(g: Graph, wq: np.ndarray, x: Value) -> tuple[np.ndarray, Value]:
    """(a dense layer's weight codes as (c, cout), its input): rows reordered to follow an
    input whose features lie in another order, else the input brought to channels-last."""
    wq = wq.reshape(wq.shape[-2:])
    if x.order is not None and x.rank == 2:  # features in another order: rows follow
        return wq[x.order], x
    return wq, as_last(g, x)


def _accumulate(g: Graph, step: Any, x: Value, last_shape: tuple, base: str
                ) -> tuple[str, Any]:
    """(the int32 sums of the layer, channels-first, the Value it was computed from)."""
    p, kind = step.params, step.kind
    zx = g.const(p.xz, "x_zero_point", x.dtype)
    if kind == "dense":
        wq, x = dense_codes(g, p.wq, x)
        c, cout = wq.shape
        x4 = g.node("Reshape", [x.name, g.ints([-1, c, 1, 1], "shape")], f"{base}/as_1x1")
        w = g.weight(None, _conv_kernel(wq.reshape(1, 1, c, cout), "conv"), f"{base}.kernel")
        acc = g.node("ConvInteger", [x4, w, zx], f"{base}/acc", kernel_shape=[1, 1])
        lead = [int(d) for d in last_shape[1:-1]]
        return g.node("Reshape", [acc, g.ints([-1, *lead, cout], "shape")], f"{base}/sums"), x
    x = as_cf(g, x)
    la = step.layer
    pads = pads_resolver(la, step.extra_pads)(last_shape)
    w = g.weight(None, _conv_kernel(p.wq, kind), f"{base}.kernel")
    acc = g.node("ConvInteger", [x.name, w, zx], f"{base}/acc",
                 kernel_shape=list(la.kernel_size), strides=list(la.strides),
                 dilations=list(la.dilation_rate),
                 pads=[a for a, _ in pads] + [b for _, b in pads],
                 group=int(p.wq.shape[-1]) if kind == "depthwise" else None)
    return acc, x


def _bias(p: Any) -> np.ndarray:
    """cnnkit's int32 bias without its - xz * sum(wq) term (ConvInteger subtracts xz from
    the input itself)."""
    colsum = p.wq.astype(np.int64).reshape(-1, p.wq.shape[-1]).sum(axis=0)
    b = p.bias.astype(np.int64) + int(p.xz) * colsum
    return np.clip(b, -(1 << 31), (1 << 31) - 1).astype(np.int32)


def integer_layer(g: Graph, step: Any, x: Value, in_shape: tuple, out_shape: tuple,
                  base: str) -> Value:
    """A QuantizedConv step (module docstring): codes of its output dtype, or float32."""
    p = step.params
    acc, x = _accumulate(g, step, x, in_shape, base)
    cf = step.kind != "dense"
    vec_shape = (-1, 1, 1) if cf else (-1,)
    s = g.node("Add", [acc, g.const(_bias(p).reshape(vec_shape), "bias")], f"{base}/biased")
    t = g.node("Mul", [g.node("Cast", [s], f"{base}/float", to=FLOAT),
                       g.const(p.mult.reshape(vec_shape).astype(np.float32), "multiplier")],
               f"{base}/scaled")
    out_dtype = np.dtype(step.out_dtype)
    value = Value(t, tuple(out_shape), cf and len(out_shape) >= 3, np.dtype(np.float32))
    if out_dtype == np.float32:
        act = step.float_act
        if act is None:
            return value
        lo, hi = act.bounds
        return value.named(g.clip(t, lo, hi, np.float32, base))
    return value.named(requant_codes(g, t, p.yz, out_dtype, (p.lo, p.hi), base),
                       dtype=out_dtype)


def max_pool(g: Graph, step: Any, x: Value, in_shape: tuple, out_shape: tuple, base: str
             ) -> Value:
    """MaxPool on codes (ONNX pads never win a max, as cnnkit's qmin padding), then the
    fused activation's clamp."""
    x = as_cf(g, x)
    pads = resolve_padding(step.padding, in_shape[1:-1], tuple(step.pool),
                           tuple(step.strides), (1,) * len(step.pool))
    y = g.node("MaxPool", [x.name], base if step.limits is None else f"{base}/pool",
               kernel_shape=list(step.pool), strides=list(step.strides),
               pads=[a for a, _ in pads] + [b for _, b in pads])
    if step.limits is not None:
        y = clamp(g, x.named(y), step.limits, base).name
    return x.named(y, shape=tuple(out_shape))


def clamp(g: Graph, x: Value, limits: tuple[int, int], base: str) -> Value:
    lo, hi = limits
    return x.named(g.node("Clip", [x.name, g.const(lo, "code_min", x.dtype),
                                   g.const(hi, "code_max", x.dtype)], base))


def add(g: Graph, step: Any, xs: list[Value], base: str) -> Value:
    """The sum of two code tensors requantized (module docstring)."""
    sy = np.float32(step.qy[0])
    terms = []
    for i, (v, (s, z)) in enumerate(zip(xs, (step.qa, step.qb), strict=True)):
        wide = g.node("Cast", [v.name], f"{base}/in{i}_int32", to=6)  # INT32
        d = g.node("Sub", [wide, g.const(np.int32(z), "zero_point")], f"{base}/in{i}_centred")
        m = np.float32(np.float32(s) / sy)
        terms.append(g.node("Mul", [g.node("Cast", [d], f"{base}/in{i}_float", to=FLOAT),
                                    g.const(m, "ratio")], f"{base}/in{i}_scaled"))
    t = g.node("Add", terms, f"{base}/sum")
    limits = (step.lo, step.hi)
    return xs[0].named(requant_codes(g, t, step.qy[1], step.dtype, limits, base),
                       dtype=np.dtype(step.dtype))
