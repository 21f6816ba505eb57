"""The epoch loop of ``fit``: seed, batches, guarded steps, callbacks, validation.

Each epoch seeds ``cnnkit.random`` with (model seed, epoch), so shuffling and dropout of a run
resumed at epoch k repeat the uninterrupted run. A step whose loss or gradient is NaN / Inf
changes no weight; ``on_nonfinite`` says what happens next:

* ``"raise"``: NonFiniteError naming the epoch, batch and offending samples;
* ``"skip"``: a RuntimeWarning, the batch is dropped (not in the running loss or metrics) and
  the epoch's logs count ``skipped_batches``;
* ``"stop"``: a RuntimeWarning, the batch's non-finite loss goes into the logs (so History and
  TerminateOnNaN see it) and training stops after the epoch's callbacks (Keras' TerminateOnNaN
  behaviour, without the NaN weights).
"""

from __future__ import annotations

import warnings
from typing import Any

from .. import random as crandom
from .fit_data import EpochIterator
from .nonfinite import ON_NONFINITE, NonFiniteError, moving_weights, step_error


def nonfinite_mode(on_nonfinite: str | None, callbacks: Any) -> str:
    """The mode asked for; by default "stop" when a TerminateOnNaN callback is given (the
    user chose how to end a NaN run), else "raise"."""
    from ..train.callbacks import TerminateOnNaN

    if on_nonfinite is None:
        given = any(isinstance(c, TerminateOnNaN) for c in callbacks or [])
        return "stop" if given else "raise"
    if on_nonfinite not in ON_NONFINITE:
        raise ValueError(f"on_nonfinite must be one of {', '.join(map(repr, ON_NONFINITE))} "
                         f"or None, got {on_nonfinite!r}")
    return on_nonfinite


class EpochLoop:
    """Runs the epochs of one ``fit`` call over ``data`` with callbacks ``cblist``."""

    def __init__(self, model: Any, data: EpochIterator, cblist: Any, mode: str,
                 validation_batch_size: int | None, validation_freq: int,
                 session: Any = None):
        self.model, self.data, self.cblist, self.mode = model, data, cblist, mode
        self.session = session  # a distributed.FitSession, or None
        self.validation_batch_size = validation_batch_size or data.batch_size
        self.validation_freq = validation_freq
        self.moving: list[Any] = []

    def run_epoch(self, epoch: int, logs: dict[str, float]) -> dict[str, float]:
        """Train one epoch; returns the last batch's logs (running loss, metrics)."""
        model, cbl = self.model, self.cblist
        crandom.seed([model.seed, epoch])
        model._reset_metrics()
        cbl.on_epoch_begin(epoch, {})
        loss_sum, seen, skipped = 0.0, 0, 0
        self.moving = moving_weights(model)  # once an epoch: callbacks may freeze layers
        for step, batch in self.data.epoch():
            if self.session is not None:
                if len(batch[0][0]) < self.session.size:
                    continue  # a last batch smaller than the process count is left out
                batch = self.session.local_batch(batch)
            bx, by, bsw, rows = batch
            cbl.on_train_batch_begin(step, {})
            batch_logs = self._step(epoch, step, (bx, by, bsw), rows)
            if batch_logs is None:
                skipped += 1
            else:
                k = len(bx[0])
                loss_sum, seen = loss_sum + batch_logs["loss"] * k, seen + k
                logs = {**batch_logs, "loss": loss_sum / seen}  # running mean, as Keras shows
            if self.mode == "skip":
                logs = {**logs, "skipped_batches": skipped}
            cbl.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        self._end_epoch(epoch, logs)
        return logs

    def _step(self, epoch: int, step: int, batch: tuple, rows: Any) -> dict[str, float] | None:
        """The step's logs; None when the batch was skipped."""
        model = self.model
        try:
            return model._train_step(*batch, moving=self.moving)
        except NonFiniteError as err:
            located = step_error("fit()", err, batch, rows, epoch, step)
            if self.mode == "raise":
                raise located from None
            if self.mode == "skip":
                warnings.warn(f"{located}; the batch was skipped", RuntimeWarning, stacklevel=4)
                return None
            warnings.warn(f"{located}; training stops", RuntimeWarning, stacklevel=4)
            model.stop_training = True
            return {"loss": err.loss, **model._metric_results()}

    def _end_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        epoch_logs = dict(logs)
        session = self.session
        if session is not None:  # metrics over every rank's samples; rank 0 validates
            session.sync_metrics(self.model)
            epoch_logs.update(self.model._metric_results())
        val_data = self.data.validation_data
        main = session is None or session.main
        if main and val_data is not None and (epoch + 1) % self.validation_freq == 0:
            val = self.model._evaluate_data(val_data, self.validation_batch_size)
            epoch_logs.update({f"val_{k}": v for k, v in val.items()})
        if main:
            self.cblist.on_epoch_end(epoch, epoch_logs)
        if session is not None:
            epoch_logs = session.after_epoch(self.model, epoch_logs)
            if not main:
                self.cblist.on_epoch_end(epoch, epoch_logs)
