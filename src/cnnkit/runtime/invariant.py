"""Batch-invariant steps: each sample's result the same whatever else is in the batch.

A BLAS GEMM does not give row i of ``A @ W`` bit for bit the same for every number of rows
M: OpenBLAS runs the last ``M mod unroll`` rows through other micro-kernels (another order
of additions), and a one-row product is a GEMV. A convolution's algorithm may also depend
on the batch size (Winograd from 8 images on narrow maps). A server that stacks requests
into one batch must not let that change an answer, so :func:`batch_invariant` rebuilds a
scheduled plan where

- steps that compute each value from one sample by exactly rounded elementwise operations
  (views, zero padding, pooling, batch-norm affines, piecewise-linear activations,
  :class:`~.steps.Elementwise` steps such as a Rescaling layer) run on
  the whole batch as they are;
- a convolution runs on the whole batch when the C kernels take it with the same plan
  (direct or Winograd) at batch 1 and at batch N, since they compute every output pixel from
  its own window in a fixed order;
- a dense layer runs on the whole batch through the C helper ``_dense``
  (``kernels.linear.dense_rows``), which sums every row alike whatever the batch size and
  also computes the dense layers of a one-sample prediction;
- every other step (dense layers, GEMM convolutions, a layer's own ``call``) runs once per
  sample, on a one-sample slice: exactly what predicting that sample alone computes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from . import compute, steps

Fn = Callable[[Any], Any]


def _row_local(step: Any) -> bool:
    """Whether ``step`` computes each sample alone with exactly rounded elementwise maths."""
    act = getattr(step, "act", None)
    if act is not None and not act.in_place:
        return False  # exp/tanh kernels may treat a vector's tail differently
    if isinstance(step, (steps.Identity, steps.View, steps.ZeroPad, steps.Pool,
                         steps.Elementwise)):
        return True
    return isinstance(step, (steps.ChannelAffine, steps.Activate))


def per_sample(fn: Fn) -> Fn:
    """``fn`` applied to one-sample slices of its input (or of each input of a list), the
    results stacked back along the batch axis."""
    def run(x: Any) -> Any:
        first = x[0] if isinstance(x, list) else x
        n = len(first)
        if n <= 1:
            return fn(x)
        outs = [fn([a[i:i + 1] for a in x] if isinstance(x, list) else x[i:i + 1])
                for i in range(n)]
        if isinstance(outs[0], list):
            return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]
        return np.concatenate(outs)

    return run


def _conv(step: Any, fn: Fn) -> Fn:
    """The convolution on the whole batch where the C kernels run it as at batch 1, else per
    sample."""
    alone = per_sample(fn)

    def run(x: Any) -> Any:
        if isinstance(x, np.ndarray) and len(x) > 1 and \
                compute.conv_batch_invariant(step.layer, step.depthwise, step.affine,
                                             step.extra_pads, x):
            return fn(x)
        return alone(x)

    return run


def _dense(step: Any, fn: Fn) -> Fn:
    """The dense layer on the whole batch through the row-invariant product, else per
    sample."""
    alone = per_sample(fn)
    rows = compute.dense_fn(step.layer, step.affine, step.act, rows=True)

    def run(x: Any) -> Any:
        if isinstance(x, np.ndarray) and len(x) > 1 and \
                compute.dense_rows_apply(step.layer, step.affine, x):
            return rows(x)
        return alone(x)

    return run


def invariant_fn(step: Any, fn: Fn) -> Fn:
    """``fn`` (built from ``step``) made batch-invariant (see the module docstring)."""
    if _row_local(step):
        return fn
    act = getattr(step, "act", None)
    if isinstance(step, steps.Conv) and (act is None or act.in_place):
        return _conv(step, fn)
    if isinstance(step, steps.Dense) and (act is None or act.in_place):
        return _dense(step, fn)
    return per_sample(fn)


def batch_invariant(built: list[Any]) -> list[Any]:
    """The scheduled steps (``plan.ScheduledStep``) with batch-invariant functions."""
    return [replace(s, fn=invariant_fn(s.step, s.fn)) for s in built]
