"""One-cycle, reduce-on-plateau, sequential and chained schedulers (PyTorch semantics)."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from .lr_scheduler_base import LRScheduler, check_int, format_param, groups_of

__all__ = ["OneCycleLR", "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler"]


def _anneal_cos(start: float, end: float, pct: float) -> float:
    """``end + (start - end) / 2 * (1 + cos(pi * pct))``."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start: float, end: float, pct: float) -> float:
    """``start + (end - start) * pct``."""
    return (end - start) * pct + start


def _one_cycle_phases(total: int, pct_start: float, three_phase: bool) -> list[tuple]:
    """``(end_step, start_lr, end_lr, start_momentum, end_momentum)`` per phase (group keys)."""
    up = float(pct_start * total) - 1
    if three_phase:
        return [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * total) - 2, "max_lr", "initial_lr", "base_momentum",
                 "max_momentum"),
                (total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
    return [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
            (total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]


class OneCycleLR(LRScheduler):
    """The 1cycle policy: from ``max_lr / div_factor`` up to ``max_lr`` over ``pct_start`` of
    ``total_steps`` (or ``epochs * steps_per_epoch``), then down to
    ``max_lr / div_factor / final_div_factor``, annealed by cosine or linearly.

    With ``cycle_momentum`` the momentum (SGD/RMSprop ``momentum``, Adam ``beta_1``) moves
    the other way between ``base_momentum`` and ``max_momentum``.
    """

    def __init__(self, optimizer: Any, max_lr: float | list[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float | list[float] = 0.85,
                 max_momentum: float | list[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1):
        if total_steps is not None:
            self.total_steps = check_int("OneCycleLR", "total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (check_int("OneCycleLR", "epochs", epochs, 1)
                                * check_int("OneCycleLR", "steps_per_epoch", steps_per_epoch, 1))
        else:
            raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR expects 0 <= pct_start <= 1, got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR expects anneal_strategy 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self._phases = _one_cycle_phases(self.total_steps, float(pct_start), bool(three_phase))
        groups = groups_of(optimizer, "OneCycleLR")
        if last_epoch == -1:
            for group, top in zip(groups, format_param("max_lr", groups, max_lr), strict=True):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            self._init_momentum(groups, base_momentum, max_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)

    def _init_momentum(self, groups: list[Any], base: Any, top: Any, last_epoch: int) -> None:
        if not all("momentum" in g or "betas" in g for g in groups):
            raise ValueError("OneCycleLR with cycle_momentum=True needs an optimizer with "
                             "momentum (SGD, RMSprop) or beta_1 (Adam family); pass "
                             "cycle_momentum=False otherwise")
        self.use_beta1 = "betas" in groups[0]
        if last_epoch != -1:
            return
        tops, bases = format_param("max_momentum", groups, top), format_param(
            "base_momentum", groups, base)
        for group, m_top, m_base in zip(groups, tops, bases, strict=True):
            self._set_momentum(group, m_top)
            group["max_momentum"], group["base_momentum"] = m_top, m_base

    def _set_momentum(self, group: Any, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *tuple(group["betas"])[1:])
        else:
            group["momentum"] = value

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times, but total_steps is "
                             f"{self.total_steps}")
        anneal = _anneal_cos if self.anneal_strategy == "cos" else _anneal_linear
        lrs = []
        for group in self._groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
                if step <= end or i == len(self._phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, anneal(group[m0], group[m1], pct))
                    break
                start = end
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by ``factor`` (not below ``min_lr``) once the metric given to
    ``step(metric)`` has not improved for more than ``patience`` steps.

    Improvement in ``mode="min"``: ``a < best * (1 - threshold)`` ("rel") or
    ``a < best - threshold`` ("abs"); mirrored for "max". After a cut, ``cooldown`` steps are
    ignored. Changes smaller than ``eps`` are skipped. ``verbose=True`` (removed from recent
    PyTorch, kept here for older code) prints each reduction.
    """

    def __init__(self, optimizer: Any, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | list[float] = 0, eps: float = 1e-8,
                 verbose: bool = False):
        if not factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau expects factor < 1, got {factor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau expects mode 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau expects threshold_mode 'rel' or 'abs', got "
                             f"{threshold_mode!r}")
        groups = groups_of(optimizer, "ReduceLROnPlateau")
        self.optimizer = optimizer
        self.factor, self.mode = float(factor), mode
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.min_lrs = [float(v) for v in format_param("min_lr", groups, min_lr)]
        self.patience = check_int("ReduceLROnPlateau", "patience", patience, 0)
        self.cooldown = check_int("ReduceLROnPlateau", "cooldown", cooldown, 0)
        self.eps, self.verbose = float(eps), bool(verbose)
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = self._group_lrs()
        self.best, self.cooldown_counter, self.num_bad_epochs = self.mode_worse, 0, 0

    def is_better(self, a: float, best: float) -> bool:
        """Whether metric ``a`` improves on ``best`` by more than the threshold."""
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                        else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                    else best + self.threshold)

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record one value of the monitored metric (e.g. the validation loss)."""
        current = float(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._group_lrs()

    def _reduce_lr(self) -> None:
        for i, (group, floor) in enumerate(zip(self._groups, self.min_lrs, strict=True)):
            old = float(group["lr"])
            new = max(old * self.factor, floor)
            if old - new > self.eps:
                group["lr"] = new
                if self.verbose:
                    print(f"Epoch {self.last_epoch}: reducing learning rate of group {i} to "
                          f"{new:.4e}.")

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0


def _check_children(who: str, optimizer: Any, schedulers: Sequence[Any]) -> None:
    if len(schedulers) < 1:
        raise ValueError(f"{who} expects at least one scheduler, got none")
    for i, s in enumerate(schedulers):
        if isinstance(s, ReduceLROnPlateau):
            raise ValueError(f"{who} cannot hold ReduceLROnPlateau (index {i}): its step() "
                             f"needs the metric")
        if getattr(s, "optimizer", None) is not optimizer:
            raise ValueError(f"{who}: scheduler {i} ({type(s).__name__}) drives a different "
                             f"optimizer")


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i-1]`` on (e.g. LinearLR warm-up, then cosine);
    each later scheduler restarts from its step 0 at its milestone."""

    _not_state = ("optimizer", "_schedulers")

    def __init__(self, optimizer: Any, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1):
        _check_children("SequentialLR", optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR expects one milestone fewer than schedulers: got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        self._schedulers, self._milestones = list(schedulers), [int(m) for m in milestones]
        self.last_epoch, self.optimizer = last_epoch + 1, optimizer
        for group in groups_of(optimizer, "SequentialLR"):
            group["lr"] = group["initial_lr"]
        for s in self._schedulers:  # undo the first step each child took when created
            _undo(s)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        children = state.pop("_schedulers", [])
        if len(children) != len(self._schedulers):
            raise ValueError(f"{type(self).__name__}.load_state_dict(): {len(children)} child "
                             f"states for {len(self._schedulers)} schedulers")
        super().load_state_dict(state)
        for s, child in zip(self._schedulers, children, strict=True):
            s.load_state_dict(child)


def _undo(scheduler: Any) -> None:
    """Step ``last_epoch`` back by one, recursively through nested Sequential/Chained."""
    children = getattr(scheduler, "_schedulers", None)
    if children is not None:
        for s in children:
            _undo(s)
    else:
        scheduler.last_epoch -= 1


class ChainedScheduler(SequentialLR):
    """Step every scheduler in turn on each ``step()``; their (multiplicative) changes compose."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Any | None = None):
        if len(schedulers) < 1:
            raise ValueError("ChainedScheduler expects at least one scheduler, got none")
        optimizer = optimizer if optimizer is not None else schedulers[0].optimizer
        _check_children("ChainedScheduler", optimizer, schedulers)
        self._schedulers, self.optimizer = list(schedulers), optimizer
        self._last_lr = self._group_lrs()

    def step(self) -> None:  # type: ignore[override]
        for s in self._schedulers:
            s.step()
        self._last_lr = self._group_lrs()
