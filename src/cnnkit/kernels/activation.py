"""Activation functions: forward f(x) and backward dL/dx = dL/dy * f'(x), elementwise.

Every ``*_forward(x, ...)`` returns y = f(x); every ``*_backward(g, x, y, ...)`` returns
g * f'(x), where g = dL/dy and ``y`` is the forward output (several derivatives are cheapest
written in terms of y). Inputs and outputs keep the dtype of ``x`` (float32 or float64).

At a kink the derivative takes PyTorch's one-sided choice: relu'(0) = 0, relu6'(0) =
relu6'(6) = 0, leaky_relu'(0) = alpha, elu'(0) = alpha, hard_sigmoid' = 0 at both corners,
hard_swish'(-3) = 0 and hard_swish'(3) = 1.

``softmax`` and ``log_softmax`` act along one axis and subtract the maximum first, so finite
logits (e.g. +-1e4) give finite outputs and gradients.

``erf`` and ``erfc`` (used by exact GELU) follow W. J. Cody's rational Chebyshev
approximations (Math. Comp. 23, 1969), accurate to float64 rounding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import parallel
from .arith import may_overwrite
from .native import norm as native_norm

# ----------------------------------------------------------------------------------------
# erf / erfc (Cody 1969): three ranges of |x|, each a ratio of polynomials.
# ----------------------------------------------------------------------------------------
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_ERFC_ZERO = 28.0  # erfc(x) underflows to 0 in float64 beyond this


def _as_float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _erf_small(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| <= 0.5: x * A(x^2) / B(x^2)."""
    y = x * x
    num = y * _ERF_A[4]
    den = y + _ERF_B[0]
    num += _ERF_A[0]
    for i in range(1, 4):
        num *= y
        num += _ERF_A[i]
        if i < 3:
            den *= y
            den += _ERF_B[i]
    den *= y
    den += _ERF_B[3]
    num *= x
    num /= den
    return num


def _erfc_large(ax: np.ndarray) -> np.ndarray:
    """erfc(x) for x > 4: exp(-x^2) / x * (1/sqrt(pi) - y P(y) / Q(y)), y = 1 / x^2.

    exp(-x^2) is split as exp(-s^2) exp(-(x - s)(x + s)), s = x rounded down to 1/16, so the
    rounding error of x^2 does not reach the exponent.
    """
    big = np.minimum(ax, _ERFC_ZERO)
    y = 1 / (big * big)
    num = _ERFC_P[5] * y
    den = y
    for i in range(4):
        num = (num + _ERFC_P[i]) * y
        den = (den + _ERFC_Q[i]) * y
    r = y * (num + _ERFC_P[4]) / (den + _ERFC_Q[4])
    s = np.trunc(big * 16) / 16
    out = (_INV_SQRT_PI - r) / big * np.exp(-s * s) * np.exp(-(big - s) * (big + s))
    return np.where(ax >= _ERFC_ZERO, 0, out)


def _erfc_positive(ax: np.ndarray) -> np.ndarray:
    """erfc(x) for x = |x| >= 0.5: C(x) / D(x) * exp(-x^2) up to 4, ``_erfc_large`` beyond.

    (Entries below 0.5 get erfc(0.5); callers overwrite them.)
    """
    m = np.clip(ax, 0.5, 4.0)
    num = m * _ERFC_C[8]
    den = m + _ERFC_D[0]
    num += _ERFC_C[0]
    for i in range(1, 8):
        num *= m
        num += _ERFC_C[i]
        if i < 7:
            den *= m
            den += _ERFC_D[i]
    den *= m
    den += _ERFC_D[7]
    num /= den
    np.multiply(m, m, out=m)
    np.negative(m, out=m)
    np.exp(m, out=m)
    num *= m
    big = ax > 4.0
    if big.any():
        num[big] = _erfc_large(ax[big])
    return num


def erf(x: np.ndarray) -> np.ndarray:
    """erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, to float64 rounding."""
    x = _as_float(x)
    shape, x = x.shape, x.reshape(-1)
    ax = np.abs(x)
    r = np.copysign(1 - _erfc_positive(ax), x)
    small = ax <= 0.5
    if small.any():
        r[small] = _erf_small(x[small])
    return r.astype(x.dtype, copy=False).reshape(shape)


def erfc(x: np.ndarray) -> np.ndarray:
    """erfc(x) = 1 - erf(x), with full relative accuracy in the right tail."""
    x = _as_float(x)
    shape, x = x.shape, x.reshape(-1)
    ax = np.abs(x)
    r = _erfc_positive(ax)
    r = np.where(x < 0, 2 - r, r)
    small = ax <= 0.5
    if small.any():
        r[small] = 1 - _erf_small(x[small])
    return r.astype(x.dtype, copy=False).reshape(shape)


# ----------------------------------------------------------------------------------------
# Piecewise-linear family
# ----------------------------------------------------------------------------------------
def _flat_pieces(out: np.ndarray, fn: Any, *arrays: np.ndarray) -> np.ndarray:
    """out = fn(*arrays) elementwise, computed piece by piece over flat views (in parallel
    for large arrays, see :mod:`.parallel`). ``fn(out_piece, *pieces)`` writes its piece."""
    if not all(a.flags.c_contiguous for a in (out, *arrays)):
        fn(out, *arrays)
        return out
    flats = [a.reshape(-1) for a in (out, *arrays)]
    width = sum(a.itemsize for a in (out, *arrays))

    def body(r0: int, r1: int) -> None:
        fn(*(f[r0:r1] for f in flats))

    parallel.for_rows(flats[0].size, width, body)
    return out


# Below this many values relu_into calls np.maximum: np.clip's Python wrappers cost ~3 us
# (measured 2.0 vs 5.1 us on 120 values, 3.1 vs 5.5 on 1,600, 5.1 vs 6.2 on 4,704).
RELU_CLIP_MIN_SIZE = 4096


def relu_into(o: np.ndarray, a: np.ndarray) -> None:
    """o = max(a, 0) (NaN stays NaN), as clip(a, 0, inf): NumPy's maximum against a scalar runs
    a slow loop (measured ~2.7x slower than clip, or than maximum against an array of zeros);
    small arrays take maximum (see RELU_CLIP_MIN_SIZE)."""
    if a.dtype.kind == "f" and a.size >= RELU_CLIP_MIN_SIZE:
        np.clip(a, 0, np.inf, out=o)
    else:
        np.maximum(a, 0, out=o)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """relu(x) = max(0, x)."""
    if x.dtype == np.float32 and x.flags.c_contiguous and x.size and native_norm.available():
        return native_norm.relu_forward(x, np.empty_like(x))  # C, as clip (10-25% faster)
    return _flat_pieces(np.empty_like(x), relu_into, x)


def relu_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """relu'(x) = 1 if x > 0 else 0 (0 at x = 0): dL/dx = g * [x > 0] (a multiply by the
    mask measured ~7x faster than np.where)."""
    def piece(o: np.ndarray, gg: np.ndarray, xx: np.ndarray) -> None:
        np.multiply(gg, xx > 0, out=o)
    if g.shape != x.shape:
        return np.multiply(g, x > 0).astype(g.dtype, copy=False)
    # into g itself when autograd donated it (~20% faster: no fresh output to stream in)
    out = g if may_overwrite(g) else np.empty(g.shape, dtype=g.dtype)
    if (g.dtype == x.dtype == np.float32 and g.flags.c_contiguous and x.flags.c_contiguous
            and g.size and native_norm.available()):
        return native_norm.relu_backward(g, x, out)  # one pass in C (~1.4x faster)
    return _flat_pieces(out, piece, g, x)


def guided_relu_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Guided backpropagation's rule for ReLU (Springenberg et al. 2015): only positive
    gradients pass, and only where the input was positive: dL/dx = g * [x > 0] * [g > 0]."""
    return (g * ((x > 0) & (g > 0))).astype(g.dtype, copy=False)


def relu6_forward(x: np.ndarray) -> np.ndarray:
    """relu6(x) = min(max(0, x), 6)."""
    return _flat_pieces(np.empty_like(x), lambda o, a: np.clip(a, 0, 6, out=o), x)


def relu6_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """relu6'(x) = 1 if 0 < x < 6 else 0: dL/dx = g * [0 < x < 6]."""
    def piece(o: np.ndarray, gg: np.ndarray, xx: np.ndarray) -> None:
        m = xx > 0
        m &= xx < 6
        np.multiply(gg, m, out=o)
    if g.shape != x.shape:
        return np.multiply(g, (x > 0) & (x < 6)).astype(g.dtype, copy=False)
    return _flat_pieces(np.empty(g.shape, dtype=g.dtype), piece, g, x)


def leaky_relu_forward(x: np.ndarray, negative_slope: float = 0.3) -> np.ndarray:
    """leaky_relu(x) = x if x > 0 else alpha * x (alpha = negative_slope)."""
    return np.where(x > 0, x, x * negative_slope).astype(x.dtype, copy=False)


def leaky_relu_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray,
                        negative_slope: float = 0.3) -> np.ndarray:
    """leaky_relu'(x) = 1 if x > 0 else alpha."""
    return np.where(x > 0, g, g * negative_slope).astype(g.dtype, copy=False)


def hard_sigmoid_forward(x: np.ndarray, alpha: float = 1 / 6, beta: float = 0.5) -> np.ndarray:
    """hard_sigmoid(x) = max(0, min(1, alpha * x + beta)).

    The defaults give Keras 3 / PyTorch's relu6(x + 3) / 6; ONNX HardSigmoid uses alpha = 0.2.
    """
    return np.clip(x * alpha + beta, 0, 1).astype(x.dtype, copy=False)


def hard_sigmoid_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray, alpha: float = 1 / 6,
                          beta: float = 0.5) -> np.ndarray:
    """hard_sigmoid'(x) = alpha where 0 < alpha * x + beta < 1, else 0."""
    z = x * alpha + beta
    return np.where((z > 0) & (z < 1), g * alpha, 0).astype(g.dtype, copy=False)


def hard_swish_forward(x: np.ndarray) -> np.ndarray:
    """hard_swish(x) = x * relu6(x + 3) / 6 (MobileNetV3; ONNX HardSwish)."""
    return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)


def hard_swish_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """hard_swish'(x) = 0 if x <= -3, x/3 + 1/2 if -3 < x < 3, 1 if x >= 3."""
    d = np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1))
    return (g * d).astype(g.dtype, copy=False)


# ----------------------------------------------------------------------------------------
# Exponential family
# ----------------------------------------------------------------------------------------
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def elu_forward(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """elu(x) = x if x > 0 else alpha * (exp(x) - 1)."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def elu_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """elu'(x) = 1 if x > 0 else alpha * exp(x)."""
    return np.where(x > 0, g, g * (alpha * np.exp(np.minimum(x, 0)))).astype(g.dtype, copy=False)


def selu_forward(x: np.ndarray) -> np.ndarray:
    """selu(x) = scale * elu(x, alpha), scale = 1.0507009873554805, alpha = 1.6732632423543772."""
    return (SELU_SCALE * elu_forward(x, SELU_ALPHA)).astype(x.dtype, copy=False)


def selu_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """selu'(x) = scale if x > 0 else scale * alpha * exp(x)."""
    return (SELU_SCALE * elu_backward(g, x, y, SELU_ALPHA)).astype(g.dtype, copy=False)


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) = 1 / (1 + exp(-x)), as e/(1+e) with e = exp(-|x|) for x < 0 (no overflow)."""
    e = np.exp(-np.abs(x))
    return (np.where(x >= 0, 1, e) / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sigmoid'(x) = y (1 - y)."""
    return g * (y * (1 - y))


def tanh_forward(x: np.ndarray) -> np.ndarray:
    """tanh(x)."""
    return np.tanh(x)


def tanh_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """tanh'(x) = 1 - y^2."""
    return g * (1 - y * y)


def silu_forward(x: np.ndarray) -> np.ndarray:
    """silu(x) = swish(x) = x * sigmoid(x)."""
    return x * sigmoid_forward(x)


def silu_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """silu'(x) = s (1 + x (1 - s)), s = sigmoid(x)."""
    s = sigmoid_forward(x)
    return g * (s * (1 + x * (1 - s)))


def softplus_forward(x: np.ndarray) -> np.ndarray:
    """softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def softplus_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """softplus'(x) = sigmoid(x)."""
    return g * sigmoid_forward(x)


# ----------------------------------------------------------------------------------------
# GELU
# ----------------------------------------------------------------------------------------
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_C = 0.044715
_GELU_TINY = 1e-4  # below, Phi(x) = 1/2 + x/sqrt(2 pi) + O(x^3) is exact enough


def gelu_forward(x: np.ndarray, approximate: bool = False) -> np.ndarray:
    """gelu(x) = x * Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2 the standard normal CDF.

    approximate=True: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    """
    if approximate:
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x))
        return (0.5 * x * (1 + t)).astype(x.dtype, copy=False)
    return (x * (0.5 * erfc(-x * _SQRT_HALF))).astype(x.dtype, copy=False)


def gelu_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray | None,
                  approximate: bool = False) -> np.ndarray:
    """gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi).

    Phi(x) is read back from the forward output as y / x (recomputed when y is None).

    approximate=True: with u = sqrt(2/pi) (x + 0.044715 x^3), t = tanh(u):
    0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
    """
    if approximate:
        x2 = x * x
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x2 * x))
        d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x2)
    else:
        if y is None:
            cdf = 0.5 * erfc(-x * _SQRT_HALF)
        else:  # Phi(x) = y / x (to 2 ulp) away from 0; 1/2 + x / sqrt(2 pi) near 0
            tiny = np.abs(x) < _GELU_TINY
            cdf = np.where(tiny, 0.5 + x * _INV_SQRT_2PI, y / np.where(tiny, 1, x))
        d = cdf + x * (_INV_SQRT_2PI * np.exp(-0.5 * x * x))
    return (g * d).astype(g.dtype, copy=False)


# ----------------------------------------------------------------------------------------
# softmax / log_softmax along an axis
# ----------------------------------------------------------------------------------------
def softmax_forward(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j (along ``axis``)."""
    with np.errstate(over="ignore", invalid="ignore"):  # x - m = -inf gives exp = 0
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
    return e


def softmax_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """dy_i/dx_j = y_i (delta_ij - y_j), so dL/dx = y * (g - sum_j g_j y_j)."""
    return y * (g - (g * y).sum(axis=axis, keepdims=True))


def log_softmax_forward(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log_softmax(x)_i = (x_i - m) - log sum_j exp(x_j - m), m = max_j x_j.

    x_i - m may overflow to -inf (3e38 - -3e38 in float32): that entry's log-probability is
    then -inf and the others stay finite, as in PyTorch; an infinite m gives NaN (as PyTorch).
    """
    with np.errstate(over="ignore", invalid="ignore"):  # the -inf / NaN above are the answer
        z = x - x.max(axis=axis, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z


def log_softmax_backward(g: np.ndarray, x: np.ndarray, y: np.ndarray,
                         axis: int = -1) -> np.ndarray:
    """dy_i/dx_j = delta_ij - softmax_j, so dL/dx = g - exp(y) * sum_i g_i."""
    return g - np.exp(y) * g.sum(axis=axis, keepdims=True)
