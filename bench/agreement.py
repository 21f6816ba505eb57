"""Is the same computation timed? cnnkit's and PyTorch's logits, training loss and conv kernel
gradients compared, in float32 and float64."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from . import workloads as W
from .steps import load_torch


def _conv_pairs(ck: Any, pt: Any) -> list[tuple[Any, Any]]:
    """(cnnkit Conv2D layer, PyTorch Conv2d module) pairs: by name where PyTorch has a module
    of the layer's name (functional models), else in order (sequential ones)."""
    import torch

    convs = [la for la in W._leaf_layers(ck) if type(la).__name__ == "Conv2D"]
    named = dict(pt.named_modules())
    if all(la.name in named for la in convs):
        return [(la, named[la.name]) for la in convs]
    mods = [m for m in pt.modules() if isinstance(m, torch.nn.Conv2d)]
    return list(zip(convs, mods, strict=True))


def _train_grads(ck: Any, pt: Any, x: np.ndarray, xt: Any, y: np.ndarray, yt: Any
                 ) -> tuple[float, float, list[np.ndarray], list[np.ndarray]]:
    """One training-mode forward + backward in both frameworks (dropout off): (cnnkit loss,
    PyTorch loss, cnnkit conv kernel grads, PyTorch's in cnnkit layout)."""
    import torch.nn.functional as F  # noqa: N812

    from cnnkit.train.losses import CrossEntropyLoss

    torch = load_torch()
    drops = [la for la in W._leaf_layers(ck) if type(la).__name__ == "Dropout"]
    rates = [la.rate for la in drops]
    for la in drops:
        la.rate = 0.0
    pt.train()
    tdrops = [m for m in pt.modules() if isinstance(m, torch.nn.Dropout)]
    for m in tdrops:
        m.eval()
    try:
        loss_c = CrossEntropyLoss()(ck(x, training=True), y)
        loss_c.backward()
        loss_t = F.cross_entropy(pt(xt), yt)
        loss_t.backward()
        pairs = _conv_pairs(ck, pt)
        gc = [np.asarray(la.weights[0].grad, np.float64) for la, _ in pairs]
        gt = [m.weight.grad.double().numpy().transpose(2, 3, 1, 0) for _, m in pairs]
    finally:
        for la, r in zip(drops, rates, strict=True):
            la.rate = r
        for p in ck.parameters():
            p.grad = None
        pt.zero_grad()
    return float(loss_c.data), float(loss_t.item()), gc, gt


def _worst_rel(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(u - v).max() / max(np.abs(v).max(), 1e-300))
               for u, v in zip(a, b, strict=True))


def _to_float64(ck: Any) -> None:
    """Make every layer of a cnnkit model compute in float64 (weights cast)."""
    for la in W._leaf_layers(ck):
        la.dtype = np.dtype(np.float64)
        for w in la.weights:
            w.data = w.data.astype(np.float64)


def _logits(case: W.Case) -> dict[str, Any]:
    """Max abs difference of the logits in inference mode (float32), and the largest logit."""
    import cnnkit

    torch = load_torch()
    case.pt.eval()
    with cnnkit.no_grad():
        a = np.asarray(case.ck(case.x, training=False).data)
    with torch.inference_mode():
        b = case.pt(case.xt).numpy()
    return {"logits_max_abs_diff": float(np.abs(a - b).max()),
            "logits_max_abs": float(np.abs(b).max())}


def agreement(case: W.Case, w: W.Workload) -> dict[str, Any]:
    """The same computation? Max abs difference of the logits in inference mode (float32),
    and for a training step (dropout switched off) the loss and the conv kernel gradients:
    cnnkit float32 and PyTorch float32 each against PyTorch float64 (float32 rounding alone),
    and cnnkit float64 against PyTorch float64 (the maths itself)."""
    out = _logits(case)
    if "train" not in w.modes:
        return out
    n = w.grad_batch or case.batch  # the big models check their gradients on a few samples
    x, xt, y, yt = case.x[:n], case.xt[:n], case.y[:n], case.yt[:n]
    pt64 = copy.deepcopy(case.pt).double()
    xt64 = xt.double()
    lc, lt, gc, gt = _train_grads(case.ck, case.pt, x, xt, y, yt)
    _, l64, _, g64 = _train_grads(case.ck, pt64, x, xt64, y, yt)
    out["loss_diff"] = abs(lc - lt)
    out["grad32_ck"] = _worst_rel(gc, g64)
    out["grad32_pt"] = _worst_rel(gt, g64)
    fresh = W.make_case(w, frameworks=("cnnkit",))  # a float64 copy of the same cnnkit model
    W.copy_torch_to_cnnkit(fresh.ck, case.pt)
    _to_float64(fresh.ck)
    lc64, _, gc64, _ = _train_grads(fresh.ck, pt64, x.astype(np.float64), xt64, y, yt)
    out["loss_diff64"] = abs(lc64 - l64)
    out["grad64"] = _worst_rel(gc64, g64)
    out["grad_batch"] = n
    return out
