"""A thread-safe inference engine: a model compiled into a plan of kernel calls on arrays.

``InferenceEngine(model)`` walks the model once and turns it into a list of steps, each a
function of NumPy arrays that calls the forward kernels directly: no Tensors, no graph, no
argument checks per call. Steps are fused where a value has one reader (:mod:`.fuse`): zero
padding goes into the next convolution's pads, inference batch-norm is folded into the
convolution or dense layer before it, and ReLU / ReLU6 run in place on the buffer the step
wrote (after a max pooling that follows, which commutes with them); a batch-norm, merge or
activation that cannot be fused writes into its input when nothing reads that input later
and the plan made it. Every intermediate is released right after its last reader, so the
peak is a few activations, not all of them. ``with no_grad(): model(x)`` (training off)
runs the same plan (``Model.call``).

The plan reads the layers' weight arrays at call time (folding included), so it follows
training and ``set_weights`` without recompiling. Each call keeps its values in its own list,
so several threads can share one engine. Layers without a compiled form run through their
own ``call`` under ``no_grad``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import layers as L
from ..autograd import Tensor, no_grad
from ..kernels import parallel
from ..kernels import pool as KP
from . import fuse as F

Fn = Callable[[Any], Any]


def _fallback(layer: Any, kwargs: dict | None = None) -> Fn:
    """The layer's own ``call`` on Tensors under ``no_grad`` (with the node's ``kwargs``)."""
    kw = dict(kwargs or {})

    def run(x: Any) -> Any:
        with no_grad():
            args = [Tensor(a) for a in x] if isinstance(x, list) else Tensor(x)
            out = layer(args, training=False, **kw)
        return [o.data for o in out] if isinstance(out, (list, tuple)) else out.data

    run._is_fallback = True  # type: ignore[attr-defined]
    return run


def _pairs_2x2(x: np.ndarray, ufunc: Any) -> np.ndarray:
    """ufunc over the 2x2 windows at stride 2 of (N, H, W, C) ("valid": an odd last row or
    column is dropped): ufunc(ufunc(x[2i, 2j], x[2i+1, 2j]), ufunc(x[2i, 2j+1], x[2i+1, 2j+1]))
    as two passes over strided views."""
    h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    rows = ufunc(x[:, 0:h:2, :w], x[:, 1:h:2, :w])
    return ufunc(rows[:, :, 0::2], rows[:, :, 1::2])


def _compile_pool(layer: Any) -> Fn | None:
    """The pooling kernels (the layers' own) for large inputs; small 2x2 / stride 2 "valid"
    windows as two passes over strided views (less overhead: ~5 us instead of 25-55 us at
    batch 1); a window of one tap at any stride is a strided view of x (max or mean over one
    value is the value)."""
    is_max = isinstance(layer, (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D))
    pool, strides = tuple(layer.pool_size), tuple(layer.strides)
    if all(p == 1 for p in pool):
        index = (slice(None), *(slice(None, None, s) for s in strides))
        return lambda x: x[index]
    kernel = KP.max_pool_forward if is_max else KP.avg_pool_forward
    if pool == (2, 2) and strides == (2, 2) and layer.padding == "valid":
        def small_pairs(x: np.ndarray) -> np.ndarray:
            if x.nbytes >= parallel.MIN_PARALLEL_BYTES:
                return kernel(x, pool, strides, "valid")
            if is_max:
                return _pairs_2x2(x, np.maximum)
            out = _pairs_2x2(x, np.add)
            out *= out.dtype.type(0.25)
            return out

        return small_pairs
    return lambda x: kernel(x, pool, strides, layer.padding)


def _compile_simple(layer: Any) -> Fn | None:
    kind = type(layer).__name__
    if kind in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                "InputLayer"):
        return lambda x: x
    if kind in ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"):
        pads = [tuple(p) for p in layer.padding]

        def zero_pad(x: np.ndarray) -> np.ndarray:
            shape = (x.shape[0], *(n + b + a for n, (b, a) in zip(x.shape[1:-1], pads,
                                                                    strict=True)), x.shape[-1])
            out = np.zeros(shape, dtype=x.dtype)
            out[(slice(None), *(slice(b, b + n) for n, (b, _) in zip(x.shape[1:-1], pads,
                                                                      strict=True)))] = x
            return out

        return zero_pad
    if kind == "Flatten":
        return lambda x: x.reshape(x.shape[0], -1)
    if kind == "Reshape":
        return lambda x: x.reshape(x.shape[0], *layer.target_shape)
    if kind == "Rescaling":
        scale, offset = np.float32(layer.scale), np.float32(layer.offset)

        def rescale(x: np.ndarray) -> np.ndarray:
            x = x if np.issubdtype(x.dtype, np.floating) else x.astype(layer.dtype)
            return x * scale.astype(x.dtype) + offset.astype(x.dtype)

        return rescale
    if kind in ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D"):
        return lambda x: x.mean(axis=tuple(range(1, x.ndim - 1)), keepdims=layer.keepdims)
    if kind in ("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"):
        return lambda x: x.max(axis=tuple(range(1, x.ndim - 1)), keepdims=layer.keepdims)
    if kind == "Concatenate":
        return lambda xs: np.concatenate(xs, axis=layer.axis)
    return None


_MERGES = ("Add", "Subtract", "Multiply")


def compile_layer(layer: Any) -> Fn:
    """The array function computing ``layer`` in inference mode."""
    fn: Fn | None = None
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv2D)):
        act = F.act_of_function(layer.activation)
        if act is not False:
            fn = F.conv_step(layer, None, act, None)
    elif isinstance(layer, L.Dense):
        act = F.act_of_function(layer.activation)
        if act is not False:
            fn = F.dense_step(layer, None, act)
    elif isinstance(layer, L.BatchNormalization):
        if F.bn_foldable(layer, None):
            fn = F.bn_step(layer, None, False)
    elif isinstance(layer, _POOLS):
        fn = _compile_pool(layer)
    elif type(layer).__name__ in ("Sequential", "Model") or hasattr(layer, "_nodes"):
        fn = InferenceEngine(layer)
    elif type(layer).__name__ in _MERGES:
        fn = F.merge_step(type(layer).__name__, None, None, _fallback(layer))
    elif isinstance(layer, (L.ReLU, L.Activation)):
        act = F.act_of_layer(layer)
        if act is None:
            fn = _identity
        elif act is not False:
            fn = F.act_step(act, False)
    else:
        fn = _compile_simple(layer)
    return fn if fn is not None else _fallback(layer)


def _identity(x: Any) -> Any:
    return x


# ----- the model as a graph of array steps ----------------------------------------------------
# What a step's output is: a new array ("fresh", owned by the plan), a view of its input
# ("view"), or unknown (a layer's own call: may return its input or anything else).
FRESH, VIEW, UNKNOWN = "fresh", "view", "unknown"
_VIEW_LAYERS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                "InputLayer", "Flatten", "Reshape", "AlphaDropout", "GaussianDropout",
                "GaussianNoise")
_FRESH_LAYERS = ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Rescaling",
                 "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                 "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
                 "Concatenate", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
                 "AveragePooling1D", "AveragePooling2D", "AveragePooling3D")
_POOLS = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D,
          L.AveragePooling2D, L.AveragePooling3D)
_MAX_POOLS = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D)
_CONVS = (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv2D)
_PADS = ("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")


class _GNode:
    """One layer call of the model: input slot(s), output slot(s), call kwargs, output rank."""

    __slots__ = ("layer", "args", "outs", "multi_out", "kwargs", "rank")

    def __init__(self, layer: Any, args: int | list[int], outs: list[int], multi_out: bool,
                 kwargs: dict, rank: int | None):
        self.layer, self.args, self.outs, self.multi_out = layer, args, outs, multi_out
        self.kwargs, self.rank = kwargs, rank


class _Op:
    """A step before its function is made: ``build(overwritable)`` makes the function, told
    for each argument whether it may be overwritten (dead after the step, owned by the plan)."""

    __slots__ = ("build", "args", "outs", "multi_out", "kind")

    def __init__(self, build: Callable[[tuple[bool, ...]], Fn], args: int | list[int],
                 outs: list[int], multi_out: bool, kind: str):
        self.build, self.args, self.outs, self.multi_out, self.kind = (build, args, outs,
                                                                        multi_out, kind)


def _graph(model: Any) -> tuple[list[_GNode], int, list[int], bool, int]:
    """(nodes, number of inputs, output slots, single output, number of slots) of a Sequential
    or functional model; slot i < number of inputs holds input i."""
    from ..layers.core import InputLayer
    from ..models import Sequential

    if isinstance(model, Sequential):
        nodes = [_GNode(la, i, [i + 1], False, {}, None) for i, la in enumerate(model.layers)]
        return nodes, 1, [len(nodes)], True, len(nodes) + 1
    ids = {id(t): i for i, t in enumerate(model._inputs)}
    nodes = []
    for node in model._nodes:
        if isinstance(node.layer, InputLayer):
            continue
        multi_in = isinstance(node.inputs, (list, tuple))
        args: Any = ([ids.setdefault(id(t), len(ids)) for t in node.inputs] if multi_in
                     else ids.setdefault(id(node.inputs), len(ids)))
        outs = [ids.setdefault(id(t), len(ids)) for t in node.output_tensors]
        shape = getattr(node.output_tensors[0], "shape", None)
        nodes.append(_GNode(node.layer, args, outs, isinstance(node.outputs, (list, tuple)),
                            dict(node.kwargs or {}), None if shape is None else len(shape)))
    result = [ids[id(t)] for t in model._outputs]
    return nodes, len(model._inputs), result, bool(model._single_output), len(ids)


def _fuse(nodes: list[_GNode], outputs: set[int]) -> list[_Op]:
    """Group the nodes into steps: [zero padding ->] conv / dense [-> batch-norm]
    [-> activation], batch-norm [-> activation], merge [-> activation], and single layers.
    A node joins the step before it only when it is the sole reader of that step's output
    (and that output is not a model output)."""
    readers: dict[int, list[int]] = {}
    for j, nd in enumerate(nodes):
        for a in (nd.args if isinstance(nd.args, list) else [nd.args]):
            readers.setdefault(a, []).append(j)

    def sole(slot: int) -> int | None:
        r = readers.get(slot, [])
        if len(r) != 1 or slot in outputs:
            return None
        nd = nodes[r[0]]
        return r[0] if isinstance(nd.args, int) and not nd.kwargs else None

    used = [False] * len(nodes)
    post_act: dict[int, F.Act] = {}  # max-pool node -> the activation moved after it
    pad_of: dict[int, tuple[int, tuple]] = {}  # conv node -> (input slot, extra pads)

    def take_act(slot: int) -> tuple[F.Act | None, int]:
        k = sole(slot)
        if k is not None and not used[k]:
            act = F.act_of_layer(nodes[k].layer)
            if isinstance(act, F.Act) and act.piece is not None:
                used[k] = True
                return act, nodes[k].outs[0]
        return None, slot

    ops_: list[_Op] = []
    for i, nd in enumerate(nodes):
        if used[i]:
            continue
        layer = nd.layer
        name = type(layer).__name__
        if nd.kwargs:
            fb = _fallback(layer, nd.kwargs)
            ops_.append(_Op(lambda _, f=fb: f, nd.args, nd.outs, nd.multi_out, UNKNOWN))
            continue
        if name in _PADS:
            j = sole(nd.outs[0])
            if j is not None and isinstance(nodes[j].layer, _CONVS) and \
                    len(layer.padding) == nodes[j].layer.rank and \
                    F.act_of_function(nodes[j].layer.activation) is not False:
                pad_of[j] = (nd.args, tuple(tuple(p) for p in layer.padding))
                used[i] = True
                continue
        if isinstance(layer, _CONVS + (L.Dense,)):
            act = F.act_of_function(layer.activation)
            if act is not False:
                arg, extra = pad_of.get(i, (nd.args, None))
                out, bn = nd.outs[0], None
                if act is None:
                    j = sole(out)
                    if j is not None and isinstance(nodes[j].layer, L.BatchNormalization) and \
                            nodes[j].layer.dtype == layer.dtype and \
                            F.bn_foldable(nodes[j].layer, nodes[j].rank if isinstance(
                                layer, L.Dense) else layer.rank + 2):
                        bn, out, used[j] = nodes[j].layer, nodes[j].outs[0], True
                    act, out = take_act(out)
                j = sole(out)
                if isinstance(act, F.Act) and act.piece is not None and j is not None and \
                        isinstance(nodes[j].layer, _MAX_POOLS) and \
                        not all(p == 1 for p in nodes[j].layer.pool_size):
                    post_act[j], act = act, None  # max pooling commutes with ReLU / ReLU6
                if isinstance(layer, L.Dense):
                    fn = F.dense_step(layer, bn, act)
                else:
                    fn = F.conv_step(layer, bn, act, extra)
                ops_.append(_Op(lambda _, f=fn: f, arg, [out], False, FRESH))
                continue
        if isinstance(layer, L.BatchNormalization) and F.bn_foldable(layer, nd.rank):
            act, out = take_act(nd.outs[0])
            ops_.append(_Op(lambda ow, la=layer, a=act: F.bn_step(la, a, ow[0]), nd.args,
                            [out], False, FRESH))
            continue
        if name in _MERGES and isinstance(nd.args, list):
            act, out = take_act(nd.outs[0])
            slow = _fallback(layer)

            def build_merge(ow: tuple[bool, ...], kind: str = name, a: Any = act,
                            s: Fn = slow) -> Fn:
                return F.merge_step(kind, a, ow.index(True) if any(ow) else None, s)

            ops_.append(_Op(build_merge, nd.args, [out], False, FRESH))
            continue
        if isinstance(layer, (L.ReLU, L.Activation)):
            act = F.act_of_layer(layer)
            if act is None:
                ops_.append(_Op(lambda _: _identity, nd.args, nd.outs, False, VIEW))
                continue
            if isinstance(act, F.Act):
                ops_.append(_Op(lambda ow, a=act: F.act_step(a, ow[0]), nd.args, nd.outs,
                                False, FRESH))
                continue
        fn = compile_layer(layer)
        kind = UNKNOWN
        if getattr(fn, "_is_fallback", False) or isinstance(fn, InferenceEngine):
            kind = UNKNOWN
        elif name in _VIEW_LAYERS or (isinstance(layer, _POOLS) and
                                      all(p == 1 for p in layer.pool_size)):
            kind = VIEW
        elif name in _FRESH_LAYERS:
            kind = FRESH
        if i in post_act:
            fn = _then(fn, post_act[i])
        ops_.append(_Op(lambda _, f=fn: f, nd.args, nd.outs, nd.multi_out, kind))
    return ops_


def _then(fn: Fn, act: F.Act) -> Fn:
    """act(fn(x)), in place on fn's new output: relu(maxpool(z)) = maxpool(relu(z)) (max is
    monotonic), on a quarter of the values for 2x2 windows."""
    return lambda x: act.apply(fn(x), True)


def _schedule(ops_: list[_Op], n_in: int, outputs: set[int], n_slots: int) -> list[tuple]:
    """Make each step's function and the slots to release after it: a value is dropped as soon
    as its last reader has run, and a step may write into an input that nobody reads later
    and that the plan owns (made by an earlier step, not a model input, no view of it alive).
    Returns [(fn, args, multi_in, outs, multi_out, free), ...]."""
    last: dict[int, int] = {}
    for i, op in enumerate(ops_):
        for a in (op.args if isinstance(op.args, list) else [op.args]):
            last[a] = i
    owned = [False] * n_slots
    steps = []
    for i, op in enumerate(ops_):
        multi_in = isinstance(op.args, list)
        args = op.args if multi_in else [op.args]
        dies = tuple(owned[a] and last[a] == i and a not in outputs and args.count(a) == 1
                     for a in args)
        fn = op.build(dies)
        if op.kind == FRESH:
            for o in op.outs:
                owned[o] = True
        elif op.kind == VIEW and not op.multi_out:
            owned[op.outs[0]] = dies[0]
        for a, d in zip(args, dies, strict=True):
            if op.kind != FRESH and not d:
                owned[a] = False  # a view of it (or an unknown result) may outlive this step
        free = tuple(a for a in dict.fromkeys(args) if last[a] == i and a not in outputs)
        steps.append((fn, op.args, multi_in, op.outs if op.multi_out else op.outs[0],
                      op.multi_out, free))
    return steps


class InferenceEngine:
    """``engine(x)`` = ``model(x, training=False)`` as arrays, through a compiled plan.

    Args:
        model: a built Sequential or functional Model (or any Layer).
        dtype: inputs are cast to this dtype (default: the model's).
    """

    def __init__(self, model: Any, dtype: Any = None):
        self.model = model
        self.dtype = np.dtype(dtype or getattr(model, "dtype", np.float32))
        from ..models import Sequential

        self.uniform_dtype = True
        self._sequential = isinstance(model, Sequential)
        if isinstance(model, Sequential) or getattr(model, "_functional", False):
            nodes, n_in, result, single, n_slots = _graph(model)
            self.uniform_dtype = all(np.dtype(getattr(nd.layer, "dtype", self.dtype)) ==
                                     self.dtype for nd in nodes)
            outputs = set(result)
            steps = _schedule(_fuse(nodes, outputs), n_in, outputs, n_slots)
            self._graph: tuple | None = (steps, result, n_in, single, n_slots)
            chain = n_in == 1 and single and all(
                not s[2] and not s[4] and s[1] == (steps[k - 1][3] if k else 0)
                for k, s in enumerate(steps)) and (not steps or steps[-1][3] == result[0])
            self._chain: list[Fn] | None = [s[0] for s in steps] if chain else None
        else:
            self._graph = None
            self._chain = [_fallback(model)]

    def run_arrays(self, xs: list[Any]) -> Any:
        """The plan on the model's inputs as arrays (already of the right dtypes): the output
        array, or a list of them for a model with several outputs."""
        if self._chain is not None:
            a = xs[0] if len(xs) == 1 else xs
            for fn in self._chain:
                a = fn(a)
            return a
        assert self._graph is not None
        steps, result, n_in, single, n_slots = self._graph
        vals: list[Any] = [None] * n_slots
        vals[:n_in] = xs[:n_in]
        for fn, args, multi_in, outs, multi_out, free in steps:
            r = fn([vals[i] for i in args] if multi_in else vals[args])
            if multi_out:
                for i, v in zip(outs, r, strict=True):
                    vals[i] = v
            else:
                vals[outs] = r
            for i in free:
                vals[i] = None
        if single:
            return vals[result[0]]
        return [vals[i] for i in result]

    def __call__(self, x: Any) -> Any:
        if self._graph is None or self._sequential:
            a = x
            if not isinstance(a, list):
                a = np.asarray(a)
                if a.dtype != self.dtype:
                    a = a.astype(self.dtype)
            return self._chain[0](a) if self._graph is None else self.run_arrays([a])
        xs = x if isinstance(x, list) else [x]
        arrays = []
        for a in xs[:self._graph[2]]:
            a = np.asarray(a)
            if a.dtype != self.dtype and (np.issubdtype(a.dtype, np.floating) or
                                          a.dtype == np.uint8):
                a = a.astype(self.dtype)
            arrays.append(a)
        return self.run_arrays(arrays)

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Outputs for ``x`` computed in batches."""
        xs = x if isinstance(x, list) else [x]
        n = len(xs[0])
        outs = []
        for s in range(0, n, batch_size):
            chunk = [a[s:s + batch_size] for a in xs]
            outs.append(self(chunk if isinstance(x, list) else chunk[0]))
        if isinstance(outs[0], list):
            return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
        return np.concatenate(outs)
