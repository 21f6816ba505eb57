"""Dense (fully connected) layer over the last axis: y = x W + b.

x has shape (..., in), the kernel W (in, out), the bias b (out,), y (..., out). All leading
axes are flattened into one batch axis M, so each pass is one GEMM:

    y = x W + b                      (M, in) @ (in, out)
    dL/dx = g W^T                    (M, out) @ (out, in)
    dL/dW = x^T g                    (in, M) @ (M, out)   (summed over every leading axis)
    dL/db = sum over M of g
"""

from __future__ import annotations

import numpy as np

from . import parallel


def dense_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None
                  ) -> np.ndarray:
    """y = x @ kernel + bias over the last axis of x (any rank >= 1)."""
    n_in, n_out = kernel.shape
    y = parallel.matmul(x.reshape(-1, n_in), kernel)
    if bias is not None:
        y += bias
    return y.reshape(x.shape[:-1] + (n_out,))


def dense_backward(g: np.ndarray, x: np.ndarray, kernel: np.ndarray, need_x: bool = True,
                   need_kernel: bool = True, need_bias: bool = True
                   ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dL/dx, dL/dkernel, dL/dbias) for y = x kernel + bias; None where not needed."""
    n_in, n_out = kernel.shape
    g2 = g.reshape(-1, n_out)
    dx = parallel.matmul(g2, kernel.T).reshape(x.shape) if need_x else None
    dw = parallel.matmul(x.reshape(-1, n_in).T, g2) if need_kernel else None
    db = parallel.column_sum(g2) if need_bias else None
    return dx, dw, db
