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
from .native import dense


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
    x2 = x.reshape(-1, n_in)
    if need_x and need_kernel and parallel.get_num_threads() > 1 and \
            g2.shape[0] * n_in * n_out >= MIN_SPLIT_MACS:
        return _backward_two_gemms(g2, x2, kernel, x.shape, need_bias)
    dx = parallel.matmul(g2, kernel.T).reshape(x.shape) if need_x else None
    dw = parallel.matmul(x2.T, g2) if need_kernel else None
    db = parallel.column_sum(g2) if need_bias else None
    return dx, dw, db


# Both GEMMs of the backward (each M * in * out multiply-adds) run side by side, one per
# thread, from this size on: one hand-over, and each GEMM whole (not cut in two).
MIN_SPLIT_MACS = 1 << 22


def _backward_two_gemms(g2: np.ndarray, x2: np.ndarray, kernel: np.ndarray,
                        x_shape: tuple[int, ...], need_bias: bool
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """dL/dx = g W^T and dL/dW = x^T g as two blocks of one parallel section (dL/db, a
    GEMV, with the first)."""
    dtype = np.result_type(g2, kernel)
    dx = np.empty((g2.shape[0], kernel.shape[0]), dtype=dtype)
    dw = np.empty(kernel.shape, dtype=np.result_type(x2, g2))
    db: list[np.ndarray | None] = [None]

    def body(i: int, _: object) -> None:
        if i == 0:
            np.matmul(g2, kernel.T, out=dx)
            if need_bias:
                db[0] = np.ones(g2.shape[0], dtype=g2.dtype) @ g2
        else:
            np.matmul(x2.T, g2, out=dw)

    parallel.run_blocks(2, body, blas=True)
    return dx.reshape(x_shape), dw, db[0]


def dense_rows(x: np.ndarray, kernel: np.ndarray) -> np.ndarray | None:
    """y = x @ kernel over the last axis with every row summed alike,

        y[..., j] = sum_{k = 0 .. in-1} x[..., k] kernel[k, j]   (in that order)

    so each row of a batch equals that row's product alone, bit for bit, whatever the batch
    (the C helper ``_dense``; a BLAS GEMM does not promise this). None where the helper does
    not apply (not built or switched off, not float32): the caller keeps its own path."""
    if x.dtype != np.float32 or kernel.dtype != np.float32 or kernel.ndim != 2 or \
            not dense.available():
        return None
    n_in, n_out = kernel.shape
    y = dense.rows_matmul(x.reshape(-1, n_in), kernel)
    return y.reshape(x.shape[:-1] + (n_out,))
