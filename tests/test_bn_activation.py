"""Batch norm, and the sum of a residual block, fused with the ReLU / ReLU6 that reads it
(``ops.batch_norm(activation=)`` with the C kernels ``cnk_bn_*_act``, ``ops.add(activation=)``,
and the training-time fusion in models/fusion.py): against PyTorch (float64 batch norm or sum
then ReLU / hardtanh(0, 6)), against central differences, and the models' fused training step
against the same layers called one by one."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_scaled, gradcheck, torch_or_skip

from cnnkit import layers, ops
from cnnkit.autograd import Tensor
from cnnkit.kernels.native import norm as native_norm
from cnnkit.models import Model, Sequential

EPS = 1e-3
SHAPES = [(64, 16), (2, 5, 7, 3), (1, 6, 5, 24), (3, 9, 9, 17), (4, 8, 8, 32)]


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[-1]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    return x, g, rng.standard_normal(c).astype(np.float32) * 3, \
        rng.standard_normal(c).astype(np.float32) * 3


def _fused(x, g, gamma, beta, act):
    xt, gt, bt = (Tensor(a.copy(), requires_grad=True) for a in (x, gamma, beta))
    y = ops.batch_norm(xt, gt, bt, None, None, training=True, epsilon=EPS, activation=act)
    (y * Tensor(g)).sum().backward()
    return y.data, xt.grad, gt.grad, bt.grad


def _torch(x, g, gamma, beta, act):
    torch = torch_or_skip()
    perm = (0, x.ndim - 1, *range(1, x.ndim - 1))
    xt = torch.tensor(x.transpose(perm).astype(np.float64), requires_grad=True)
    gt = torch.tensor(gamma.astype(np.float64), requires_grad=True)
    bt = torch.tensor(beta.astype(np.float64), requires_grad=True)
    y = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=EPS)
    y = torch.relu(y) if act == "relu" else torch.nn.functional.hardtanh(y, 0.0, 6.0)
    y.backward(torch.tensor(g.transpose(perm).astype(np.float64)))
    back = np.argsort(perm)
    return (y.detach().numpy().transpose(back), xt.grad.numpy().transpose(back),
            gt.grad.numpy(), bt.grad.numpy())


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("act", ["relu", "relu6"])
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_matches_torch(shape, act, native):
    if native and not native_norm.available():
        pytest.skip("the native batch-norm helper is not built")
    x, g, gamma, beta = _data(shape)
    native_norm.set_enabled(native)
    try:
        ours = _fused(x, g, gamma, beta, act)
    finally:
        native_norm.set_enabled(None)
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), ours, _torch(x, g, gamma, beta, act),
                          strict=True):
        assert a.dtype == np.float32
        assert_close_scaled(a, b, tol=2e-5, what=f"{shape} {act} {name}")


@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_fused_gradcheck(act):
    x, _, gamma, beta = _data((2, 3, 4, 5), seed=1)
    gradcheck(lambda a, b, c: ops.batch_norm(a, b, c, None, None, training=True,
                                             epsilon=EPS, activation=act),
              x, gamma, beta, tol=1e-5)


@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_fused_same_bits_as_two_ops(act):
    x, g, gamma, beta = _data((4, 8, 8, 24), seed=2)
    fused = _fused(x, g, gamma, beta, act)
    xt, gt, bt = (Tensor(a.copy(), requires_grad=True) for a in (x, gamma, beta))
    y = ops.batch_norm(xt, gt, bt, None, None, training=True, epsilon=EPS)
    y = ops.relu(y) if act == "relu" else ops.relu6(y)
    (y * Tensor(g)).sum().backward()
    for a, b in zip(fused, (y.data, xt.grad, gt.grad, bt.grad), strict=True):
        np.testing.assert_array_equal(a, b)


def test_inference_mode_activation():
    x, g, gamma, beta = _data((2, 4, 4, 8), seed=3)
    mm, mv = np.full(8, 0.3, np.float32), np.full(8, 2.0, np.float32)
    xt = Tensor(x, requires_grad=True)
    y = ops.batch_norm(xt, gamma, beta, mm, mv, training=False, epsilon=EPS,
                       activation="relu6")
    (y * Tensor(g)).sum().backward()
    z = (x - 0.3) / np.sqrt(2.0 + EPS) * gamma + beta
    assert_close_scaled(y.data, np.clip(z, 0, 6), tol=1e-6)
    assert_close_scaled(xt.grad, g * ((z > 0) & (z < 6)) * gamma / np.sqrt(2.0 + EPS), tol=1e-6)


def test_rejects_other_activations():
    with pytest.raises(ValueError, match="fuses"):
        ops.batch_norm(np.ones((2, 3), np.float32), None, None, None, None, training=True,
                       activation="tanh")


def _functional():
    inp = layers.Input((6, 6, 3))
    a = layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    a = layers.BatchNormalization()(a)
    a = layers.ReLU()(a)                                   # fused: relu
    b = layers.Conv2D(8, 3, padding="same", use_bias=False)(a)
    b = layers.BatchNormalization()(b)
    b = layers.Activation("relu6")(b)                      # fused: relu6
    c = layers.BatchNormalization()(b)                     # read twice: not fused
    d = layers.Add()([layers.ReLU()(c), c])
    e = layers.BatchNormalization()(d)
    e = layers.ReLU(negative_slope=0.1)(e)                 # not a plain ReLU: not fused
    e = layers.ReLU()(layers.Add()([e, d]))                # fused: add + relu
    out = layers.Dense(3)(layers.GlobalAveragePooling2D()(e))
    return Model(inp, out)


def _grads_by_steps(model, x, fused):
    """Loss and gradients of one training step: the model's own call (fused) or its layers
    called one by one in graph order (nothing fused)."""
    for p in model.parameters():
        p.grad = None
    if fused:
        y = model(x, training=True)
    else:
        values = {id(model._inputs[0]): Tensor(x)}
        for node in model._nodes[1:]:
            args = node.inputs
            arg = [values[id(t)] for t in args] if isinstance(args, list) else values[id(args)]
            values[id(node.output_tensors[0])] = node.layer(arg, training=True)
        y = values[id(model._outputs[0])]
    loss = (y * y).sum()
    loss.backward()
    return [float(loss.data)] + [p.grad.copy() for p in model.parameters()]


def test_model_training_step_fuses_with_the_same_results():
    model = _functional()
    x = np.random.default_rng(4).standard_normal((4, 6, 6, 3)).astype(np.float32)
    fused, plain = _grads_by_steps(model, x, True), _grads_by_steps(model, x, False)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    from cnnkit.models import fusion

    nodes = model._nodes
    firsts = sorted(type(nodes[i].layer).__name__ for i, j in model._fusion_pairs().items()
                    if fusion.fused_activation(nodes[i].layer, nodes[j].layer))
    assert firsts == ["Add", "BatchNormalization", "BatchNormalization"]


def test_sequential_fuses_with_the_same_results():
    model = Sequential([layers.Input((5, 5, 2)), layers.Conv2D(4, 3, use_bias=False),
                        layers.BatchNormalization(), layers.ReLU(max_value=6),
                        layers.Flatten(), layers.Dense(2)])
    x = np.random.default_rng(5).standard_normal((3, 5, 5, 2)).astype(np.float32)
    y = model(x, training=True)
    (y * y).sum().backward()
    got = [p.grad.copy() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    h = Tensor(x)
    for layer in model.layers:
        h = layer(h, training=True)
    (h * h).sum().backward()
    np.testing.assert_array_equal(y.data, h.data)
    for a, p in zip(got, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, p.grad)


@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_add_activation_matches_torch(act):
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    a, b, g = (rng.standard_normal((2, 5, 5, 8)).astype(np.float32) * 4 for _ in range(3))
    at, bt = Tensor(a.copy(), requires_grad=True), Tensor(b.copy(), requires_grad=True)
    y = ops.add(at, bt, activation=act)
    (y * Tensor(g)).sum().backward()
    ta = torch.tensor(a.astype(np.float64), requires_grad=True)
    tb = torch.tensor(b.astype(np.float64), requires_grad=True)
    s = ta + tb
    ty = torch.relu(s) if act == "relu" else torch.nn.functional.hardtanh(s, 0.0, 6.0)
    ty.backward(torch.tensor(g.astype(np.float64)))
    assert_close_scaled(y.data, ty.detach().numpy(), 1e-6, "y")
    assert_close_scaled(at.grad, ta.grad.numpy(), 1e-6, "da")
    assert_close_scaled(bt.grad, tb.grad.numpy(), 1e-6, "db")
    with pytest.raises(ValueError, match="fuses"):
        ops.add(at, Tensor(b[:1]), activation=act)
