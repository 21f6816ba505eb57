"""cnnkit: convolutional neural networks from first principles on NumPy.

``from cnnkit import layers, models, ops`` gives the Keras-style API; sub-packages load on
first use (``cnnkit.zoo``, ``cnnkit.data``, ``cnnkit.datasets``, ``cnnkit.io``, ...).
"""

import importlib
from typing import Any

from . import ops
from .autograd import Tensor, enable_grad, is_grad_enabled, no_grad

__version__ = "0.1.0"
_SUBPACKAGES = {"layers", "models", "train", "datasets", "data", "zoo", "io", "analysis",
                "random", "initializers", "regularizers", "kernels", "cli", "deploy", "files",
                "runtime"}
__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "ops", "__version__",
           *sorted(_SUBPACKAGES)]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
