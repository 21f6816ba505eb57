"""The :class:`Optimizer` base class: parameters, learning rate (or schedule), gradient
clipping, per-parameter state and config. The update rules live in ``optimizer_sgd`` and
``optimizer_adaptive``; :mod:`cnnkit.train.optimizers` re-exports everything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import constraints
from ..autograd import Tensor, enable_grad
from . import schedules as _schedules
from .param_group import ParamGroup

__all__ = ["Optimizer", "LearningRate"]

LearningRate = float | Callable[[int], float]


def _check_range(cls: str, name: str, value: float, lo: float, hi: float | None = None,
                 hi_open: bool = False) -> None:
    ok = value >= lo and (hi is None or (value < hi if hi_open else value <= hi))
    if not ok:
        upper = "" if hi is None else (f" and < {hi}" if hi_open else f" and <= {hi}")
        raise ValueError(f"{cls} expects {name} >= {lo}{upper}, got {value!r}")


def _rate_in_params_slot(params: Any) -> bool:
    """Keras style ``Adam(1e-3)``: a number or schedule where PyTorch puts the parameters."""
    return params is not None and (isinstance(params, (int, float, np.number, dict))
                                   or (callable(params) and not isinstance(params, Iterable)))


class Optimizer:
    """Base class: parameter bookkeeping, learning rate, clipping, state and config.

    Subclasses define ``_update(index, param, grad, lr)`` (``grad`` already clipped, a fresh
    array in the parameter's dtype that may be modified) and ``_config()``.

    Args:
        params: the parameters (Tensors) to optimise; may be given later via ``build``,
            ``apply_gradients`` or ``step(params)``.
        learning_rate: a float or a schedule (callable ``step -> lr``).
        weight_decay: see the subclass (coupled L2, or decoupled for AdamW).
        clipnorm, clipvalue, global_clipnorm: Keras gradient clipping (at most one).
        name: a name for the optimizer.
    """

    _default_lr = 0.001

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.001, weight_decay: float = 0.0,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None,
                 lr: LearningRate | None = None):
        cls = type(self).__name__
        # Keras style Adam(1e-3): a number or schedule in the params slot is the learning rate.
        if _rate_in_params_slot(params):
            if learning_rate != self._default_lr or lr is not None:
                raise ValueError(f"{cls}: got a learning rate both positionally and by keyword")
            params, learning_rate = None, params
        if lr is not None:
            if learning_rate != self._default_lr:
                raise ValueError(f"{cls}: pass learning_rate or lr, not both")
            learning_rate = lr
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = [k for k, v in clips.items() if v is not None]
        if len(given) > 1:
            raise ValueError(f"{cls}: only one of clipnorm, clipvalue and global_clipnorm can be "
                             f"set, got {', '.join(given)}")
        for k in given:
            _check_range(cls, k, clips[k], 0.0)
        _check_range(cls, "weight_decay", weight_decay, 0.0)
        self.name = name or cls.lower()
        self.weight_decay = float(weight_decay)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self._lr: LearningRate = 0.0
        self.learning_rate = learning_rate
        self._iterations = 0
        self._params: list[Tensor] = []
        self._index: dict[int, int] = {}
        self._slots: dict[int, dict[str, np.ndarray]] = {}
        self._pending_state: dict[str, np.ndarray] | None = None
        self._no_decay_ids: set[int] = set()
        self._no_decay_names: list[str] = []
        if params is not None:
            self.build(params)

    # ----- learning rate and counters ----------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The current learning rate (a schedule is evaluated at ``iterations``).

        Setting a float changes it (e.g. ``ReduceLROnPlateau``); setting a schedule replaces
        the rate; setting a float while a schedule is in use raises TypeError (as Keras does).
        """
        return self._current_lr()

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        if isinstance(value, dict):
            value = _schedules.get(value)
        if callable(value):
            self._lr = value
            return
        if callable(self._lr):
            raise TypeError(
                f"{type(self).__name__} was created with a learning-rate schedule "
                f"({self._lr!r}), so its learning rate cannot be set to a number")
        value = float(value)
        _check_range(type(self).__name__, "learning_rate", value, 0.0)
        self._lr = value

    lr = learning_rate  # PyTorch / old-Keras spelling

    @property
    def param_groups(self) -> list[ParamGroup]:
        """PyTorch's ``param_groups``: one live group (``"lr"`` is ``learning_rate``)."""
        group = self.__dict__.get("_param_group")
        if group is None:
            group = self.__dict__["_param_group"] = ParamGroup(self)
        return [group]

    @property
    def schedule(self) -> Callable[[int], float] | None:
        """The learning-rate schedule, or None for a constant rate."""
        return self._lr if callable(self._lr) else None

    @property
    def iterations(self) -> int:
        """Number of update steps taken."""
        return self._iterations

    def _current_lr(self) -> float:
        if callable(self._lr):
            return float(self._lr(self._iterations))
        return float(self._lr)

    @property
    def params(self) -> list[Tensor]:
        """The parameters this optimizer knows, in build order (the order of state indices)."""
        return list(self._params)

    # ----- parameters ----------------------------------------------------------------------
    def build(self, params: Iterable[Tensor]) -> None:
        """Register parameters (Keras ``build``). Repeated calls add only new parameters."""
        if isinstance(params, Tensor):
            params = [params]
        for p in params:
            if isinstance(p, dict):
                raise TypeError(f"{type(self).__name__} does not support parameter groups "
                                f"(dicts); pass a flat list of Tensors")
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} expects parameters to be cnnkit Tensors, "
                                f"got {type(p).__name__}")
            if not np.issubdtype(p.dtype, np.floating):
                raise TypeError(f"{type(self).__name__} expects floating-point parameters, got "
                                f"dtype {p.dtype} (shape {p.shape})")
            if id(p) not in self._index:
                self._index[id(p)] = len(self._params)
                self._params.append(p)
        if self._pending_state is not None:
            pending, self._pending_state = self._pending_state, None
            self.set_state(pending)

    @property
    def built(self) -> bool:
        return bool(self._params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every registered parameter (None, or zeros)."""
        for p in self._params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.data)

    def exclude_from_weight_decay(self, var_list: Iterable[Tensor] | None = None,
                                  var_names: Iterable[str] | None = None) -> None:
        """Skip weight decay for these Tensors, or for Tensors whose ``name`` contains any of
        ``var_names`` (Keras)."""
        for p in var_list or ():
            self._no_decay_ids.add(id(p))
        self._no_decay_names.extend(var_names or ())

    def _decays(self, p: Tensor) -> bool:
        if self.weight_decay == 0.0 or id(p) in self._no_decay_ids:
            return False
        name = p.name or ""
        return not any(n in name for n in self._no_decay_names)

    # ----- stepping --------------------------------------------------------------------------
    def step(self, params: Iterable[Tensor] | Callable[[], Any] | None = None) -> Any:
        """Update every parameter whose ``.grad`` is not None, then count one iteration.

        ``params`` defaults to the registered parameters; given parameters are registered
        first. A callable is treated as PyTorch's ``closure`` (re-evaluates the loss, returned).
        """
        loss = None
        if callable(params) and not isinstance(params, Iterable):
            with enable_grad():
                loss = params()
            params = None
        if params is not None:
            params = list(params) if not isinstance(params, Tensor) else [params]
            self.build(params)
        else:
            params = self._params
        if not params:
            raise ValueError(f"{type(self).__name__}.step(): no parameters; pass them to the "
                             f"constructor, build(params) or step(params)")
        self._apply([(p.grad, p) for p in params if p.grad is not None])
        return loss

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Tensor]]) -> int:
        """Apply ``(gradient, parameter)`` pairs (Keras); None gradients are skipped.

        Returns the new ``iterations``.
        """
        pairs = list(grads_and_vars)
        self.build([p for _, p in pairs])
        self._apply([(g, p) for g, p in pairs if g is not None])
        return self._iterations

    def apply(self, grads: Iterable[Any], params: Iterable[Tensor] | None = None) -> int:
        """Keras 3 ``apply(grads, trainable_variables)``: gradients in parameter order."""
        grads = list(grads)
        params = self._params if params is None else list(params)
        if len(grads) != len(params):
            raise ValueError(f"{type(self).__name__}.apply(): got {len(grads)} gradients for "
                             f"{len(params)} parameters")
        return self.apply_gradients(zip(grads, params, strict=True))

    def _reads_grads_only(self) -> bool:
        """True when ``_update`` never writes into the gradient it is given (then, without
        clipping, the gradients are not copied first)."""
        return False

    def _apply(self, pairs: list[tuple[Any, Tensor]]) -> None:
        grads: list[np.ndarray] = []
        reads_only = self._reads_grads_only() and self.clipvalue is None and \
            self.clipnorm is None and self.global_clipnorm is None
        for g, p in pairs:
            g = np.asarray(g.data if isinstance(g, Tensor) else g)
            if g.shape != p.shape:
                i = self._index[id(p)]
                label = f"parameter {i}" + (f" '{p.name}'" if p.name else "")
                raise ValueError(f"{type(self).__name__}: gradient for {label} has shape "
                                 f"{g.shape}, expected the parameter's shape {p.shape}")
            # a private copy unless the update only reads it (the caller's .grad stays intact)
            grads.append(np.asarray(g, dtype=p.dtype) if reads_only
                         else np.array(g, dtype=p.dtype, copy=True))
        grads = self._clip(grads)
        lr = self._current_lr()
        for g, (_, p) in zip(grads, pairs, strict=True):
            self._update(self._index[id(p)], p, g, lr)
            constraints.apply_to(p)  # Keras: a weight's constraint runs after its update
        self._iterations += 1

    def _clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        """Keras clipping: g * c / max(||g||, c) per tensor or over all, or clip(g, -c, c)."""
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue, out=g) for g in grads]
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = math.sqrt(float(np.sum(np.square(g, dtype=np.float64))))
                if norm > self.clipnorm:
                    g *= self.clipnorm / norm
                out.append(g)
            return out
        if self.global_clipnorm is not None and grads:
            total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
            if total > self.global_clipnorm:
                scale = self.global_clipnorm / total
                for g in grads:
                    g *= scale
        return grads

    def _slot(self, i: int, name: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """The state array ``i/name``, created filled with ``fill`` on first use."""
        slots = self._slots.setdefault(i, {})
        if name not in slots:
            slots[name] = np.full(like.shape, fill, dtype=like.dtype)
        return slots[name]

    def _count(self, i: int) -> int:
        """Increment and return this parameter's own update count (torch's per-param step)."""
        slots = self._slots.setdefault(i, {})
        step = slots.get("step")
        if step is None:
            step = slots["step"] = np.zeros((), dtype=np.int64)
        step += 1
        return int(step)

    def _update(self, i: int, p: Tensor, g: np.ndarray, lr: float) -> None:  # pragma: no cover
        raise NotImplementedError

    # ----- state and config --------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """A flat copy of the optimizer state: ``iterations``, ``learning_rate`` (when constant)
        and per-parameter slots ``"<index>/<slot>"`` (index = position in ``params``)."""
        state: dict[str, np.ndarray] = {"iterations": np.array(self._iterations, dtype=np.int64)}
        if not callable(self._lr):
            state["learning_rate"] = np.array(self._lr, dtype=np.float64)
        for i in sorted(self._slots):
            for name, arr in self._slots[i].items():
                state[f"{i}/{name}"] = arr.copy()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore ``get_state()`` output (copies). Before the parameters are known the state is
        kept and applied by ``build``."""
        state = dict(state)
        if "iterations" not in state:
            raise ValueError(f"{type(self).__name__}.set_state(): missing key 'iterations'")
        slot_keys = [k for k in state if "/" in k]
        if slot_keys and not self._params:
            self._pending_state = state
            self._iterations = int(np.asarray(state["iterations"]))
            return
        slots: dict[int, dict[str, np.ndarray]] = {}
        for key in slot_keys:
            idx, _, name = key.partition("/")
            if not idx.isdigit() or int(idx) >= len(self._params):
                raise ValueError(
                    f"{type(self).__name__}.set_state(): key {key!r} does not name one of the "
                    f"{len(self._params)} parameters")
            p = self._params[int(idx)]
            arr = np.asarray(state[key])
            if name == "step":
                slots.setdefault(int(idx), {})[name] = np.array(arr, dtype=np.int64)
                continue
            if arr.shape != p.shape:
                raise ValueError(
                    f"{type(self).__name__}.set_state(): {key!r} has shape {arr.shape}, "
                    f"expected the parameter's shape {p.shape}")
            slots.setdefault(int(idx), {})[name] = np.array(arr, dtype=p.dtype, copy=True)
        unknown = [k for k in state if "/" not in k and k not in ("iterations", "learning_rate")]
        if unknown:
            raise ValueError(f"{type(self).__name__}.set_state(): unknown keys {unknown}")
        self._slots = slots
        self._iterations = int(np.asarray(state["iterations"]))
        if "learning_rate" in state and not callable(self._lr):
            self._lr = float(np.asarray(state["learning_rate"]))

    def _config(self) -> dict[str, Any]:
        return {}

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments plus ``"class_name"``."""
        lr = _schedules.serialize(self._lr) if callable(self._lr) else float(self._lr)
        config: dict[str, Any] = {"class_name": type(self).__name__, "name": self.name,
                                  "learning_rate": lr}
        config.update(self._config())
        config.update({"weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                       "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = {k: v for k, v in config.items() if k != "class_name"}
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.get(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k not in ("class_name", "name"))
        return f"{type(self).__name__}({args})"
