"""QDQ forms of the int8 steps (``int8_format="qdq"``): float operators between
``DequantizeLinear`` / ``QuantizeLinear`` pairs that carry cnnkit's scales and zero points, the
form quantization tools write and that ONNX Runtime's graph optimizer fuses into its integer
operators (QLinearConv, QGemm, QLinearAdd, QLinearConcat; MaxPool and Reshape on codes).

- integer convolution / depthwise / dense: ``DequantizeLinear`` of the input codes (sx, zx),
  of the int8 weights (symmetric, per-axis scales sw for per-channel weights) and of the
  int32 bias (scale float32(sx) * float32(sw), no zero-point term) into ``Conv`` (a dense
  layer: ``Gemm``), then ``QuantizeLinear`` (sy, zy) and a ``Clip`` on the codes for a fused
  activation that narrows the range. Fused, ONNX Runtime computes the exact int32 sums
  (u8 x s8 pair sums saturate int16 on AVX2 CPUs without VNNI when weights use 8 bits) and
  requantizes with float32(sx) * float32(sw) / float32(sy), cnnkit's multiplier. A layer
  with float output has no QuantizeLinear and runs as a float Conv / Gemm (float32 rounding);
- add and concatenation: ``DequantizeLinear`` of each input, ``Add`` / ``Concat``,
  ``QuantizeLinear`` (and ``Clip`` for a fused activation).

Quantize, dequantize, max pooling, clamps and views are written as in the integer form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...kernels import quantize as qk
from ...runtime.compute import pads_resolver
from .graph import Graph, Value
from .int8_steps import _bias, _conv_kernel, dense_codes
from .layout import as_cf

QParams = tuple[float, int]


def dq(g: Graph, codes: str, scale: Any, zero: Any, dtype: Any, base: str,
       axis: int | None = None) -> str:
    """DequantizeLinear: (q - z) * s, per-axis when ``scale`` is a vector."""
    s = np.asarray(scale, np.float32)
    z = np.zeros(s.shape, dtype) if zero is None else np.asarray(zero, dtype)
    return g.node("DequantizeLinear", [codes, g.const(s, "scale"), g.const(z, "zero_point")],
                  base, axis=axis if s.ndim else None)


def q_codes(g: Graph, t: str, qy: QParams, dtype: Any, limits: tuple[int, int], base: str
            ) -> str:
    """QuantizeLinear (sy, zy), then Clip to ``limits`` when they are narrower than dtype's."""
    narrow = tuple(limits) != qk.qrange(dtype)
    q = g.node("QuantizeLinear", [t, g.const(np.float32(qy[0]), "scale"),
                                  g.const(np.asarray(qy[1], dtype), "zero_point")],
               f"{base}/quantize" if narrow else base)
    if narrow:
        q = g.node("Clip", [q, g.const(limits[0], "code_min", dtype),
                            g.const(limits[1], "code_max", dtype)], base)
    return q


def _weight_scale(sw: np.ndarray) -> np.ndarray:
    """Per-channel scales, or one scalar when they are all equal (per-tensor weights)."""
    sw = np.asarray(sw, np.float32).reshape(-1)
    return sw[:1].reshape(()) if np.all(sw == sw[0]) else sw


def _dq_weights(g: Graph, w: np.ndarray, sw: np.ndarray, axis: int, base: str) -> str:
    name = g.weight(None, w, f"{base}.kernel")
    return dq(g, name, _weight_scale(sw), None, np.int8, f"{base}/kernel", axis)


def _dq_bias(g: Graph, p: Any, sx: float, sw: np.ndarray, base: str) -> str:
    scale = np.float32(sx) * np.asarray(sw, np.float32).reshape(-1)
    name = g.weight(None, _bias(p), f"{base}.bias")
    return dq(g, name, scale, None, np.int32, f"{base}/bias", 0)


def _dense(g: Graph, step: Any, x: Value, last_shape: tuple, qx: QParams, sw: np.ndarray,
           base: str) -> tuple[str, list[int] | None]:
    """(the float Gemm output (rows, cout), the shape to restore, or None)."""
    p = step.params
    wq, x = dense_codes(g, p.wq, x)
    c, cout = wq.shape
    rows, lead = x.name, None
    if x.rank != 2:
        lead = [-1, *(int(d) for d in last_shape[1:-1]), int(cout)]
        rows = g.node("Reshape", [x.name, g.ints([-1, c], "shape")], f"{base}/rows")
    xf = dq(g, rows, qx[0], qx[1], x.dtype, f"{base}/input")
    wf = _dq_weights(g, np.ascontiguousarray(wq), sw, 1, base)
    y = g.node("Gemm", [xf, wf, _dq_bias(g, p, qx[0], sw, base)], f"{base}/gemm")
    return y, lead


def _conv(g: Graph, step: Any, x: Value, last_shape: tuple, qx: QParams, sw: np.ndarray,
          base: str) -> str:
    p, la = step.params, step.layer
    pads = pads_resolver(la, step.extra_pads)(last_shape)
    xf = dq(g, x.name, qx[0], qx[1], x.dtype, f"{base}/input")
    wf = _dq_weights(g, _conv_kernel(p.wq, step.kind), sw, 0, base)
    return g.node("Conv", [xf, wf, _dq_bias(g, p, qx[0], sw, base)], f"{base}/conv",
                  kernel_shape=list(la.kernel_size), strides=list(la.strides),
                  dilations=list(la.dilation_rate),
                  pads=[a for a, _ in pads] + [b for _, b in pads],
                  group=int(p.wq.shape[-1]) if step.kind == "depthwise" else None)


def qdq_layer(g: Graph, step: Any, x: Value, in_shape: tuple, out_shape: tuple, base: str,
              qx: QParams, qy: QParams | None, sw: np.ndarray) -> Value:
    """A QuantizedConv step as DQ -> Conv / Gemm -> Q (module docstring)."""
    p, lead = step.params, None
    if step.kind == "dense":
        y, lead = _dense(g, step, x, in_shape, qx, sw, base)
        cf = False
    else:
        x = as_cf(g, x)
        y, cf = _conv(g, step, x, in_shape, qx, sw, base), True
    out_dtype = np.dtype(step.out_dtype)
    if out_dtype == np.float32:
        if lead is not None:
            y = g.node("Reshape", [y, g.ints(lead, "shape")], f"{base}/unrows")
        value = Value(y, tuple(out_shape), cf and len(out_shape) >= 3, out_dtype)
        act = step.float_act
        return value if act is None else value.named(g.clip(y, *act.bounds, np.float32, base))
    assert qy is not None
    y = q_codes(g, y, qy, out_dtype, (p.lo, p.hi), base if lead is None else f"{base}/codes")
    if lead is not None:
        y = g.node("Reshape", [y, g.ints(lead, "shape")], base)
    return Value(y, tuple(out_shape), cf and len(out_shape) >= 3, out_dtype)


def qdq_add(g: Graph, step: Any, xs: list[Value], base: str) -> Value:
    """DQ(a) + DQ(b) -> Q at the output's scale and zero point (a QLinearAdd once fused)."""
    dt = np.dtype(step.dtype)
    terms = [dq(g, v.name, s, z, dt, f"{base}/in{i}")
             for i, (v, (s, z)) in enumerate(zip(xs, (step.qa, step.qb), strict=True))]
    t = g.node("Add", terms, f"{base}/sum")
    return xs[0].named(q_codes(g, t, step.qy, dt, (step.lo, step.hi), base), dtype=dt)


def qdq_concat(g: Graph, xs: list[Value], q: QParams, axis: int, base: str) -> Value:
    """DQ of each input, Concat, Q (a QLinearConcat once fused; the inputs share ``q``)."""
    dt = xs[0].dtype
    parts = [dq(g, v.name, q[0], q[1], dt, f"{base}/in{i}") for i, v in enumerate(xs)]
    t = g.node("Concat", parts, f"{base}/joined", axis=axis)
    return xs[0].named(q_codes(g, t, q, dt, qk.qrange(dt), base))
