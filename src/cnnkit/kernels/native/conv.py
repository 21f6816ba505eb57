"""Optional compiled helper: direct 2-D convolution kernels (``_conv.c``) loaded with ctypes.

The C library is built by ``pip install`` (setup.py, an optional extension: an install
without a compiler still succeeds, and then :func:`available` is False and the kernels keep
their NumPy path). ``CNNKIT_NATIVE=0`` in the environment switches it off; :func:`set_enabled`
does the same at run time (tests); :mod:`.loader` picks the CPU's build variant. ctypes
releases the GIL during a call, so the kernel threads (:mod:`cnnkit.kernels.parallel`) run the
C kernels on batch blocks side by side.

Every function takes float32, C-contiguous, channels-last arrays (see ``_conv.c``):

    forward      z[n, oy, ox, o] = sum_{i, j, c} x[n, oy*SH + i*DH - PT, ox*SW + j*DW - PL, c]
                                   * k[i, j, c, o] + b[o]
    input_grad   dX, the adjoint of forward in x, for output error dZ
    kernel_grad  dK[i, j, c, o] = sum_{n, oy, ox} x[n, iy, ix, c] dZ[n, oy, ox, o]
    depthwise_forward / depthwise_backward: the same for a depthwise kernel k (KH, KW, C)

:func:`forward_pieces` runs one forward call in row pieces on the library's own spinning
thread pool (batch-1 latency: no wake-up of a sleeping thread per call).
"""

from __future__ import annotations

import ctypes

import numpy as np

from .loader import NativeLibrary

__all__ = ["SIGNATURES", "available", "set_enabled", "library_path", "variant", "forward",
           "winograd_kernel", "forward_winograd", "forward_pieces", "forward_pool",
           "depthwise_forward", "depthwise_backward", "input_grad", "input_grad_rowrun",
           "kernel_grad", "kernel_grad_winograd"]

_F32P = ctypes.c_void_p  # float32 data pointers, passed as addresses (ints)
_I64 = ctypes.c_int64
_INT = ctypes.c_int  # 0, or -1 when a kernel could not allocate its buffers
_GEOMETRY = [_I64] * 6  # sh, sw, dh, dw, pt, pl
_FORWARD = [_F32P, *[_I64] * 4, _F32P, *[_I64] * 3, _F32P, _F32P, _I64, _I64, *_GEOMETRY]
_WINOGRAD = [_F32P, *[_I64] * 4, _F32P, _I64, _F32P, _F32P, *[_I64] * 4]

# name -> (restype, argtypes) of every function of _conv.c (x, n, h, w, c, k, kh, kw, c', ...)
SIGNATURES = {
    "cnk_conv2d_forward": (_INT, _FORWARD),
    "cnk_conv2d_forward_rows": (_INT, [*_FORWARD, _I64, _I64]),
    "cnk_conv2d_input_grad": (_INT, [_F32P, *[_I64] * 4, _F32P, *[_I64] * 3, _F32P, _I64,
                                     _I64, *_GEOMETRY]),
    "cnk_conv2d_input_grad_rowrun": (_INT, [_F32P, *[_I64] * 4, _F32P, *[_I64] * 3, _F32P,
                                            *[_I64] * 7]),
    "cnk_conv2d_kernel_grad": (_INT, [_F32P, *[_I64] * 4, _F32P, *[_I64] * 3, _F32P, _I64,
                                      _I64, *_GEOMETRY]),
    "cnk_conv2d_forward_winograd": (_INT, _WINOGRAD),
    "cnk_conv2d_forward_winograd_rows": (_INT, [*_WINOGRAD, _I64, _I64]),
    "cnk_conv2d_kernel_grad_winograd": (_INT, [_F32P, *[_I64] * 4, _F32P, *[_I64] * 3, _F32P,
                                               _I64, _I64]),
    "cnk_conv2d_forward_pieces": (_INT, [_F32P, *[_I64] * 4, _F32P, _F32P, *[_I64] * 3,
                                         _F32P, _F32P, *[_I64] * 11]),
    "cnk_depthwise_forward_rows": (_INT, [_F32P, *[_I64] * 4, _F32P, _I64, _I64, _F32P, _F32P,
                                          *[_I64] * 10]),
    "cnk_depthwise_backward": (_INT, [_F32P, _F32P, *[_I64] * 4, _F32P, _I64, _I64, _F32P,
                                      _F32P, *[_I64] * 8]),
    "cnk_conv2d_forward_pool": (_INT, [_F32P, *[_I64] * 4, _F32P, _F32P, *[_I64] * 3,
                                       _F32P, _F32P, *[_I64] * 9, *[ctypes.c_float] * 4]),
    "cnk_winograd_kernel_size": (_I64, [_I64, _I64]),
    "cnk_winograd_kernel": (None, [_F32P, _I64, _I64, _F32P]),
}

# x86-64 without AVX2: the SSE2 baseline build measured 3-9x slower than the NumPy path
_LIB = NativeLibrary("_conv", SIGNATURES, baseline_fallback=False)
_state = _LIB.state
_load = _LIB.load
library_path = _LIB.path
set_enabled = _LIB.set_enabled
available = _LIB.available
variant = _LIB.variant


def _ptr(a: np.ndarray) -> int:
    """The address of a C-contiguous float32 array's data (ValueError for anything else)."""
    if a.dtype != np.float32 or not a.flags.c_contiguous:
        raise ValueError("native kernels take C-contiguous float32 arrays")
    return int(a.ctypes.data)


def _check(rc: int) -> None:
    if rc != 0:
        raise MemoryError("native convolution kernel could not allocate its buffers")


def forward(x: np.ndarray, k: np.ndarray, b: np.ndarray | None, z: np.ndarray,
            strides: tuple[int, int], dilation: tuple[int, int], pad_tl: tuple[int, int],
            rows: tuple[int, int] | None = None) -> None:
    """z (N, OH, OW, Cout) = conv(x (N, H, W, Cin), k (KH, KW, Cin, Cout)) + b, written into z;
    ``pad_tl`` = (top, left) padding (negative crops); ``rows`` = (y0, y1): only output rows
    y0 <= oy < y1 of each image (default all)."""
    lib = _load()
    assert lib is not None
    n, h, w, cin = x.shape
    kh, kw, _, cout = k.shape
    y0, y1 = (0, z.shape[1]) if rows is None else rows
    _check(lib.cnk_conv2d_forward_rows(_ptr(x), n, h, w, cin, _ptr(k), kh, kw, cout,
                                       None if b is None else _ptr(b), _ptr(z), z.shape[1],
                                       z.shape[2], *strides, *dilation, *pad_tl,
                                       max(y0, 0), min(y1, z.shape[1])))


def winograd_kernel(k: np.ndarray) -> np.ndarray:
    """U = G g G^T per channel pair of a 3x3 kernel k (3, 3, Cin, Cout), packed for
    :func:`forward_winograd` (flat float32)."""
    lib = _load()
    assert lib is not None
    if k.shape[:2] != (3, 3):
        raise ValueError(f"Winograd F(2x2, 3x3) needs a 3x3 kernel, got {k.shape[:2]}")
    cin, cout = k.shape[2:]
    u = np.empty(lib.cnk_winograd_kernel_size(cin, cout), dtype=np.float32)
    lib.cnk_winograd_kernel(_ptr(k), cin, cout, _ptr(u))
    return u


def forward_winograd(x: np.ndarray, u: np.ndarray, c_out: int, b: np.ndarray | None,
                     z: np.ndarray, pad_tl: tuple[int, int],
                     rows: tuple[int, int] | None = None) -> None:
    """:func:`forward` for a 3x3 kernel at stride 1, dilation 1 by Winograd F(2x2, 3x3), with
    ``u`` = :func:`winograd_kernel` (k): per 2x2 output tile
    Y = A^T [sum_c (G g G^T) . (B^T d B)] A (4 instead of 9 multiply-adds per output pixel
    and channel pair; see ``_conv.c``); ``rows`` as in :func:`forward` (tiles start at
    y0)."""
    lib = _load()
    assert lib is not None
    n, h, w, cin = x.shape
    if u.size != lib.cnk_winograd_kernel_size(cin, c_out) or z.shape[-1] != c_out:
        raise ValueError("transformed kernel or output does not match the input channels")
    y0, y1 = (0, z.shape[1]) if rows is None else rows
    _check(lib.cnk_conv2d_forward_winograd_rows(_ptr(x), n, h, w, cin, _ptr(u), c_out,
                                                None if b is None else _ptr(b), _ptr(z),
                                                z.shape[1], z.shape[2], *pad_tl,
                                                max(y0, 0), min(y1, z.shape[1])))


def forward_pieces(x: np.ndarray, k: np.ndarray, u: np.ndarray | None, b: np.ndarray | None,
                   z: np.ndarray, strides: tuple[int, int], dilation: tuple[int, int],
                   pad_tl: tuple[int, int], per_image: int, threads: int) -> None:
    """:func:`forward` (``u`` None) or :func:`forward_winograd` (``u`` = winograd_kernel(k))
    with each image's output rows cut into ``per_image`` pieces (Winograd: at even rows),
    run by the caller and ``threads - 1`` threads of the library's own spinning pool (a
    hand-over well under a microsecond while its threads are awake, for batch-1 latency)."""
    lib = _load()
    assert lib is not None
    n, h, w, cin = x.shape
    kh, kw, _, cout = k.shape
    if u is not None and (u.size != lib.cnk_winograd_kernel_size(cin, cout) or (kh, kw) != (3, 3)
                          or tuple(strides) != (1, 1) or tuple(dilation) != (1, 1)):
        raise ValueError("Winograd pieces need a 3x3 stride-1 kernel and its transform")
    _check(lib.cnk_conv2d_forward_pieces(_ptr(x), n, h, w, cin, _ptr(k),
                                         None if u is None else _ptr(u), kh, kw, cout,
                                         None if b is None else _ptr(b), _ptr(z), z.shape[1],
                                         z.shape[2], *strides, *dilation, *pad_tl, per_image,
                                         1 if u is None else 2, threads))


def forward_pool(x: np.ndarray, k: np.ndarray, u: np.ndarray | None, b: np.ndarray | None,
                 p: np.ndarray, out_sizes: tuple[int, int], strides: tuple[int, int],
                 dilation: tuple[int, int], pad_tl: tuple[int, int], avg: bool,
                 pre: tuple[float, float], post: tuple[float, float]) -> None:
    """p (N, OH//2, OW//2, Cout) = clip(pool(clip(conv(x, k) + b, *pre)), *post), written
    into p: the convolution of :func:`forward` (``u`` None) or :func:`forward_winograd`
    (``u`` = winograd_kernel(k)) of output size ``out_sizes`` = (OH, OW), pooled over 2x2
    windows at stride 2 ("valid"; the max, or with ``avg`` the mean
    ((z00 + z10) + (z01 + z11)) * 0.25) two output rows at a time, so the (OH, OW) output is
    never stored; each value equals pooling that convolution's output."""
    lib = _load()
    assert lib is not None
    n, h, w, cin = x.shape
    kh, kw, _, cout = k.shape
    oh, ow = out_sizes
    if p.shape != (n, oh // 2, ow // 2, cout):
        raise ValueError(f"pooled output {p.shape} does not fit the convolution's {out_sizes}")
    if u is not None and (u.size != lib.cnk_winograd_kernel_size(cin, cout) or (kh, kw) != (3, 3)
                          or tuple(strides) != (1, 1) or tuple(dilation) != (1, 1)):
        raise ValueError("Winograd needs a 3x3 stride-1 kernel and its transform")
    _check(lib.cnk_conv2d_forward_pool(_ptr(x), n, h, w, cin, _ptr(k),
                                       None if u is None else _ptr(u), kh, kw, cout,
                                       None if b is None else _ptr(b), _ptr(p), oh, ow,
                                       *strides, *dilation, *pad_tl, int(avg), *pre, *post))


def depthwise_forward(x: np.ndarray, k: np.ndarray, b: np.ndarray | None, z: np.ndarray,
                      strides: tuple[int, int], dilation: tuple[int, int],
                      pad_tl: tuple[int, int], rows: tuple[int, int] | None = None) -> None:
    """z[n, oy, ox, c] = b[c] + sum_{i, j} x[n, oy*SH + i*DH - PT, ox*SW + j*DW - PL, c]
    k[i, j, c] (depthwise, multiplier 1; k (KH, KW, C), at most 49 taps), written into z
    (N, OH, OW, C); ``rows`` as in :func:`forward`."""
    lib = _load()
    assert lib is not None
    n, h, w, c = x.shape
    kh, kw = k.shape[:2]
    if k.shape != (kh, kw, c) or z.shape[-1] != c or kh * kw > 49 or kh > 16:
        raise ValueError(f"depthwise kernel {k.shape} does not fit {c} channels (or has more "
                         f"than 49 taps)")
    y0, y1 = (0, z.shape[1]) if rows is None else rows
    _check(lib.cnk_depthwise_forward_rows(_ptr(x), n, h, w, c, _ptr(k), kh, kw,
                                          None if b is None else _ptr(b), _ptr(z), z.shape[1],
                                          z.shape[2], *strides, *dilation, *pad_tl,
                                          max(y0, 0), min(y1, z.shape[1])))


def depthwise_backward(x: np.ndarray, g: np.ndarray, k: np.ndarray, dx: np.ndarray | None,
                       dk: np.ndarray | None, strides: tuple[int, int],
                       dilation: tuple[int, int], pad_tl: tuple[int, int]) -> None:
    """Gradients of :func:`depthwise_forward` for output error g (N, OH, OW, C), written into
    dx (x's shape) and dk (KH, KW, C) (either may be None):
    dx[n, iy, ix, c] = sum of g[n, oy, ox, c] k[i, j, c] over the (oy, ox, i, j) reading
    (iy, ix); dk[i, j, c] = sum_{n, oy, ox} x[n, iy, ix, c] g[n, oy, ox, c]."""
    lib = _load()
    assert lib is not None
    n, h, w, c = x.shape
    kh, kw = k.shape[:2]
    if k.shape != (kh, kw, c) or g.shape[0] != n or g.shape[-1] != c:
        raise ValueError(f"depthwise kernel {k.shape} or error {g.shape} does not fit x "
                         f"{x.shape}")
    if dx is not None and dx.shape != x.shape:
        raise ValueError("dx must have x's shape")
    if dk is not None and dk.shape != k.shape:
        raise ValueError("dk must have k's shape")
    _check(lib.cnk_depthwise_backward(_ptr(x), _ptr(g), n, h, w, c, _ptr(k), kh, kw,
                                      None if dx is None else _ptr(dx),
                                      None if dk is None else _ptr(dk), g.shape[1], g.shape[2],
                                      *strides, *dilation, *pad_tl))


def input_grad(g: np.ndarray, k: np.ndarray, dx: np.ndarray, strides: tuple[int, int],
               dilation: tuple[int, int], pad_tl: tuple[int, int]) -> None:
    """dx (N, H, W, Cin) = the input gradient of :func:`forward` for output error g, written
    into dx."""
    lib = _load()
    assert lib is not None
    n, oh, ow, cout = g.shape
    kh, kw, cin, _ = k.shape
    _check(lib.cnk_conv2d_input_grad(_ptr(g), n, oh, ow, cout, _ptr(k), kh, kw, cin, _ptr(dx),
                                     dx.shape[1], dx.shape[2], *strides, *dilation, *pad_tl))


def input_grad_rowrun(g: np.ndarray, k: np.ndarray, dx: np.ndarray,
                      strides: tuple[int, int], dilation_h: int, pad_tl: tuple[int, int]) -> None:
    """:func:`input_grad` (dilation 1 along the width) for kernels with KW*Cin <= 32: per
    output pixel and kernel row i, the KW*Cin values sum_o g[p, o] k[i, :, :, o] are computed
    as one vector and added into dX's row oy*SH + i*DH from column ox*SW - PL on."""
    lib = _load()
    assert lib is not None
    n, oh, ow, cout = g.shape
    kh, kw, cin, _ = k.shape
    if kw * cin > ROWRUN_MAX:
        raise ValueError(f"KW*Cin = {kw * cin} > {ROWRUN_MAX}")
    _check(lib.cnk_conv2d_input_grad_rowrun(_ptr(g), n, oh, ow, cout, _ptr(k), kh, kw, cin,
                                            _ptr(dx), dx.shape[1], dx.shape[2], *strides,
                                            dilation_h, *pad_tl))


# the longest run KW*Cin :func:`input_grad_rowrun` takes (MAX_CB in _conv.c)
ROWRUN_MAX = 32


def kernel_grad(x: np.ndarray, g: np.ndarray, dk: np.ndarray, strides: tuple[int, int],
                dilation: tuple[int, int], pad_tl: tuple[int, int]) -> None:
    """dk (KH, KW, Cin, Cout) = sum over the batch of x's windows times g, written into dk."""
    lib = _load()
    assert lib is not None
    n, h, w, cin = x.shape
    _, oh, ow, cout = g.shape
    _check(lib.cnk_conv2d_kernel_grad(_ptr(x), n, h, w, cin, _ptr(g), oh, ow, cout, _ptr(dk),
                                      dk.shape[0], dk.shape[1], *strides, *dilation, *pad_tl))


def kernel_grad_winograd(x: np.ndarray, g: np.ndarray, dk: np.ndarray,
                         pad_tl: tuple[int, int]) -> None:
    """:func:`kernel_grad` of a 3x3 stride-1 convolution by Winograd F(3x3, 2x2):
    dK = G^T [sum over 2x2 output tiles (A dY A^T) . (B^T d B)] G (see ``_conv.c``)."""
    lib = _load()
    assert lib is not None
    n, h, w, cin = x.shape
    _, oh, ow, cout = g.shape
    if dk.shape != (3, 3, cin, cout):
        raise ValueError(f"Winograd F(3x3, 2x2) needs a 3x3 kernel, got {dk.shape}")
    _check(lib.cnk_conv2d_kernel_grad_winograd(_ptr(x), n, h, w, cin, _ptr(g), oh, ow, cout,
                                               _ptr(dk), *pad_tl))
