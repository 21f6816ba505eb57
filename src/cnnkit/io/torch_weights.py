"""PyTorch tensor layouts mapped onto cnnkit's (channels-last).

- convolution weight (O, I/g, K...) -> (K..., I/g, O)
- depthwise weight (C*M, 1, KH, KW) -> (KH, KW, C, M)
- transposed convolution weight (I, O/g, K...) -> (K..., O, I)
- linear weight (out, in) -> (in, out); after a flatten of (C, H, W) the input features are
  reordered from PyTorch's C-major order to channels-last (H, W, C) order
- batch norm weight, bias, running_mean, running_var -> gamma, beta, moving_mean,
  moving_variance (num_batches_tracked is ignored)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def conv_kernel(w: np.ndarray) -> np.ndarray:
    """(O, I, K...) -> (K..., I, O)."""
    nd = w.ndim - 2
    return np.ascontiguousarray(w.transpose(*range(2, 2 + nd), 1, 0))


def depthwise_kernel(w: np.ndarray, in_channels: int) -> np.ndarray:
    """(C*M, 1, KH, KW) -> (KH, KW, C, M)."""
    cm, _, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(in_channels, cm // in_channels, kh, kw)
                                .transpose(2, 3, 0, 1))


def transpose_kernel(w: np.ndarray) -> np.ndarray:
    """(I, O, K...) -> (K..., O, I)."""
    nd = w.ndim - 2
    return np.ascontiguousarray(w.transpose(*range(2, 2 + nd), 1, 0))


def linear_kernel(w: np.ndarray, flatten_from: Sequence[int] | None = None) -> np.ndarray:
    """(out, in) -> (in, out). ``flatten_from`` = channels-last shape (H, W, C) (or (L, C), ...)
    of the tensor flattened just before this layer: PyTorch flattened it as (C, H, W)."""
    if flatten_from is not None and len(flatten_from) >= 2:
        *spatial, c = flatten_from
        out = w.shape[0]
        w = w.reshape(out, c, *spatial)
        w = w.transpose(0, *range(2, 2 + len(spatial)), 1).reshape(out, -1)
    return np.ascontiguousarray(w.T)


_ELEMENTWISE = {"Dropout", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "InputLayer"}


def _groups(state_dict: dict[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Tensors grouped by module name, in checkpoint order."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state_dict.items():
        module, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        groups.setdefault(module, {})[leaf] = value
    return list(groups.items())


def _check(layer: Any, name: str, expected: tuple, got: np.ndarray, tensor: str) -> None:
    if tuple(expected) != tuple(got.shape):
        raise ValueError(f"PyTorch tensor '{tensor}' has shape {tuple(got.shape)} (after layout "
                         f"conversion) but {type(layer).__name__} '{layer.name}' {name} has "
                         f"shape {tuple(expected)}")


def convert_module(layer: Any, tensors: dict[str, np.ndarray], module: str,
                   flatten_from: Sequence[int] | None = None) -> list[np.ndarray]:
    """The weights of ``layer`` (in ``layer.weights`` order) from one PyTorch module's tensors."""
    kind = type(layer).__name__
    ws = layer.weights

    def get(leaf: str) -> np.ndarray:
        if leaf not in tensors:
            raise ValueError(f"PyTorch module '{module}' has no '{leaf}' tensor (has "
                             f"{sorted(tensors)}) for {kind} '{layer.name}'")
        return tensors[leaf]

    if kind == "BatchNormalization":
        names = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                 "moving_variance": "running_var"}
        leaves = [names.get(w.name.rsplit("/", 1)[-1], w.name) for w in ws]
        arrays = [get(leaf) for leaf in leaves]
    else:
        weight = get("weight")
        if kind == "Dense":
            kernel = linear_kernel(weight, flatten_from)
        elif kind == "DepthwiseConv2D":
            kernel = depthwise_kernel(weight, ws[0].shape[2])
        elif kind.endswith("Transpose"):
            kernel = transpose_kernel(weight)
        elif kind.startswith("Conv"):
            kernel = conv_kernel(weight)
        elif kind == "Embedding":
            kernel = weight
        else:
            raise ValueError(f"no PyTorch mapping for {kind} '{layer.name}'")
        arrays = [kernel] + ([get("bias")] if len(ws) > 1 else [])
        leaves = ["weight", "bias"][:len(arrays)]
    if len(arrays) != len(ws):
        raise ValueError(f"{kind} '{layer.name}' has {len(ws)} weights but PyTorch module "
                         f"'{module}' gives {len(arrays)}")
    for w, a, leaf in zip(ws, arrays, leaves, strict=True):
        _check(layer, w.name, w.shape, a, f"{module}.{leaf}")
    return arrays


def as_state_dict(state_dict: Any) -> dict[str, np.ndarray]:
    """{name: ndarray} from a mapping of names to arrays or torch tensors (a ``module.``
    prefix dropped); ValueError naming the key for anything else."""
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"a state dict must map names to arrays, got a "
                         f"{type(state_dict).__name__}")
    out: dict[str, np.ndarray] = {}
    for k, v in state_dict.items():
        if not isinstance(k, str):
            raise ValueError(f"state dict key {k!r:.60} is not a string")
        if hasattr(v, "detach"):  # a torch tensor handed over directly
            v = v.detach().cpu().float().numpy() if str(v.dtype) == "torch.bfloat16" \
                else v.detach().cpu().numpy()
        v = np.asarray(v)
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "biuf":
            raise ValueError(f"state dict entry '{k}' is a {type(v).__name__}"
                             f"{' of ' + str(v.dtype) if isinstance(v, np.ndarray) else ''}, "
                             f"not a numeric array")
        out[k[7:] if k.startswith("module.") else k] = v
    return out


def load_sequential_state_dict(model: Any, state_dict: Any) -> None:
    """Load a PyTorch state dict into a cnnkit model whose weighted layers come in the same
    order as the PyTorch modules (a user's sequential CNN). A Dense right after a Flatten of a
    spatial tensor gets PyTorch's (C, H, W) feature order converted.

    Raises ValueError naming the module, tensor key and layer on a missing or mis-shaped
    tensor, or a state dict entry that is not a numeric array; nothing is assigned unless
    every tensor converts."""
    state_dict = as_state_dict(state_dict)
    layers = _flat_layers(model)
    weighted = []
    flatten_shape: tuple | None = None
    for layer, in_shape in layers:
        kind = type(layer).__name__
        if kind == "Flatten":
            flatten_shape = tuple(in_shape[1:])
            continue
        if layer.weights:
            weighted.append((layer, flatten_shape if kind == "Dense" else None))
            flatten_shape = None
        elif kind not in _ELEMENTWISE:
            flatten_shape = None
    groups = _groups(state_dict)
    if len(groups) != len(weighted):
        raise ValueError(f"the checkpoint has {len(groups)} modules with weights "
                         f"({[g for g, _ in groups]}) but the model has {len(weighted)} layers "
                         f"with weights ({[la.name for la, _ in weighted]})")
    converted = []
    for (layer, flat), (module, tensors) in zip(weighted, groups, strict=True):
        converted.append((layer, convert_module(layer, tensors, module, flat)))
    for layer, arrays in converted:
        layer.set_weights(arrays)


def _flat_layers(model: Any) -> list[tuple[Any, tuple]]:
    """(layer, input shape) for each leaf layer of a Sequential or functional model."""
    out: list[tuple[Any, tuple]] = []
    if hasattr(model, "layer_table") and type(model).__name__ == "Sequential":
        shape = model.input_shape
        for layer in model.layers:
            if type(layer).__name__ in ("Sequential", "Model", "Functional"):
                out += _flat_layers(layer)
            else:
                out.append((layer, shape))
            shape = layer.compute_output_shape(shape)
        return out
    shapes, _ = model.node_shapes()
    for node in model._nodes:
        ins = node.input_tensors
        out.append((node.layer, shapes[id(ins[0])] if ins else node.outputs.shape))
    return out
