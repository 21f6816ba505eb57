"""Autograd routing and the arithmetic/shape ops, against finite differences and PyTorch."""

import numpy as np
import pytest
from helpers import assert_close_scaled, gradcheck, torch_or_skip

import cnnkit
from cnnkit import Tensor, ops

rng = np.random.default_rng(0)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)),
                                    ((2, 1, 4), (3, 1))])
@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "divide", "power"])
def test_binary_broadcast_fd(shapes, op):
    a = rng.uniform(0.5, 2.0, shapes[0])
    b = rng.uniform(0.5, 2.0, shapes[1])
    gradcheck(getattr(ops, op), a, b)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((4,), (4, 3)),
                                    ((2, 3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_fd(shapes):
    gradcheck(ops.matmul, rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1]))


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                           (-1, True)])
@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_reductions_fd(op, axis, keepdims):
    x = rng.standard_normal((3, 4, 5))
    gradcheck(lambda t: getattr(ops, op)(t, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("op", ["exp", "log", "sqrt", "square", "negative"])
def test_unary_fd(op):
    gradcheck(getattr(ops, op), rng.uniform(0.5, 2.0, (3, 4)))


def test_shape_ops_fd():
    x = rng.standard_normal((2, 3, 4))
    gradcheck(lambda t: ops.reshape(t, (6, 4)), x)
    gradcheck(lambda t: ops.transpose(t, (2, 0, 1)), x)
    gradcheck(lambda t: t[:, 1:, ::2], x)
    gradcheck(lambda t: t[np.array([0, 1, 1])], x)  # repeated index accumulates
    gradcheck(lambda t: ops.flatten(t), x)
    gradcheck(lambda a, b: ops.concatenate([a, b, a], axis=1), x, rng.standard_normal((2, 2, 4)))
    gradcheck(lambda a, b: ops.stack([a, b], axis=1), x, x + 1)
    for mode in ["constant", "reflect", "edge"]:
        gradcheck(lambda t, m=mode: ops.pad(t, [(0, 0), (1, 2), (2, 1)], mode=m), x)


def test_fan_out_sums_gradients():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = x * x + x * 3.0  # x used three times
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3.0)


def test_grad_accumulates_until_zeroed():
    x = Tensor(np.ones(3), requires_grad=True)
    (x * 2.0).sum().backward()
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, 4.0)
    x.zero_grad()
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, 2.0)


def test_backward_needs_scalar_or_grad():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match="does not match"):
        (x * 2.0).backward(np.ones(3))
    (x * 2.0).backward(np.full((2, 2), 0.5))
    np.testing.assert_allclose(x.grad, 1.0)


def test_no_grad_records_nothing_and_detach():
    x = Tensor(np.ones(3), requires_grad=True)
    with cnnkit.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    z = (x * 2.0).detach()
    assert not z.requires_grad
    assert cnnkit.is_grad_enabled()


def test_dtypes():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert (Tensor(np.ones(2, np.float32)) * 2.5).dtype == np.float32
    assert (Tensor(np.ones(2)) / 3).dtype == np.float64
    with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
        ops.add(Tensor(np.ones(2, np.float32)), Tensor(np.ones(2)))
    with pytest.raises(TypeError, match="floating"):
        Tensor(np.arange(3), requires_grad=True)


def test_shape_errors():
    with pytest.raises(ValueError, match="cannot reshape"):
        ops.reshape(np.ones((2, 3)), (4, 2))
    with pytest.raises(ValueError, match="inner dimensions"):
        ops.matmul(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="does not match"):
        ops.concatenate([np.ones((2, 3)), np.ones((3, 3))], axis=1)


def test_against_torch():
    torch = torch_or_skip()
    a = rng.standard_normal((4, 1, 5)).astype(np.float32)
    b = rng.uniform(0.5, 2, (3, 5)).astype(np.float32)
    w = rng.standard_normal((5, 2)).astype(np.float32)

    def f(mod, a, b, w):
        return (((a * b - b / (a + 3.0)) ** 2) @ w).mean(axis=1) if mod == "np" else (
            ((a * b - b / (a + 3.0)) ** 2) @ w).mean(dim=1)

    ta, tb, tw = (torch.tensor(v, requires_grad=True) for v in (a, b, w))
    ref = f("torch", ta, tb, tw)
    ref.sum().backward()
    ca, cb, cw = (Tensor(v, requires_grad=True) for v in (a, b, w))
    out = f("np", ca, cb, cw)
    out.sum().backward()
    assert_close_scaled(out.data, ref.detach().numpy(), what="forward")
    for c, t in [(ca, ta), (cb, tb), (cw, tw)]:
        assert_close_scaled(c.grad, t.grad.numpy(), what="grad")


@pytest.mark.parametrize("size", [7, 300_000])
def test_fan_out_sums_without_aliasing(size):
    """Gradient sums of a Tensor used several times (through ``add``, whose backward hands the
    same array to both inputs; later sums go into the first sum in place): the right values,
    and no two ``.grad`` arrays (or a later backward) share memory."""
    xa = rng.standard_normal(size).astype(np.float32)
    ya = rng.standard_normal(size).astype(np.float32)
    x, y = Tensor(xa, requires_grad=True), Tensor(ya, requires_grad=True)
    s = x + y  # d s / d x = d s / d y = the same array
    out = (s + s + x * 2.0 + y + s).sum()  # x: 3 + 2 = 5, y: 3 + 1 = 4
    out.backward()
    np.testing.assert_array_equal(x.grad, np.full(size, 5.0, np.float32))
    np.testing.assert_array_equal(y.grad, np.full(size, 4.0, np.float32))
    assert not np.shares_memory(x.grad, y.grad)
    gx = x.grad.copy()
    (x + x).sum().backward()  # accumulates into .grad without touching the first result
    np.testing.assert_array_equal(x.grad, gx + 2.0)
    # a leaf whose only gradient is handed through unchanged still gets its own copy
    g = np.ones(size, np.float32)
    z = Tensor(xa, requires_grad=True)
    (z + 0.0).backward(g)
    assert not np.shares_memory(z.grad, g)


def test_donated_gradient_arrays(monkeypatch):
    """A gradient array that only autograd holds is handed to the backward to overwrite (ReLU
    does); one shared with another input's gradient (``add`` gives both the same array) or
    held by the caller is not: the results match the float64 formulas either way."""
    from cnnkit.kernels import activation as KA

    seen = []
    real = KA.may_overwrite
    monkeypatch.setattr(KA, "may_overwrite", lambda a: seen.append(real(a)) or seen[-1])
    x0 = rng.standard_normal((4, 5)).astype(np.float32)
    x = Tensor(x0, requires_grad=True)
    a = ops.relu(x * 2.0)
    b = ops.relu(x - 0.5)
    out = ops.relu(ops.relu(a + b) * 3.0)  # a + b: both inputs get the same gradient array
    g = rng.standard_normal((4, 5)).astype(np.float32)
    g_copy = g.copy()
    out.backward(g)
    np.testing.assert_array_equal(g, g_copy)  # the caller's array is never written
    x64, g64 = x0.astype(np.float64), g.astype(np.float64)
    s = np.maximum(2 * x64, 0) + np.maximum(x64 - 0.5, 0)
    gs = g64 * (3 * np.maximum(s, 0) > 0) * 3 * (s > 0)
    ref = gs * (2 * x64 > 0) * 2 + gs * (x64 - 0.5 > 0)
    assert_close_scaled(x.grad, ref, tol=1e-6)
    assert True in seen  # some ReLU backward wrote into its donated gradient
    assert False in seen  # and the shared ones were not donated


def test_backward_frees_the_graph_unless_retained():
    """Saved arrays go once used (PyTorch's default); retain_graph=True keeps them, and the
    gradients of two backward passes add up: d(sum(x * x))/dx = 2x, twice = 4x."""
    import pytest

    x = Tensor(np.array([1.0, -2.0, 3.0], np.float32), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
