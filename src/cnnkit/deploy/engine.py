"""``InferenceEngine`` and ``compile_layer``: the deployment names of the inference runtime.

``InferenceEngine(model)`` compiles the model once into a plan of fused steps on NumPy arrays
(:class:`cnnkit.runtime.InferencePlan`): zero padding merged into the next convolution,
batch-norm folded into the convolution or dense layer before it, ReLU-type activations applied
in place, every intermediate released after its last reader. It reads the layers' weights at
call time and keeps no state between calls, so several threads may share one engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..runtime import InferencePlan, layer_function


class InferenceEngine(InferencePlan):
    """``engine(x)`` = ``model(x, training=False)`` as arrays, through a compiled plan.

    Args:
        model: a built Sequential or functional Model (or any Layer).
        dtype: inputs are cast to this dtype (default: the model's).
    """

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Outputs for ``x`` computed in batches of ``batch_size``."""
        return self.run_batched(x, batch_size)


def compile_layer(layer: Any) -> Callable[[Any], Any]:
    """The array function computing ``layer`` in inference mode."""
    return layer_function(layer)
