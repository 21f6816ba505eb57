"""Pruning that makes models smaller: unstructured magnitude pruning with a sparse model file,
and structured channel pruning that rebuilds narrower layers."""

from __future__ import annotations

from typing import Any

from ...models.saving import save_model
from .channel_graph import ChannelGraph, analyse
from .magnitude import (
    ConstantSparsity,
    MagnitudePruning,
    PolynomialDecay,
    apply_masks,
    magnitude_masks,
    prunable_weights,
    prune_magnitude,
    sparsity,
)
from .report import ModelFigures, figures, file_size, table
from .structured import ChannelPlan, iterative_prune, plan_channels, prune_channels


def save_sparse(model: Any, path: Any, include_optimizer: bool = False) -> None:
    """Save with mostly-zero weights as bit mask + values (loads with ``load_model``). The
    optimizer state (dense, and as large as the weights twice over for Adam) is left out
    unless ``include_optimizer``."""
    save_model(model, path, sparse=True, include_optimizer=include_optimizer)


__all__ = ["ChannelGraph", "analyse", "ConstantSparsity", "MagnitudePruning", "PolynomialDecay",
           "apply_masks", "magnitude_masks", "prunable_weights", "prune_magnitude", "sparsity",
           "ModelFigures", "figures", "file_size", "table", "ChannelPlan", "iterative_prune",
           "plan_channels", "prune_channels", "save_sparse"]
