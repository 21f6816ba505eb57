"""The :class:`LRScheduler` base class of :mod:`cnnkit.train.lr_scheduler` (PyTorch semantics).

A scheduler changes ``optimizer.param_groups[i]["lr"]`` (for a cnnkit optimizer: its
``learning_rate``) each time ``step()`` is called, after ``optimizer.step()``. Construction
performs the first step (``last_epoch`` becomes 0), as in ``torch.optim.lr_scheduler``.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["LRScheduler", "groups_of", "format_param"]


def groups_of(optimizer: Any, who: str) -> list[Any]:
    """The optimizer's parameter groups; refuses one driven by a Keras-style schedule."""
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:
        raise TypeError(f"{who} expects an optimizer with param_groups (a cnnkit or torch "
                        f"optimizer), got {type(optimizer).__name__}")
    if callable(getattr(optimizer, "schedule", None)):
        raise TypeError(f"{who}: the optimizer already follows a learning-rate schedule "
                        f"({optimizer.schedule!r}); create it with a constant learning rate "
                        f"to drive it with a scheduler")
    return list(groups)


def format_param(name: str, groups: list[Any], value: Any) -> list[Any]:
    """One value per group: a list of that length, or one value repeated."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"{name} must have one value per parameter group: expected "
                             f"{len(groups)}, got {len(value)}")
        return list(value)
    return [value] * len(groups)


def check_int(who: str, name: str, value: Any, lo: int) -> int:
    """``value`` as an int >= lo, or a clear ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{who} expects {name} to be an integer >= {lo}, got {value!r}")
    return value


class LRScheduler:
    """Base class: subclasses define ``get_lr()`` (the rates for the new ``last_epoch``) and
    optionally ``_get_closed_form_lr()``.

    Args:
        optimizer: a cnnkit optimizer (or anything with torch-style ``param_groups``).
        last_epoch: -1 to start; a value >= 0 resumes and needs ``"initial_lr"`` in each group.
    """

    _not_state: tuple[str, ...] = ("optimizer",)

    def __init__(self, optimizer: Any, last_epoch: int = -1):
        who = type(self).__name__
        self.optimizer = optimizer
        groups = groups_of(optimizer, who)
        if last_epoch == -1:
            for group in groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{who}: param_groups[{i}] has no 'initial_lr'; resuming with "
                                   f"last_epoch={last_epoch} needs a scheduler created earlier")
        self.base_lrs: list[float] = [float(g["initial_lr"]) for g in groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Reset the step count and take the first step (``last_epoch`` -1 -> 0)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    @property
    def _groups(self) -> list[Any]:
        return list(self.optimizer.param_groups)

    def _group_lrs(self) -> list[float]:
        return [float(g["lr"]) for g in self._groups]

    def get_lr(self) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the latest ``step()``, one per parameter group."""
        return list(self._last_lr)

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (call after ``optimizer.step()``); ``epoch`` jumps to that step
        using the closed form where there is one (deprecated in PyTorch)."""
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = int(epoch)
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        for group, lr in zip(self._groups, values, strict=True):
            group["lr"] = float(lr)
        self._last_lr = self._group_lrs()

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (and functions), as copies."""
        return {k: copy.deepcopy(v) for k, v in vars(self).items() if k not in self._not_state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output."""
        unknown = [k for k in state_dict if k in self._not_state]
        if unknown:
            raise ValueError(f"{type(self).__name__}.load_state_dict(): unexpected keys {unknown}")
        self.__dict__.update(copy.deepcopy(dict(state_dict)))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(last_epoch={getattr(self, 'last_epoch', None)}, "
                f"lr={self._last_lr})")
