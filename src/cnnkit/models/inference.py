"""predict / predict_on_batch for models: batches through the compiled inference plan.

The plan (``cnnkit.runtime``) is compiled on first use and kept while the layer list stays the
same; ``predict`` feeds it batches of ``batch_size`` samples and joins the outputs. The input
helpers (``_check_batch``, ``_model_input``, ``_batches``) are the TrainingMixin's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import runtime
from ..autograd import no_grad
from .fit_data import as_array_list as _as_array_list
from .fit_data import is_batch_iterator as _is_batch_iterator


class InferenceMixin:
    """predict, predict_on_batch and the cached inference plan of a Model."""

    def predict(self, x: Any, batch_size: int | None = None, verbose: Any = 0,
                callbacks: Any = None) -> Any:
        """Model outputs for ``x``, computed in batches in inference mode, as NumPy arrays."""
        batch_size = batch_size or 32
        if _is_batch_iterator(x):
            chunks = [b[0] if isinstance(b, (tuple, list)) else b for b in x]
            xs = [np.concatenate([np.asarray(c) for c in chunks])]
        else:
            xs = _as_array_list(x)
            self._check_batch(xs, None)
        outs: list[list[np.ndarray]] = []
        if not self.built and len(xs[0]):
            with no_grad():  # a model without an input shape builds on its first batch
                self(self._model_input([a[:1] for a in xs]), training=False)
        engine = self._inference_engine()
        for idx in self._batches(len(xs[0]), batch_size):
            self.check_input_shape(xs[0][idx].shape if len(xs) == 1 else
                                   [a[idx].shape for a in xs])
            o = engine(self._model_input([a[idx] for a in xs]))
            outs.append(o if isinstance(o, list) else [o])
        if not outs:
            raise ValueError("predict() got no samples")
        result = [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
        return result[0] if len(result) == 1 else result

    def _inference_engine(self) -> Any:
        """The compiled inference plan (built on first use; the layer list is fixed by then)."""
        key = tuple(id(la) for la in self.layers)
        cached = getattr(self, "_engine_cache", None)
        if cached is None or cached[0] != key:
            if not self.built:
                raise ValueError(f"model '{self.name}' is not built: call it on data or give "
                                 f"it an input shape first")
            cached = self._engine_cache = (key, runtime.compile(self))
        return cached[1]

    def predict_on_batch(self, x: Any) -> Any:
        return self.predict(x, batch_size=len(_as_array_list(x)[0]))
