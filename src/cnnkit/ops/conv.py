"""Convolutions on Tensors, channels-last (Keras argument names and kernel layouts).

- ``conv`` / ``conv1d`` / ``conv2d`` / ``conv3d``: kernel (*K, C_in/groups, C_out).
- ``depthwise_conv2d``: kernel (KH, KW, C_in, multiplier); output channel c*multiplier + m.
- ``separable_conv2d``: depthwise kernel (KH, KW, C_in, M) then pointwise (1, 1, C_in*M, C_out).
- ``conv{1,2,3}d_transpose``: kernel (*K, C_out, C_in) as in Keras.

``padding`` is "valid", "same" (Keras: any odd extra pixel at the end), "causal" (1-D
convolution only), an int, or one int / (before, after) pair per spatial axis.
"""

from __future__ import annotations

from typing import Any

from ..kernels import conv as K
from ..kernels.padding import Pads, normalize_tuple, resolve_padding
from ._core import Tensor, channels_last_only, check_rank, floating_operands, record

__all__ = ["conv", "conv1d", "conv2d", "conv3d", "depthwise_conv2d", "separable_conv2d",
           "conv1d_transpose", "conv2d_transpose", "conv3d_transpose"]

_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}
_KLAYOUTS = {1: "(K, C_in/groups, C_out)", 2: "(KH, KW, C_in/groups, C_out)",
             3: "(KD, KH, KW, C_in/groups, C_out)"}
_TLAYOUTS = {1: "(K, C_out, C_in)", 2: "(KH, KW, C_out, C_in)", 3: "(KD, KH, KW, C_out, C_in)"}


def _tensors(op: str, **named: Any) -> dict[str, Tensor | None]:
    return floating_operands(op, **named)


def _spatial_rank(op: str, x: Tensor, nd: int | None) -> int:
    if nd is None:
        if x.ndim not in (3, 4, 5):
            raise ValueError(f"{op} expects x of rank 3, 4 or 5 (N, *spatial, C), got rank "
                             f"{x.ndim} (shape {x.shape})")
        return x.ndim - 2
    check_rank(op, "x", x, nd + 2, _LAYOUTS[nd])
    return nd


def _check_bias(op: str, bias: Tensor | None, channels: int) -> None:
    if bias is not None and bias.shape != (channels,):
        raise ValueError(f"{op} expects bias of shape ({channels},), got shape {bias.shape}")


def _geometry(op: str, x: Tensor, ksize: tuple[int, ...], strides: Any, padding: Any,
              dilation_rate: Any) -> tuple[tuple[int, ...], Pads, tuple[int, ...]]:
    nd = len(ksize)
    try:
        s = normalize_tuple(strides, nd, "strides")
        d = normalize_tuple(dilation_rate, nd, "dilation_rate")
        pads = resolve_padding(padding, x.shape[1:-1], ksize, s, d)
        K.conv_output_sizes(x.shape[1:-1], ksize, s, pads, d)
    except ValueError as e:
        raise ValueError(f"{op}: {e}") from None
    return s, pads, d


def _conv(op: str, nd: int | None, x: Any, kernel: Any, bias: Any, strides: Any, padding: Any,
          dilation_rate: Any, groups: Any) -> Tensor:
    t = _tensors(op, x=x, kernel=kernel, bias=bias)
    x, w, b = t["x"], t["kernel"], t["bias"]
    nd = _spatial_rank(op, x, nd)
    check_rank(op, "kernel", w, nd + 2, _KLAYOUTS[nd])
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be an int >= 1, got {groups!r}")
    c_in, c_out = x.shape[-1], w.shape[-1]
    if c_in % groups or c_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({c_in}) "
                         f"and the output channels ({c_out}, kernel shape {w.shape})")
    if w.shape[-2] * groups != c_in:
        raise ValueError(f"{op} expects x with {w.shape[-2] * groups} channels (kernel shape "
                         f"{w.shape}, groups={groups}), got {c_in} (shape {x.shape})")
    _check_bias(op, b, c_out)
    s, pads, d = _geometry(op, x, w.shape[:nd], strides, padding, dilation_rate)
    need_dx, need_dw = x.requires_grad, w.requires_grad
    need_db = b is not None and b.requires_grad
    z, cols = K.conv_forward(x.data, w.data, None if b is None else b.data, s, pads, d, groups,
                             keep_cols=need_dw)

    def backward(g: Any) -> tuple:
        return K.conv_backward(g, x.data, w.data, cols, s, pads, d, groups,
                               need_dx, need_dw, need_db)

    return record(z, (x, w, b), backward, op)


def conv(inputs: Any, kernel: Any, strides: Any = 1, padding: Any = "valid",
         data_format: str | None = None, dilation_rate: Any = 1, bias: Any = None,
         groups: int = 1) -> Tensor:
    """N-d convolution (cross-correlation) for x of rank 3, 4 or 5, channels-last.

    Z[n, o, k] = sum_{t, c} x[n, o*strides + t*dilation_rate - pad, c] kernel[t, c, k] + bias[k],
    with kernel (*K, C_in/groups, C_out); input channels split into ``groups`` groups, each
    seeing C_out/groups of the output channels. Arguments in keras.ops.conv's order; ``bias``
    and ``groups`` come after them.
    """
    channels_last_only("conv", data_format)
    return _conv("conv", None, inputs, kernel, bias, strides, padding, dilation_rate, groups)


def conv1d(x: Any, kernel: Any, bias: Any = None, strides: Any = 1, padding: Any = "valid",
           dilation_rate: Any = 1, groups: int = 1) -> Tensor:
    """1-D convolution: x (N, L, C_in), kernel (K, C_in/groups, C_out); see :func:`conv`."""
    return _conv("conv1d", 1, x, kernel, bias, strides, padding, dilation_rate, groups)


def conv2d(x: Any, kernel: Any, bias: Any = None, strides: Any = 1, padding: Any = "valid",
           dilation_rate: Any = 1, groups: int = 1) -> Tensor:
    """2-D convolution: x (N, H, W, C_in), kernel (KH, KW, C_in/groups, C_out); see :func:`conv`."""
    return _conv("conv2d", 2, x, kernel, bias, strides, padding, dilation_rate, groups)


def conv3d(x: Any, kernel: Any, bias: Any = None, strides: Any = 1, padding: Any = "valid",
           dilation_rate: Any = 1, groups: int = 1) -> Tensor:
    """3-D convolution: x (N, D, H, W, C_in), kernel (KD, KH, KW, C_in/groups, C_out)."""
    return _conv("conv3d", 3, x, kernel, bias, strides, padding, dilation_rate, groups)


def _check_depthwise_kernel(op: str, x: Tensor, w: Tensor, name: str) -> None:
    check_rank(op, name, w, 4, "(KH, KW, C_in, depth_multiplier)")
    if w.shape[2] != x.shape[-1]:
        raise ValueError(f"{op} expects x with {w.shape[2]} channels ({name} shape {w.shape}), "
                         f"got {x.shape[-1]} (shape {x.shape})")


def depthwise_conv2d(x: Any, kernel: Any, bias: Any = None, strides: Any = 1,
                     padding: Any = "valid", dilation_rate: Any = 1) -> Tensor:
    """Depthwise 2-D convolution: every input channel c is convolved with its own M filters.

    x (N, H, W, C), kernel (KH, KW, C, M) -> (N, H', W', C*M), output channel c*M + m:
    Z[n, o, c*M + m] = sum_t x[n, o*strides + t*dilation_rate - pad, c] kernel[t, c, m] + bias.
    """
    op = "depthwise_conv2d"
    t = _tensors(op, x=x, kernel=kernel, bias=bias)
    x, w, b = t["x"], t["kernel"], t["bias"]
    check_rank(op, "x", x, 4, _LAYOUTS[2])
    _check_depthwise_kernel(op, x, w, "kernel")
    _check_bias(op, b, w.shape[2] * w.shape[3])
    s, pads, d = _geometry(op, x, w.shape[:2], strides, padding, dilation_rate)
    need = (x.requires_grad, w.requires_grad, b is not None and b.requires_grad)
    z = K.depthwise_conv_forward(x.data, w.data, None if b is None else b.data, s, pads, d)
    return record(z, (x, w, b),
                  lambda g: K.depthwise_conv_backward(g, x.data, w.data, s, pads, d, *need), op)


def separable_conv2d(x: Any, depthwise_kernel: Any, pointwise_kernel: Any, bias: Any = None,
                     strides: Any = 1, padding: Any = "valid", dilation_rate: Any = 1
                     ) -> Tensor:
    """Depthwise 2-D convolution (kernel (KH, KW, C, M), no bias) followed by a pointwise 1x1
    convolution (kernel (1, 1, C*M, C_out)) and then the bias (C_out,)."""
    op = "separable_conv2d"
    t = _tensors(op, x=x, depthwise_kernel=depthwise_kernel, pointwise_kernel=pointwise_kernel,
                 bias=bias)
    x, wd, wp, b = t["x"], t["depthwise_kernel"], t["pointwise_kernel"], t["bias"]
    check_rank(op, "x", x, 4, _LAYOUTS[2])
    _check_depthwise_kernel(op, x, wd, "depthwise_kernel")
    check_rank(op, "pointwise_kernel", wp, 4, "(1, 1, C_in*depth_multiplier, C_out)")
    mid = wd.shape[2] * wd.shape[3]
    if wp.shape[:3] != (1, 1, mid):
        raise ValueError(f"{op} expects pointwise_kernel of shape (1, 1, {mid}, C_out) for "
                         f"depthwise_kernel shape {wd.shape}, got shape {wp.shape}")
    _check_bias(op, b, wp.shape[-1])
    s, pads, d = _geometry(op, x, wd.shape[:2], strides, padding, dilation_rate)
    need = (x.requires_grad, wd.requires_grad, wp.requires_grad,
            b is not None and b.requires_grad)
    z, mid_out = K.separable_conv_forward(x.data, wd.data, wp.data,
                                          None if b is None else b.data, s, pads, d)
    return record(z, (x, wd, wp, b),
                  lambda g: K.separable_conv_backward(g, x.data, wd.data, wp.data, mid_out, s,
                                                      pads, d, *need), op)


def _conv_transpose(op: str, nd: int, x: Any, kernel: Any, bias: Any, strides: Any,
                    padding: Any, output_padding: Any, dilation_rate: Any) -> Tensor:
    t = _tensors(op, x=x, kernel=kernel, bias=bias)
    x, w, b = t["x"], t["kernel"], t["bias"]
    check_rank(op, "x", x, nd + 2, _LAYOUTS[nd])
    check_rank(op, "kernel", w, nd + 2, _TLAYOUTS[nd])
    if w.shape[-1] != x.shape[-1]:
        raise ValueError(f"{op} expects x with {w.shape[-1]} channels (kernel shape {w.shape}, "
                         f"layout {_TLAYOUTS[nd]}), got {x.shape[-1]} (shape {x.shape})")
    _check_bias(op, b, w.shape[-2])
    ksize = w.shape[:nd]
    try:
        s = normalize_tuple(strides, nd, "strides")
        d = normalize_tuple(dilation_rate, nd, "dilation_rate")
        op_pad = None
        if output_padding is not None:
            op_pad = normalize_tuple(output_padding, nd, "output_padding", minimum=0)
            for a in range(nd):
                if op_pad[a] >= max(s[a], d[a]):
                    raise ValueError(f"output_padding must be smaller than the stride or the "
                                     f"dilation, got output_padding {output_padding!r}, "
                                     f"strides {strides!r}, dilation_rate {dilation_rate!r}")
        out_sizes, pads = K.conv_transpose_geometry(x.shape[1:-1], ksize, s, padding, op_pad, d)
    except ValueError as e:
        raise ValueError(f"{op}: {e}") from None
    need = (x.requires_grad, w.requires_grad, b is not None and b.requires_grad)
    y = K.conv_transpose_forward(x.data, w.data, None if b is None else b.data, s, pads, d,
                                 out_sizes)
    return record(y, (x, w, b),
                  lambda g: K.conv_transpose_backward(g, x.data, w.data, s, pads, d, *need), op)


def conv1d_transpose(x: Any, kernel: Any, bias: Any = None, strides: Any = 1,
                     padding: Any = "valid", output_padding: Any = None,
                     dilation_rate: Any = 1) -> Tensor:
    """Transposed 1-D convolution (the input gradient of conv1d): x (N, L, C_in), kernel
    (K, C_out, C_in). With E = D*(K-1) + 1, the output length is, as in Keras, L*S for
    "same" and L*S + max(E - S, 0) for "valid" ((L-1)*S + E + output_padding when
    output_padding is given); an explicit padding p crops as in PyTorch:
    (L-1)*S - 2p + E + output_padding. output_padding must be < max(strides, dilation)."""
    return _conv_transpose("conv1d_transpose", 1, x, kernel, bias, strides, padding,
                           output_padding, dilation_rate)


def conv2d_transpose(x: Any, kernel: Any, bias: Any = None, strides: Any = 1,
                     padding: Any = "valid", output_padding: Any = None,
                     dilation_rate: Any = 1) -> Tensor:
    """Transposed 2-D convolution: x (N, H, W, C_in), kernel (KH, KW, C_out, C_in); sizes as
    in :func:`conv1d_transpose` per axis."""
    return _conv_transpose("conv2d_transpose", 2, x, kernel, bias, strides, padding,
                           output_padding, dilation_rate)


def conv3d_transpose(x: Any, kernel: Any, bias: Any = None, strides: Any = 1,
                     padding: Any = "valid", output_padding: Any = None,
                     dilation_rate: Any = 1) -> Tensor:
    """Transposed 3-D convolution: x (N, D, H, W, C_in), kernel (KD, KH, KW, C_out, C_in)."""
    return _conv_transpose("conv3d_transpose", 3, x, kernel, bias, strides, padding,
                           output_padding, dilation_rate)
