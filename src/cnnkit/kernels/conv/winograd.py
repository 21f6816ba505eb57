"""Winograd convolution of 3x3 stride-1 layers, by the C helper (``native/_conv.c``).

Forward (and dX, the forward of dZ with the flipped kernel), F(2x2, 3x3): per 2x2 output tile
and 4x4 input tile d, per channel pair the kernel g (3x3) is transformed once,

    U = G g G^T (4x4),  V = B^T d B,  Y = A^T [sum_c U . V] A

which takes 16 instead of 36 multiply-adds per tile and channel pair (4 instead of 9 per
output). dK, F(3x3, 2x2): per 2x2 tile of dZ and its 4x4 input tile,

    dK = G^T [sum over tiles (A dY A^T) . (B^T d B)] G.

Which layers take it: :func:`.dispatch.use_winograd` and :func:`.dispatch.winograd_dk`.
"""

from __future__ import annotations

import numpy as np

from .. import native


def transform(w: np.ndarray) -> np.ndarray:
    """U = G g G^T of a 3x3 kernel (3, 3, Cin, Cout), packed for :func:`forward_block`."""
    return native.winograd_kernel(w)


def forward_block(x: np.ndarray, u: np.ndarray, c_out: int, b: np.ndarray | None,
                  z: np.ndarray, pad_tl: tuple[int, int]) -> None:
    """z = conv(x, g) + b for the images of x, with u = :func:`transform` (g)."""
    native.forward_winograd(x, u, c_out, b, z, pad_tl)


def kernel_grad_block(x: np.ndarray, g: np.ndarray, dk: np.ndarray,
                      pad_tl: tuple[int, int]) -> None:
    """dk (3, 3, Cin, Cout) = sum over the images of x's windows times dZ (F(3x3, 2x2))."""
    native.kernel_grad_winograd(x, g, dk, pad_tl)
