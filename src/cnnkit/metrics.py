"""``keras.metrics``'s path in cnnkit: re-exports :mod:`cnnkit.train.metrics`."""

from .train.metrics import *  # noqa: F403
from .train.metrics import __all__ as __all__
