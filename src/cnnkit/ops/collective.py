"""Collective operations on the autograd graph, for layers that compute across processes."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import collective
from ._core import Tensor, floating, record

__all__ = ["allreduce_sum"]


def allreduce_sum(x: Any, group: Any = None) -> Tensor:
    """x summed over the processes of ``group`` (the registered one; identity with none).

    Backward: each process's loss reads the same total, so the gradient reaching x_r is the
    sum of every process's incoming gradient: allreduce of g."""
    a = floating(x, "x")
    out = collective.allreduce_sum(np.array(a.data, copy=True, order="C"), group)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (collective.allreduce_sum(np.array(g, copy=True, order="C"), group),)
    return record(out, (a,), backward, "allreduce_sum")
