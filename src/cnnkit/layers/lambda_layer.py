"""Lambda: wrap a Python function of Tensors as a layer (Keras ``layers.Lambda``).

Usable in memory (Sequential, functional models, fit, predict). It cannot be saved: its
function is code, and loading it back would mean running code from a file, which cnnkit's files
never do. Saving a model holding one raises ValueError naming the layer; rebuild the model in
code and use ``save_weights`` / ``load_weights`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..autograd import Tensor, no_grad
from .base import Layer

__all__ = ["Lambda"]


class Lambda(Layer):
    """y = function(x, **arguments).

    Args:
        function: a callable on Tensors (cnnkit.ops functions and Tensor operators record
            gradients, so a Lambda trains like any layer).
        output_shape: the output shape without the batch axis; when None it is found by
            running ``function`` on zeros of the input shape (batch 1).
        arguments: keyword arguments passed to ``function``.
    """

    def __init__(self, function: Callable[..., Any], output_shape: Any = None,
                 mask: Any = None, arguments: dict | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda expects a callable, got {type(function).__name__}")
        self.function = function
        self.output_shape_arg = None if output_shape is None else tuple(output_shape)
        self.arguments = dict(arguments or {})

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self.output_shape_arg is not None:
            batch = input_shape[0][0] if isinstance(input_shape, list) else input_shape[0]
            return (batch, *self.output_shape_arg)

        def zeros(s: Any) -> Tensor:
            return Tensor(np.zeros([1 if d is None else d for d in s], self.dtype))
        probe = [zeros(s) for s in input_shape] if isinstance(input_shape, list) \
            else zeros(input_shape)
        with no_grad():
            out = self.function(probe, **self.arguments)
        shapes = [tuple(o.shape) for o in out] if isinstance(out, (list, tuple)) \
            else tuple(out.shape)
        first = input_shape[0] if isinstance(input_shape, list) else input_shape
        fix = (lambda s: (first[0], *s[1:])) if first[0] is None else (lambda s: s)
        return [fix(s) for s in shapes] if isinstance(shapes, list) else fix(shapes)

    def get_config(self) -> dict:
        """Refused: a Lambda's function is code, which cnnkit files never store or run."""
        raise ValueError(
            f"Lambda layer '{self.name}' cannot be saved: its function is Python code, and "
            f"loading it would mean running code from the file. Write a Layer subclass, or "
            f"rebuild the model in code and use save_weights()/load_weights()")
