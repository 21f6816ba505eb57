"""compile / fit / evaluate / train_on_batch / test_on_batch for models (Keras API).

One training step: out = model(x, training=True); L = loss(y, out) + sum(regularisation);
L.backward(); optimizer.step(trainable weights), refused (NonFiniteError, no weight changed)
when L or a gradient is NaN / Inf. ``fit`` is an EpochIterator (fit_data.py: the data, split
and batches) driven by an EpochLoop (trainer.py: seeding, callbacks, the non-finite policy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import random as crandom
from ..autograd import Tensor, no_grad
from .fit_data import EpochIterator, index_batches
from .fit_data import as_array_list as _as_array_list
from .fit_data import float_inputs as _float_inputs
from .fit_data import is_batch_iterator as _is_batch_iterator
from .nonfinite import (
    MovingState,
    NonFiniteError,
    check_finite_data,
    describe_step,
    first_nonfinite_grad,
    moving_weights,
    step_error,
)
from .trainer import EpochLoop, nonfinite_mode


class TrainingMixin:
    """Keras-style training for :class:`~cnnkit.models.Model`."""

    def _init_training(self) -> None:
        self.optimizer = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self.seed = int(crandom.get_rng().integers(2**31 - 1))
        self._compile_config: dict | None = None

    # ----- compile -----------------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                loss_weights: Any = None, run_eagerly: bool | None = None,
                seed: int | None = None) -> None:
        """Set the optimizer, loss(es), metrics and loss weights for several outputs."""
        from ..train import losses as losses_mod
        from ..train import optimizers as opt_mod

        self.optimizer = opt_mod.get(optimizer)
        n_out = len(self._outputs) if getattr(self, "_functional", False) else 1
        out_names = self._output_names()
        if isinstance(loss, dict):
            missing = [k for k in loss if k not in out_names]
            if missing:
                raise ValueError(f"loss given for unknown outputs {missing}; outputs are "
                                 f"{out_names}")
            loss = [loss.get(n) for n in out_names]
        if isinstance(loss, (list, tuple)):
            if len(loss) != n_out:
                raise ValueError(f"model has {n_out} outputs but {len(loss)} losses were given")
            self.loss_fns = [losses_mod.get(lo) if lo is not None else None for lo in loss]
        else:
            if loss is None:
                raise ValueError("compile() needs a loss, e.g. "
                                 "loss='sparse_categorical_crossentropy'")
            self.loss_fns = [losses_mod.get(loss)] * n_out
        if isinstance(loss_weights, dict):
            loss_weights = [loss_weights.get(n, 1.0) for n in out_names]
        self.loss_weights = list(loss_weights) if loss_weights is not None else [1.0] * n_out
        if len(self.loss_weights) != n_out:
            raise ValueError(f"model has {n_out} outputs but {len(self.loss_weights)} loss "
                             f"weights were given")
        self._metric_specs = metrics
        self._build_metrics()
        if seed is not None:
            self.seed = int(seed)
        self.compiled = True
        try:
            loss_cfg = [losses_mod.serialize(lf) if lf is not None else None
                        for lf in self.loss_fns]
        except (ValueError, TypeError, AttributeError):
            loss_cfg = None  # a custom callable: the model file loads uncompiled
        self._compile_config = None if loss_cfg is None else {
            "optimizer": self.optimizer.get_config(),
            "loss": loss_cfg,
            "metrics": metrics if isinstance(metrics, (list, dict, type(None))) else None,
            "loss_weights": self.loss_weights,
        }

    def _output_names(self) -> list[str]:
        if getattr(self, "_functional", False) and not self._single_output:
            return [t.node.layer.name for t in self._outputs]
        return ["output"]

    def _build_metrics(self) -> None:
        from ..train import metrics as metrics_mod

        names = self._output_names()
        specs = self._metric_specs
        per_output: list[list[Any]] = [[] for _ in names]
        if isinstance(specs, dict):
            for i, n in enumerate(names):
                v = specs.get(n, [])
                per_output[i] = list(v) if isinstance(v, (list, tuple)) else [v]
        elif specs:
            specs = list(specs) if isinstance(specs, (list, tuple)) else [specs]
            if len(names) > 1 and specs and isinstance(specs[0], (list, tuple)):
                per_output = [list(s) for s in specs]
            else:
                per_output = [list(specs) for _ in names]
        self.metric_objs: list[list[Any]] = []
        for i, specs_i in enumerate(per_output):
            objs = []
            for s in specs_i:
                m = metrics_mod.get(s)
                if len(names) > 1:
                    m.name = f"{names[i]}_{m.name}"
                objs.append(m)
            self.metric_objs.append(objs)

    def _require_compiled(self, what: str) -> None:
        if not getattr(self, "compiled", False):
            raise RuntimeError(f"call compile(optimizer, loss, metrics) before {what}()")

    # ----- one step ----------------------------------------------------------------------
    def _split_outputs(self, out: Any) -> list[Tensor]:
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def _compute_loss(self, ys: list[np.ndarray], outs: list[Tensor],
                      sample_weight: np.ndarray | None) -> Tensor:
        total: Tensor | None = None
        for y, o, lf, w in zip(ys, outs, self.loss_fns, self.loss_weights, strict=True):
            if lf is None:
                continue
            term = lf(y, o, sample_weight=sample_weight) if sample_weight is not None \
                else lf(y, o)
            term = term * float(w) if w != 1.0 else term
            total = term if total is None else total + term
        for reg in self.losses:
            total = reg if total is None else total + reg
        assert total is not None
        return total

    def _check_batch(self, xs: list[np.ndarray], ys: list[np.ndarray] | None) -> None:
        n = len(xs[0])
        for i, a in enumerate(xs):
            if len(a) != n:
                raise ValueError(f"input arrays have different lengths: input 0 has {n} "
                                 f"samples, input {i} has {len(a)}")
        if ys is not None:
            for i, a in enumerate(ys):
                if len(a) != n:
                    raise ValueError(f"x and y have different lengths: x has {n} samples, "
                                     f"y{'' if len(ys) == 1 else f'[{i}]'} has {len(a)}")

    def _model_input(self, xs: list[np.ndarray]) -> Any:
        xs = _float_inputs(xs, self.dtype)
        return xs[0] if len(xs) == 1 else xs

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None,
                       class_weight: dict | None = None, reset_metrics: bool = True
                       ) -> dict[str, float]:
        """One gradient step on one batch; returns the loss and metrics of that batch."""
        self._require_compiled("train_on_batch")
        if reset_metrics:
            self._reset_metrics()
        xs, ys = _as_array_list(x), _as_array_list(y)
        self._check_batch(xs, ys)
        sw = self._sample_weights(ys, sample_weight, class_weight)
        try:
            return self._train_step(xs, ys, sw)
        except NonFiniteError as err:
            raise step_error("train_on_batch()", err, (xs, ys, sw), None) from None

    def _sample_weights(self, ys: list[np.ndarray], sample_weight: Any,
                        class_weight: dict | None) -> np.ndarray | None:
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=self.dtype)
        if class_weight:
            y = ys[0]
            labels = y.argmax(-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y))
            cw = np.array([class_weight.get(int(c), 1.0) for c in labels], dtype=self.dtype)
            sw = cw if sw is None else sw * cw
        return sw

    def _train_step(self, xs: list[np.ndarray], ys: list[np.ndarray], sw: np.ndarray | None,
                    moving: list[Tensor] | None = None) -> dict[str, float]:
        """One optimizer step. A NaN / Inf loss or gradient raises NonFiniteError before the
        step, with every weight as it was: ``moving`` (default ``moving_weights(self)``) are
        the weights the forward pass changes in place, copied first."""
        params = self.trainable_weights
        for p in params:
            p.grad = None
        saved = MovingState(moving_weights(self) if moving is None else moving)
        out = self(self._model_input(xs), training=True)
        outs = self._split_outputs(out)
        loss = self._compute_loss(ys, outs, sw)
        value = float(loss.data)
        session = self.__dict__.get("_fit_session")
        if math.isfinite(value):
            (loss if session is None else session.scale_loss(loss)).backward()
        if session is not None:  # gradients averaged over the ranks; the loss is the global one
            value = session.reduce(params, len(xs[0]), value)
        bad_grad = first_nonfinite_grad(params) if math.isfinite(value) else None
        if not math.isfinite(value) or bad_grad is not None:
            saved.restore()
            raise NonFiniteError(f"{describe_step(value, bad_grad)}; no weight was updated",
                                 loss=value)
        self.optimizer.step(params)
        logs = {"loss": value}
        self._update_metrics(ys, outs, sw)
        logs.update(self._metric_results())
        return logs

    def _update_metrics(self, ys: list[np.ndarray], outs: list[Tensor],
                        sw: np.ndarray | None) -> None:
        for y, o, objs in zip(ys, outs, self.metric_objs, strict=True):
            for m in objs:
                m.update_state(y, o.data, sample_weight=sw)

    def _metric_results(self) -> dict[str, float]:
        return {m.name: float(m.result()) for objs in self.metric_objs for m in objs}

    def _reset_metrics(self) -> None:
        for objs in self.metric_objs:
            for m in objs:
                m.reset_state()

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None,
                      reset_metrics: bool = True) -> dict[str, float]:
        """Loss and metrics on one batch, without updating weights."""
        self._require_compiled("test_on_batch")
        if reset_metrics:
            self._reset_metrics()
        xs, ys = _as_array_list(x), _as_array_list(y)
        self._check_batch(xs, ys)
        return self._test_step(xs, ys, self._sample_weights(ys, sample_weight, None))

    def _test_step(self, xs: list[np.ndarray], ys: list[np.ndarray],
                   sw: np.ndarray | None) -> dict[str, float]:
        with no_grad():
            outs = self._split_outputs(self(self._model_input(xs), training=False))
            loss = self._compute_loss(ys, outs, sw)
        self._update_metrics(ys, outs, sw)
        return {"loss": float(loss.data), **self._metric_results()}

    # ----- batching ----------------------------------------------------------------------
    @staticmethod
    def _batches(n: int, batch_size: int, order: np.ndarray | None = None):
        return index_batches(n, batch_size, order)

    # ----- fit ---------------------------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: Any = "auto", callbacks: Sequence[Any] | None = None,
            validation_split: float = 0.0, validation_data: Any = None, shuffle: bool = True,
            class_weight: dict | None = None, sample_weight: Any = None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_batch_size: int | None = None, validation_freq: int = 1,
            on_nonfinite: str | None = None, distributed: bool = False) -> Any:
        """Train for ``epochs`` epochs; returns a History whose ``.history`` maps each loss and
        metric name (and ``val_`` ones) to its value per epoch.

        ``on_nonfinite`` (not in Keras): what a NaN / Inf loss or gradient does. No weight is
        ever updated from it. "raise" (the default) raises NonFiniteError naming the epoch,
        batch and samples, and checks the training arrays once up front; "skip" drops such
        batches with a warning and counts them in the logs (``skipped_batches``); "stop" logs
        the non-finite loss and ends training (the default when a TerminateOnNaN is given).

        ``distributed`` (launched with ``mpirun``): synchronous data parallelism over MPI, see
        :mod:`cnnkit.distributed.training`; ``batch_size`` is the global batch.
        """
        self._require_compiled("fit")
        data = EpochIterator(self, x, y, batch_size, sample_weight, class_weight,
                             validation_split, validation_data, shuffle, steps_per_epoch)
        mode = nonfinite_mode(on_nonfinite, callbacks)
        if mode == "raise" and data.source is None:
            check_finite_data(data.named_arrays())
        session = self._fit_session(distributed, data)
        main = session is None or session.main
        cblist, history = self._fit_callbacks(callbacks if main else None,
                                              verbose if main else 0, epochs, data)
        loop = EpochLoop(self, data, cblist, mode, validation_batch_size, validation_freq,
                         session)
        self.stop_training = False
        try:
            cblist.on_train_begin({})
            if session is not None:
                session.after_train_begin(self)
            # a BackupAndRestore callback that found a backup says where to resume
            initial_epoch = max(initial_epoch, self.__dict__.pop("_resume_epoch", initial_epoch))
            logs: dict[str, float] = {}
            for epoch in range(initial_epoch, epochs):
                logs = loop.run_epoch(epoch, logs)
                if self.stop_training:
                    break
            cblist.on_train_end(logs)
        finally:
            self.__dict__.pop("_fit_session", None)
        if session is not None:
            session.finish(self)
        self.history = history
        return history

    def _fit_session(self, distributed: bool, data: EpochIterator) -> Any:
        """The MPI side of a distributed fit (None for one process)."""
        if not distributed:
            return None
        from ..distributed.training import FitSession

        session = FitSession(self)
        # a batch iterator must yield the same (seeded) batches on every rank: each takes its part
        if data.source is None and data.batch_size < session.size:
            raise ValueError(f"fit(distributed=True): batch_size ({data.batch_size}) is the "
                             f"global batch and must be at least the number of processes "
                             f"({session.size})")
        self.__dict__["_fit_session"] = session
        return session

    def _fit_callbacks(self, callbacks: Sequence[Any] | None, verbose: Any, epochs: int,
                       data: EpochIterator) -> tuple[Any, Any]:
        """The CallbackList of one fit (the user's, a progress bar, History) and the History."""
        from ..train import callbacks as cb_mod

        verbose = 1 if verbose == "auto" else int(verbose)
        history = cb_mod.History()
        cbs = list(callbacks or [])
        if verbose:
            cbs.append(cb_mod.ProgbarLogger())
        cbs.append(history)
        cblist = cb_mod.CallbackList(cbs, model=self)
        cblist.set_params({"epochs": epochs, "steps": data.steps, "verbose": verbose,
                           "batch_size": data.batch_size})
        return cblist, history

    def _unpack_batch(self, batch: Any) -> tuple[list, list, Any]:
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError(f"a batch iterator must yield (x, y) or (x, y, sample_weight), "
                             f"got {type(batch).__name__}")
        xs, ys = _as_array_list(batch[0]), _as_array_list(batch[1])
        self._check_batch(xs, ys)
        sw = np.asarray(batch[2], dtype=self.dtype) if len(batch) == 3 else None
        return xs, ys, sw

    def _evaluate_data(self, data: Any, batch_size: int) -> dict[str, float]:
        if _is_batch_iterator(data):
            return self.evaluate(data, verbose=0, return_dict=True)
        if not isinstance(data, (list, tuple)) or len(data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, "
                             "sample_weight)")
        sw = data[2] if len(data) == 3 else None
        return self.evaluate(data[0], data[1], batch_size=batch_size, sample_weight=sw,
                             verbose=0, return_dict=True)

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None,
                 verbose: Any = "auto", sample_weight: Any = None, return_dict: bool = False,
                 callbacks: Any = None) -> Any:
        """Loss and metrics over the whole data set (sample-weighted mean of batch losses)."""
        self._require_compiled("evaluate")
        batch_size = batch_size or 32
        self._reset_metrics()
        total, count = 0.0, 0
        if _is_batch_iterator(x):
            batches = (self._unpack_batch(b) for b in x)
        else:
            xs, ys = _as_array_list(x), _as_array_list(y)
            self._check_batch(xs, ys)
            sw_all = None if sample_weight is None else np.asarray(sample_weight,
                                                                   dtype=self.dtype)
            batches = (([a[i] for a in xs], [a[i] for a in ys],
                        None if sw_all is None else sw_all[i])
                       for i in self._batches(len(xs[0]), batch_size))
        logs: dict[str, float] = {}
        for bx, by, bsw in batches:
            logs = self._test_step(bx, by, bsw)
            k = len(bx[0])
            total += logs["loss"] * k
            count += k
        logs["loss"] = total / max(count, 1)
        if verbose not in (0, "auto") and verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values
