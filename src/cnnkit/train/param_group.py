"""A PyTorch-style ``param_groups[0]`` view of a cnnkit optimizer.

cnnkit optimizers have one learning rate for all parameters, so ``optimizer.param_groups`` is a
one-element list whose dict-like group reads and writes the optimizer's own attributes:
``"lr"`` is ``learning_rate``, ``"momentum"`` is SGD/RMSprop ``momentum``, ``"betas"`` is Adam's
``(beta_1, beta_2)``, ``"params"`` the registered parameters. Other keys (``"initial_lr"``,
``"max_lr"``, ... written by schedulers) are kept in the group itself.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

__all__ = ["ParamGroup"]


class ParamGroup(MutableMapping):
    """The single parameter group of a cnnkit optimizer (a live view, not a copy)."""

    def __init__(self, optimizer: Any):
        self._opt = optimizer
        self._extra: dict[str, Any] = {}

    def _live(self) -> list[str]:
        keys = ["params", "lr", "weight_decay"]
        if hasattr(self._opt, "momentum"):
            keys.append("momentum")
        if hasattr(self._opt, "beta_1"):
            keys.append("betas")
        return keys

    def __getitem__(self, key: str) -> Any:
        opt = self._opt
        if key == "lr":
            return opt.learning_rate
        if key == "params":
            return opt.params
        if key == "betas" and hasattr(opt, "beta_1"):
            return (opt.beta_1, opt.beta_2)
        if key in ("momentum", "weight_decay") and hasattr(opt, key):
            return getattr(opt, key)
        return self._extra[key]

    def __setitem__(self, key: str, value: Any) -> None:
        opt = self._opt
        if key == "lr":
            opt.learning_rate = value
        elif key == "betas" and hasattr(opt, "beta_1"):
            beta_1, beta_2 = value
            opt.beta_1, opt.beta_2 = float(beta_1), float(beta_2)
        elif key in ("momentum", "weight_decay") and hasattr(opt, key):
            setattr(opt, key, float(value))
        elif key == "params":
            raise KeyError("param_groups[0]['params'] is read-only; use optimizer.build(params)")
        else:
            self._extra[key] = value

    def __delitem__(self, key: str) -> None:
        if key in self._live():
            raise KeyError(f"param_groups[0][{key!r}] is the optimizer's own and cannot be deleted")
        del self._extra[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._live()
        yield from self._extra

    def __len__(self) -> int:
        return len(self._live()) + len(self._extra)

    def __repr__(self) -> str:
        items = {k: self[k] for k in self if k != "params"}
        return f"ParamGroup({items})"
