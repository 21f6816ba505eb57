"""Optimizers: SGD, Adam, AdamW, RMSprop, Adagrad.

Both usage styles work:

* PyTorch style: ``opt = Adam(params, lr=1e-3)``; ``opt.zero_grad()``; ``loss.backward()``;
  ``opt.step()`` updates every parameter whose ``.grad`` is not None.
* Keras style: ``opt = Adam(learning_rate=1e-3)``; then ``opt.apply_gradients(zip(grads,
  params))`` (or ``opt.build(params)`` and ``opt.step(params)``).

Parameters are :class:`cnnkit.Tensor` objects; updates are written into ``param.data`` in
place (layers holding the Tensor see them) and in the parameter's dtype.

The update formulas are PyTorch's (``torch.optim``), so a cnnkit run can be checked against
torch step by step:

* ``weight_decay`` of SGD, Adam, RMSprop and Adagrad is coupled L2 as in torch:
  ``g <- g + weight_decay * p``. AdamW's is decoupled: ``p <- p * (1 - lr * weight_decay)``
  before the Adam step (torch ``AdamW`` = Keras ``AdamW``).
* Adam's epsilon sits outside the square root of the *bias-corrected* second moment:
  ``p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`` (torch). Keras adds eps to
  ``sqrt(v)`` before bias correction, which differs only by a factor ``sqrt(1 - b2^t)`` on eps.
  The default epsilon is Keras's 1e-7 (torch's is 1e-8).
* RMSprop and Adagrad add epsilon outside the square root (torch; Keras adds it inside).
* Gradient clipping is Keras's: ``clipvalue`` (elementwise), ``clipnorm`` (each parameter's
  gradient rescaled to norm <= clipnorm), ``global_clipnorm`` (all gradients of the step
  rescaled together); at most one of them. Clipping happens before weight decay is added.
* Schedules: ``learning_rate`` may be a float or a callable ``step -> lr``
  (see :mod:`cnnkit.train.schedules`); update ``k`` (0-based) uses ``schedule(k)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor, enable_grad
from . import schedules as _schedules

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "serialize"]

LearningRate = float | Callable[[int], float]


def _check_range(cls: str, name: str, value: float, lo: float, hi: float | None = None,
                 hi_open: bool = False) -> None:
    ok = value >= lo and (hi is None or (value < hi if hi_open else value <= hi))
    if not ok:
        upper = "" if hi is None else (f" and < {hi}" if hi_open else f" and <= {hi}")
        raise ValueError(f"{cls} expects {name} >= {lo}{upper}, got {value!r}")


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
        if params is not None and (isinstance(params, (int, float, np.number, dict))
                                   or (callable(params) and not isinstance(params, Iterable))):
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


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, torch's formulation.

    ``g <- g + weight_decay * p``; with momentum ``b <- momentum * b + (1 - dampening) * g``
    (``b = g`` on the first step); ``d = g + momentum * b`` (Nesterov) or ``d = b``;
    ``p <- p - lr * d``. For a constant learning rate this equals Keras's velocity form.
    """

    _default_lr = 0.01

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None, *,
                 dampening: float = 0.0, lr: LearningRate | None = None):
        _check_range("SGD", "momentum", momentum, 0.0, 1.0)
        _check_range("SGD", "dampening", dampening, 0.0, 1.0)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening 0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.dampening = float(dampening)
        super().__init__(params, learning_rate, weight_decay, clipnorm, clipvalue,
                         global_clipnorm, name, lr)

    def _reads_grads_only(self) -> bool:
        return self.weight_decay == 0.0 and not self.nesterov

    def _update(self, i: int, p: Tensor, g: np.ndarray, lr: float) -> None:
        if self._decays(p):
            g += self.weight_decay * p.data
        if self.momentum != 0.0:
            slots = self._slots.setdefault(i, {})
            buf = slots.get("momentum")
            if buf is None:
                buf = slots["momentum"] = g.copy()
            else:
                buf *= self.momentum
                if self.dampening == 0.0:
                    buf += g
                else:
                    buf += (1.0 - self.dampening) * g
            if self.nesterov:
                g += self.momentum * buf
            else:
                g = buf
        p.data -= lr * g

    def _config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov,
                "dampening": self.dampening}


class Adam(Optimizer):
    """Adam (Kingma & Ba), torch's formulation; ``amsgrad`` keeps the running max of ``v``.

    ``g <- g + weight_decay * p`` (coupled L2); ``m <- m + (1 - b1) (g - m)``;
    ``v <- b2 v + (1 - b2) g^2``; ``p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) +
    eps)`` with ``t`` the parameter's update count. Aliases: ``lr``, ``betas=(b1, b2)``, ``eps``.
    """

    _decoupled = False

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 weight_decay: float = 0.0, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 name: str | None = None, *, lr: LearningRate | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None):
        cls = type(self).__name__
        if betas is not None:
            beta_1, beta_2 = betas
        if eps is not None:
            epsilon = eps
        _check_range(cls, "beta_1", beta_1, 0.0, 1.0, hi_open=True)
        _check_range(cls, "beta_2", beta_2, 0.0, 1.0, hi_open=True)
        _check_range(cls, "epsilon", epsilon, 0.0)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.amsgrad = bool(amsgrad)
        super().__init__(params, learning_rate, weight_decay, clipnorm, clipvalue,
                         global_clipnorm, name, lr)

    def _update(self, i: int, p: Tensor, g: np.ndarray, lr: float) -> None:
        t = self._count(i)
        if self._decays(p):
            if self._decoupled:
                p.data *= 1.0 - lr * self.weight_decay
            else:
                g += self.weight_decay * p.data
        m = self._slot(i, "m", p.data)
        v = self._slot(i, "v", p.data)
        b1, b2 = self.beta_1, self.beta_2
        m += (1.0 - b1) * (g - m)
        v *= b2
        v += (1.0 - b2) * (g * g)
        if self.amsgrad:
            v_hat = self._slot(i, "v_hat", p.data)
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        step_size = lr / (1.0 - b1 ** t)
        denom = np.sqrt(v)
        denom /= math.sqrt(1.0 - b2 ** t)
        denom += self.epsilon
        np.divide(m, denom, out=denom)
        denom *= step_size
        p.data -= denom

    def _config(self) -> dict[str, Any]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter; torch ``AdamW``, Keras ``AdamW``).

    ``p <- p * (1 - lr * weight_decay)``, then the Adam step without L2 in the gradient.
    """

    _decoupled = True

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 name: str | None = None, *, lr: LearningRate | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None):
        super().__init__(params, learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, lr=lr, betas=betas,
                         eps=eps)


class RMSprop(Optimizer):
    """RMSprop, torch's formulation (epsilon outside the square root).

    ``g <- g + weight_decay * p``; ``s <- rho s + (1 - rho) g^2``; centered:
    ``a <- a + (1 - rho)(g - a)``, ``d = sqrt(s - a^2) + eps``, else ``d = sqrt(s) + eps``;
    with momentum ``b <- momentum b + g / d``, ``p <- p - lr b``, else ``p <- p - lr g / d``.
    ``alpha=`` (torch) is an alias of ``rho``, as are ``lr`` and ``eps``.
    """

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, weight_decay: float = 0.0,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None, *,
                 lr: LearningRate | None = None, alpha: float | None = None,
                 eps: float | None = None):
        if alpha is not None:
            rho = alpha
        if eps is not None:
            epsilon = eps
        _check_range("RMSprop", "rho", rho, 0.0, 1.0)
        _check_range("RMSprop", "momentum", momentum, 0.0, 1.0)
        _check_range("RMSprop", "epsilon", epsilon, 0.0)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)
        super().__init__(params, learning_rate, weight_decay, clipnorm, clipvalue,
                         global_clipnorm, name, lr)

    def _update(self, i: int, p: Tensor, g: np.ndarray, lr: float) -> None:
        if self._decays(p):
            g += self.weight_decay * p.data
        s = self._slot(i, "velocity", p.data)
        s *= self.rho
        s += (1.0 - self.rho) * (g * g)
        if self.centered:
            a = self._slot(i, "average_gradient", p.data)
            a += (1.0 - self.rho) * (g - a)
            denom = s - a * a
            np.sqrt(denom, out=denom)
        else:
            denom = np.sqrt(s)
        denom += self.epsilon
        if self.momentum > 0.0:
            buf = self._slot(i, "momentum", p.data)
            buf *= self.momentum
            buf += g / denom
            p.data -= lr * buf
        else:
            np.divide(g, denom, out=denom)
            denom *= lr
            p.data -= denom

    def _config(self) -> dict[str, Any]:
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad, torch's formulation (epsilon outside the square root).

    ``g <- g + weight_decay * p``; ``s <- s + g^2`` (``s`` starts at
    ``initial_accumulator_value``); ``p <- p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)``.
    Defaults are Keras's (accumulator 0.1, eps 1e-7); torch's are 0 and 1e-10.
    """

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, weight_decay: float = 0.0,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None, *,
                 lr_decay: float = 0.0, lr: LearningRate | None = None,
                 eps: float | None = None):
        if eps is not None:
            epsilon = eps
        _check_range("Adagrad", "initial_accumulator_value", initial_accumulator_value, 0.0)
        _check_range("Adagrad", "epsilon", epsilon, 0.0)
        _check_range("Adagrad", "lr_decay", lr_decay, 0.0)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)
        self.lr_decay = float(lr_decay)
        super().__init__(params, learning_rate, weight_decay, clipnorm, clipvalue,
                         global_clipnorm, name, lr)

    def _update(self, i: int, p: Tensor, g: np.ndarray, lr: float) -> None:
        t = self._count(i)
        if self._decays(p):
            g += self.weight_decay * p.data
        s = self._slot(i, "accumulator", p.data, self.initial_accumulator_value)
        s += g * g
        clr = lr / (1.0 + (t - 1) * self.lr_decay)
        denom = np.sqrt(s)
        denom += self.epsilon
        np.divide(g, denom, out=denom)
        denom *= clr
        p.data -= denom

    def _config(self) -> dict[str, Any]:
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon, "lr_decay": self.lr_decay}


_REGISTRY: dict[str, type[Optimizer]] = {
    "sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``optimizer.get_config()`` (flat, with ``"class_name"``)."""
    return optimizer.get_config()


def get(identifier: str | Optimizer | dict[str, Any], **kwargs: Any) -> Optimizer:
    """An optimizer from a name (``"adam"``; ``kwargs`` go to the constructor), an instance
    (returned as is) or a config dict (flat ``get_config()`` output or Keras-style
    ``{"class_name": ..., "config": {...}}``). Names match case-insensitively."""
    if isinstance(identifier, Optimizer):
        return identifier
    known = ", ".join(f"'{k}'" for k in _REGISTRY)
    if isinstance(identifier, str):
        cls = _REGISTRY.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; known: {known}")
        return cls(**kwargs)
    if isinstance(identifier, dict) and "class_name" in identifier:
        name = str(identifier["class_name"])
        cls = _REGISTRY.get(name.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {name!r}; known: {known}")
        nested = identifier.get("config")
        config = dict(nested) if isinstance(nested, dict) else {
            k: v for k, v in identifier.items() if k != "class_name"}
        config.update(kwargs)
        return cls.from_config(config)
    raise ValueError(f"cannot interpret {identifier!r} as an optimizer; expected a name "
                     f"({known}), an Optimizer or a config dict with 'class_name'")
