"""Which convolution algorithm runs, and how the work is cut: every measured threshold lives in
one frozen object, :data:`THRESHOLDS` (a :class:`ConvThresholds`).

The kernels read ``dispatch.THRESHOLDS`` at call time. To try other values (tests, tuning),
replace the whole object: ``with dispatch.overridden(block_bytes=1): ...`` or
``monkeypatch.setattr(dispatch, "THRESHOLDS", dataclasses.replace(dispatch.THRESHOLDS,
...))``. The timings behind each value are in bench/RESULTS.md, section "Why the conv
dispatch thresholds are what they are"; the comments here give the one-line reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import native, parallel
from ..padding import Pads
from .geometry import Ints, conv_output_sizes, is_depthwise, is_pointwise


@dataclasses.dataclass(frozen=True)
class ConvThresholds:
    """Measured dispatch thresholds (bytes, multiply-adds (MACs), channels, pixels)."""

    # im2col blocks of about this size stay in cache between the copy and the GEMM (2-3x)
    block_bytes: int = 4 << 20
    # work of min_blocks_bytes or more is cut into at least min_blocks blocks (every thread)
    min_blocks: int = 4
    min_blocks_bytes: int = 1 << 20
    # padded input per block of the NumPy depthwise kernel
    depthwise_block_bytes: int = 1 << 19
    # tap-major im2col (whole pixel rows per copy) up to this many input channels (2-5x)
    tap_major_max_channels: int = 4
    # tap-major dcols for col2im up to this many input channels (2x; slower from 32)
    col2im_taps_max_channels: int = 16
    # C kernels: one call below this many MACs (a hand-over costs more than it saves)...
    native_min_parallel_macs: int = 1 << 25
    # ... else this many batch blocks (a fixed cut: dK sums independent of threads)
    native_blocks: int = 8
    # the fused conv + 2x2 pool inference kernel: batch blocks from this many MACs (two
    # threads measured 0.85x wall on W1's first layer at 29M MACs, whole plan, load ~2)
    native_pool_parallel_macs: int = 1 << 22
    # small batches from this many MACs run in row pieces on the C library's spinning pool
    native_min_pool_macs: int = 1 << 20
    # C forward / dK beat im2col + GEMM from this many output channels...
    native_min_out_channels: int = 6
    # ... or from this kernel depth K_H*K_W*C_in (fewer lanes wasted on padding)
    native_min_kernel_depth: int = 64
    # C dX at stride 1: from this many input channels, or for an output-channel range...
    native_dx_min_in_channels: int = 4
    native_dx_out_channels: tuple[int, int] = (3, 8)
    # ... and at larger strides (the scatter kernel) from this many input channels
    native_dx_strided_min_in_channels: int = 8
    # strides >= this: dK by im2col + GEMM, not the C kernel (AVX2 EPYC, one thread, batch
    # 16: 1.4-3.9x on ResNet-50's 3x3 stride-2 layers and 1.9x on its 7x7 stem)
    im2col_dk_min_stride: int = 2
    # C dX by one KW*Cin row run per kernel row: few input and output channels
    rowrun_max_in_channels: int = 6
    rowrun_max_out_channels: int = 16
    # Winograd F(2x2, 3x3) forward / dX from this many input and output channels (with 16 the
    # direct kernel was 1.1-1.45x faster: 64x64 and 32x32 at batch 16, 32x32 at batch 128)
    winograd_min_channels: int = 32
    # Winograd dK F(3x3, 2x2) from this many channels, images up to this many pixels (AVX2
    # EPYC: 1.4-2.2x the direct dK at 48x48 to 64x64, ResNet-50's 56x56x64 layers included)
    winograd_dk_min_channels: int = 32
    winograd_dk_max_pixels: int = 64 * 64
    # batches under winograd_narrow_min_batch take Winograd only from this output width
    winograd_min_width: int = 12
    winograd_narrow_min_batch: int = 8
    # C depthwise forward: pieces on the kernel threads from this many MACs
    native_depthwise_parallel_macs: int = 1 << 23
    # inference (conv.inference): one im2col + GEMM for at most this many output pixels
    # (batch x H x W) and at least this many input channels (3.5x at batch 1 on ResNet-20's
    # 8x8x64 layers; slower from ~800 pixels; the C kernel wins where it is built)
    small_conv_pixels: int = 256
    small_conv_channels: int = 16
    # ... and, with the C kernels built, for kernels of at least this many weights (KH x KW x
    # C_in x C_out): their row pieces re-read weights that no cache holds, one output row at a
    # time. Batch 1, AVX2, 2 threads, ms C vs GEMM: 3x3 512->512 at 7x7 out 10.0 vs 4.2,
    # stride 2 14->7 10.3 vs 4.0, 14x14 17.6 vs 12.0; 256->256 (590k weights) at 14x14 3.2
    # vs 3.1, 10x10 1.5 vs 1.7
    small_conv_gemm_weights: int = 1 << 20
    # inference 1x1 convolutions: GEMM row blocks of about this many output bytes, each
    # followed by its bias and activation while still in cache
    pointwise_block_bytes: int = 1 << 20
    # GEMMs below this many MACs call NumPy directly (OpenBLAS uses one thread there anyway)
    small_gemm_macs: int = 1 << 18

    def __hash__(self) -> int:
        """The fields' hash, computed once (native_plan's cache key holds the thresholds;
        a frozen dataclass would hash its ~30 fields on every convolution, ~3 us)."""
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash(dataclasses.astuple(self))
            object.__setattr__(self, "_hash", h)
        return h


THRESHOLDS = ConvThresholds()


@contextmanager
def overridden(**changes: Any) -> Iterator[ConvThresholds]:
    """:data:`THRESHOLDS` with ``changes`` (field=value) inside the ``with`` block."""
    global THRESHOLDS
    old = THRESHOLDS
    THRESHOLDS = dataclasses.replace(old, **changes)
    try:
        yield THRESHOLDS
    finally:
        THRESHOLDS = old


# ----------------------------------------------------------------------------------------
# how the work is cut
# ----------------------------------------------------------------------------------------
def batch_blocks(n: int, item_bytes: int, target: int | None = None) -> list[tuple[int, int]]:
    """Split range(n) into about equal contiguous blocks of at most ``target // item_bytes``
    items (at least one; ``target`` defaults to ``block_bytes``), and into at least
    ``min_blocks`` blocks for ``min_blocks_bytes`` or more: [(start, stop), ...]. An empty
    batch is one empty block [(0, 0)]. The cut depends on sizes only, never on threads."""
    t = THRESHOLDS
    per = max(1, (t.block_bytes if target is None else target) // max(int(item_bytes), 1))
    k = max(1, -(-n // per))
    if n * int(item_bytes) >= t.min_blocks_bytes:
        k = max(k, min(n, t.min_blocks))
    bounds = [n * i // k for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(k)]


def depthwise_blocks(n: int, out_rows: int, row_bytes: int, stride: int
                     ) -> list[tuple[int, int, int, int]]:
    """(n0, n1, r0, r1) blocks of the batch and of the first spatial axis's output rows, each
    reading about ``depthwise_block_bytes`` of input (``row_bytes``: one padded input row)."""
    target = THRESHOLDS.depthwise_block_bytes
    image = out_rows * stride * row_bytes
    if image <= target:
        return [(n0, n1, 0, out_rows) for n0, n1 in batch_blocks(n, image, target)]
    per = max(1, target // max(stride * row_bytes, 1))
    rows = parallel.split(out_rows, -(-out_rows // per))
    return [(i, i + 1, r0, r1) for i in range(n) for r0, r1 in rows]


def native_blocks(n: int, macs: int, least: int | None = None) -> list[tuple[int, int]]:
    """Batch blocks for the C kernels: one for jobs under ``least`` MACs (default
    ``native_min_parallel_macs``), else ``native_blocks``."""
    if macs < (THRESHOLDS.native_min_parallel_macs if least is None else least):
        return [(0, n)]
    return parallel.split(n, THRESHOLDS.native_blocks)


def pool_pieces(n: int, macs: int) -> int:
    """Row pieces per image on the C library's spinning pool (0: batch blocks instead)."""
    if n >= THRESHOLDS.native_blocks or macs < THRESHOLDS.native_min_pool_macs:
        return 0
    threads = parallel.pieces_for(parallel.MIN_PARALLEL_BYTES, 1)  # 1 inside a kernel thread
    if threads <= 1:
        return 0
    return threads if n == 1 else max(1, -(-2 * threads // n))


# ----------------------------------------------------------------------------------------
# which algorithm
# ----------------------------------------------------------------------------------------
def tap_major(channels: int, groups: int) -> bool:
    """im2col as cols^T (T*C, M): whole rows of pixels per copy, for image-like inputs."""
    return groups == 1 and channels <= THRESHOLDS.tap_major_max_channels


def dx_method(method: str, strides: Ints, x_shape: tuple[int, ...],
              g_shape: tuple[int, ...]) -> str:
    """'flip' or 'col2im' for the NumPy dX: "auto" takes 'flip' at stride 1 when its im2col
    matrix is no larger than col2im's dcols (one copy beats T read-modify-write passes)."""
    stride1 = all(s == 1 for s in strides)
    if method == "auto":
        flip_size = int(np.prod(x_shape[1:-1])) * g_shape[-1]
        col_size = int(np.prod(g_shape[1:-1])) * x_shape[-1]
        return "flip" if stride1 and flip_size <= col_size else "col2im"
    if method == "flip" and not stride1:
        raise ValueError("method 'flip' needs stride 1")
    return method


def use_native(x_shape: tuple[int, ...], dtypes: Sequence[Any], w: np.ndarray, groups: int,
               strides: Ints, pads: Pads, out_sizes: Ints) -> bool:
    """The C kernels take float32 2-D convolutions with groups == 1 (1x1 convolutions stay a
    plain GEMM); ``dtypes``: those of all the arrays involved."""
    return (len(x_shape) == 4 and groups == 1 and all(d == np.float32 for d in dtypes)
            and w.dtype == np.float32
            and not is_pointwise(w.shape[:2], strides, pads, x_shape[1:-1], out_sizes)
            and native.available())


def native_wins(w_shape: tuple[int, ...]) -> bool:
    """Forward and dK by the C kernels (1.2-3.3x on every benchmark layer); not for a shallow
    kernel with few outputs (3x3x1 -> 1), where most vector lanes would be padding."""
    t = THRESHOLDS
    return (w_shape[-1] >= t.native_min_out_channels
            or int(np.prod(w_shape[:-1])) >= t.native_min_kernel_depth)


def native_dx_ok(strides: Ints, c_in: int, c_out: int) -> bool:
    """dX by the C kernels: flipped-kernel forward at stride 1 (slower only for 1-channel
    inputs with many or one outputs), the scatter kernel at larger strides."""
    t = THRESHOLDS
    if all(s == 1 for s in strides):
        lo, hi = t.native_dx_out_channels
        return c_in >= t.native_dx_min_in_channels or lo <= c_out <= hi
    return c_in >= t.native_dx_strided_min_in_channels


def im2col_dk(strides: Ints) -> bool:
    """dK of a C-kernel convolution by im2col + GEMM instead (strided layers)."""
    return max(strides) >= THRESHOLDS.im2col_dk_min_stride


def use_rowrun(w_shape: tuple[int, ...], strides: Ints, dilation: Ints) -> bool:
    """dX by ``native.input_grad_rowrun`` at stride 1 for few input and output channels."""
    kw, cin, cout = w_shape[1], w_shape[2], w_shape[3]
    t = THRESHOLDS
    return (all(s == 1 for s in strides) and dilation[1] == 1
            and cin <= t.rowrun_max_in_channels and cout <= t.rowrun_max_out_channels
            and kw * cin <= native.ROWRUN_MAX)


def strided_pointwise(x_shape: tuple[int, ...], w_shape: tuple[int, ...], strides: Ints,
                      pads: Pads, dilation: Ints, groups: int) -> tuple[slice, ...] | None:
    """For a 2-D 1x1 convolution at a stride > 1 whose every output pixel reads an input
    pixel (o*S, no padding before): the slices picking those pixels, else None. It is then
    the 1x1 stride-1 convolution (one GEMM) of that strided subset of x (ResNet's shortcut
    projections: ~1.6x the C kernels, forward + dX + dK)."""
    if (groups != 1 or len(x_shape) != 4 or any(k != 1 for k in w_shape[:2])
            or all(s == 1 for s in strides) or any(p[0] != 0 for p in pads)):
        return None
    out = conv_output_sizes(x_shape[1:-1], w_shape[:2], strides, pads, dilation)
    if any(o < 1 or (o - 1) * s >= n for o, s, n in zip(out, strides, x_shape[1:-1],
                                                         strict=True)):
        return None
    return (slice(None),) + tuple(slice(0, (o - 1) * s + 1, s)
                                  for o, s in zip(out, strides, strict=True))


def winograd_fits(ksize: Ints, strides: Ints, dilation: Ints, c_in: int, c_out: int) -> bool:
    """3x3, stride 1, dilation 1 and enough channels for Winograd F(2x2, 3x3)."""
    return (tuple(ksize) == (3, 3) and all(s == 1 for s in strides)
            and all(d == 1 for d in dilation)
            and min(c_in, c_out) >= THRESHOLDS.winograd_min_channels)


def use_winograd(w_shape: tuple[int, ...], strides: Ints, dilation: Ints, n: int,
                 out_w: int) -> bool:
    """Winograd forward for n images: small batches only for wide enough outputs."""
    t = THRESHOLDS
    return (winograd_fits(w_shape[:2], strides, dilation, w_shape[-2], w_shape[-1])
            and (out_w >= t.winograd_min_width or n >= t.winograd_narrow_min_batch))


def winograd_dk(w_shape: tuple[int, ...], strides: Ints, dilation: Ints, pixels: int) -> bool:
    """Winograd dK F(3x3, 2x2): deep enough layers on images of at most so many pixels."""
    t = THRESHOLDS
    return (winograd_fits(w_shape[:2], strides, dilation, w_shape[-2], w_shape[-1])
            and min(w_shape[-2:]) >= t.winograd_dk_min_channels
            and pixels <= t.winograd_dk_max_pixels)


# ----------------------------------------------------------------------------------------
# the forward plan, cached per call signature
# ----------------------------------------------------------------------------------------
Plan = tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int], bool]
_PLANS: dict[tuple, Plan | None] = {}
_NO_PLAN = object()


def _make_plan(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
               pads: Pads, dilation: Ints, groups: int) -> Plan | None:
    if x.ndim != 4 or x.shape[0] == 0 or is_depthwise(x.shape, groups) \
            or strided_pointwise(x.shape, w.shape, strides, pads, dilation, groups):
        return None  # (a strided 1x1 convolution is a GEMM: no plan)
    out = conv_output_sizes(x.shape[1:-1], w.shape[:2], strides, pads, dilation)
    dtypes = (x.dtype,) if b is None else (x.dtype, b.dtype)
    if not (native_wins(w.shape) and use_native(x.shape, dtypes, w, groups, strides, pads,
                                                out)):
        return None
    return ((out[0], out[1]), (int(strides[0]), int(strides[1])),
            (int(dilation[0]), int(dilation[1])), (pads[0][0], pads[1][0]),
            use_winograd(w.shape, strides, dilation, x.shape[0], out[1]))


def native_plan(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Ints,
                pads: Pads, dilation: Ints, groups: int) -> Plan | None:
    """(output sizes, strides, dilation, top-left pads, Winograd?) when the forward takes the
    C kernels, else None; cached per call signature and thresholds object (the checks cost
    ~10 us, as much as a small batch-1 kernel)."""
    key = (x.shape, w.shape, x.dtype, w.dtype, None if b is None else b.dtype, strides, pads,
           dilation, groups, THRESHOLDS)
    try:
        plan = _PLANS.get(key, _NO_PLAN)
    except TypeError:  # lists among the arguments: no caching
        return None
    if plan is not _NO_PLAN:
        return plan  # type: ignore[return-value]
    plan = _make_plan(x, w, b, strides, pads, dilation, groups)
    if len(_PLANS) >= 512:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan
