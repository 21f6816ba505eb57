"""Learning-rate schedules: callables ``schedule(step) -> float``.

``step`` is the optimizer's ``iterations`` counter *before* the update it is used for, so the
first update uses ``schedule(0)`` (as in Keras, and as in PyTorch where ``scheduler.step()`` is
called after ``optimizer.step()``). Every schedule returns a Python float and round-trips
through ``get_config()`` / :func:`get`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "LearningRateSchedule",
    "StepDecay",
    "ExponentialDecay",
    "CosineDecay",
    "OneCycle",
    "PiecewiseConstantDecay",
    "get",
    "serialize",
]


def _step(step: Any) -> float:
    """The step as a float; rejects negative steps."""
    s = float(step)
    if s < 0:
        raise ValueError(f"learning-rate schedules expect a step >= 0, got {step}")
    return s


def _positive(cls: str, name: str, value: Any, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        raise ValueError(
            f"{cls} expects {name} {'>= 0' if allow_zero else '> 0'}, got {value!r}")


class LearningRateSchedule:
    """Base class: subclasses implement ``__call__(step) -> float`` and ``get_config()``.

    ``get_config()`` returns the constructor arguments plus ``"class_name"``, all JSON types.
    """

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        config = {k: v for k, v in config.items() if k != "class_name"}
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "class_name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    __hash__ = object.__hash__


class StepDecay(LearningRateSchedule):
    """``lr(step) = initial_learning_rate * gamma ** floor(step / step_size)``.

    The same sequence as ``torch.optim.lr_scheduler.StepLR(step_size, gamma)`` stepped once per
    update. ``initial=`` is accepted as an alias of ``initial_learning_rate``.
    """

    def __init__(self, initial_learning_rate: float | None = None, step_size: int = 1,
                 gamma: float = 0.1, *, initial: float | None = None):
        if initial is not None:
            if initial_learning_rate is not None:
                raise ValueError("StepDecay: pass initial_learning_rate or initial, not both")
            initial_learning_rate = initial
        if initial_learning_rate is None:
            raise TypeError("StepDecay needs initial_learning_rate")
        _positive("StepDecay", "initial_learning_rate", initial_learning_rate, allow_zero=True)
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepDecay expects an integer step_size >= 1, got {step_size!r}")
        _positive("StepDecay", "gamma", gamma, allow_zero=True)
        self.initial_learning_rate = float(initial_learning_rate)
        self.step_size = int(step_size)
        self.gamma = float(gamma)

    def __call__(self, step: int) -> float:
        k = math.floor(_step(step) / self.step_size)
        return self.initial_learning_rate * self.gamma ** k

    def get_config(self) -> dict[str, Any]:
        return {"class_name": "StepDecay", "initial_learning_rate": self.initial_learning_rate,
                "step_size": self.step_size, "gamma": self.gamma}


class ExponentialDecay(LearningRateSchedule):
    """``lr(step) = initial_learning_rate * decay_rate ** (step / decay_steps)`` (Keras).

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)``. ``decay_steps=1`` gives
    ``torch.optim.lr_scheduler.ExponentialLR(gamma=decay_rate)``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False):
        _positive("ExponentialDecay", "initial_learning_rate", initial_learning_rate, True)
        _positive("ExponentialDecay", "decay_steps", decay_steps)
        _positive("ExponentialDecay", "decay_rate", decay_rate, allow_zero=True)
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step: int) -> float:
        p = _step(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self) -> dict[str, Any]:
        return {"class_name": "ExponentialDecay",
                "initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warm-up (Keras 3 semantics).

    Without warm-up (``warmup_target=None``), for ``t = min(step, decay_steps)``::

        lr = initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * t / decay_steps)) + alpha)

    With ``warmup_target`` set: for ``step < warmup_steps`` the rate rises linearly,
    ``lr = initial + (warmup_target - initial) * step / warmup_steps``; afterwards the cosine
    above runs from ``warmup_target`` over ``t = min(step - warmup_steps, decay_steps)``.
    The last rate is ``alpha`` times the peak. Without warm-up this is
    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=decay_steps, eta_min=alpha * initial)``
    for steps up to ``decay_steps`` (torch keeps cycling afterwards; this stays at the floor).
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: int = 0):
        _positive("CosineDecay", "initial_learning_rate", initial_learning_rate, True)
        _positive("CosineDecay", "decay_steps", decay_steps)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"CosineDecay expects 0 <= alpha <= 1, got {alpha!r}")
        _positive("CosineDecay", "warmup_steps", warmup_steps, allow_zero=True)
        if warmup_target is not None:
            _positive("CosineDecay", "warmup_target", warmup_target, allow_zero=True)
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.alpha = float(alpha)
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = warmup_steps

    def _decay(self, t: float, peak: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * t / self.decay_steps))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        s = _step(step)
        if self.warmup_target is None:
            return self._decay(min(s, self.decay_steps), self.initial_learning_rate)
        if s < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + delta * (s / self.warmup_steps)
        t = min(s - self.warmup_steps, self.decay_steps)
        return self._decay(t, self.warmup_target)

    def get_config(self) -> dict[str, Any]:
        return {"class_name": "CosineDecay", "initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def _anneal_linear(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start


class OneCycle(LearningRateSchedule):
    """The 1cycle policy, the learning-rate sequence of ``torch.optim.lr_scheduler.OneCycleLR``.

    ``initial = max_lr / div_factor`` and ``min_lr = initial / final_div_factor``. Two phases
    (default): ``initial -> max_lr`` over steps ``[0, pct_start * total_steps - 1]``, then
    ``max_lr -> min_lr`` until step ``total_steps - 1``. ``three_phase=True``: ``initial -> max_lr
    -> initial`` symmetric, then ``initial -> min_lr``. Within a phase from step ``a`` to ``b``,
    ``pct = (step - a) / (b - a)`` and the rate is ``end + (start - end) / 2 * (1 + cos(pi pct))``
    (``anneal="cos"``) or ``start + (end - start) * pct`` (``anneal="linear"``). Steps past
    ``total_steps - 1`` keep the final rate (torch raises instead). Only the learning rate
    cycles: momentum / beta_1 cycling (torch's ``cycle_momentum``) is not done.
    """

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 anneal: str = "cos", three_phase: bool = False):
        _positive("OneCycle", "max_lr", max_lr, allow_zero=True)
        if int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(f"OneCycle expects an integer total_steps >= 1, got {total_steps!r}")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycle expects 0 <= pct_start <= 1, got {pct_start!r}")
        _positive("OneCycle", "div_factor", div_factor)
        _positive("OneCycle", "final_div_factor", final_div_factor)
        if anneal not in ("cos", "linear"):
            raise ValueError(f"OneCycle expects anneal 'cos' or 'linear', got {anneal!r}")
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.anneal = anneal
        self.three_phase = bool(three_phase)
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        up = self.pct_start * self.total_steps - 1.0
        last = self.total_steps - 1.0
        if self.three_phase:
            self._phases = [(up, initial, self.max_lr),
                            (2.0 * self.pct_start * self.total_steps - 2.0, self.max_lr, initial),
                            (last, initial, final)]
        else:
            self._phases = [(up, initial, self.max_lr), (last, self.max_lr, final)]

    def __call__(self, step: int) -> float:
        s = min(_step(step), self.total_steps - 1.0)
        fn = _anneal_cos if self.anneal == "cos" else _anneal_linear
        start_step = 0.0
        for i, (end_step, start_lr, end_lr) in enumerate(self._phases):
            if s <= end_step or i == len(self._phases) - 1:
                span = end_step - start_step
                pct = (s - start_step) / span if span != 0 else 1.0
                return fn(start_lr, end_lr, pct)
            start_step = end_step
        raise AssertionError("unreachable")  # pragma: no cover

    def get_config(self) -> dict[str, Any]:
        return {"class_name": "OneCycle", "max_lr": self.max_lr, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor, "anneal": self.anneal,
                "three_phase": self.three_phase}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` for ``step <= boundaries[0]``, ``values[i]`` for
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary (Keras).
    """

    def __init__(self, boundaries: Sequence[float], values: Sequence[float]):
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"PiecewiseConstantDecay expects len(values) == len(boundaries) + 1, got "
                f"{len(values)} values for {len(boundaries)} boundaries")
        if any(b1 <= b0 for b0, b1 in zip(boundaries, boundaries[1:], strict=False)):
            raise ValueError(
                f"PiecewiseConstantDecay expects strictly increasing boundaries, got {boundaries}")
        self.boundaries = [b if isinstance(b, int) else float(b) for b in boundaries]
        self.values = [float(v) for v in values]

    def __call__(self, step: int) -> float:
        s = _step(step)
        for b, v in zip(self.boundaries, self.values, strict=False):
            if s <= b:
                return v
        return self.values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"class_name": "PiecewiseConstantDecay", "boundaries": list(self.boundaries),
                "values": list(self.values)}


_REGISTRY: dict[str, type[LearningRateSchedule]] = {
    cls.__name__.lower(): cls
    for cls in (StepDecay, ExponentialDecay, CosineDecay, OneCycle, PiecewiseConstantDecay)
}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``schedule.get_config()``, which includes ``"class_name"``."""
    if not hasattr(schedule, "get_config"):
        raise TypeError(
            f"cannot serialise learning-rate schedule {schedule!r}: it has no get_config(); "
            f"use one of {sorted(c.__name__ for c in _REGISTRY.values())}")
    return schedule.get_config()


def get(identifier: LearningRateSchedule | dict[str, Any] | Callable[[int], float]
        ) -> LearningRateSchedule | Callable[[int], float]:
    """A schedule from an instance (returned as is), a callable, or a config dict.

    The dict is either flat (``get_config()`` output, with ``"class_name"``) or Keras-style
    ``{"class_name": ..., "config": {...}}``. Class names match case-insensitively.
    """
    if isinstance(identifier, LearningRateSchedule) or (
            callable(identifier) and not isinstance(identifier, (dict, type))):
        return identifier
    if not isinstance(identifier, dict) or "class_name" not in identifier:
        raise ValueError(
            f"cannot interpret {identifier!r} as a learning-rate schedule: expected a schedule, "
            f"a callable step -> lr, or a config dict with 'class_name'")
    name = str(identifier["class_name"])
    config = identifier.get("config") if isinstance(identifier.get("config"), dict) else {
        k: v for k, v in identifier.items() if k != "class_name"}
    cls = _REGISTRY.get(name.lower())
    if cls is None:
        known = ", ".join(c.__name__ for c in _REGISTRY.values())
        raise ValueError(f"unknown learning-rate schedule {name!r}; known: {known}")
    return cls.from_config(config)
