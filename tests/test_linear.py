"""Dense op: finite differences (float64), PyTorch F.linear (float32), ONNX Gemm cases, errors."""

import numpy as np
import pytest
from helpers import assert_close_scaled, gradcheck, onnx_node_cases, torch_or_skip

from cnnkit import Tensor, ops
from cnnkit.kernels import linear as K

rng = np.random.default_rng(1)

SHAPES = [((3, 4), 5), ((1, 1), 1), ((2, 3, 4), 2), ((2, 2, 3, 5), 3)]


@pytest.mark.parametrize("x_shape,n_out", SHAPES)
def test_dense_fd(x_shape, n_out):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((x_shape[-1], n_out))
    b = rng.standard_normal(n_out)
    gradcheck(ops.dense, x, w, b)
    gradcheck(ops.dense, x, w)


@pytest.mark.parametrize("x_shape,n_out", [((7, 5), 3), ((3, 5, 9), 11), ((2, 3, 5, 7), 13)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_vs_torch(x_shape, n_out, use_bias):
    torch = torch_or_skip()
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((x_shape[-1], n_out)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    g = rng.standard_normal(x_shape[:-1] + (n_out,)).astype(np.float32)

    tx, tw, tb = (Tensor(a, requires_grad=True) for a in (x, w, b))
    y = ops.dense(tx, tw, tb if use_bias else None)
    y.backward(g)

    px = torch.tensor(x, requires_grad=True)
    pw = torch.tensor(w.T.copy(), requires_grad=True)  # torch weight is (out, in)
    pb = torch.tensor(b, requires_grad=True)
    py = torch.nn.functional.linear(px, pw, pb if use_bias else None)
    py.backward(torch.tensor(g))

    assert y.dtype == np.float32
    assert_close_scaled(y.data, py.detach().numpy(), what="forward")
    assert_close_scaled(tx.grad, px.grad.numpy(), what="dx")
    assert_close_scaled(tw.grad, pw.grad.numpy().T, what="dkernel")
    if use_bias:
        assert_close_scaled(tb.grad, pb.grad.numpy(), what="dbias")
    else:
        assert tb.grad is None


def test_dense_skips_unneeded_gradients():
    x = rng.standard_normal((4, 3))
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    ops.dense(x, w).sum().backward()
    np.testing.assert_allclose(w.grad, np.repeat(x.sum(0)[:, None], 2, axis=1))
    dx, dw, db = K.dense_backward(np.ones((4, 2)), x, w.data, need_x=False, need_bias=False)
    assert dx is None and db is None and dw.shape == (3, 2)


def test_dense_non_contiguous_input():
    x = rng.standard_normal((5, 4, 3)).transpose(1, 0, 2)  # (4, 5, 3), not C-contiguous
    w = rng.standard_normal((3, 2))
    tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    y = ops.dense(tx, tw)
    np.testing.assert_allclose(y.data, np.einsum("abi,io->abo", x, w), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_allclose(tx.grad, np.einsum("abo,io->abi", g, w), rtol=1e-12)
    np.testing.assert_allclose(tw.grad, np.einsum("abi,abo->io", x, g), rtol=1e-12)


def test_dense_errors():
    x = np.ones((2, 5), np.float32)
    with pytest.raises(ValueError, match=r"dense: kernel of shape \(4, 3\) expects 4 input "
                                         r"features in the last axis of x, got 5"):
        ops.dense(x, np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"dense expects x of rank >= 2 .*got rank 1"):
        ops.dense(np.ones(5, np.float32), np.ones((5, 3), np.float32))
    with pytest.raises(ValueError, match=r"dense expects kernel of rank 2 .*got rank 3"):
        ops.dense(x, np.ones((5, 3, 1), np.float32))
    with pytest.raises(ValueError, match=r"dense expects bias of shape \(3,\).*got shape \(5,\)"):
        ops.dense(x, np.ones((5, 3), np.float32), np.ones(5, np.float32))
    with pytest.raises(TypeError, match="dense: kernel has dtype float64 but x has dtype float32"):
        ops.dense(x, np.ones((5, 3)))
    with pytest.raises(TypeError, match="dense: bias has dtype float64"):
        ops.dense(x, np.ones((5, 3), np.float32), np.ones(3))


# ----------------------------------------------------------------------------------------
# ONNX Gemm node cases: Y = alpha * A' B' + beta * C with A' = A or A^T, B' = B or B^T
# ----------------------------------------------------------------------------------------
def test_onnx_gemm_cases():
    cases = onnx_node_cases(["Gemm"])
    from onnx import helper

    unsupported = {"test_gemm_default_matrix_bias": "a per-row (M, N) bias is not a Dense bias"}
    ran = []
    for case in cases:
        if case.name in unsupported:
            continue
        node = case.model.graph.node[0]
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        for inputs, outputs in case.data_sets:
            x, w = inputs[0], inputs[1]
            x = x.T if a.get("transA") else x
            w = w.T if a.get("transB") else w
            w = (w * np.float32(a.get("alpha", 1.0))).astype(np.float32)
            bias = None
            if len(inputs) > 2:
                c = inputs[2] * np.float32(a.get("beta", 1.0))
                bias = np.broadcast_to(c.reshape(-1), (w.shape[1],)).astype(np.float32)
            assert_close_scaled(ops.dense(x, w, bias).data, outputs[0], tol=1e-5, what=case.name)
        ran.append(case.name)
    assert len(ran) == 10, ran


@pytest.mark.parametrize("need_bias", [True, False])
@pytest.mark.parametrize("x_shape,n_out,dtype", [((37, 5), 4, np.float32),
                                                 ((3, 6, 7), 9, np.float64),
                                                 ((2, 3, 4, 5), 2, np.float32)])
def test_dense_backward_two_gemm_blocks(monkeypatch, x_shape, n_out, dtype, need_bias):
    """dL/dx and dL/dW as the two blocks of one parallel section (forced onto small shapes),
    against float64 formulas."""
    from cnnkit.kernels import parallel as P

    monkeypatch.setattr(K, "MIN_SPLIT_MACS", 1)
    old = P.get_num_threads()
    P.set_num_threads(2)
    try:
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal((x_shape[-1], n_out)).astype(dtype)
        g = rng.standard_normal(x_shape[:-1] + (n_out,)).astype(dtype)
        dx, dw, db = K.dense_backward(g, x, w, need_bias=need_bias)
    finally:
        P.set_num_threads(old)
    x2 = x.reshape(-1, x_shape[-1]).astype(np.float64)
    g2 = g.reshape(-1, n_out).astype(np.float64)
    assert dx.shape == x.shape and dw.shape == w.shape and dx.dtype == dw.dtype == dtype
    assert_close_scaled(dx, (g2 @ w.T).reshape(x.shape), tol=1e-5)
    assert_close_scaled(dw, x2.T @ g2, tol=1e-5)
    if need_bias:
        assert db.dtype == dtype
        assert_close_scaled(db, g2.sum(0), tol=1e-5)
    else:
        assert db is None
