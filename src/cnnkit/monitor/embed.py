"""A model's outputs together with its penultimate-layer embeddings, in one pass.

The embedding is the input of the last layer that has weights (the classifier head); the
plan computing both is the model's own layer graph with that value as a second output, so
the outputs are those of ``model.predict`` (bit for bit with ``batch_invariant=True``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..runtime import InferencePlan, LayerGraph


class _GraphModel:
    """What :class:`InferencePlan` needs: a dtype and an ``inference_graph()``."""

    def __init__(self, graph: LayerGraph, dtype: Any):
        self.graph, self.dtype = graph, dtype

    def inference_graph(self) -> LayerGraph:
        return self.graph


def embedding_slot(graph: LayerGraph) -> int | None:
    """The value slot read by the last layer with weights (None if there is none, or it
    reads several values)."""
    for node in reversed(graph.nodes):
        if getattr(node.layer, "weights", None):
            return node.args if isinstance(node.args, int) and node.args > 0 else None
    return None


class EmbeddingPlan:
    """``plan(x) -> (outputs, embeddings)``: the model's single output and the penultimate
    values flattened to (N, D); embeddings are None for a model without such a layer."""

    def __init__(self, model: Any, batch_invariant: bool = True):
        self.dtype = np.dtype(getattr(model, "dtype", np.float32))
        make_graph = getattr(model, "inference_graph", None)
        graph = make_graph() if make_graph is not None else None
        slot = embedding_slot(graph) if graph is not None and graph.single_output and \
            graph.n_inputs == 1 else None
        self.has_embeddings = slot is not None
        if slot is None:
            self.plan = InferencePlan(model, batch_invariant=batch_invariant)
            return
        two = LayerGraph(graph.nodes, graph.n_inputs, [graph.outputs[0], slot], False,
                         graph.n_slots, stack=False)
        self.plan = InferencePlan(_GraphModel(two, self.dtype), batch_invariant=batch_invariant)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        out = self.plan(x)
        if not self.has_embeddings:
            return out, None
        y, emb = out
        return y, np.asarray(emb).reshape(len(emb), -1)
