"""Constant folding: nodes whose inputs are all constants are computed once, at import, by
ONNX's reference implementation of the operator (a fixed list of shape-arithmetic and
elementwise operators; nothing from the file is run). ``Shape`` of a tensor with dynamic sizes
gives a :class:`Partial` vector, and the shape arithmetic PyTorch exports around it (Gather,
Unsqueeze, Concat, Slice, Cast, ...) is folded on those, so a ``Reshape`` after it still gets
a target shape. Every folded array is charged to the file's memory budget before it is made.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .context import Context, OnnxNode
from .errors import UnsafeOnnxError, UnsupportedOnnxError
from .values import Dim, Partial, Sym

# operators folded when every input is a constant
FOLDABLE = frozenset({
    "Constant", "ConstantOfShape", "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat",
    "Slice", "Cast", "Reshape", "Flatten", "Transpose", "Identity", "Add", "Sub", "Mul", "Div",
    "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Equal", "Less",
    "Greater", "Not", "And", "Or", "Where", "Expand", "Tile", "Range", "ReduceProd", "ReduceSum",
    "ReduceMean", "ReduceMax", "ReduceMin", "Max", "Min", "Sum", "Mean", "Split", "Sign", "Mod",
    "Round", "Relu", "Clip", "Sigmoid", "Tanh", "Dropout", "ArgMax", "Softmax"})
# operators folded on partly known shape vectors
PARTIAL_OPS = frozenset({"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
                         "Identity", "Reshape", "Mul", "Add", "Sub", "Div"})


def fold(ctx: Context, node: OnnxNode, budget: Any) -> list[Any] | None:
    """The node's outputs if it can be computed at import, else None (it becomes layers)."""
    vals = [ctx.values.get(n) if n else None for n in node.inputs]
    if node.op_type == "Shape" and isinstance(vals[0], Sym):
        return [_shape_of(node, vals[0])]
    if node.op_type == "Size" and isinstance(vals[0], Sym):
        shape = vals[0].onnx_shape
        return None if None in shape else [np.asarray(math.prod(shape), np.int64)]
    if any(isinstance(v, Sym) for v in vals):
        return None
    partial = [v for v in vals if isinstance(v, Partial) and not v.known]
    if partial:
        if node.op_type not in PARTIAL_OPS:
            raise ctx.unsupported("shape arithmetic on sizes only known when the model runs "
                                  f"(cnnkit folds {sorted(PARTIAL_OPS)} on those)")
        return [_partial(ctx, node, vals)]
    if node.op_type not in FOLDABLE:
        return None
    arrays = [v.array() if isinstance(v, Partial) else v for v in vals]
    _precheck(ctx, node, arrays, budget)
    if node.op_type == "ConstantOfShape":  # one value seen at every position: no memory
        value = node.attr("value", np.zeros(1, np.float32)).reshape(-1)[:1]
        return [np.broadcast_to(value.reshape(()), tuple(int(d) for d in arrays[0]))]
    outs = _evaluate(ctx, node, arrays)
    for o in outs:
        charge(budget, o.nbytes, f"the folded value of {node.label}")
    return outs


def charge(budget: Any, nbytes: int, what: str) -> None:
    """Count ``nbytes`` against the file's memory budget; over it, UnsafeOnnxError with the
    way to allow more (a model that generates its weights in the graph, say)."""
    try:
        budget.charge(nbytes, what)
    except ValueError as e:
        raise UnsafeOnnxError(f"{e}; if you trust this file, allow more with "
                              f"load_onnx(..., max_bytes=N)") from None


def _shape_of(node: OnnxNode, x: Sym) -> Any:
    dims = [d if d is not None else Dim(node.inputs[0], i) for i, d in enumerate(x.onnx_shape)]
    start, end = node.attr("start", 0), node.attr("end")
    dims = dims[slice(start, end)]
    p = Partial(tuple(dims))
    return p.array() if p.known else p


def _count(shape: Any) -> int:
    return math.prod(max(int(d), 0) for d in np.asarray(shape).reshape(-1))


def _precheck(ctx: Context, node: OnnxNode, arrays: list, budget: Any) -> None:
    """Charge the size of outputs that can be much larger than the inputs before making them."""
    op, n = node.op_type, None
    if op == "ConstantOfShape":
        n = _count(arrays[0])
    elif op == "Expand":
        n = max(_count(arrays[1]), arrays[0].size) * max(1, arrays[0].size)
    elif op == "Tile":
        n = arrays[0].size * _count(arrays[1])
    elif op == "Range":
        start, limit, delta = (float(np.asarray(a).reshape(())) for a in arrays[:3])
        n = max(0, math.ceil((limit - start) / delta)) if delta else 0
    elif op == "Gather":
        n = arrays[1].size * max(1, arrays[0].size)
    if n is not None:
        charge(budget, 8 * n, f"the folded value of {node.label}")


def _evaluate(ctx: Context, node: OnnxNode, arrays: list) -> list[np.ndarray]:
    """Run ONNX's reference implementation of this one node on constant inputs."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    feeds = {n: a for n, a in zip(node.inputs, arrays, strict=True) if n}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype),
                                                 None) for n, a in feeds.items()]
            outs_vi = [helper.make_empty_tensor_value_info(n) for n in node.outputs if n]
            graph = helper.make_graph([node.proto], "fold", ins, outs_vi)
            one = helper.make_model(graph, opset_imports=[helper.make_opsetid("", node.opset)])
            outs = ReferenceEvaluator(one).run(None, feeds)
    except UnsupportedOnnxError:
        raise
    except Exception as e:  # the reference implementation's complaint about the node
        raise ctx.unsupported(f"folding it on constant inputs failed: {type(e).__name__}: "
                              f"{str(e)[:200]}") from None
    return [np.asarray(o) for o in outs]


def _ints(v: Any) -> list[Any]:
    if isinstance(v, Partial):
        return list(v.values)
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _partial(ctx: Context, node: OnnxNode, vals: list) -> Partial:
    op, p = node.op_type, vals[0]
    if op in ("Cast", "Identity"):
        return p
    if op == "Gather" and int(node.attr("axis", 0)) == 0:
        idx = np.asarray(vals[1])
        vs = [p.values[int(i)] for i in idx.reshape(-1)]
        return Partial(tuple(vs), scalar=idx.ndim == 0)
    if op in ("Unsqueeze", "Reshape"):
        return Partial(p.values)
    if op == "Squeeze" and len(p.values) == 1:
        return Partial(p.values, scalar=True)
    if op == "Concat":
        return Partial(tuple(v for x in vals if x is not None for v in _ints(x)))
    if op == "Slice":
        return _slice(ctx, node, p, vals)
    if op in ("Mul", "Add", "Sub", "Div"):
        return _arith(op, vals)
    raise ctx.unsupported("shape arithmetic on sizes only known when the model runs")


def _slice(ctx: Context, node: OnnxNode, p: Partial, vals: list) -> Partial:
    if node.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        steps = [1]
    else:
        starts, ends = _ints(vals[1]), _ints(vals[2])
        steps = _ints(vals[4]) if len(vals) > 4 and vals[4] is not None else [1]
    if len(starts) != 1 or any(isinstance(v, Dim) for v in (*starts, *ends, *steps)):
        raise ctx.unsupported("slicing a shape vector with unknown bounds")
    return Partial(p.values[slice(starts[0], ends[0], steps[0])])


def _arith(op: str, vals: list) -> Partial:
    a, b = _ints(vals[0]), _ints(vals[1])
    scalar = all(isinstance(v, Partial) and v.scalar or (
        isinstance(v, np.ndarray) and v.ndim == 0) for v in vals)
    n = max(len(a), len(b))
    a, b = (a * n if len(a) == 1 else a), (b * n if len(b) == 1 else b)
    out = []
    for x, y in zip(a, b, strict=True):
        if not isinstance(x, Dim) and not isinstance(y, Dim):
            out.append({"Mul": x * y, "Add": x + y, "Sub": x - y}.get(op, x // y if y else 0))
        elif (op == "Mul" and 1 in (x, y)) or (op in ("Add", "Sub") and y == 0) or (
                op == "Add" and x == 0) or (op == "Div" and y == 1):
            out.append(y if x in (0, 1) and op in ("Mul", "Add") else x)
        else:
            out.append(Dim(None, -1))
    return Partial(tuple(out), scalar=scalar)
