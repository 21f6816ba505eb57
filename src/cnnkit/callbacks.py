"""``keras.callbacks``'s path in cnnkit: re-exports :mod:`cnnkit.train.callbacks`."""

from .train.callbacks import *  # noqa: F403
from .train.callbacks import ProgbarLogger as ProgbarLogger
from .train.callbacks import __all__ as _train_all

__all__ = [*_train_all, *(["ProgbarLogger"] if "ProgbarLogger" not in _train_all else [])]
