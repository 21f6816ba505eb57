"""Run a Sequential or functional model with one layer's output cut loose as a leaf Tensor, so
cnnkit's own backward gives the gradient of a class score with respect to it: no hooks, any
layer chosen by name.

The cut is exact: the gradient at a tensor is the sum over the paths from that tensor to the
output, and paths that bypass it (a residual shortcut from before it) do not pass through it.
The model's weights stop requiring gradients for the run (nothing accumulates in them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..autograd import Tensor, enable_grad, no_grad
from ..layers.core import InputLayer


class LayerNotFound(ValueError):
    """The named layer is not a top-level layer of the model."""


@contextmanager
def frozen_weights(model: Any) -> Iterator[None]:
    """The model's weights stop requiring gradients inside the block (restored after)."""
    ws = [w for w in model.weights if isinstance(w, Tensor)]
    flags = [w.requires_grad for w in ws]
    for w in ws:
        w.requires_grad = False
    try:
        yield
    finally:
        for w, f in zip(ws, flags, strict=True):
            w.requires_grad = f


def layer_names(model: Any) -> list[str]:
    return [la.name for la in model.layers if not isinstance(la, InputLayer)]


def check_layer(model: Any, name: str | None) -> None:
    if name is None:
        return
    if not hasattr(model, "layers") or not hasattr(model, "inference_graph") or \
            model.inference_graph() is None:
        raise TypeError(f"explanations need a Sequential or functional model, got "
                        f"{type(model).__name__} (a subclassed model's wiring is code)")
    if name not in layer_names(model):
        raise LayerNotFound(f"no layer named {name!r} in model '{model.name}'; layers: "
                            f"{layer_names(model)}")


def forward_cut(model: Any, x: np.ndarray, layer: str | None) -> tuple[Tensor, Tensor]:
    """(leaf, output): ``leaf`` is the input (``layer`` None) or ``layer``'s output as a leaf
    requiring gradients; ``output`` is the model's output computed from it, in inference
    mode (dropout off, batch norm with its moving statistics)."""
    check_layer(model, layer)
    with enable_grad():
        if hasattr(model, "_input_spec"):  # Sequential
            return _sequential(model, x, layer)
        return _functional(model, x, layer)


def forward_until(model: Any, x: np.ndarray, layer: str, grad: bool = True
                  ) -> tuple[Tensor, Tensor]:
    """(input leaf, ``layer``'s output): the model run up to the named layer, in inference
    mode; with ``grad`` the output's graph reaches back to the input leaf."""
    check_layer(model, layer)
    if hasattr(model, "_input_spec"):
        return _sequential(model, x, None, stop=layer, grad=grad)
    return _functional(model, x, None, stop=layer, grad=grad)


def _leaf(t: Any) -> Tensor:
    return Tensor(np.asarray(t.data if isinstance(t, Tensor) else t), requires_grad=True)


def _sequential(model: Any, x: np.ndarray, layer: str | None, stop: str | None = None,
                grad: bool = True) -> tuple[Tensor, Tensor]:
    h: Any = Tensor(x)
    leaf = None
    if layer is None:
        h = leaf = _leaf(x) if grad else h
    with enable_grad() if grad else no_grad():
        for la in model.layers:
            h = la(h, training=False)
            if la.name == layer:
                h = leaf = _leaf(h)
            if la.name == stop:
                break
    return leaf, h


def _functional(model: Any, x: np.ndarray, layer: str | None, stop: str | None = None,
                grad: bool = True) -> tuple[Tensor, Tensor]:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"explanations need a model with one input and one output, got "
                         f"{len(model.inputs)} and {len(model.outputs)}")
    leaf = _leaf(x) if layer is None and grad else None
    values: dict[int, Any] = {id(model.inputs[0]): leaf if leaf is not None else Tensor(x)}
    with enable_grad() if grad else no_grad():
        return _run_nodes(model, values, leaf, layer, stop)


def _run_nodes(model: Any, values: dict[int, Any], leaf: Any, layer: str | None,
               stop: str | None) -> tuple[Tensor, Tensor]:
    for node in model._nodes:
        if isinstance(node.layer, InputLayer):
            continue
        args = node.inputs
        arg = [values[id(t)] for t in args] if isinstance(args, (list, tuple)) else \
            values[id(args)]
        out = node.layer(arg, training=False, **node.kwargs)
        if node.layer.name == layer:
            out = leaf = _leaf(out)
        outs = out if isinstance(node.outputs, (list, tuple)) else [out]
        for t, v in zip(node.output_tensors, outs, strict=True):
            values[id(t)] = v
        if node.layer.name == stop:
            return leaf, outs[0]
    return leaf, values[id(model.outputs[0])]


def class_scores_backward(out: Tensor, class_index: Any) -> tuple[np.ndarray, np.ndarray]:
    """Backward from each sample's class score ``out[n, c_n]``; returns (classes, scores).
    ``class_index``: None (each sample's top class), an int, or one int per sample."""
    if out.ndim != 2:
        raise ValueError(f"explanations need a model whose output is (batch, classes), got "
                         f"shape {out.shape}")
    n, k = out.shape
    if class_index is None:
        classes = out.data.argmax(1)
    else:
        classes = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (n,)).copy()
        if classes.min() < 0 or classes.max() >= k:
            raise ValueError(f"class_index must be in [0, {k}), got {class_index!r}")
    mask = np.zeros(out.shape, dtype=out.dtype)
    mask[np.arange(n), classes] = 1
    out.backward(mask)
    return classes, out.data[np.arange(n), classes]
