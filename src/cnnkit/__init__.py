"""cnnkit: convolutional neural networks from first principles on NumPy."""

from . import ops
from .autograd import Tensor, enable_grad, is_grad_enabled, no_grad

__version__ = "0.1.0"
__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "ops", "__version__"]
