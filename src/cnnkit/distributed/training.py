"""``fit(distributed=True)``: synchronous data parallelism for compile/fit.

Every rank runs the same epoch loop over the same seeded order; each global batch is split
round-robin and each rank computes its part. The gradients are averaged, weighted by sample
count, before the optimizer step, so N processes follow the weights of one process with the
same global batch (to float32 summation order). Rank 0 alone runs the callbacks (progress bar,
checkpoints, logs); what they decide (stop, a new learning rate, weights restored from a
backup) is broadcast so every rank stays in step."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .comm import init
from .gradients import GradientReducer, broadcast_arrays
from .optimizer import broadcast_parameters
from .sampler import split_batch

__all__ = ["FitSession", "broadcast_json"]


def broadcast_json(group: Any, obj: Any, root: int = 0) -> Any:
    """Rank ``root``'s JSON-able ``obj`` on every rank (bytes through ``Bcast``, no pickle)."""
    data = json.dumps(obj).encode() if group.rank == root else b""
    n = np.array([len(data)], np.int64)
    group.broadcast(n, root)
    buf = np.frombuffer(data, np.uint8).copy() if group.rank == root else np.empty(n[0],
                                                                                     np.uint8)
    group.broadcast(buf, root)
    return json.loads(buf.tobytes().decode())


def _metric_state(metric: Any) -> dict[str, Any]:
    """A metric's accumulated sums: its numeric attributes that are not configuration."""
    config = set(metric.get_config())
    return {k: v for k, v in vars(metric).items()
            if k not in config and k != "name" and not k.startswith("_")
            and isinstance(v, (int, float, np.ndarray, np.number)) and not isinstance(v, bool)}


class FitSession:
    """The distributed side of one ``fit`` call on ``model``."""

    def __init__(self, model: Any):
        self.model, self.group = model, init()
        self.rank, self.size = self.group.rank, self.group.size
        self.main = self.rank == 0
        self._reducer: GradientReducer | None = None
        self.loss_scale = 1.0
        broadcast_parameters(model, group=self.group)

    def local_batch(self, batch: tuple) -> tuple:
        """(xs, ys, sample_weight, rows) of this rank's part of a global batch."""
        xs, ys, sw, rows = batch
        pick = split_batch(np.arange(len(xs[0])), self.rank, self.size)
        # this rank's mean loss counts n_r / N of the global batch's; gradients are then
        # averaged over R ranks, so the loss is scaled by R n_r / N before backward
        self.loss_scale = self.size * len(pick) / len(xs[0])
        return ([a[pick] for a in xs], [a[pick] for a in ys],
                None if sw is None else sw[pick], None if rows is None else rows[pick])

    def scale_loss(self, loss: Any) -> Any:
        """The loss to differentiate: this rank's share of the global batch's mean loss, times
        R (undone by the averaging). With SyncBatchNormalization the gradients that cross
        ranks carry the same weights, so unequal shards stay exact."""
        return loss * self.loss_scale if self.loss_scale != 1.0 else loss

    def reduce(self, params: list[Any], n: int, loss: float) -> float:
        """Average the gradients over the ranks; the global mean loss (weighted by ``n``)."""
        if self._reducer is None or self._reducer.params != params:
            self._reducer = GradientReducer(self.group, params)
        return self._reducer.reduce(loss, float(n))  # NaN on one rank stops every rank

    def after_train_begin(self, model: Any) -> None:
        """Share rank 0's state after its callbacks ran (a BackupAndRestore may have resumed)."""
        resume = model.__dict__.get("_resume_epoch", 0) if self.main else 0
        resume = broadcast_json(self.group, {"resume": int(resume)})["resume"]
        if resume:
            model.__dict__["_resume_epoch"] = resume
            broadcast_parameters(model, group=self.group)
            self._share_optimizer(model.optimizer, model.trainable_weights)

    def _share_optimizer(self, opt: Any, params: list[Any]) -> None:
        state = opt.get_state() if self.main else {}
        keys = broadcast_json(self.group, sorted(state))
        meta = broadcast_json(self.group, {k: [list(np.shape(state[k])),
                                               str(np.asarray(state[k]).dtype)]
                                           for k in keys} if self.main else {})
        arrays = [np.array(state[k], order="C") if self.main
                  else np.empty(meta[k][0], meta[k][1]) for k in keys]
        broadcast_arrays(self.group, arrays)
        if not self.main and not opt._params:
            opt.build(params)
        opt.set_state(dict(zip(keys, arrays, strict=True)))

    def after_epoch(self, model: Any, logs: dict[str, float]) -> dict[str, float]:
        """Rank 0's decisions (stop, learning rate) and epoch logs on every rank."""
        opt = model.optimizer
        scheduled = callable(getattr(opt, "_lr", None))  # a schedule is the same on every rank
        mine = {"stop": bool(model.stop_training), "logs": logs,
                "lr": None if scheduled else float(opt.learning_rate)}
        theirs = broadcast_json(self.group, mine)
        model.stop_training = theirs["stop"]
        if theirs["lr"] is not None:
            opt.learning_rate = theirs["lr"]
        return theirs["logs"]

    def sync_metrics(self, model: Any) -> None:
        """Sum every metric's accumulated state over the ranks (epoch end)."""
        for objs in model.metric_objs:
            for m in objs:
                state = _metric_state(m)
                for k, v in state.items():
                    buf = np.array(v, dtype=np.float64, order="C", ndmin=1)
                    self.group.allreduce_sum(buf)
                    setattr(m, k, buf.reshape(v.shape).astype(v.dtype)
                            if isinstance(v, np.ndarray) else type(v)(buf.item()))

    def finish(self, model: Any) -> None:
        """Rank 0's final weights everywhere (EarlyStopping may have restored the best)."""
        broadcast_parameters(model, group=self.group)
