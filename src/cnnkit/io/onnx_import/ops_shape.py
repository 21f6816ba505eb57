"""Shape operators on tensors: Concat, Split, Slice, Gather, Reshape, Flatten, Transpose,
Squeeze, Unsqueeze and Pad (attribute and input forms of every opset).

Transpose changes only the recorded layout (no layer); Squeeze/Unsqueeze/Slice/Concat/Split/
Pad work in whatever layout their input has. Reshape and Flatten need ONNX's element order,
except a flatten read only by Gemm/MatMul (their weight rows are permuted instead) or one
whose spatial sizes are 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import layers as L
from .context import Context, OnnxNode
from .values import Dim, Partial, Sym, channels_last, identity, inverse, physical_axis

_ZERO_PAD = {3: L.ZeroPadding1D, 4: L.ZeroPadding2D, 5: L.ZeroPadding3D}


def ints_from(ctx: Context, node: OnnxNode, attr: str | None, index: int, what: str
              ) -> list[int] | None:
    """An int list given as attribute ``attr`` (older opsets) or as input ``index``."""
    if attr is not None and attr in node.attrs:
        return [int(v) for v in node.attrs[attr]]
    c = ctx.optional_const(node, index, what)
    return None if c is None else [int(v) for v in np.asarray(c).reshape(-1)]


def _phys(ctx: Context, x: Sym, axis: int) -> int:
    try:
        a = physical_axis(x, axis)
    except ValueError as e:
        raise ctx.unsupported(str(e)) from None
    if a == 0:
        raise ctx.unsupported("an operation along the batch axis (axis 0)")
    return a


def concat(ctx: Context, node: OnnxNode) -> list[Any]:
    syms = ctx.common([ctx.sym(n, "Concat input") for n in node.inputs if n])
    axis = _phys(ctx, syms[0], int(node.attr("axis")))
    if len(syms) == 1:
        return [syms[0]]
    return [ctx.apply(L.Concatenate, syms, syms[0].perm, axis=axis)]


def split(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    if x.flat_order is not None:
        x = ctx.onnx_layout(x)
    onnx_axis = int(node.attr("axis", 0))
    axis = _phys(ctx, x, onnx_axis)
    sizes = ints_from(ctx, node, "split", 1, "Split sizes")
    n = len(node.outputs)
    if sizes is None:
        total = x.tensor.shape[axis]
        if total is None:
            raise ctx.unsupported("an equal split of an axis whose size is unknown")
        part = -(-total // n)
        sizes = [min(part, total - i * part) for i in range(n)]
    return ctx.apply(L.Split, x, x.perm, sizes=sizes, axis=axis)


def slice_(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    if x.flat_order is not None:
        x = ctx.onnx_layout(x)
    if node.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes, steps = node.attr("axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts = ints_from(ctx, node, None, 1, "Slice starts")
        ends = ints_from(ctx, node, None, 2, "Slice ends")
        axes = ints_from(ctx, node, None, 3, "Slice axes") or list(range(len(starts)))
        steps = ints_from(ctx, node, None, 4, "Slice steps") or [1] * len(starts)
    keep = []
    for a, b, e, s in zip(axes, starts, ends, steps, strict=True):
        full = b == 0 and s == 1 and e >= 2 ** 31 - 1
        if physical_axis(x, a) == 0:
            if not full:
                raise ctx.unsupported("slicing the batch axis")
            continue
        if not full:
            keep.append((_phys(ctx, x, a), b, e, s))
    if not keep:
        return [x]
    axes_p, b, e, s = (list(t) for t in zip(*keep, strict=True))
    return [ctx.apply(L.Slice, x, x.perm, axes=axes_p, starts=b, stops=e, steps=s)]


def _embedding(ctx: Context, node: OnnxNode) -> list[Any]:
    """Gather of rows of a constant table by data indices: an Embedding layer."""
    table = ctx.const(node.inputs[0], "Gather data")
    idx = ctx.onnx_layout(ctx.sym(node.inputs[1], "Gather indices"))
    if table.ndim != 2 or int(node.attr("axis", 0)) != 0 or idx.dtype.kind not in "iu":
        raise ctx.unsupported("Gather of a constant that is not a table of rows (axis 0) by "
                              "integer indices")
    return [ctx.apply(L.Embedding, idx, identity(idx.rank + 1), [table],
                      input_dim=table.shape[0], output_dim=table.shape[1])]


def gather(ctx: Context, node: OnnxNode) -> list[Any]:
    if not isinstance(ctx.get(node.inputs[0]), Sym):
        return _embedding(ctx, node)
    x = ctx.sym(node.inputs[0])
    idx = ctx.const(node.inputs[1], "Gather indices")
    if idx.ndim > 1:
        raise ctx.unsupported("indices of rank > 1")
    onnx_axis = int(node.attr("axis", 0)) % x.rank
    axis = _phys(ctx, x, onnx_axis)
    if idx.ndim == 0:
        perm = tuple(p - (p > onnx_axis) for p in x.perm if p != onnx_axis)
        return [ctx.apply(L.Gather, x, perm, indices=int(idx), axis=axis)]
    return [ctx.apply(L.Gather, x, x.perm, indices=[int(i) for i in idx], axis=axis)]


def transpose(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    p = tuple(node.attr("perm", list(range(x.rank - 1, -1, -1))))
    if x.flat_order is not None:
        x = ctx.onnx_layout(x)
    inv = inverse(p)
    q = tuple(inv[a] for a in x.perm)  # out ONNX axis held at each of cnnkit's axes
    if q[0] != 0:
        raise ctx.unsupported(f"perm {list(p)} moves the batch axis")
    return [Sym(x.tensor, q)]


def squeeze(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    axes = ints_from(ctx, node, "axes", 1, "Squeeze axes")
    shape = x.onnx_shape
    if axes is None:
        if None in shape[1:]:
            raise ctx.unsupported("Squeeze without axes on a tensor with unknown sizes")
        axes = [i for i, d in enumerate(shape) if d == 1 and i > 0]
    axes = sorted(a % x.rank for a in axes)
    if not axes:
        return [x]
    phys = [_phys(ctx, x, a) for a in axes]
    perm = tuple(p - sum(a < p for a in axes) for p in x.perm if p not in axes)
    return [ctx.apply(L.Squeeze, x, perm, axes=phys)]


def unsqueeze(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    if x.flat_order is not None:
        x = ctx.onnx_layout(x)
    axes = ints_from(ctx, node, "axes", 1, "Unsqueeze axes")
    r = x.rank + len(axes)
    new = sorted(a % r for a in axes)
    if 0 in new:
        raise ctx.unsupported("a new axis 0 (cnnkit keeps axis 0 as the batch)")
    old = [i for i in range(r) if i not in new]  # new number of each old ONNX axis
    order = [old[p] for p in x.perm]
    choices = [channels_last(r), identity(r)] if r >= 3 else [identity(r)]
    for q in choices:
        if [a for a in q if a not in new] == order:
            pos = [i for i, a in enumerate(q) if a in new]
            return [ctx.apply(L.ExpandDims, x, q, axes=pos)]
    q = tuple(order + new)
    return [ctx.apply(L.ExpandDims, x, q, axes=list(range(x.rank, r)))]


def _flat_order(shape: tuple, perm: tuple) -> np.ndarray:
    """ONNX feature index of each feature of cnnkit's flattened tensor."""
    onnx_index = np.arange(math.prod(shape[1:])).reshape(shape[1:])
    return np.transpose(onnx_index, [p - 1 for p in perm[1:]]).reshape(-1)


def _only_dense_readers(ctx: Context, name: str) -> bool:
    readers = ctx.consumers.get(name, [])
    return bool(readers) and name not in ctx.graph_outputs and all(
        r.op_type in ("Gemm", "MatMul") and r.inputs[0] == name
        and isinstance(ctx.values.get(r.inputs[1]), np.ndarray) for r in readers)


def _flatten(ctx: Context, node: OnnxNode, x: Sym) -> Sym:
    """(N, ...) -> (N, F): in cnnkit's order when that is ONNX's or only dense layers read it."""
    shape = x.onnx_shape
    moved = x.perm != identity(x.rank)
    if moved and all(d == 1 for d in shape[2:]):
        return Sym(ctx.apply(L.Flatten, x, x.perm).tensor, identity(2))
    if moved and None not in shape[1:] and _only_dense_readers(ctx, node.outputs[0]) and (
            ctx.budget is None or 16 * math.prod(shape[1:]) <= ctx.budget.limit - ctx.budget.used):
        y = ctx.apply(L.Flatten, x, x.perm)
        return Sym(y.tensor, identity(2), _flat_order(shape, x.perm))
    x = ctx.onnx_layout(x)
    return ctx.apply(L.Flatten, x, identity(2))


def flatten(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    axis = int(node.attr("axis", 1))
    axis = axis + x.rank if axis < 0 else axis
    shape = x.onnx_shape
    if axis == 1:
        return [_flatten(ctx, node, x)]
    if axis == 0 or any(d != 1 for d in shape[1:axis]):
        raise ctx.unsupported(f"axis {axis} of shape {shape}: the output's first axis would "
                              f"merge the batch with other axes")
    x = ctx.onnx_layout(x)
    rest = shape[axis:]
    return [ctx.apply(L.Reshape, x, identity(2),
                      target_shape=(-1 if None in rest else math.prod(rest),))]


def _target(ctx: Context, node: OnnxNode, x: Sym) -> list[Any]:
    """The Reshape target with 0 (copy) and the batch resolved; unknown sizes as None."""
    spec = ctx.get(node.inputs[1]) if node.opset >= 5 else None
    vals = list(spec.values) if isinstance(spec, Partial) else [
        int(v) for v in np.asarray(ctx.const(node.inputs[1], "Reshape shape")
                                   if spec is not None else node.attr("shape")).reshape(-1)]
    shape = x.onnx_shape
    allow_zero = int(node.attr("allowzero", 0))
    out: list[Any] = []
    for i, v in enumerate(vals):
        if isinstance(v, Dim):
            same = v.source == node.inputs[0] and v.axis == i or (v.is_batch and i == 0)
            out.append("batch" if i == 0 and same else (shape[i] if same else None))
        elif v == 0 and not allow_zero:
            out.append("batch" if i == 0 else shape[i])
        else:
            out.append(v)
    return out


def reshape(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    shape = x.onnx_shape
    out = _target(ctx, node, x)
    rest_in = shape[1:]
    rest_known = None not in rest_in
    if out and out[0] not in ("batch", -1) and out[0] != ctx.batch_size:
        raise ctx.unsupported(f"target shape {out} does not keep the batch axis first")
    if out and out[0] == -1:
        tail = out[1:]
        if not (rest_known and None not in tail and -1 not in tail
                and math.prod(tail) == math.prod(rest_in)):
            raise ctx.unsupported(f"target shape {out} with -1 on the batch axis")
    tail = [-1 if v is None else v for v in out[1:]]
    if tail.count(-1) > 1:
        raise ctx.unsupported(f"target shape {out}: more than one size unknown")
    if len(tail) == 1 and x.rank >= 2 and (tail[0] == -1 or (rest_known and tail[0] == math.prod(
            rest_in))):
        return [_flatten(ctx, node, x)]
    grouped = _channel_groups(ctx, x, out)
    if grouped is not None:
        return [grouped]
    x = ctx.onnx_layout(x)
    return [ctx.apply(L.Reshape, x, identity(len(out)), target_shape=tail)]


def _grouped_perm(rank: int, spatial: int) -> tuple[int, ...]:
    """Channels-last with the channel axis split in rank - 1 - spatial axes: (N, *S, *C)."""
    k = rank - 1 - spatial
    return (0, *range(k + 1, rank), *range(1, k + 1))


def _channel_groups(ctx: Context, x: Sym, out: list[Any]) -> Sym | None:
    """A Reshape that only splits or merges the channel axes of a channels-last tensor (a
    channel shuffle, grouped features) done on cnnkit's layout: (N, *S, *C) -> (N, *S, *C'),
    no transpose to ONNX's layout and back."""
    for spatial in range(1, x.rank - 1):
        if x.perm[1:1 + spatial] != tuple(range(x.rank - spatial, x.rank)):
            continue
        shape = x.onnx_shape
        k_in, k_out = x.rank - 1 - spatial, len(out) - 1 - spatial
        dims = shape[x.rank - spatial:]
        tail = out[1 + k_out:]
        if (k_out < 1 or None in dims or list(tail) != list(dims) or None in shape[1:1 + k_in]
                or any(not isinstance(v, int) or v < 1 for v in out[1:1 + k_out])
                or math.prod(out[1:1 + k_out]) != math.prod(shape[1:1 + k_in])):
            return None
        x = ctx.ensure(x, _grouped_perm(x.rank, spatial))
        return ctx.apply(L.Reshape, x, _grouped_perm(len(out), spatial),
                         target_shape=(*dims, *out[1:1 + k_out]))
    return None


def pad(ctx: Context, node: OnnxNode) -> list[Any]:
    x = ctx.sym(node.inputs[0])
    if x.flat_order is not None:
        x = ctx.onnx_layout(x)
    mode = node.attr("mode", "constant")
    if node.opset < 11:
        pads, value = list(node.attr("pads", node.attr("paddings", []))), node.attr("value", 0.0)
    else:
        pads = ints_from(ctx, node, None, 1, "Pad pads")
        v = ctx.optional_const(node, 2, "Pad constant_value")
        value = 0.0 if v is None else float(np.asarray(v).reshape(-1)[0])
    axes = ints_from(ctx, node, None, 3, "Pad axes") if node.opset >= 18 else None
    axes = [a % x.rank for a in axes] if axes else list(range(x.rank))
    n = len(axes)
    pairs = {a: (pads[i], pads[i + n]) for i, a in enumerate(axes)}
    phys = [pairs.get(p, (0, 0)) for p in x.perm]
    if mode not in ("constant", "reflect", "edge") or min(pads, default=0) < 0 or any(phys[0]):
        raise ctx.unsupported(f"mode {mode!r} with pads {pads} (cnnkit pads non-batch axes by "
                              f"amounts >= 0, modes constant, reflect and edge)")
    if not any(a or b for a, b in phys):
        return [x]
    if mode == "constant" and float(value) == 0.0 and x.rank in _ZERO_PAD and (
            x.perm == channels_last(x.rank) and not any(phys[-1])):
        return [ctx.apply(_ZERO_PAD[x.rank], x, x.perm, padding=tuple(phys[1:-1]))]
    return [ctx.apply(L.Pad, x, x.perm, padding=phys[1:], mode=mode, value=float(value))]


CONVERTERS = {"Concat": concat, "Split": split, "Slice": slice_, "Gather": gather,
              "Transpose": transpose, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
              "Flatten": flatten, "Reshape": reshape, "Pad": pad}
