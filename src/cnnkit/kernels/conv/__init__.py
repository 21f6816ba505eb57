"""Convolution kernels, channels-last: N-d convolution (groups, dilation), depthwise, separable
and transposed convolution, each with its backward pass.

Read in this order:

- :mod:`.geometry`     output sizes, which output box each kernel tap reads, zero padding
- :mod:`.convolution`  the entry points (forward, dX, dK, db) and where each call goes
- :mod:`.im2col`       im2col + GEMM in NumPy, block by block over the batch (the module;
                       its function ``im2col.im2col`` builds one whole im2col matrix)
- :mod:`.direct`       direct 2-D convolution by the optional C helper (:mod:`..native`)
- :mod:`.winograd`     Winograd F(2x2, 3x3) / F(3x3, 2x2) for 3x3 stride-1 layers (C helper)
- :mod:`.depthwise`    depthwise and separable convolution
- :mod:`.transposed`   transposed convolution (the input gradient of a convolution)
- :mod:`.inference`    forward-only small convolutions the inference runtime fuses with
                       their bias and activation (one GEMM at batch 1, 1x1 row blocks)
- :mod:`.dispatch`     every measured threshold, in one frozen object (``THRESHOLDS``)
"""

from . import dispatch
from .convolution import conv_backward, conv_forward, conv_input_grad
from .depthwise import (
    depthwise_conv_backward,
    depthwise_conv_forward,
    separable_conv_backward,
    separable_conv_forward,
)
from .dispatch import ConvThresholds, batch_blocks
from .geometry import conv_output_sizes, pad_spatial, window_view
from .im2col import flip_kernel
from .transposed import conv_transpose_backward, conv_transpose_forward, conv_transpose_geometry

__all__ = ["ConvThresholds", "batch_blocks", "conv_backward", "conv_forward",
           "conv_input_grad", "conv_output_sizes", "conv_transpose_backward",
           "conv_transpose_forward", "conv_transpose_geometry", "depthwise_conv_backward",
           "depthwise_conv_forward", "dispatch", "flip_kernel", "pad_spatial",
           "separable_conv_backward", "separable_conv_forward", "window_view"]
