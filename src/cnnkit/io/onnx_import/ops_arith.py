"""Arithmetic with broadcasting (Add, Sub, Mul, Div, Pow, Max, Min, Sum, Mean), unary maths,
Gemm and MatMul (as Dense where the weight is a constant), and Cast.

A tensor combined with a constant is one ConstantOperand layer holding the constant in the
tensor's layout; two tensors meet in a merge layer once they share a layout. Gemm and MatMul
read a flattened tensor in cnnkit's feature order by permuting the weight's rows instead of
the data.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import numpy as np

from ... import layers as L
from .context import Context, OnnxNode
from .reader import DTYPES
from .values import Sym, identity, physical_constant

_OPERATION = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide",
              "Pow": "power", "Max": "maximum", "Min": "minimum"}
_MERGE = {"add": L.Add, "subtract": L.Subtract, "multiply": L.Multiply, "divide": L.Divide,
          "power": L.Power, "maximum": L.Maximum, "minimum": L.Minimum}
_UFUNC = {"add": np.add, "multiply": np.multiply, "maximum": np.maximum, "minimum": np.minimum}
_UNARY = {"Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Abs": "abs", "Neg": "negative",
          "Reciprocal": "reciprocal"}


def with_constant(ctx: Context, x: Sym, c: np.ndarray, operation: str, constant_first: bool
                  ) -> Sym:
    """x (op) c as one ConstantOperand layer (c laid out as x is)."""
    if x.flat_order is not None:
        x = ctx.ensure(x, x.perm)
    try:
        value = physical_constant(c, x).astype(x.dtype)
    except ValueError as e:
        raise ctx.unsupported(str(e)) from None
    if operation in ("add", "subtract", "multiply") and value.size == 1 and (
            float(value.reshape(())) == (1.0 if operation == "multiply" else 0.0)) and not (
            constant_first and operation == "subtract"):
        return x  # x + 0, x - 0, x * 1
    return ctx.apply(L.ConstantOperand, x, x.perm, [value], operation=operation,
                     value_shape=value.shape, constant_first=constant_first)


def binary(ctx: Context, node: OnnxNode) -> list[Any]:
    operation = _OPERATION[node.op_type]
    if node.op_type in ("Max", "Min") or len(node.inputs) != 2:
        return _variadic(ctx, node, operation)
    a, b = ctx.get(node.inputs[0]), ctx.get(node.inputs[1])
    if not isinstance(a, Sym):
        return [with_constant(ctx, ctx.sym(node.inputs[1]), ctx.const(node.inputs[0], "A"),
                              operation, True)]
    if not isinstance(b, Sym):
        return [with_constant(ctx, a, ctx.const(node.inputs[1], "B"), operation, False)]
    syms = ctx.common([a, b])
    return [ctx.apply(_MERGE[operation], syms, syms[0].perm)]


def _merged(ctx: Context, syms: list[Sym], cls: type) -> Sym:
    syms = ctx.common(syms)
    if len(syms) == 1:
        return syms[0]
    return ctx.apply(cls, syms, syms[0].perm)


def _variadic(ctx: Context, node: OnnxNode, operation: str) -> list[Any]:
    """Sum, Max, Min, Mean: merge the tensors, fold the constants into one."""
    vals = [ctx.get(n) for n in node.inputs if n]
    syms = [v for v in vals if isinstance(v, Sym)]
    consts = [ctx.const(n, "operand") for n, v in zip(node.inputs, vals, strict=False)
              if not isinstance(v, Sym)]
    if node.op_type == "Mean":
        y = _merged(ctx, syms, L.Average) if not consts else None
        if y is None:
            total = _merged(ctx, syms, L.Add)
            y = with_constant(ctx, total, reduce(np.add, consts), "add", False)
            y = with_constant(ctx, y, np.float32(1.0 / len(vals)), "multiply", False)
        return [y]
    y = _merged(ctx, syms, _MERGE[operation])
    if consts:
        y = with_constant(ctx, y, reduce(_UFUNC[operation], consts), operation, False)
    return [y]


def sum_(ctx: Context, node: OnnxNode) -> list[Any]:
    return _variadic(ctx, node, "add")


def unary(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    return [ctx.apply(L.UnaryMath, x, x.perm, function=_UNARY[node.op_type])]


def _dense_input(ctx: Context, x: Sym, kernel: np.ndarray, axis: int = -1
                 ) -> tuple[Sym, np.ndarray]:
    """x with ONNX axis ``axis`` (the one contracted) as cnnkit's last axis, the other axes
    left where they are, and the kernel's rows in that feature order."""
    if x.flat_order is not None:
        return x, kernel[x.flat_order]
    axis = axis % x.rank
    if x.perm[-1] == axis:
        return x, kernel
    return ctx.ensure(x, tuple(p for p in x.perm if p != axis) + (axis,)), kernel


def _bias_of(c: np.ndarray | None, units: int, scale: float) -> np.ndarray | None:
    if c is None:
        return None
    c = np.asarray(c)
    if c.size not in (1, units) or (c.ndim == 2 and c.shape[0] != 1):
        return None
    return np.broadcast_to(c.reshape(-1), (units,)) * scale


def gemm(ctx: Context, node: OnnxNode) -> list[Any]:
    a = ctx.sym(node.inputs[0], "A")
    if int(node.attr("transA", 0)) or a.rank != 2:
        raise ctx.unsupported("transA=1 or an A of rank != 2 (cnnkit's Dense reads (N, K))")
    b = ctx.const(node.inputs[1], "B (a weight)")
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    kernel = b.T if int(node.attr("transB", 0)) else b
    kernel = kernel * alpha if alpha != 1.0 else kernel
    c = ctx.optional_const(node, 2, "C")
    bias = _bias_of(c, kernel.shape[1], beta)
    if c is not None and bias is None:
        raise ctx.unsupported(f"a bias C of shape {c.shape} that varies by row")
    x, kernel = _dense_input(ctx, a, kernel)
    return [ctx.apply(L.Dense, x, x.perm, [kernel] + ([] if bias is None else [bias]),
                      units=kernel.shape[1], use_bias=bias is not None)]


def _bias_add(ctx: Context, node: OnnxNode, units: int) -> tuple[OnnxNode, np.ndarray] | None:
    """The Add node that only adds a per-unit constant to this MatMul's output, if any."""
    out = node.outputs[0]
    readers = ctx.consumers.get(out, [])
    if len(readers) != 1 or readers[0].op_type != "Add" or out in ctx.graph_outputs:
        return None
    add = readers[0]
    other = [n for n in add.inputs if n != out]
    if len(other) != 1 or not isinstance(ctx.values.get(other[0]), np.ndarray):
        return None
    c = ctx.values[other[0]]
    if c.size != units or (c.ndim and c.shape[-1] != units):
        return None
    return add, c.reshape(-1)


def matmul(ctx: Context, node: OnnxNode) -> list[Any]:
    a, b = ctx.get(node.inputs[0]), ctx.get(node.inputs[1])
    if isinstance(a, Sym) and isinstance(b, Sym):
        a, b = ctx.onnx_layout(a), ctx.onnx_layout(b)
        return [ctx.apply(L.MatMul, [a, b], identity(max(a.rank, b.rank)))]
    if not isinstance(a, Sym) and np.asarray(a).ndim == 2 and b.rank >= 3:
        # A @ x contracts x's second-last axis: a Dense over that axis with kernel A^T
        x, kernel = _dense_input(ctx, b, np.asarray(a).T, axis=-2)
        return [ctx.apply(L.Dense, x, x.perm, [kernel], units=kernel.shape[1],
                          use_bias=False)]
    if not isinstance(a, Sym) or np.asarray(b).ndim != 2:
        raise ctx.unsupported("a constant A, or a constant B that is not a matrix")
    kernel = ctx.const(node.inputs[1], "B")
    x, kernel = _dense_input(ctx, a, kernel)
    fused = _bias_add(ctx, node, kernel.shape[1])
    weights = [kernel] if fused is None else [kernel, fused[1]]
    y = ctx.apply(L.Dense, x, x.perm, weights, units=kernel.shape[1],
                  use_bias=fused is not None)
    if fused is not None:
        ctx.absorbed.add(id(fused[0]))
        ctx.values[fused[0].outputs[0]] = y
    return [y]


def cast(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    to = DTYPES.get(int(node.attr("to", 1)))
    if to is None:
        raise ctx.unsupported(f"a cast to data type {node.attr('to')}")
    if to == x.dtype:
        return [x]
    return [ctx.apply(L.Cast, x, x.perm, to=to.name)]


CONVERTERS = {**{op: binary for op in _OPERATION}, "Sum": sum_, "Mean": sum_,
              **{op: unary for op in _UNARY}, "Gemm": gemm, "MatMul": matmul, "Cast": cast}
