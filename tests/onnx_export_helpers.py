"""Shared by the ONNX export tests: random batch-norm statistics (so folding is tested on
values that are not the identity), running an exported model in ONNX Runtime, and the
comparison with cnnkit's own output in either layout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def ort_or_skip() -> Any:
    pytest.importorskip("onnx", reason="onnx (the 'onnx' extra) is not installed")
    return pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


def randomize_norms(model: Any, seed: int = 0) -> None:
    """Give every batch norm random gamma, beta, moving mean and variance."""
    rng = np.random.default_rng(seed)
    for layer in _leaves(model):
        if type(layer).__name__ != "BatchNormalization":
            continue
        for w in (layer.gamma, layer.beta, layer.moving_mean):
            if w is not None:
                w.data[...] = rng.uniform(-0.5, 0.5, w.shape) + (1.0 if w is layer.gamma
                                                                 else 0.0)
        layer.moving_variance.data[...] = rng.uniform(0.5, 1.5, layer.moving_variance.shape)


def _leaves(model: Any) -> list:
    out = []
    for layer in model.layers:
        out += _leaves(layer) if hasattr(layer, "_functional") else [layer]
    return out


def to_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """A channels-last array in the layout of the exported interface."""
    if layout == "NHWC" or x.ndim < 3 or x.dtype.kind != "f":
        return x
    return np.moveaxis(x, -1, 1)


def run_ort(proto: Any, feeds: list[np.ndarray]) -> list[np.ndarray]:
    ort = ort_or_skip()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, feeds, strict=True)))
