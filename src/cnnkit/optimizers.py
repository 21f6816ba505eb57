"""``keras.optimizers``'s path in cnnkit: re-exports :mod:`cnnkit.train.optimizers`."""

from .train.optimizers import *  # noqa: F403
from .train.optimizers import __all__ as __all__
