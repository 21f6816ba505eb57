"""Convolutions (N-d with groups, depthwise, separable, transposed): gradients against central
differences in float64, forward and backward against PyTorch in float32, bad inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import assert_close_scaled, check_vs_torch, gradcheck, torch_grads, torch_or_skip

from cnnkit import Tensor, ops
from cnnkit.kernels import conv as K
from cnnkit.kernels import native
from cnnkit.kernels.padding import resolve_padding

rng = np.random.default_rng(0)

CONV = {1: ops.conv1d, 2: ops.conv2d, 3: ops.conv3d}
CONV_T = {1: ops.conv1d_transpose, 2: ops.conv2d_transpose, 3: ops.conv3d_transpose}
# Odd and even sizes so that Keras "same" at stride 2 pads asymmetrically on some axes.
SIZES = {1: (10,), 2: (8, 7), 3: (6, 5, 5)}
KSIZES = {1: (3,), 2: (3, 2), 3: (3, 2, 2)}


def pairs(nd):
    return [(1, 2), (0, 1), (2, 0)][:nd]


PADDINGS = ["valid", "same", "pairs", 1]


def test_sweeps_include_asymmetric_same_at_stride_2():
    """Keras "same" at stride 2 puts the odd extra pixel at the end; the sweep sizes (and the
    gradcheck sizes) are chosen so that this happens on every axis."""
    for sizes in (SIZES, {1: (8,), 2: (6, 5), 3: (6, 5, 3)}):
        for nd in (1, 2, 3):
            pads = resolve_padding("same", sizes[nd], KSIZES[nd], (2,) * nd, (1,) * nd)
            assert all(b < a for b, a in pads), (nd, pads)
    assert resolve_padding("same", (8, 7), (3, 2), (2, 2)) == ((0, 1), (0, 1))


def padding_arg(p, nd):
    return pairs(nd) if p == "pairs" else p


# ----------------------------------------------------------------------------------------
# PyTorch references (NHWC <-> NCHW, (K..., Cin, Cout) <-> (Cout, Cin, K...))
# ----------------------------------------------------------------------------------------
def to_nc(a):
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


def to_nl(a):
    return np.moveaxis(a, 1, -1)


def kernel_to_torch(w):
    """(*K, A, B) -> (B, A, *K): conv (Cout, Cin/g, K...) and conv_transpose (Cin, Cout, K...)."""
    nd = w.ndim - 2
    return np.ascontiguousarray(np.transpose(w, (nd + 1, nd, *range(nd))))


def torch_pad(torch, xt, pads):
    """Pad the spatial axes of an NC... torch tensor by explicit (before, after) pairs."""
    flat = []
    for before, after in reversed(pads):
        flat += [before, after]
    return torch.nn.functional.pad(xt, flat)


def torch_conv(torch, nd, x, w, b, strides, pads, dilation, groups):
    fn = getattr(torch.nn.functional, f"conv{nd}d")
    xt = torch_pad(torch, x.permute(0, nd + 1, *range(1, nd + 1)), pads)
    wt = w.permute(nd + 1, nd, *range(nd))
    y = fn(xt, wt, b, stride=strides, dilation=dilation, groups=groups)
    return y.permute(0, *range(2, nd + 2), 1)


# ----------------------------------------------------------------------------------------
# N-d convolution
# ----------------------------------------------------------------------------------------
CONV_SWEEP = [
    (nd, s, p, d, groups, bias)
    for nd in (1, 2, 3)
    for s, p, d in itertools.product((1, 2), PADDINGS, (1, 2))
    for groups, bias in [(1, True), (2, False), (4, True)]
]


@pytest.mark.parametrize("nd,s,p,d,groups,bias", CONV_SWEEP)
def test_conv_torch(nd, s, p, d, groups, bias):
    torch = torch_or_skip()
    n, cin, cout = 2, 4, 8
    x = rng.standard_normal((n, *SIZES[nd], cin))
    w = rng.standard_normal((*KSIZES[nd], cin // groups, cout))
    b = rng.standard_normal(cout) if bias else None
    pad = padding_arg(p, nd)
    pads = resolve_padding(pad, SIZES[nd], KSIZES[nd], (s,) * nd, (d,) * nd)
    g = rng.standard_normal(CONV[nd](x, w, None, s, pad, d, groups).shape)
    check_vs_torch(lambda x, w, b: CONV[nd](x, w, b, strides=s, padding=pad, dilation_rate=d,
                                            groups=groups),
                   lambda x, w, b: torch_conv(torch, nd, x, w, b, s, pads, d, groups),
                   x, w, b, grad_out=g, what=f"conv{nd}d")


@pytest.mark.parametrize("s,p,d", list(itertools.product((1, 2), PADDINGS, (1, 2))))
@pytest.mark.parametrize("use_native", [False, True], ids=["numpy", "native"])
def test_conv2d_torch_both_paths(s, p, d, use_native):
    """float32 2-D convolutions with groups 1 go to the optional C kernels when they are built:
    both that path and the NumPy path against PyTorch."""
    torch = torch_or_skip()
    if use_native and not native.available():
        pytest.skip("the native helper is not built or is switched off (CNNKIT_NATIVE=0)")
    x = rng.standard_normal((2, 9, 8, 5))
    w = rng.standard_normal((3, 2, 5, 7))
    b = rng.standard_normal(7)
    p = padding_arg(p, 2)
    pads = resolve_padding(p, (9, 8), (3, 2), (s, s), (d, d))
    g = rng.standard_normal(ops.conv2d(x, w, None, s, p, d).shape)
    native.set_enabled(use_native)
    try:
        check_vs_torch(lambda x, w, b: ops.conv2d(x, w, b, strides=s, padding=p, dilation_rate=d),
                       lambda x, w, b: torch_conv(torch, 2, x, w, b, s, pads, d, 1),
                       x, w, b, grad_out=g, what=f"conv2d ({'native' if use_native else 'numpy'})")
    finally:
        native.set_enabled(None)


GRAD_SWEEP = [
    (nd, s, p, d, groups, bias)
    for nd in (1, 2, 3)
    for (s, p, d), (groups, bias) in zip(
        itertools.product((1, 2), ["valid", "same", "pairs"], (1, 2)),
        itertools.cycle([(1, True), (2, False), (4, True), (1, False)]))
]


@pytest.mark.parametrize("nd,s,p,d,groups,bias", GRAD_SWEEP)
def test_conv_gradcheck(nd, s, p, d, groups, bias):
    small = {1: (8,), 2: (6, 5), 3: (6, 5, 3)}[nd]
    x = rng.standard_normal((1, *small, 4))
    w = rng.standard_normal((*KSIZES[nd], 4 // groups, 4))
    pad = padding_arg(p, nd)
    if bias:
        gradcheck(lambda x, w, b: CONV[nd](x, w, b, s, pad, d, groups), x, w,
                  rng.standard_normal(4))
    else:
        gradcheck(lambda x, w: CONV[nd](x, w, None, s, pad, d, groups), x, w)


def test_conv_causal_and_generic():
    torch = torch_or_skip()
    x = rng.standard_normal((2, 9, 3))
    w = rng.standard_normal((3, 3, 5))
    y = ops.conv1d(x.astype(np.float32), w.astype(np.float32), padding="causal",
                   dilation_rate=2)
    assert y.shape == (2, 9, 5)
    ref = torch_conv(torch, 1, torch.tensor(x, dtype=torch.float32),
                     torch.tensor(w, dtype=torch.float32), None, 1, [(4, 0)], 2, 1)
    assert_close_scaled(y.data, ref.numpy(), tol=1e-4)
    gradcheck(lambda x, w: ops.conv1d(x, w, padding="causal", strides=2), x, w)
    # ops.conv picks the rank from x
    x2 = rng.standard_normal((1, 5, 6, 2))
    w2 = rng.standard_normal((3, 3, 2, 3))
    np.testing.assert_allclose(ops.conv(x2, w2, padding="same").data,
                               ops.conv2d(x2, w2, padding="same").data)


def test_conv_depthwise_groups_multiplier():
    torch = torch_or_skip()
    x = rng.standard_normal((2, 6, 7, 3))
    w = rng.standard_normal((3, 3, 1, 6))  # groups = C_in = 3, 2 outputs per channel
    g = rng.standard_normal((2, 3, 4, 6))
    pads = resolve_padding("same", (6, 7), (3, 3), (2, 2), (1, 1))
    check_vs_torch(lambda x, w: ops.conv2d(x, w, strides=2, padding="same", groups=3),
                   lambda x, w: torch_conv(torch, 2, x, w, None, 2, pads, 1, 3),
                   x, w, grad_out=g, what="conv2d groups=C")
    gradcheck(lambda x, w: ops.conv2d(x, w, padding="same", groups=3),
              x[:1, :4, :4], w)


def test_conv_float64_and_no_input_grad():
    x = rng.standard_normal((2, 5, 5, 3))
    w = Tensor(rng.standard_normal((3, 3, 3, 4)), requires_grad=True)
    y = ops.conv2d(x, w, padding="same")
    assert y.dtype == np.float64
    y.backward(np.ones(y.shape))
    assert w.grad is not None and w.grad.dtype == np.float64
    # kernel level: the input gradient is skipped when not needed
    pads = ((1, 1), (1, 1))
    z, cols = K.conv_forward(x, w.data, None, (1, 1), pads, (1, 1))
    dx, dw, db = K.conv_backward(np.ones_like(z), x, w.data, cols, (1, 1), pads, (1, 1),
                                 need_dx=False, need_db=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, w.grad)
    # without the cached cols the weight gradient is recomputed from x
    _, dw2, _ = K.conv_backward(np.ones_like(z), x, w.data, None, (1, 1), pads, (1, 1))
    np.testing.assert_allclose(dw2, w.grad)


@pytest.mark.parametrize("method", ["flip", "col2im"])
@pytest.mark.parametrize("groups,d,pads", [(1, 1, ((1, 1), (1, 1))), (2, 2, ((1, 2), (0, 1))),
                                           (4, 1, ((0, 0), (0, 0))),
                                           (1, 2, ((5, 0), (0, 4)))])  # pad > kernel span
def test_conv_input_grad_methods(method, groups, d, pads):
    """Both dX algorithms (full convolution with the flipped kernel; GEMM + col2im) against
    PyTorch's input gradient."""
    torch = torch_or_skip()
    x = rng.standard_normal((2, 6, 7, 4))
    w = rng.standard_normal((3, 2, 4 // groups, 8))
    z, _ = K.conv_forward(x, w, None, (1, 1), pads, (d, d), groups)
    g = rng.standard_normal(z.shape)
    dx = K.conv_input_grad(g.astype(np.float32), w.astype(np.float32), x.shape, (1, 1), pads,
                           (d, d), groups, method=method)
    _, (ref, _) = torch_grads(
        lambda x, w: torch_conv(torch, 2, x, w, None, 1, pads, d, groups), [x, w], g)
    assert dx.dtype == np.float32
    assert_close_scaled(dx, ref, tol=1e-4)


# ----------------------------------------------------------------------------------------
# depthwise and separable
# ----------------------------------------------------------------------------------------
DW_SWEEP = list(itertools.product((1, 2), (1, 2), ["valid", "same", "pairs"], (1, 2)))


def torch_depthwise(torch, x, w, b, s, pads, d):
    kh, kw, c, m = w.shape
    xt = torch_pad(torch, x.permute(0, 3, 1, 2), pads)
    wt = w.reshape(kh, kw, 1, c * m).permute(3, 2, 0, 1)  # (C*M, 1, KH, KW)
    y = torch.nn.functional.conv2d(xt, wt, b, stride=s, dilation=d, groups=c)
    return y.permute(0, 2, 3, 1)


@pytest.mark.parametrize("mult,s,p,d", DW_SWEEP)
def test_depthwise(mult, s, p, d):
    x = rng.standard_normal((2, 8, 7, 3))
    w = rng.standard_normal((3, 2, 3, mult))
    b = rng.standard_normal(3 * mult)
    pad = padding_arg(p, 2)
    gradcheck(lambda x, w, b: ops.depthwise_conv2d(x, w, b, s, pad, d), x[:1, :6, :5], w, b)
    torch = torch_or_skip()
    pads = resolve_padding(pad, (8, 7), (3, 2), (s, s), (d, d))
    g = rng.standard_normal(ops.depthwise_conv2d(x, w, None, s, pad, d).shape)
    check_vs_torch(lambda x, w, b: ops.depthwise_conv2d(x, w, b, s, pad, d),
                   lambda x, w, b: torch_depthwise(torch, x, w, b, s, pads, d),
                   x, w, b, grad_out=g, what="depthwise_conv2d")


@pytest.mark.parametrize("mult,s,p,d", [(1, 1, "same", 1), (2, 2, "same", 1),
                                        (2, 1, "valid", 2), (1, 2, "pairs", 1)])
def test_separable(mult, s, p, d):
    x = rng.standard_normal((2, 7, 6, 3))
    wd = rng.standard_normal((3, 3, 3, mult))
    wp = rng.standard_normal((1, 1, 3 * mult, 4))
    b = rng.standard_normal(4)
    pad = padding_arg(p, 2)

    def f(x, wd, wp, b):
        return ops.separable_conv2d(x, wd, wp, b, s, pad, d)

    gradcheck(f, x[:1, :5, :5], wd, wp, b)
    torch = torch_or_skip()
    pads = resolve_padding(pad, (7, 6), (3, 3), (s, s), (d, d))

    def ref_fn(x, wd, wp, b):
        mid = torch_depthwise(torch, x, wd, None, s, pads, d)
        return mid @ wp[0, 0] + b

    g = rng.standard_normal(f(x, wd, wp, None).shape)
    check_vs_torch(f, ref_fn, x, wd, wp, b, grad_out=g, what="separable_conv2d")


# ----------------------------------------------------------------------------------------
# transposed convolution
# ----------------------------------------------------------------------------------------
T_SWEEP = [
    (1, 2, "valid", None, 1), (1, 3, "same", None, 1), (1, 1, 1, None, 2), (1, 2, 1, 1, 1),
    (1, 3, "valid", None, 1),  # kernel smaller than the stride: Keras pads the end with 0
    (2, 1, "valid", None, 1), (2, 2, "same", None, 1), (2, 2, "valid", 1, 1),
    (2, 2, 1, 1, 2), (2, (2, 1), "same", None, (1, 2)), (2, 2, ((1, 0), (0, 2)), None, 1),
    (2, 2, "same", 1, 1),
    (3, 2, "same", None, 1), (3, 1, "valid", None, 2), (3, 2, 1, 1, 1),
]
T_SIZES = {1: (5,), 2: (4, 5), 3: (3, 4, 3)}
T_KSIZES = {1: (2,), 2: (3, 2), 3: (2, 3, 2)}


def torch_conv_transpose(torch, nd, x, w, b, s, d, pads, out_sizes):
    """Full transposed convolution (no padding) from torch, then crop by ``pads`` to
    ``out_sizes`` (zero-extended at the end where the full output is shorter)."""
    fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
    y = fn(x.permute(0, nd + 1, *range(1, nd + 1)), w.permute(nd + 1, nd, *range(nd)),
           stride=s, dilation=d)
    extra = [max(0, p[0] + o - f) for p, o, f in zip(pads, out_sizes, y.shape[2:], strict=True)]
    y = torch_pad(torch, y, [(0, e) for e in extra])
    y = y[(slice(None), slice(None))
          + tuple(slice(p[0], p[0] + o) for p, o in zip(pads, out_sizes, strict=True))]
    y = y.permute(0, *range(2, nd + 2), 1)
    return y if b is None else y + b


def tuple_of(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("nd,s,p,op,d", T_SWEEP)
def test_conv_transpose(nd, s, p, op, d):
    x = rng.standard_normal((2, *T_SIZES[nd], 3))
    w = rng.standard_normal((*T_KSIZES[nd], 2, 3))  # (*K, C_out, C_in)
    b = rng.standard_normal(2)
    pad = padding_arg(p, nd)
    f = CONV_T[nd]
    y = f(x, w, b, s, pad, op, d)
    ss, dd = tuple_of(s, nd), tuple_of(d, nd)
    # expected output sizes, written out from the Keras / PyTorch formulas
    for a in range(nd):
        e = dd[a] * (T_KSIZES[nd][a] - 1) + 1
        w_in = T_SIZES[nd][a]
        opa = 0 if op is None else tuple_of(op, nd)[a]
        if p == "same" and op is None:
            want = w_in * ss[a]
        elif p == "valid" and op is None:
            want = w_in * ss[a] + max(e - ss[a], 0)
        elif p == "valid":
            want = (w_in - 1) * ss[a] + e + opa
        elif p == "same":
            want = (w_in - 1) * ss[a] + e - 2 * (e // 2) + opa
        else:
            pb, pa = (pad, pad) if isinstance(pad, int) else pad[a]
            want = (w_in - 1) * ss[a] - pb - pa + e + opa
        assert y.shape[1 + a] == want, (a, y.shape)
    gx = {1: (3,), 2: (2, 3), 3: (2, 2, 2)}[nd]
    x_small = x[(slice(0, 1), *[slice(0, v) for v in gx])]
    gradcheck(lambda x, w, b: f(x, w, b, s, pad, op, d), x_small, w, b)
    torch = torch_or_skip()
    _, pads = K.conv_transpose_geometry(T_SIZES[nd], T_KSIZES[nd], ss, pad,
                                        None if op is None else tuple_of(op, nd), dd)
    if isinstance(pad, int):  # PyTorch semantics exactly: padding crops symmetrically
        assert pads == ((pad, pad),) * nd
    g = rng.standard_normal(y.shape)
    check_vs_torch(lambda x, w, b: f(x, w, b, s, pad, op, d),
                   lambda x, w, b: torch_conv_transpose(torch, nd, x, w, b, ss, dd, pads,
                                                        y.shape[1:-1]),
                   x, w, b, grad_out=g, what=f"conv{nd}d_transpose")


@pytest.mark.parametrize("ksize,padding", [((2, 2), "valid"), ((2, 3), "same"), ((1, 2), 0)])
def test_conv_transpose_tiles(ksize, padding):
    """Kernel == stride, no padding (U-Net's 2x2 stride-2 up-sampling): the tile GEMMs.
    Central differences in float64, PyTorch in float32 (forward, dX, dK, db)."""
    sizes, pads = K.conv_transpose_geometry((3, 4), ksize, ksize, padding, None, (1, 1))
    assert K.transposed.tiles((2, 3, 4, 5), (*ksize, 3, 5), ksize, pads, (1, 1), sizes)
    x, w, b = (rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((*ksize, 3, 5)),
               rng.standard_normal(3))
    f = lambda x, w, b: ops.conv2d_transpose(x, w, b, ksize, padding)  # noqa: E731
    gradcheck(f, x[:1, :2, :3], w, b)
    torch = torch_or_skip()
    y = f(x, w, b)
    assert y.shape == (2, 3 * ksize[0], 4 * ksize[1], 3)
    check_vs_torch(f, lambda x, w, b: torch_conv_transpose(torch, 2, x, w, b, ksize, (1, 1),
                                                           ((0, 0), (0, 0)), y.shape[1:-1]),
                   x, w, b, grad_out=rng.standard_normal(y.shape), what="tiles")


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_torch_padding_args(nd):
    """Integer padding and output_padding mean exactly what they mean in PyTorch."""
    torch = torch_or_skip()
    x = rng.standard_normal((2, *T_SIZES[nd], 3)).astype(np.float32)
    w = rng.standard_normal((*T_KSIZES[nd], 4, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    y = CONV_T[nd](x, w, b, strides=2, padding=1, output_padding=1, dilation_rate=2)
    fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
    ref = fn(torch.tensor(to_nc(x)), torch.tensor(kernel_to_torch(w)), torch.tensor(b),
             stride=2, padding=1, output_padding=1, dilation=2)
    assert_close_scaled(y.data, to_nl(ref.numpy()), tol=1e-4)


# ----------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------
def test_bad_inputs():
    x = np.zeros((2, 8, 8, 1), np.float32)
    w = np.zeros((3, 3, 3, 16), np.float32)
    with pytest.raises(ValueError, match=r"conv2d expects x of rank 4 \(N, H, W, C\), got rank 3"):
        ops.conv2d(np.zeros((28, 28, 1), np.float32), w)
    with pytest.raises(ValueError, match=r"conv2d expects x with 3 channels \(kernel shape "
                                         r"\(3, 3, 3, 16\).*got 1 \(shape \(2, 8, 8, 1\)\)"):
        ops.conv2d(x, w)
    with pytest.raises(ValueError, match="conv2d expects kernel of rank 4"):
        ops.conv2d(x, np.zeros((3, 3, 1), np.float32))
    with pytest.raises(ValueError, match="groups=3 must divide"):
        ops.conv2d(np.zeros((1, 5, 5, 4), np.float32), np.zeros((3, 3, 1, 6), np.float32),
                   groups=3)
    with pytest.raises(ValueError, match="groups must be an int >= 1"):
        ops.conv2d(x, np.zeros((3, 3, 1, 2), np.float32), groups=0)
    with pytest.raises(ValueError, match="conv2d: window of size 5.*output size would be <= 0"):
        ops.conv2d(np.zeros((1, 4, 4, 1), np.float32), np.zeros((5, 5, 1, 2), np.float32))
    with pytest.raises(ValueError, match="conv2d: padding must be"):
        ops.conv2d(x, np.zeros((3, 3, 1, 2), np.float32), padding="full")
    with pytest.raises(ValueError, match="conv2d: padding 'causal' is for 1-D"):
        ops.conv2d(x, np.zeros((3, 3, 1, 2), np.float32), padding="causal")
    with pytest.raises(ValueError, match="conv2d: strides must be"):
        ops.conv2d(x, np.zeros((3, 3, 1, 2), np.float32), strides=0)
    with pytest.raises(TypeError, match="kernel has dtype float64 but x has dtype float32"):
        ops.conv2d(x, np.zeros((3, 3, 1, 2)))
    with pytest.raises(ValueError, match=r"expects bias of shape \(2,\)"):
        ops.conv2d(x, np.zeros((3, 3, 1, 2), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="conv expects x of rank 3, 4 or 5"):
        ops.conv(np.zeros((2, 3), np.float32), np.zeros((3, 1, 1), np.float32))
    with pytest.raises(ValueError, match="conv1d expects x of rank 3"):
        ops.conv1d(x, np.zeros((3, 1, 2), np.float32))
    with pytest.raises(ValueError, match="conv3d expects x of rank 5"):
        ops.conv3d(x, np.zeros((3, 3, 3, 1, 2), np.float32))
    with pytest.raises(ValueError, match="depthwise_conv2d expects x with 4 channels"):
        ops.depthwise_conv2d(x, np.zeros((3, 3, 4, 1), np.float32))
    with pytest.raises(ValueError, match=r"separable_conv2d expects pointwise_kernel of shape "
                                         r"\(1, 1, 2, C_out\)"):
        ops.separable_conv2d(x, np.zeros((3, 3, 1, 2), np.float32),
                             np.zeros((1, 1, 1, 4), np.float32))
    with pytest.raises(ValueError, match="conv2d_transpose expects x with 2 channels"):
        ops.conv2d_transpose(x, np.zeros((3, 3, 4, 2), np.float32))
    with pytest.raises(ValueError, match="conv2d_transpose: output_padding must be smaller"):
        ops.conv2d_transpose(x, np.zeros((3, 3, 4, 1), np.float32), strides=2,
                             output_padding=2)
    with pytest.raises(ValueError, match="conv1d_transpose: padding must be 'valid', 'same'"):
        ops.conv1d_transpose(np.zeros((1, 5, 1), np.float32), np.zeros((3, 2, 1), np.float32),
                             padding="causal")
    with pytest.raises(ValueError, match="conv1d_transpose: output size along spatial axis 0"):
        ops.conv1d_transpose(np.zeros((1, 1, 1), np.float32), np.zeros((3, 2, 1), np.float32),
                             padding=2)


@pytest.mark.parametrize("use_native", [False, True])
@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batch(use_native, groups, dtype, monkeypatch):
    """A batch of 0 gives an empty output and empty input gradients, and zero kernel and bias
    gradients, on the NumPy path and (float32, groups 1) the native one."""
    if use_native and not native.available():
        pytest.skip("native helper not built or switched off")
    monkeypatch.setattr(native, "available", lambda: use_native)
    x = np.zeros((0, 9, 8, 4), dtype=dtype)
    pads = ((1, 1), (1, 1))
    for ksize, s in (((3, 3), (1, 1)), ((3, 3), (2, 2)), ((1, 1), (1, 1)), ((5, 3), (1, 1))):
        pk = pads if ksize != (1, 1) else ((0, 0), (0, 0))
        w = rng.standard_normal((*ksize, 4 // groups, 8)).astype(dtype)
        b = np.ones(8, dtype=dtype)
        z, _ = K.conv_forward(x, w, b, s, pk, (1, 1), groups)
        out = K.conv_output_sizes((9, 8), ksize, s, pk, (1, 1))
        assert z.shape == (0, *out, 8) and z.dtype == dtype
        g = np.zeros(z.shape, dtype=dtype)
        dx, dw, db = K.conv_backward(g, x, w, None, s, pk, (1, 1), groups)
        assert dx.shape == x.shape and dx.dtype == dtype
        np.testing.assert_array_equal(dw, np.zeros_like(w))
        np.testing.assert_array_equal(db, np.zeros(8, dtype=dtype))
        assert K.conv_input_grad(g, w, x.shape, s, pk, (1, 1), groups).shape == x.shape
    wd = rng.standard_normal((3, 3, 4, 1)).astype(dtype)
    z = K.depthwise_conv_forward(x, wd, None, (2, 2), pads, (1, 1))
    assert z.shape == (0, 5, 4, 4)
    dx, dw, db = K.depthwise_conv_backward(np.zeros_like(z), x, wd, (2, 2), pads, (1, 1))
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, np.zeros_like(wd))
    np.testing.assert_array_equal(db, np.zeros(4, dtype=dtype))
