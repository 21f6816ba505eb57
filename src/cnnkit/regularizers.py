"""Weight penalties added to the training loss: l1 * sum|w| + l2 * sum w^2."""

from __future__ import annotations

from typing import Any

from . import ops
from .autograd import Tensor


class Regularizer:
    """Penalty(weight) -> scalar Tensor."""

    def __call__(self, w: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w^2)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w: Tensor) -> Tensor:
        total = None
        if self.l1:
            total = ops.sum(ops.abs(w)) * self.l1
        if self.l2:
            sq = ops.sum(ops.square(w)) * self.l2
            total = sq if total is None else total + sq
        return total if total is not None else ops.sum(w) * 0.0

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


def L1(l1: float = 0.01) -> L1L2:  # noqa: N802
    return L1L2(l1=l1)


def L2(l2: float = 0.01) -> L1L2:  # noqa: N802
    return L1L2(l2=l2)


l1, l2, l1_l2 = L1, L2, L1L2


def get(identifier: Any) -> Regularizer | None:
    """A regularizer from None, a name ("l1", "l2", "l1_l2"), a config dict or an instance."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        table = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01)}
        if identifier not in table:
            raise ValueError(f"unknown regularizer {identifier!r}; known: {sorted(table)}")
        return table[identifier]()
    if isinstance(identifier, dict):
        return L1L2(**identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise ValueError(f"cannot interpret {identifier!r} as a regularizer")


def serialize(reg: Any) -> Any:
    if reg is None:
        return None
    if isinstance(reg, L1L2):
        return {"class_name": "L1L2", "config": reg.get_config()}
    raise ValueError(f"cannot serialize regularizer {reg!r}")
