"""cnnkit's optional C helpers, loaded with ctypes by one loader (:mod:`.loader`).

- :mod:`.conv` (``_conv.c``): direct and Winograd 2-D convolution kernels; its functions are
  also this package's top level (``native.forward``, ``native.available``, ...), which is
  where the convolution kernels look them up (so tests can replace them here).
- :mod:`.norm` (``_norm.c``): training batch norm, ReLU and 2x2 pooling kernels.
- :mod:`.dense` (``_dense.c``): a dense product whose rows do not depend on the batch.

Each library is optional (built by setup.py when a C compiler is there), checked against the
ABI version its Python table was written for, and switched off by ``CNNKIT_NATIVE=0``.
"""

from . import conv, dense, norm
from .conv import (
    ROWRUN_MAX,
    _load,  # noqa: F401  (tests reset the loaded state)
    _state,  # noqa: F401
    available,
    depthwise_backward,
    depthwise_forward,
    forward,
    forward_pieces,
    forward_pool,
    forward_winograd,
    input_grad,
    input_grad_rowrun,
    kernel_grad,
    kernel_grad_winograd,
    library_path,
    set_enabled,
    variant,
    winograd_kernel,
)

__all__ = ["ROWRUN_MAX", "available", "conv", "dense", "depthwise_backward",
           "depthwise_forward", "forward", "forward_pool", "forward_pieces",
           "forward_winograd", "input_grad", "input_grad_rowrun", "kernel_grad",
           "kernel_grad_winograd", "library_path", "norm", "set_enabled", "variant",
           "winograd_kernel"]
