"""How much each prunable channel set matters: L1 norm of its filters, |BatchNorm gamma|, or
the first-order Taylor estimate |sum(grad * weight)| of the loss change when it is removed.

Scores are divided by their layer's mean first, so layers of different scales compare; a set
tied across several layers scores the mean over its members.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ... import layers as L
from ... import ops
from ...autograd import Tensor
from .channel_graph import ChannelGraph

METHODS = ("l1", "bn", "taylor")


def _out_kernel(layer: Any) -> Tensor:
    """The weight whose last axis is the layer's output channels."""
    return layer.pointwise_kernel if isinstance(layer, L.SeparableConv2D) else layer.kernel


def _per_out_channel(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1, values.shape[-1]).sum(axis=0)


def _normalised(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    m = s.mean() if s.size else 0.0
    return s / m if m > 0 else np.ones_like(s)


def l1_scores(g: ChannelGraph) -> dict[int, list[float]]:
    """sum |w| over each producer's output-channel filter: atom -> [score]."""
    found: dict[int, list[float]] = {}
    for name, atoms in g.layer_out.items():
        layer = g.layers.get(name)
        if layer is None or isinstance(layer, L.DepthwiseConv2D):
            continue
        s = _normalised(_per_out_channel(np.abs(_out_kernel(layer).data)))
        for a, v in zip(atoms.tolist(), s.tolist(), strict=True):
            found.setdefault(a, []).append(v)
    return found


def bn_scores(g: ChannelGraph) -> dict[int, list[float]]:
    """|gamma| of each BatchNormalization channel: atom -> [score]."""
    found: dict[int, list[float]] = {}
    for name, atoms in g.layer_in.items():
        layer = g.layers[name]
        if isinstance(layer, L.BatchNormalization) and layer.gamma is not None:
            s = _normalised(np.abs(layer.gamma.data))
            for a, v in zip(atoms.tolist(), s.tolist(), strict=True):
                found.setdefault(a, []).append(v)
    return found


def taylor_scores(g: ChannelGraph, model: Any, batches: Iterable[tuple[Any, Any]]
                  ) -> dict[int, list[float]]:
    """|sum over the filter of dL/dw * w| summed over ``batches`` of (x, integer labels), L the
    softmax cross-entropy of the model's logits (Molchanov et al. 2017, weight form)."""
    producers = [(n, g.layers[n]) for n in g.layer_out if not isinstance(
        g.layers.get(n), (L.DepthwiseConv2D, type(None)))]
    totals = {n: np.zeros(g.layer_out[n].size) for n, _ in producers}
    seen = 0
    for x, y in batches:
        for w in model.weights:
            w.grad = None
        out = model(Tensor(np.asarray(x, dtype=model.dtype)), training=False)
        ops.softmax_cross_entropy(out, np.asarray(y)).backward()
        for n, layer in producers:
            w = _out_kernel(layer)
            if w.grad is not None:
                totals[n] += np.abs(_per_out_channel(w.grad * w.data))
        seen += 1
    if not seen:
        raise ValueError("Taylor importance needs at least one batch of (x, y)")
    for w in model.weights:
        w.grad = None  # the caller's model is left as it was
    found: dict[int, list[float]] = {}
    for n, _ in producers:
        for a, v in zip(g.layer_out[n].tolist(), _normalised(totals[n]).tolist(), strict=True):
            found.setdefault(a, []).append(v)
    return found


def root_scores(g: ChannelGraph, method: str, model: Any = None,
                batches: Iterable[tuple[Any, Any]] | None = None) -> dict[int, float]:
    """Score of each prunable set (root atom): the mean of its members' scores; with "bn",
    sets without a BatchNorm fall back to L1."""
    if method not in METHODS:
        raise ValueError(f"importance must be one of {', '.join(map(repr, METHODS))}, got "
                         f"{method!r}")
    if method == "taylor":
        if batches is None:
            raise ValueError("importance='taylor' needs data: pass batches=[(x, y), ...]")
        per_atom = taylor_scores(g, model, batches)
    else:
        per_atom = l1_scores(g)
    fallback: dict[int, list[float]] = {}
    if method == "bn":
        per_atom, fallback = bn_scores(g), per_atom
    prunable = g.prunable_roots()
    gathered: dict[int, list[float]] = {}
    backup: dict[int, list[float]] = {}
    for table, into in ((per_atom, gathered), (fallback, backup)):
        for a, vs in table.items():
            r = g.uf.find(a)
            if r in prunable:
                into.setdefault(r, []).extend(vs)
    return {r: float(np.mean(gathered.get(r) or backup.get(r) or [0.0])) for r in prunable}
