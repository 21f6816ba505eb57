"""cnnkit weights written back as a PyTorch (torchvision-named) state dict: the inverse of
:mod:`cnnkit.io.torch_weights` and :func:`~cnnkit.io.torchvision_names.load_torchvision_weights`.

- convolution kernel (K..., I/g, O) -> (O, I/g, K...); depthwise (KH, KW, C, M) ->
  (C*M, 1, KH, KW); transposed (K..., O, I) -> (I, O, K...);
- dense kernel (in, out) -> (out, in), the input features put back in PyTorch's (C, H, W)
  order when a Flatten of a spatial map comes before it;
- batch norm gamma, beta, moving mean, moving variance -> weight, bias, running_mean,
  running_var; embeddings -> weight.

So ``load_torchvision_weights(zoo.get(name), to_torch_state_dict(model))`` rebuilds
``model``, and a ``.safetensors`` file of it loads in PyTorch with ``load_state_dict``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .torchvision_names import _flatten_sources, named_layers

_BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
             "moving_variance": "running_var"}


def _to_torch_linear(w: np.ndarray, flatten_from: tuple | None) -> np.ndarray:
    """(in, out) -> (out, in); with ``flatten_from`` = (*S, C): features to (C, *S) order."""
    t = w.T
    if flatten_from is not None and len(flatten_from) >= 2:
        *spatial, c = (int(d) for d in flatten_from)
        t = t.reshape(t.shape[0], *spatial, c)
        t = np.moveaxis(t, -1, 1).reshape(t.shape[0], -1)
    return np.ascontiguousarray(t)


def _kernel(layer: Any, w: np.ndarray, flatten_from: tuple | None) -> np.ndarray:
    kind = type(layer).__name__
    if kind == "Dense":
        return _to_torch_linear(w, flatten_from)
    if kind == "DepthwiseConv2D":
        kh, kw, c, m = w.shape
        return np.ascontiguousarray(w.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw))
    if kind == "Embedding":
        return np.ascontiguousarray(w)
    if kind.startswith("Conv"):  # Conv*D and Conv*DTranspose: (*K, A, B) -> (B, A, *K)
        r = w.ndim - 2
        return np.ascontiguousarray(w.transpose(r + 1, r, *range(r)))
    raise ValueError(f"no PyTorch layout for {kind} '{layer.name}'")


def to_torch_state_dict(model: Any) -> dict[str, np.ndarray]:
    """{``<layer name>.<leaf>``: array} in PyTorch's layouts for every weighted layer
    (nested models' layers prefixed with the model's name); ValueError naming a layer
    without a PyTorch form."""
    flats = _flatten_sources(model)
    out: dict[str, np.ndarray] = {}
    for name, layer in named_layers(model).items():
        ws = layer.weights
        if not ws:
            continue
        if type(layer).__name__ == "BatchNormalization":
            for w in ws:
                leaf = _BN_NAMES.get(w.name.rsplit("/", 1)[-1], w.name)
                out[f"{name}.{leaf}"] = np.ascontiguousarray(w.data)
            continue
        if len(ws) > 2:
            raise ValueError(f"no PyTorch layout for {type(layer).__name__} '{layer.name}' "
                             f"({len(ws)} weights)")
        out[f"{name}.weight"] = _kernel(layer, ws[0].data, flats.get(id(layer)))
        if len(ws) == 2:
            out[f"{name}.bias"] = np.ascontiguousarray(ws[1].data)
    return out
