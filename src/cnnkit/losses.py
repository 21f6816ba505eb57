"""``keras.losses``'s path in cnnkit: re-exports :mod:`cnnkit.train.losses`."""

from .train.losses import *  # noqa: F403
from .train.losses import __all__ as __all__
