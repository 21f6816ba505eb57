"""The runtime's int8 steps: quantize, dequantize, and convolution, dense, max pooling,
addition and clamping on integer codes. They follow the step protocol of :mod:`.steps`;
their ``build`` calls the integer kernels (``kernels.qconv``, ``kernels.qarith``,
``kernels.quantize``), and ``cnnkit.deploy.quantize`` puts them in place of fused float steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..kernels import qarith, qconv
from ..kernels import quantize as quant_kernels
from . import compute
from .activations import Act
from .steps import FRESH, Fn, Pads, Step

__all__ = ["Quantize", "Dequantize", "QuantizedConv", "QuantizedMaxPool", "QuantizedAdd",
           "QuantizedClamp"]


@dataclass(frozen=True, eq=False)
class Quantize(Step):
    """q = clamp(rint(x / s) + z, qmin, qmax) as ``dtype``."""

    scale: float
    zero: int
    dtype: Any
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        s, z, dt = self.scale, self.zero, self.dtype
        return lambda x: quant_kernels.quantize(x, s, z, dt)


@dataclass(frozen=True, eq=False)
class Dequantize(Step):
    """x = (q - z) * s, float32."""

    scale: float
    zero: int
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        s, z = self.scale, self.zero
        return lambda q: quant_kernels.dequantize(q, s, z)


@dataclass(frozen=True, eq=False)
class QuantizedConv(Step):
    """An integer convolution (``kind`` "conv" or "depthwise", geometry from ``layer`` plus
    ``extra_pads``) or dense layer ("dense") with its requantization (kernels.qconv):
    codes of ``out_dtype``, or float32 (then ``float_act`` follows, in float)."""

    layer: Any
    params: qconv.QuantConvParams
    kind: str
    out_dtype: Any
    extra_pads: Pads | None = None
    float_act: Act | None = None
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        p, out_dtype, act = self.params, self.out_dtype, self.float_act
        if self.kind == "dense":
            return lambda x: compute.finish(qconv.dense(x, p, out_dtype), act)
        pads_for = compute.pads_resolver(self.layer, self.extra_pads)
        strides, dilation = tuple(self.layer.strides), tuple(self.layer.dilation_rate)
        kernel = qconv.depthwise2d if self.kind == "depthwise" else qconv.conv2d

        def run(x: Any) -> Any:
            y = kernel(x, p, strides, pads_for(x.shape), dilation, out_dtype)
            return compute.finish(y, act)

        return run


@dataclass(frozen=True, eq=False)
class QuantizedMaxPool(Step):
    """Max pooling on codes (exact); "same" padding reads ``qmin``; ``limits``: a fused
    ReLU-type activation as a clamp of the codes."""

    pool: tuple
    strides: tuple
    padding: str
    qmin: int
    limits: tuple[int, int] | None = None
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        pool, strides, padding, qmin = self.pool, self.strides, self.padding, self.qmin
        if all(k == 1 for k in pool):
            index = (slice(None), *(slice(None, None, s) for s in strides))
            fn: Fn = lambda q: q[index]  # noqa: E731
        else:
            limits = self.limits
            return lambda q: qarith.max_pool(q, pool, strides, padding, qmin, limits)
        if self.limits is None:
            return fn
        lo, hi = self.limits
        return lambda q: qarith.clamp(fn(q), lo, hi)


@dataclass(frozen=True, eq=False)
class QuantizedAdd(Step):
    """[a, b] -> codes of a + b at the output's (scale, zero point), clamped to [lo, hi]."""

    qa: tuple[float, int]
    qb: tuple[float, int]
    qy: tuple[float, int]
    dtype: Any
    lo: int
    hi: int
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        qa, qb, qy, dt, lo, hi = self.qa, self.qb, self.qy, self.dtype, self.lo, self.hi
        return lambda xs: qarith.add(xs[0], xs[1], qa, qb, qy, dt, lo, hi)


@dataclass(frozen=True, eq=False)
class QuantizedClamp(Step):
    """A ReLU-type activation on codes: min(max(q, lo), hi)."""

    lo: int
    hi: int
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        lo, hi = self.lo, self.hi
        return lambda q: qarith.clamp(q, lo, hi)
