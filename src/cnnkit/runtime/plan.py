"""The inference plan: a layer graph compiled into fused steps and run on arrays.

``compile(model)`` asks every layer for its step (``Layer.inference_step``), fuses them
(:mod:`.passes`) and schedules them: each value is released right after its last reader, so
the peak is a few activations, not all of them, and a step may write into an input that
nobody reads later and that the plan made (not a caller's array, no view of it alive).

The steps read the layers' weight arrays at call time and keep what they derive from them
(folded batch-norm, Winograd transforms) until a weight Tensor's version moves
(:mod:`.param_cache`), so a plan follows training, ``set_weights`` and ``t.data[...] = v``
without recompiling. Each call keeps its values in its own list, so several
threads can share one plan. ``run_batched`` splits a large input into batches;
``run_requests`` joins small requests (a server's queue) into shared batches.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import invariant
from . import steps as step_kinds
from .graph import GraphNode, LayerGraph
from .passes import PASSES, StepNode, fold_pool, fuse
from .steps import FRESH, VIEW, LayerCall

Fn = Callable[[Any], Any]


def layer_step(layer: Any, rank: int | None = None, kwargs: dict | None = None) -> Any:
    """The layer's inference step from its hook, or its own call (:class:`LayerCall`)."""
    if kwargs:
        return LayerCall(layer, dict(kwargs))
    hook = getattr(layer, "inference_step", None)
    step = hook(step_kinds, rank) if hook is not None else None
    return step if step is not None else LayerCall(layer)


def layer_function(layer: Any) -> Fn:
    """The array function computing ``layer`` in inference mode (inputs never overwritten)."""
    return layer_step(layer).build((False,))


@dataclass(frozen=True, slots=True)
class ScheduledStep:
    """A built step: ``fn`` reads slot(s) ``args`` and writes ``outs`` (a slot, or a list of
    slots when the step returns a list); ``free``: the slots dead after it; ``step``: the
    step it was built from."""

    fn: Fn
    args: int | list[int]
    multi_in: bool
    outs: int | list[int]
    multi_out: bool
    free: tuple[int, ...]
    step: Any


def schedule(nodes: list[StepNode], outputs: set[int], n_slots: int) -> list[ScheduledStep]:
    """Build each step's function, telling it which inputs it may overwrite (owned by the
    plan, read for the last time, not a model output, not also read as another argument),
    and list the slots to release after it."""
    last: dict[int, int] = {}
    for i, nd in enumerate(nodes):
        for a in (nd.args if isinstance(nd.args, list) else [nd.args]):
            last[a] = i
    owned = [False] * n_slots
    built = []
    for i, nd in enumerate(nodes):
        multi_in = isinstance(nd.args, list)
        args = nd.args if multi_in else [nd.args]
        dies = tuple(owned[a] and last[a] == i and a not in outputs and args.count(a) == 1
                     for a in args)
        fn = nd.step.build(dies)
        kind = nd.step.output
        if kind == FRESH:
            for o in nd.outs:
                owned[o] = True
        elif kind == VIEW and not nd.multi_out:
            owned[nd.outs[0]] = dies[0]
        for a, dead in zip(args, dies, strict=True):
            if kind != FRESH and not dead:
                owned[a] = False  # a view of it (or an unknown result) may outlive this step
        free = tuple(a for a in dict.fromkeys(args) if last[a] == i and a not in outputs)
        built.append(ScheduledStep(fn, nd.args, multi_in,
                                   nd.outs if nd.multi_out else nd.outs[0], nd.multi_out, free,
                                   nd.step))
    return built


def _step_nodes(graph: LayerGraph) -> list[StepNode]:
    def one(node: GraphNode) -> StepNode:
        step = layer_step(node.layer, node.rank, node.kwargs)
        return StepNode.of(node, step, fusable=not node.kwargs)

    return [one(node) for node in graph.nodes]


def _is_chain(graph: LayerGraph, built: list[ScheduledStep]) -> bool:
    """Whether the steps form one chain from input 0 to the single output."""
    if graph.n_inputs != 1 or not graph.single_output:
        return False
    previous = 0
    for s in built:
        if s.multi_in or s.multi_out or s.args != previous:
            return False
        previous = s.outs  # type: ignore[assignment]
    return previous == graph.outputs[0]


class InferencePlan:
    """``plan(x)`` = ``model(x, training=False)`` on arrays, through compiled fused steps.

    Args:
        model: a built model (anything with ``inference_graph()`` giving a
            :class:`LayerGraph`), or any layer (run through its own ``call``).
        dtype: floating inputs are cast to this dtype (default: the model's).
        batch_invariant: each sample's output bit for bit the same whatever else is in the
            batch (as predicted alone); see :mod:`.invariant`. For servers that stack
            requests.
    """

    def __init__(self, model: Any, dtype: Any = None, batch_invariant: bool = False):
        self.model = model
        self.batch_invariant = batch_invariant
        self.dtype = np.dtype(dtype or getattr(model, "dtype", np.float32))
        make_graph = getattr(model, "inference_graph", None)
        graph = make_graph() if make_graph is not None else None
        self.graph: LayerGraph | None = graph
        self.n_slots = 0 if graph is None else graph.n_slots
        self.uniform_dtype = True
        if graph is None:
            self.steps: list[ScheduledStep] = []
            fn = LayerCall(model).build((False,))
            self._chain: list[Fn] | None = [invariant.per_sample(fn) if batch_invariant
                                            else fn]
            return
        self.uniform_dtype = all(np.dtype(getattr(nd.layer, "dtype", self.dtype)) == self.dtype
                                 for nd in graph.nodes)
        outputs = set(graph.outputs)
        # conv + pool steps run whole batches: a batch-invariant plan keeps them apart
        passes = tuple(p for p in PASSES if not (batch_invariant and p is fold_pool))
        self.steps = schedule(fuse(_step_nodes(graph), outputs, passes), outputs,
                              graph.n_slots)
        if batch_invariant:
            self.steps = invariant.batch_invariant(self.steps)
        self._chain = [s.fn for s in self.steps] if _is_chain(graph, self.steps) else None

    def node_list(self) -> list[StepNode]:
        """The plan's fused steps as step nodes (to transform and hand to
        :meth:`with_nodes`); a step joining two (``unfused()``: a convolution and its
        pooling) comes back as those two, with the value slot between them."""
        nodes = []
        for s in self.steps:
            outs = s.outs if s.multi_out else [s.outs]
            split = getattr(s.step, "unfused", None)
            if split is not None:
                first, second, mid = split()
                nodes += [StepNode(first, s.args, [mid]), StepNode(second, mid, outs)]
            else:
                nodes.append(StepNode(s.step, s.args, outs, s.multi_out))  # type: ignore
        return nodes

    def with_nodes(self, nodes: list[StepNode], n_slots: int) -> InferencePlan:
        """A copy of this plan running ``nodes`` (over ``n_slots`` value slots: the graph's,
        then any new ones) instead of its own steps, scheduled afresh."""
        graph = self.graph
        if graph is None:
            raise ValueError("a plan without a layer graph has no steps to replace")
        plan = copy.copy(self)
        outputs = set(graph.outputs)
        plan.steps = schedule(nodes, outputs, n_slots)
        plan.n_slots = n_slots
        plan._chain = [s.fn for s in plan.steps] if _is_chain(graph, plan.steps) else None
        return plan

    def run_arrays(self, xs: list[Any]) -> Any:
        """The plan on the model's inputs as arrays (already of the right dtypes): the output
        array, or a list of them for a model with several outputs."""
        if self._chain is not None:
            a = xs[0] if len(xs) == 1 else xs
            for fn in self._chain:
                a = fn(a)
            return a
        graph = self.graph
        assert graph is not None
        vals: list[Any] = [None] * self.n_slots
        vals[:graph.n_inputs] = xs[:graph.n_inputs]
        for s in self.steps:
            args = s.args
            r = s.fn([vals[i] for i in args] if s.multi_in else vals[args])  # type: ignore
            if s.multi_out:
                for i, v in zip(s.outs, r, strict=True):  # type: ignore[arg-type]
                    vals[i] = v
            else:
                vals[s.outs] = r  # type: ignore[index]
            for i in s.free:
                vals[i] = None
        if graph.single_output:
            return vals[graph.outputs[0]]
        return [vals[i] for i in graph.outputs]

    def _cast(self, a: Any) -> np.ndarray:
        """a as an array of the plan's dtype when it is floating (or uint8 image data)."""
        a = np.asarray(a)
        if a.dtype != self.dtype and (np.issubdtype(a.dtype, np.floating) or
                                      a.dtype == np.uint8):
            a = a.astype(self.dtype)
        return a

    def __call__(self, x: Any) -> Any:
        if self.graph is None or self.graph.stack:
            a = x
            if not isinstance(a, list):
                a = np.asarray(a)
                if a.dtype != self.dtype:
                    a = a.astype(self.dtype)
            return self.run_arrays([a])
        xs = x if isinstance(x, list) else [x]
        return self.run_arrays([self._cast(a) for a in xs[:self.graph.n_inputs]])

    def run_batched(self, x: Any, max_batch: int = 256) -> Any:
        """Outputs for ``x`` (an array, or a list of arrays for several inputs) computed in
        batches of at most ``max_batch`` samples."""
        xs = x if isinstance(x, list) else [x]
        outs = [self(chunk if isinstance(x, list) else chunk[0])
                for chunk in _batches(xs, max_batch)]
        return _concatenate(outs)

    def run_requests(self, requests: Sequence[Any], max_batch: int = 256) -> list[Any]:
        """One output per request (each an array with a batch axis, or a list of arrays for
        several inputs): the requests are joined into batches of at most ``max_batch``
        samples, run together, and the outputs split back."""
        lists = [r if isinstance(r, list) else [r] for r in requests]
        sizes = [len(r[0]) for r in lists]
        joined = [np.concatenate([r[k] for r in lists]) for k in range(len(lists[0]))] \
            if lists else []
        if not joined:
            return []
        out = self.run_batched(joined if isinstance(requests[0], list) else joined[0],
                               max_batch)
        bounds = np.cumsum([0, *sizes])
        if isinstance(out, list):
            return [[o[b0:b1] for o in out] for b0, b1 in zip(bounds[:-1], bounds[1:],
                                                              strict=True)]
        return [out[b0:b1] for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True)]


def _batches(xs: list[Any], size: int) -> list[list[Any]]:
    if size < 1:
        raise ValueError(f"max_batch must be a positive integer, got {size}")
    n = len(xs[0])
    return [[a[s:s + size] for a in xs] for s in range(0, n, size)]


def _concatenate(outs: list[Any]) -> Any:
    if not outs:
        raise ValueError("no samples to run")
    if isinstance(outs[0], list):
        return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
    return np.concatenate(outs)


def compile(model: Any, dtype: Any = None, batch_invariant: bool = False  # noqa: A001
            ) -> InferencePlan:
    """The inference plan of ``model`` (see :class:`InferencePlan`)."""
    return InferencePlan(model, dtype, batch_invariant)
