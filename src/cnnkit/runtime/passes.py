"""Fusion passes over the step graph, one per pattern. Each joins a step to its producer when
the producer's output has that step as its only reader (and is not a model output), by
asking the producer what it can absorb (:mod:`.steps`); no pass knows a layer class.

- :func:`fold_padding`: zero padding -> convolution: the pads join the convolution's pads;
- :func:`fold_affine`: convolution / dense -> batch-norm: folded into the kernel and bias;
- :func:`fold_activation`: conv / dense / batch-norm / merge / max pool -> ReLU-type
  activation: applied in place on the buffer the producer wrote;
- :func:`move_activation_past_pool`: an in-place activation moves after a max pooling that
  follows (they commute; the pooled output has fewer values);
- :func:`fold_pool`: convolution -> 2x2 max or average pooling: one step (``with_pool``)
  that pools the convolution's rows as it makes them (the slot between them kept on it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .graph import GraphNode
from .steps import Activate, ChannelAffine, Pool, ZeroPad


@dataclass
class StepNode:
    """A step in the graph: its input slot(s), output slot(s), whether it returns a list,
    and whether it may join others (False for calls with extra keyword arguments)."""

    step: Any
    args: int | list[int]
    outs: list[int]
    multi_out: bool = False
    fusable: bool = True

    @classmethod
    def of(cls, node: GraphNode, step: Any, fusable: bool) -> StepNode:
        return cls(step, node.args, list(node.outs), node.multi_out, fusable)


Pass = Callable[[list[StepNode], set[int]], list[StepNode]]


def _sole_readers(nodes: list[StepNode], outputs: set[int]) -> dict[int, int]:
    """slot -> index of its only reader, for slots read once, by a single-input fusable step,
    and not model outputs."""
    readers: dict[int, list[int]] = {}
    for j, nd in enumerate(nodes):
        for a in (nd.args if isinstance(nd.args, list) else [nd.args]):
            readers.setdefault(a, []).append(j)
    return {slot: r[0] for slot, r in readers.items()
            if len(r) == 1 and slot not in outputs and isinstance(nodes[r[0]].args, int)
            and nodes[r[0]].fusable}


def _join_readers(nodes: list[StepNode], outputs: set[int],
                  absorb: Callable[[Any, Any], Any | None]) -> list[StepNode]:
    """Each fusable single-output step takes its sole reader when absorb(step, reader's step)
    gives the joined step; the joined step writes the reader's output slot."""
    sole = _sole_readers(nodes, outputs)
    gone: set[int] = set()
    for i, nd in enumerate(nodes):
        while i not in gone and nd.fusable and not nd.multi_out:
            j = sole.get(nd.outs[0])
            joined = None if j is None or j in gone else absorb(nd.step, nodes[j].step)
            if joined is None:
                break
            nd.step, nd.outs = joined, nodes[j].outs
            gone.add(j)
    return [nd for i, nd in enumerate(nodes) if i not in gone]


def fold_padding(nodes: list[StepNode], outputs: set[int]) -> list[StepNode]:
    """pad -> step: the reader takes the pads (``with_padding``) and reads the pad's input."""
    sole = _sole_readers(nodes, outputs)
    gone: set[int] = set()
    for i, nd in enumerate(nodes):
        if not (isinstance(nd.step, ZeroPad) and nd.fusable and not nd.multi_out):
            continue
        j = sole.get(nd.outs[0])
        joined = None if j is None else nodes[j].step.with_padding(nd.step.pads)
        if joined is not None:
            nodes[j].step, nodes[j].args = joined, nd.args
            gone.add(i)
    return [nd for i, nd in enumerate(nodes) if i not in gone]


def fold_affine(nodes: list[StepNode], outputs: set[int]) -> list[StepNode]:
    """step -> batch-norm: the step folds the channel affine in (``with_affine``)."""
    return _join_readers(nodes, outputs, lambda step, nxt: step.with_affine(nxt)
                         if isinstance(nxt, ChannelAffine) else None)


def fold_activation(nodes: list[StepNode], outputs: set[int]) -> list[StepNode]:
    """step -> activation: the step applies it on its own output (``with_activation``)."""
    return _join_readers(nodes, outputs, lambda step, nxt: step.with_activation(nxt.act)
                         if isinstance(nxt, Activate) and nxt.act.in_place else None)


def move_activation_past_pool(nodes: list[StepNode], outputs: set[int]) -> list[StepNode]:
    """step(act) -> max pool: act(pool(z)) = pool(act(z)), so the pool applies it."""
    sole = _sole_readers(nodes, outputs)
    for nd in nodes:
        split = nd.step.split_activation() if nd.fusable and not nd.multi_out else None
        j = None if split is None else sole.get(nd.outs[0])
        if j is None or not nodes[j].step.commutes_with(split[1]):
            continue
        moved = nodes[j].step.with_activation(split[1])
        if moved is not None:
            nodes[j].step, nd.step = moved, split[0]
    return nodes


def fold_pool(nodes: list[StepNode], outputs: set[int]) -> list[StepNode]:
    """step -> pooling: the step pools its own output (``with_pool``)."""
    sole = _sole_readers(nodes, outputs)
    gone: set[int] = set()
    for nd in nodes:
        j = sole.get(nd.outs[0]) if nd.fusable and not nd.multi_out else None
        joined = None if j is None or j in gone or not isinstance(nodes[j].step, Pool) \
            else nd.step.with_pool(nodes[j].step, nd.outs[0])
        if joined is not None:
            nd.step, nd.outs = joined, nodes[j].outs
            gone.add(j)
    return [nd for i, nd in enumerate(nodes) if i not in gone]


PASSES: tuple[Pass, ...] = (fold_padding, fold_affine, fold_activation,
                            move_activation_past_pool, fold_pool)


def fuse(nodes: list[StepNode], outputs: set[int],
         passes: tuple[Pass, ...] = PASSES) -> list[StepNode]:
    """The nodes after every pass, in order."""
    for run_pass in passes:
        nodes = run_pass(nodes, outputs)
    return nodes
