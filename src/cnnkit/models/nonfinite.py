"""Guards against NaN / Inf in training: one bad sample must not silently turn every weight NaN.

Three checks, each cheap on the good path:

* the training arrays, once per ``fit`` (``check_finite_data``): sum(a) is finite for finite
  a unless the sum overflows, so one reduction per array, and a per-sample pass only when
  that sum is not finite;
* the loss of every step (one float);
* the gradients of every step, before the optimizer touches a weight (``first_nonfinite_grad``:
  the same sum test per gradient).

A training forward pass updates BatchNormalization's moving statistics in place, so a step
takes a copy of those few arrays first (``MovingState``) and puts them back when it is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ON_NONFINITE = ("raise", "skip", "stop")


class NonFiniteError(FloatingPointError, ValueError):
    """A NaN or infinite value in the training data, a loss or a gradient.

    A FloatingPointError (numerics) and a ValueError (bad input). ``epoch`` and ``batch`` say
    where (None outside ``fit``), ``samples`` lists the offending samples (indices into the
    data set for arrays, positions in the batch for a batch iterator), ``loss`` is the value.
    """

    def __init__(self, message: str, epoch: int | None = None, batch: int | None = None,
                 samples: list[int] | None = None, loss: float | None = None):
        super().__init__(message)
        self.epoch, self.batch, self.samples, self.loss = epoch, batch, samples or [], loss


def _all_finite(a: np.ndarray) -> bool:
    """True when a has no NaN or Inf (ints and bools always); one reduction on the good path."""
    if not np.issubdtype(a.dtype, np.inexact) or a.size == 0 or np.isfinite(a.sum()):
        return True
    return bool(np.isfinite(a).all())  # a finite a whose sum overflowed gets here too


def nonfinite_rows(arrays: list[np.ndarray]) -> np.ndarray:
    """Indices along axis 0 where any of ``arrays`` holds a NaN or Inf, ascending."""
    bad = np.zeros(len(arrays[0]) if arrays else 0, dtype=bool)
    for a in arrays:
        if np.issubdtype(a.dtype, np.inexact) and a.ndim:
            bad |= ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    return np.flatnonzero(bad)


def check_finite_data(named: dict[str, np.ndarray]) -> None:
    """Raise NonFiniteError naming the array and its first samples holding a NaN or Inf."""
    for name, a in named.items():
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is rechecked
            if _all_finite(a):
                continue
        rows = nonfinite_rows([a])
        shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        raise NonFiniteError(
            f"fit(): {name} holds NaN or Inf in {len(rows)} sample(s) (index {shown}); a "
            f"finite array was expected. Clean the data, or pass on_nonfinite='skip' to drop "
            f"the batches they fall in", samples=[int(r) for r in rows])


def first_nonfinite_grad(params: list[Any]) -> str | None:
    """The name of the first weight whose gradient holds a NaN or Inf, else None."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is rechecked
        for i, p in enumerate(params):
            if p.grad is not None and not _all_finite(p.grad):
                return p.name or f"trainable weight {i}"
    return None


def _mutable_weights(layer: Any, out: dict[int, Any]) -> None:
    # a frozen layer runs in inference mode (its moving statistics do not move): not copied
    if not getattr(layer, "trainable", True):
        return
    flags = getattr(layer, "_weight_trainable", [])
    for w, trainable in zip(getattr(layer, "_own_weights", []), flags, strict=True):
        if not trainable:
            out.setdefault(id(w), w)
    for sub in layer._sublayers():
        _mutable_weights(sub, out)


def moving_weights(model: Any) -> list[Any]:
    """The non-trainable weights of the model's trainable layers (BatchNormalization's moving
    statistics): those a training forward pass may change in place."""
    found: dict[int, Any] = {}
    _mutable_weights(model, found)
    return list(found.values())


class MovingState:
    """A copy of ``weights`` (see ``moving_weights``), to put back when a step is refused."""

    def __init__(self, weights: list[Any]):
        self._saved = [(w, w.data.copy()) for w in weights]

    def restore(self) -> None:
        for w, data in self._saved:
            w.data[...] = data


def describe_step(loss: float, bad_grad: str | None) -> str:
    """'the loss is nan' or 'the gradient of dense/kernel holds NaN or Inf (the loss is 2.3)'."""
    if not np.isfinite(loss):
        return f"the loss is {loss}"
    return f"the gradient of {bad_grad} holds NaN or Inf (the loss is {loss:.6g})"


def step_error(where: str, err: NonFiniteError, batch: tuple, rows: np.ndarray | None,
               epoch: int | None = None, step: int | None = None) -> NonFiniteError:
    """``err`` (from one training step) located: where, which batch, which samples.

    ``batch`` is (xs, ys, sample_weight); ``rows`` the batch's indices in the data set (None:
    positions in the batch are reported).
    """
    xs, ys, sw = batch
    pos = nonfinite_rows(list(xs) + list(ys) + ([] if sw is None else [np.asarray(sw)]))
    samples = [int(i) for i in (pos if rows is None else np.asarray(rows)[pos])]
    at = "" if epoch is None else f" at epoch index {epoch}, batch index {step}"
    if samples:
        kind = "positions in the batch" if rows is None else "indices in the training data"
        shown = ", ".join(map(str, samples[:5])) + (", ..." if len(samples) > 5 else "")
        cause = f"sample(s) {shown} ({kind}) hold NaN or Inf in x, y or sample_weight"
    else:
        cause = ("no input, target or sample weight is NaN or Inf, so the model diverged "
                 "(try a lower learning rate or gradient clipping)")
    return NonFiniteError(f"{where}{at}: {err}; {cause}", epoch, step, samples, err.loss)
