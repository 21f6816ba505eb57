"""cnnkit.ops: every operator as a function on Tensors (NumPy arrays are accepted).

Argument names follow Keras (``strides``, ``padding``, ``dilation_rate``); layouts are
channels-last. Each function runs a forward kernel from ``cnnkit.kernels`` and records the
matching backward kernel for autograd.
"""

from .activation import *  # noqa: F403
from .arith import *  # noqa: F403
from .conv import *  # noqa: F403
from .layer_norm import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .metric_loss import *  # noqa: F403
from .norm import *  # noqa: F403
from .pool import *  # noqa: F403
from .quantize import *  # noqa: F403
from .resize import *  # noqa: F403
from .shape import *  # noqa: F403
from .tensor_methods import install_tensor_methods  # noqa: F401  (installs Tensor's operators)
