"""Structured (channel) pruning: remove whole channels and rebuild narrower layers.

``plan_channels(model, 0.5)`` walks the graph (:mod:`.channel_graph`), scores every prunable
channel set (:mod:`.importance`) and, in each family of sets that share tensors, keeps the best
``round((1 - amount) * n)`` (at least one). ``plan.apply()`` builds the smaller model
(:mod:`.rebuild`); ``prune_channels`` does both; ``iterative_prune`` alternates pruning steps and
the caller's fine-tuning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .channel_graph import ChannelGraph, analyse
from .importance import root_scores
from .rebuild import keep_mask, rebuild


def _check_amount(amount: float) -> float:
    a = float(amount)
    if not math.isfinite(a) or not 0.0 <= a < 1.0:
        raise ValueError(f"amount (the fraction of channels to remove) must lie in [0, 1), "
                         f"got {amount!r}")
    return a


@dataclass
class ChannelPlan:
    """Which channel sets go. ``kept_out[name]`` / ``kept_in[name]``: indices of the output /
    input channels a layer keeps; ``apply()`` builds the pruned model."""

    model: Any
    graph: ChannelGraph
    removed: set[int]

    def _kept(self, table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {n: np.flatnonzero(keep_mask(self.graph, a, self.removed))
                for n, a in table.items()}

    @property
    def kept_out(self) -> dict[str, np.ndarray]:
        return self._kept(self.graph.layer_out)

    @property
    def kept_in(self) -> dict[str, np.ndarray]:
        return self._kept(self.graph.layer_in)

    def apply(self) -> Any:
        return rebuild(self.model, self.graph, self.removed)


def plan_channels(model: Any, amount: float = 0.5, importance: str = "l1",
                  batches: Iterable[tuple[Any, Any]] | None = None,
                  exclude: Sequence[str] = ()) -> ChannelPlan:
    """Choose the channels to remove: ``amount`` of each family, least important first.

    ``importance``: "l1" (filter L1 norm), "bn" (|BatchNorm gamma|, L1 where there is none) or
    "taylor" (|grad x weight| over ``batches`` of (x, integer labels)). ``exclude``: names of
    layers whose output channels stay."""
    a = _check_amount(amount)
    g = analyse(model)
    names = {la.name for la in model.layers}
    for name in exclude:
        if name not in names:
            raise ValueError(f"exclude names layer {name!r}, which model '{model.name}' does "
                             f"not have")
        if name in g.layer_out:
            g.blocked.extend(g.layer_out[name].tolist())
    scores = root_scores(g, importance, model, batches)
    removed: set[int] = set()
    for family in g.families():
        n_keep = max(1, int(round(len(family) * (1.0 - a))))
        ranked = sorted(family, key=lambda r: (-scores[r], r))
        removed.update(ranked[n_keep:])
    return ChannelPlan(model, g, removed)


def prune_channels(model: Any, amount: float = 0.5, importance: str = "l1",
                   batches: Iterable[tuple[Any, Any]] | None = None,
                   exclude: Sequence[str] = ()) -> Any:
    """A new, narrower model without ``amount`` of the channels (see ``plan_channels``)."""
    return plan_channels(model, amount, importance, batches, exclude).apply()


def iterative_prune(model: Any, amount: float, steps: int,
                    fine_tune: Callable[[Any], Any] | None = None, importance: str = "l1",
                    batches: Callable[[Any], Iterable] | None = None,
                    exclude: Sequence[str] = ()) -> Any:
    """``steps`` rounds of prune-then-``fine_tune(model)``, each removing
    1 - (1 - amount)^(1/steps) of the remaining channels, so about ``amount`` go in all.
    ``batches(model)`` gives the Taylor data for each round; ``fine_tune`` may return a new
    model (else the pruned one is kept)."""
    a = _check_amount(amount)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    per_step = 1.0 - (1.0 - a) ** (1.0 / steps)
    for _ in range(steps):
        data = batches(model) if batches is not None else None
        model = prune_channels(model, per_step, importance, data, exclude)
        if fine_tune is not None:
            model = fine_tune(model) or model
    return model
