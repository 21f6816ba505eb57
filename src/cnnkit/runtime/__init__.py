"""The inference runtime: a model's layer graph compiled into a plan of small, typed,
fused steps run on NumPy arrays (below ``models``; ``predict`` and ``no_grad`` calls use it).

- :mod:`.steps`: the step dataclasses a layer's ``inference_step`` hook returns;
- :mod:`.passes`: the fusion passes, one per pattern;
- :mod:`.plan`: scheduling and :class:`InferencePlan` (thread-safe ``run``, batching);
- :mod:`.graph`: the layer graph a model hands over (:class:`LayerGraph`);
- :mod:`.compute`, :mod:`.activations`: the array functions behind the steps.

A layer joins the runtime by one method, in its own file; the runtime hands it the step
vocabulary, so layers import nothing above them::

    class Swish(Layer):
        def inference_step(self, steps, rank):  # rank: the output's rank, or None
            return steps.ArrayFn(lambda x: x / (1 + np.exp(-x)))

Returning None runs the layer's own ``call`` under ``no_grad``. A model hands its graph over
through ``inference_graph()`` (a :class:`LayerGraph`); ``compile(model)`` needs nothing else.
"""

from . import steps
from .graph import GraphNode, LayerGraph
from .plan import InferencePlan, compile, layer_function, layer_step

__all__ = ["steps", "GraphNode", "LayerGraph", "InferencePlan", "compile", "layer_function",
           "layer_step"]
