"""Activation ops: finite differences (float64), PyTorch (float32), ONNX node cases, extremes."""

import math

import numpy as np
import pytest
from helpers import assert_close_scaled, gradcheck, onnx_node_cases, torch_or_skip

from cnnkit import Tensor, ops
from cnnkit.kernels import activation as K

rng = np.random.default_rng(0)

# name -> (cnnkit function, points where the derivative jumps)
ACTIVATIONS = {
    "relu": (ops.relu, (0.0,)),
    "relu6": (ops.relu6, (0.0, 6.0)),
    "leaky_relu": (ops.leaky_relu, (0.0,)),
    "leaky_relu_0.1": (lambda x: ops.leaky_relu(x, 0.1), (0.0,)),
    "elu": (ops.elu, (0.0,)),
    "elu_0.5": (lambda x: ops.elu(x, alpha=0.5), (0.0,)),
    "selu": (ops.selu, (0.0,)),
    "gelu": (lambda x: ops.gelu(x, approximate=False), ()),
    "gelu_tanh": (lambda x: ops.gelu(x, approximate="tanh"), ()),
    "sigmoid": (ops.sigmoid, ()),
    "hard_sigmoid": (ops.hard_sigmoid, (-3.0, 3.0)),
    "hard_sigmoid_onnx": (lambda x: ops.hard_sigmoid(x, alpha=0.2, beta=0.5), (-2.5, 2.5)),
    "tanh": (ops.tanh, ()),
    "silu": (ops.silu, ()),
    "hard_swish": (ops.hard_swish, (-3.0, 3.0)),
    "softplus": (ops.softplus, ()),
    "softmax": (ops.softmax, ()),
    "log_softmax": (ops.log_softmax, ()),
}


def away_from(x: np.ndarray, kinks: tuple, margin: float = 0.05) -> np.ndarray:
    """Move entries within ``margin`` of a kink so central differences never straddle one."""
    for k in kinks:
        near = np.abs(x - k) < margin
        x = np.where(near, k + np.where(x >= k, 2, -2) * margin, x)
    return x


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_fd(name):
    fn, kinks = ACTIVATIONS[name]
    x = away_from(rng.uniform(-5.0, 8.0, (2, 3, 4)), kinks)
    gradcheck(fn, x)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_axes_fd(op, axis):
    x = rng.standard_normal((3, 4, 2)) * 3
    gradcheck(lambda t: getattr(ops, op)(t, axis=axis), x)


def _torch_table(F):  # noqa: N803
    return {
        "relu": F.relu,
        "relu6": F.relu6,
        "leaky_relu": lambda t: F.leaky_relu(t, 0.2),
        "leaky_relu_0.1": lambda t: F.leaky_relu(t, 0.1),
        "elu": F.elu,
        "elu_0.5": lambda t: F.elu(t, alpha=0.5),
        "selu": F.selu,
        "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "sigmoid": F.sigmoid,
        "hard_sigmoid": F.hardsigmoid,
        "tanh": F.tanh,
        "silu": F.silu,
        "hard_swish": F.hardswish,
        "softplus": F.softplus,
        "softmax": lambda t: F.softmax(t, dim=-1),
        "log_softmax": lambda t: F.log_softmax(t, dim=-1),
    }


TORCH_NAMES = sorted(n for n in ACTIVATIONS if n != "hard_sigmoid_onnx")


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_activation_vs_torch(name):
    torch = torch_or_skip()
    fn = ACTIVATIONS[name][0]
    tfn = _torch_table(torch.nn.functional)[name]
    # odd shape; random values plus every kink exactly and some tails
    x = (rng.standard_normal((3, 5, 7)) * 3).astype(np.float32)
    special = np.array([0, -3, 3, 6, -6, 2.5, -2.5, -30, 30, 1e-3, -1e-3], np.float32)
    x.reshape(-1)[: special.size] = special
    g = rng.standard_normal(x.shape).astype(np.float32)

    t = Tensor(x, requires_grad=True)
    y = fn(t)
    y.backward(g)

    tx = torch.tensor(x, requires_grad=True)
    ty = tfn(tx)
    ty.backward(torch.tensor(g))
    assert y.dtype == np.float32 and t.grad.dtype == np.float32
    assert_close_scaled(y.data, ty.detach().numpy(), tol=1e-4, what=f"{name} forward")
    assert_close_scaled(t.grad, tx.grad.numpy(), tol=1e-4, what=f"{name} backward")


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_axes_vs_torch(op, axis):
    torch = torch_or_skip()
    x = (rng.standard_normal((3, 5, 7)) * 4).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    t = Tensor(x, requires_grad=True)
    y = getattr(ops, op)(t, axis=axis)
    y.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, op)(tx, dim=axis)
    ty.backward(torch.tensor(g))
    assert_close_scaled(y.data, ty.detach().numpy(), tol=1e-4)
    assert_close_scaled(t.grad, tx.grad.numpy(), tol=1e-4)


def test_kink_derivatives_follow_pytorch():
    cases = {
        ops.relu: [(0.0, 0.0)],
        ops.relu6: [(0.0, 0.0), (6.0, 0.0)],
        ops.leaky_relu: [(0.0, 0.2)],
        ops.elu: [(0.0, 1.0)],
        ops.hard_sigmoid: [(-3.0, 0.0), (3.0, 0.0)],
        ops.hard_swish: [(-3.0, 0.0), (3.0, 1.0)],
    }
    for fn, pairs in cases.items():
        for x0, d in pairs:
            t = Tensor(np.array([x0]), requires_grad=True)
            fn(t).backward(np.ones(1))
            assert t.grad[0] == pytest.approx(d), (fn.__name__, x0)


# ----------------------------------------------------------------------------------------
# erf (used by exact GELU) against the C library
# ----------------------------------------------------------------------------------------
def test_erf_matches_math_erf():
    x = np.concatenate([np.linspace(-7, 7, 2001), [-30.0, -0.5, 0.5, 4.0, -4.0, 27.9, 40.0]])
    ref = np.array([math.erf(v) for v in x])
    refc = np.array([math.erfc(v) for v in x])
    assert np.max(np.abs(K.erf(x) - ref)) < 1e-15
    rel = np.abs(K.erfc(x) - refc) / np.maximum(refc, 1e-300)
    assert np.max(rel) < 1e-14
    assert K.erf(np.float32(0.3)).dtype == np.float32
    assert np.array_equal(K.erf(np.array([np.inf, -np.inf])), [1.0, -1.0])
    assert np.array_equal(K.erfc(np.array([np.inf, -np.inf])), [0.0, 2.0])


# ----------------------------------------------------------------------------------------
# Values at known points (independent constants)
# ----------------------------------------------------------------------------------------
def test_known_values():
    one = np.array([1.0, -1.0])
    np.testing.assert_allclose(ops.selu(one).data,
                               [1.0507009873554805, 1.0507009873554805 * 1.6732632423543772
                                * (math.exp(-1) - 1)], rtol=1e-15)
    np.testing.assert_allclose(ops.gelu(one, approximate=False).data,
                               [0.5 * (1 + math.erf(1 / math.sqrt(2))),
                                -0.5 * (1 + math.erf(-1 / math.sqrt(2)))], rtol=1e-15)
    np.testing.assert_allclose(ops.hard_sigmoid(np.array([-2.0, 0.0, 1.0]), 0.2, 0.5).data,
                               [0.1, 0.5, 0.7], rtol=1e-15)
    np.testing.assert_allclose(ops.softplus(np.array([0.0])).data, [math.log(2)], rtol=1e-15)
    np.testing.assert_allclose(ops.swish(one).data, ops.silu(one).data)


# ----------------------------------------------------------------------------------------
# ONNX operator test cases (forward)
# ----------------------------------------------------------------------------------------
def _onnx_fn(node):
    from onnx import helper
    a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
    op = node.op_type
    if op == "Relu":
        return ops.relu
    if op == "LeakyRelu":
        return lambda x: ops.leaky_relu(x, a.get("alpha", 0.01))
    if op == "Elu":
        return lambda x: ops.elu(x, a.get("alpha", 1.0))
    if op == "Selu":
        if "alpha" in a or "gamma" in a:
            return None  # selu has the fixed self-normalising constants
        return ops.selu
    if op == "Gelu":
        return lambda x: ops.gelu(x, approximate=a.get("approximate", b"none").decode())
    if op == "HardSigmoid":
        return lambda x: ops.hard_sigmoid(x, a.get("alpha", 0.2), a.get("beta", 0.5))
    if op == "Swish":
        return ops.swish if a.get("alpha", 1.0) == 1.0 else None
    if op in ("Softmax", "LogSoftmax"):
        f = ops.softmax if op == "Softmax" else ops.log_softmax
        return lambda x: f(x, axis=a.get("axis", -1))
    simple = {"Sigmoid": ops.sigmoid, "Tanh": ops.tanh, "Softplus": ops.softplus,
              "HardSwish": ops.hard_swish}
    return simple[op]


ONNX_OPS = {"Relu", "LeakyRelu", "Elu", "Selu", "Gelu", "Sigmoid", "HardSigmoid", "Tanh",
            "Softplus", "HardSwish", "Swish", "Softmax", "LogSoftmax"}
# Listed, not dropped: the ONNX cases cnnkit's ops cannot express.
ONNX_UNSUPPORTED = {
    "test_selu": "Selu with alpha=2, gamma=3: cnnkit's selu uses the fixed SELU constants",
    "test_selu_example": "Selu with alpha=2, gamma=3: cnnkit's selu uses the fixed constants",
}


def test_onnx_activation_cases():
    ran = []
    for case in onnx_node_cases(ONNX_OPS):
        if case.name in ONNX_UNSUPPORTED:
            assert _onnx_fn(case.model.graph.node[0]) is None
            continue
        fn = _onnx_fn(case.model.graph.node[0])
        for inputs, outputs in case.data_sets:
            got = fn(inputs[0]).data
            assert_close_scaled(got, outputs[0], tol=1e-5, what=case.name)
        ran.append(case.name)
    assert len(ran) >= 30, ran


# ----------------------------------------------------------------------------------------
# Extremes, dtypes, errors, get_activation
# ----------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_extreme_inputs_finite(name, dtype):
    fn = ACTIVATIONS[name][0]
    x = np.array([[-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4]], dtype)
    t = Tensor(x, requires_grad=True)
    y = fn(t)
    y.backward(np.ones_like(x))
    assert y.dtype == dtype and t.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(t.grad)), (y.data, t.grad)


def test_saturation_values():
    x = np.array([-1e4, 1e4], np.float32)
    np.testing.assert_array_equal(ops.sigmoid(x).data, [0, 1])
    np.testing.assert_array_equal(ops.softplus(x).data, [0, 1e4])
    np.testing.assert_array_equal(ops.softmax(x).data, [0, 1])
    np.testing.assert_array_equal(ops.log_softmax(x).data, [-2e4, 0])
    np.testing.assert_array_equal(ops.gelu(x).data, [0, 1e4])


def test_integer_input_becomes_float32():
    assert ops.relu(np.array([-1, 2])).dtype == np.float32


def test_bad_arguments():
    with pytest.raises(ValueError, match="gelu: approximate"):
        ops.gelu(np.ones(3), approximate="erf")
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range for an input of rank 2"):
        ops.softmax(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match="log_softmax: axis"):
        ops.log_softmax(np.ones(3), axis=-2)


def test_leaky_relu_alpha_alias():
    x = np.array([-2.0, 1.0])
    np.testing.assert_array_equal(ops.leaky_relu(x, alpha=0.1).data, [-0.2, 1.0])
    np.testing.assert_array_equal(ops.leaky_relu(x).data, [-0.4, 1.0])


KERAS_NAMES = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid",
               "tanh", "swish", "silu", "hard_swish", "softplus", "softmax", "log_softmax",
               "linear"]


def test_get_activation():
    x = rng.standard_normal((2, 5))
    for name in KERAS_NAMES:
        fn = ops.get_activation(name)
        assert callable(fn)
        assert fn(x).shape == x.shape
    assert ops.get_activation("relu") is ops.relu
    assert ops.get_activation("swish") is ops.silu
    # the "gelu" string is keras.activations.gelu: exact (erf), unlike keras.ops.gelu
    np.testing.assert_allclose(ops.get_activation("GELU")(np.array([1.0])).data,
                               [0.5 * (1 + math.erf(1 / math.sqrt(2)))], rtol=1e-12)
    np.testing.assert_array_equal(ops.get_activation(None)(x).data, x)
    np.testing.assert_array_equal(ops.get_activation("linear")(x).data, x)
    # keras.activations.leaky_relu (the string) has slope 0.2
    np.testing.assert_allclose(ops.get_activation("leaky_relu")(np.array([-1.0])).data, [-0.2])

    def custom(t):
        return t

    assert ops.get_activation(custom) is custom
    with pytest.raises(ValueError, match=r"unknown activation 'relu7'; known activations: .*elu"):
        ops.get_activation("relu7")
    with pytest.raises(ValueError, match="unknown activation 3"):
        ops.get_activation(3)


def test_linear_activation_passes_gradient():
    t = Tensor(np.ones(3), requires_grad=True)
    (ops.get_activation("linear")(t) * 2.0).sum().backward()
    np.testing.assert_array_equal(t.grad, [2.0, 2.0, 2.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_forward_kernel_against_numpy(dtype):
    """The pieces run clip(x, 0, inf): same values as np.maximum(x, 0), NaN kept,
    large inputs (several pieces) included."""
    x = rng.standard_normal(300_001).astype(dtype)
    x[:3] = [np.nan, 0.0, -0.0]
    y = K.relu_forward(x.reshape(-1, 1))
    np.testing.assert_array_equal(y.ravel(), np.maximum(x, 0))
    assert y.dtype == dtype and np.isnan(y[0, 0])
    g = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(K.relu_backward(g, x, y.ravel()), np.where(x > 0, g, 0))
