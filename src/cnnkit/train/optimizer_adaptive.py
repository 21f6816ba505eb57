"""Adaptive optimizers (per-parameter step sizes from gradient moments): Adam, AdamW,
RMSprop, Adagrad, in torch's or Keras's formulation (see :mod:`cnnkit.train.optimizers`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Tensor
from .optimizer_base import LearningRate, Optimizer, _check_range, _rate_in_params_slot

__all__ = ["Adam", "AdamW", "RMSprop", "Adagrad"]


def _check_formula(cls: str, formula: str, params: Any) -> str:
    """``"auto"`` follows the way the optimizer is built: given parameters (PyTorch's habit,
    ``Adam(model.parameters())``) it is ``"torch"``; without (Keras's, ``compile("adam")``)
    it is ``"keras"``, so each habit gets the numbers its own framework gives."""
    if formula not in ("auto", "torch", "keras"):
        raise ValueError(f"{cls}: formula must be 'auto', 'torch' or 'keras', got {formula!r}")
    if formula == "auto":
        return "torch" if params is not None and not _rate_in_params_slot(params) else "keras"
    return formula


def _formula_config(formula: str) -> dict[str, str]:
    # written only when not Keras's, so Keras's from_config takes the config unchanged
    return {} if formula == "keras" else {"formula": formula}


class Adam(Optimizer):
    """Adam (Kingma & Ba), torch's formulation; ``amsgrad`` keeps the running max of ``v``.

    ``g <- g + weight_decay * p`` (coupled L2); ``m <- m + (1 - b1) (g - m)``;
    ``v <- b2 v + (1 - b2) g^2``; ``p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) +
    eps)`` with ``t`` the parameter's update count. Aliases: ``lr``, ``betas=(b1, b2)``, ``eps``.
    ``formula="keras"``: ``p <- p - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``.
    """

    _decoupled = False

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 weight_decay: float = 0.0, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 name: str | None = None, *, lr: LearningRate | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None,
                 formula: str = "auto"):
        cls = type(self).__name__
        self.formula = _check_formula(cls, formula, params)
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
        if self.formula == "keras":  # eps added to sqrt(v) before bias correction
            step_size *= math.sqrt(1.0 - b2 ** t)
        else:
            denom /= math.sqrt(1.0 - b2 ** t)
        denom += self.epsilon
        np.divide(m, denom, out=denom)
        denom *= step_size
        p.data -= denom

    def _config(self) -> dict[str, Any]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad, **_formula_config(self.formula)}


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
                 betas: tuple[float, float] | None = None, eps: float | None = None,
                 formula: str = "auto"):
        super().__init__(params, learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name, lr=lr, betas=betas,
                         eps=eps, formula=formula)


class RMSprop(Optimizer):
    """RMSprop, torch's formulation (epsilon outside the square root).

    ``g <- g + weight_decay * p``; ``s <- rho s + (1 - rho) g^2``; centered:
    ``a <- a + (1 - rho)(g - a)``, ``d = sqrt(s - a^2) + eps``, else ``d = sqrt(s) + eps``;
    with momentum ``b <- momentum b + g / d``, ``p <- p - lr b``, else ``p <- p - lr g / d``.
    ``alpha=`` (torch) is an alias of ``rho``, as are ``lr`` and ``eps``.
    ``formula="keras"``: ``d = sqrt(s + eps)`` (centered ``sqrt(s - a^2 + eps)``).
    """

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, weight_decay: float = 0.0,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None, *,
                 lr: LearningRate | None = None, alpha: float | None = None,
                 eps: float | None = None, formula: str = "auto"):
        self.formula = _check_formula("RMSprop", formula, params)
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
        else:
            denom = s.copy()
        if self.formula == "keras":  # eps inside the square root
            denom += self.epsilon
            np.sqrt(denom, out=denom)
        else:
            np.sqrt(denom, out=denom)
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
                "centered": self.centered, **_formula_config(self.formula)}


class Adagrad(Optimizer):
    """Adagrad, torch's formulation (epsilon outside the square root).

    ``g <- g + weight_decay * p``; ``s <- s + g^2`` (``s`` starts at
    ``initial_accumulator_value``); ``p <- p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)``.
    Defaults are Keras's (accumulator 0.1, eps 1e-7); torch's are 0 and 1e-10.
    ``formula="keras"``: ``p <- p - lr g / sqrt(s + eps)``.
    """

    def __init__(self, params: Iterable[Tensor] | None = None,
                 learning_rate: LearningRate = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, weight_decay: float = 0.0,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None, *,
                 lr_decay: float = 0.0, lr: LearningRate | None = None,
                 eps: float | None = None, formula: str = "auto"):
        self.formula = _check_formula("Adagrad", formula, params)
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
        if self.formula == "keras":  # eps inside the square root
            denom = np.sqrt(s + self.epsilon)
        else:
            denom = np.sqrt(s)
            denom += self.epsilon
        np.divide(g, denom, out=denom)
        denom *= clr
        p.data -= denom

    def _config(self) -> dict[str, Any]:
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon, "lr_decay": self.lr_decay,
                **_formula_config(self.formula)}
