"""Unstructured magnitude pruning: zero the smallest weights, keep them zero while training.

Only kernels are pruned (the ``kernel`` of convolutions and dense layers, and the depthwise and
pointwise kernels of separable ones); biases and normalisation parameters are few and matter
much. ``scope="layer"`` removes the same fraction from each kernel, ``"global"`` the smallest
|w| across all of them (exactly ``floor(s * n)`` values either way, ties broken by position).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...autograd import Tensor
from ...train.callbacks import Callback

KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")
SCOPES = ("layer", "global")


def prunable_weights(model: Any) -> list[Tensor]:
    """The kernels magnitude pruning acts on, in ``model.weights`` order."""
    return [w for w in model.weights
            if w.name.rsplit("/", 1)[-1] in KERNELS and w.ndim >= 2]


def _check_sparsity(sparsity: float) -> float:
    s = float(sparsity)
    if not math.isfinite(s) or not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity must lie in [0, 1), got {sparsity!r}")
    return s


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest values (stable: earlier positions first among ties)."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    return np.argsort(values, kind="stable")[:k]


def magnitude_masks(model: Any, sparsity: float, scope: str = "layer") -> dict[str, np.ndarray]:
    """Weight name -> boolean mask (True = kept) zeroing ``sparsity`` of the kernels."""
    s = _check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    ws = prunable_weights(model)
    masks = {w.name: np.ones(w.shape, dtype=bool) for w in ws}
    if scope == "layer":
        for w in ws:
            drop = _smallest(np.abs(w.data).reshape(-1), int(s * w.size))
            masks[w.name].reshape(-1)[drop] = False
        return masks
    flat = np.concatenate([np.abs(w.data).reshape(-1) for w in ws]) if ws else np.zeros(0)
    drop = _smallest(flat, int(s * flat.size))
    starts = np.cumsum([0] + [w.size for w in ws])
    for w, a, b in zip(ws, starts[:-1], starts[1:], strict=True):
        local = drop[(drop >= a) & (drop < b)] - a
        masks[w.name].reshape(-1)[local] = False
    return masks


def apply_masks(model: Any, masks: dict[str, np.ndarray]) -> None:
    """Zero every weight where its mask is False."""
    for w in prunable_weights(model):
        m = masks.get(w.name)
        if m is not None:
            w.data[~m] = 0


def prune_magnitude(model: Any, sparsity: float, scope: str = "layer") -> dict[str, np.ndarray]:
    """Zero ``sparsity`` of the kernels now; returns the masks."""
    masks = magnitude_masks(model, sparsity, scope)
    apply_masks(model, masks)
    return masks


def sparsity(model: Any) -> float:
    """Fraction of zeros among the prunable kernels' values."""
    ws = prunable_weights(model)
    total = sum(w.size for w in ws)
    return sum(int((w.data == 0).sum()) for w in ws) / total if total else 0.0


class ConstantSparsity:
    """``sparsity`` from ``begin_step`` on, masks recomputed every ``frequency`` steps."""

    def __init__(self, sparsity: float, begin_step: int = 0, frequency: int = 100):
        self.target = _check_sparsity(sparsity)
        self.begin_step, self.frequency = int(begin_step), max(1, int(frequency))

    def __call__(self, step: int) -> float | None:
        """The sparsity to prune to at ``step``, or None (no update at this step)."""
        due = step >= self.begin_step and (step - self.begin_step) % self.frequency == 0
        return self.target if due else None


class PolynomialDecay:
    """s_t = s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0))^power for t0 <= t <= t1 (Zhu and
    Gupta 2017), updated every ``frequency`` steps and at t1."""

    def __init__(self, initial_sparsity: float, final_sparsity: float, begin_step: int,
                 end_step: int, power: float = 3.0, frequency: int = 100):
        self.initial = _check_sparsity(initial_sparsity)
        self.final = _check_sparsity(final_sparsity)
        if int(end_step) <= int(begin_step):
            raise ValueError(f"end_step ({end_step}) must be after begin_step ({begin_step})")
        self.begin_step, self.end_step = int(begin_step), int(end_step)
        self.power, self.frequency = float(power), max(1, int(frequency))

    def __call__(self, step: int) -> float | None:
        if step < self.begin_step or step > self.end_step:
            return None
        if (step - self.begin_step) % self.frequency and step != self.end_step:
            return None
        frac = (step - self.begin_step) / (self.end_step - self.begin_step)
        return self.final + (self.initial - self.final) * (1.0 - frac) ** self.power


class MagnitudePruning(Callback):
    """Prune during ``fit`` by ``schedule(step)`` (a float for a fixed sparsity) and re-apply
    the masks after every optimizer step, so pruned weights stay exactly zero."""

    def __init__(self, schedule: Any, scope: str = "layer"):
        super().__init__()
        if not callable(schedule):
            schedule = ConstantSparsity(_check_sparsity(schedule), 0, 10**12)
        if scope not in SCOPES:
            raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
        self.schedule, self.scope = schedule, scope
        self.step = 0
        self.masks: dict[str, np.ndarray] | None = None

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        s = self.schedule(self.step)
        if s is not None:
            self.masks = magnitude_masks(self.model, s, self.scope)
        if self.masks is not None:
            apply_masks(self.model, self.masks)

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.masks is not None:
            apply_masks(self.model, self.masks)
        self.step += 1
