"""Losses: finite differences (float64), PyTorch (float32), ONNX SoftmaxCrossEntropyLoss cases,
extreme logits, bad labels and dtype errors.

cnnkit's reductions (Keras): "none" = per-sample losses (mean over non-batch axes for the
regression losses and BCE; one value per position for softmax CE), "sum" = their sum,
"mean" = their mean. PyTorch's elementwise "none" and "sum" are converted explicitly below.
"""

import numpy as np
import pytest
from helpers import assert_close_scaled, check_vs_torch, gradcheck, onnx_node_cases, torch_or_skip

from cnnkit import Tensor, ops

rng = np.random.default_rng(2)
REDUCTIONS = ["none", "sum", "mean"]


def softmax_np(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------------------
# Finite differences (float64)
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(4, 3), (2, 2, 3, 4)])
def test_softmax_ce_int_labels_fd(shape, smoothing, reduction):
    z = rng.standard_normal(shape) * 2
    y = rng.integers(0, shape[-1], shape[:-1])
    gradcheck(lambda t: ops.softmax_cross_entropy(t, y, label_smoothing=smoothing,
                                                  reduction=reduction), z)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_ce_soft_labels_weights_fd(reduction):
    z = rng.standard_normal((3, 5))
    p = softmax_np(rng.standard_normal((3, 5)))
    w = rng.uniform(0.5, 2.0, 3)
    gradcheck(lambda t: ops.softmax_cross_entropy(t, p, label_smoothing=0.1, reduction=reduction,
                                                  sample_weight=w), z)


def test_softmax_ce_class_axis_1_fd():
    z = rng.standard_normal((2, 4, 3))  # classes on axis 1 (NCL layout)
    y = rng.integers(0, 4, (2, 3))
    gradcheck(lambda t: ops.softmax_cross_entropy(t, y, axis=1, reduction="sum"), z)
    gradcheck(lambda t: ops.softmax_cross_entropy(t, y, axis=1, reduction="none"), z)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 2)])
def test_bce_fd(shape, reduction):
    z = rng.standard_normal(shape) * 2
    y = rng.uniform(0, 1, shape)
    w = rng.uniform(0.5, 2.0, shape[:1])
    gradcheck(lambda t: ops.binary_cross_entropy(t, y, reduction=reduction), z)
    gradcheck(lambda t: ops.binary_cross_entropy(t, y, reduction=reduction, sample_weight=w), z)


def _away_from_target(p, t, kinks):
    """Keep p - t away from the loss kinks so central differences stay on one side."""
    d = p - t
    for k in kinks:
        d = np.where(np.abs(d - k) < 0.05, k + np.where(d >= k, 0.1, -0.1), d)
    return t + d


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss,kinks", [
    ("mean_squared_error", ()), ("mean_absolute_error", (0.0,)), ("huber", (-1.0, 1.0)),
    ("huber_0.5", (-0.5, 0.5))])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 2)])
def test_regression_fd(shape, loss, kinks, reduction):
    t = rng.standard_normal(shape)
    p = _away_from_target(t + rng.standard_normal(shape) * 1.5, t, kinks)
    w = rng.uniform(0.5, 2.0, shape[:1])
    fn = (lambda a, b, **k: ops.huber(a, b, delta=0.5, **k)) if loss == "huber_0.5" \
        else getattr(ops, loss)
    gradcheck(lambda a: fn(a, t, reduction=reduction), p)
    gradcheck(lambda a: fn(a, t, reduction=reduction, sample_weight=w), p)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_divergence_fd(reduction):
    p = softmax_np(rng.standard_normal((3, 4)))
    t = softmax_np(rng.standard_normal((3, 4)))
    t[0, 1] = 0.0  # a zero target term contributes nothing
    gradcheck(lambda a: ops.kl_divergence(a, t, reduction=reduction), p)


# ----------------------------------------------------------------------------------------
# PyTorch (float32), forward and backward
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("shape", [(7, 5), (3, 5, 3, 7)])
def test_softmax_ce_int_labels_vs_torch(shape, smoothing, reduction):
    torch = torch_or_skip()
    F = torch.nn.functional  # noqa: N806
    z = (rng.standard_normal(shape) * 3).astype(np.float32)
    y = rng.integers(0, shape[-1], shape[:-1])
    g = rng.standard_normal(shape[:-1]).astype(np.float32) if reduction == "none" else None
    # torch puts classes on axis 1: move them there and back
    check_vs_torch(lambda t: ops.softmax_cross_entropy(t, y, label_smoothing=smoothing,
                                                       reduction=reduction),
                   lambda t: F.cross_entropy(torch.movedim(t, -1, 1), torch.tensor(y),
                                             label_smoothing=smoothing, reduction=reduction),
                   z, grad_out=g, what="cross_entropy")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_softmax_ce_probability_targets_vs_torch(smoothing, reduction):
    torch = torch_or_skip()
    F = torch.nn.functional  # noqa: N806
    z = (rng.standard_normal((9, 6)) * 3).astype(np.float32)
    p = softmax_np(rng.standard_normal((9, 6))).astype(np.float32)
    g = rng.standard_normal(9).astype(np.float32) if reduction == "none" else None
    check_vs_torch(lambda t: ops.softmax_cross_entropy(t, p, label_smoothing=smoothing,
                                                       reduction=reduction),
                   lambda t: F.cross_entropy(t, torch.tensor(p), label_smoothing=smoothing,
                                             reduction=reduction),
                   z, grad_out=g, what="cross_entropy (probabilities)")


def test_softmax_ce_class_axis_1_vs_torch():
    torch = torch_or_skip()
    z = (rng.standard_normal((3, 5, 4, 3)) * 3).astype(np.float32)  # NCHW
    y = rng.integers(0, 5, (3, 4, 3))
    check_vs_torch(lambda t: ops.softmax_cross_entropy(t, y, axis=1),
                   lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(y)),
                   z, what="cross_entropy axis=1")


def _per_sample(torch_none, n):
    """PyTorch's elementwise losses -> cnnkit per-sample losses (mean over non-batch axes)."""
    return torch_none.reshape(n, -1).mean(1) if torch_none.ndim > 1 else torch_none


def _torch_reduced(torch, elementwise, reduction):
    """cnnkit reductions on top of a PyTorch elementwise ("none") loss."""
    n = elementwise.shape[0]
    per = elementwise.reshape(n, -1).mean(1) if elementwise.ndim > 1 else elementwise
    return {"none": per, "sum": per.sum(), "mean": per.mean()}[reduction]


ELEMENTWISE = {
    "binary_cross_entropy": lambda F, a, b: F.binary_cross_entropy_with_logits(
        a, b, reduction="none"),
    "mean_squared_error": lambda F, a, b: F.mse_loss(a, b, reduction="none"),
    "mean_absolute_error": lambda F, a, b: F.l1_loss(a, b, reduction="none"),
    "huber": lambda F, a, b: F.huber_loss(a, b, reduction="none", delta=1.0),
    "huber_2.5": lambda F, a, b: F.huber_loss(a, b, reduction="none", delta=2.5),
}


def _op(name):
    if name == "huber_2.5":
        return lambda a, b, **k: ops.huber(a, b, delta=2.5, **k)
    return getattr(ops, name)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("shape", [(7,), (5, 3), (3, 4, 5, 2)])
def test_elementwise_losses_vs_torch(shape, name, reduction):
    torch = torch_or_skip()
    F = torch.nn.functional  # noqa: N806
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    if name == "binary_cross_entropy":
        t = rng.uniform(0, 1, shape).astype(np.float32)
    else:
        t = (rng.standard_normal(shape) * 2).astype(np.float32)
    g = rng.standard_normal(shape[:1]).astype(np.float32) if reduction == "none" else None
    check_vs_torch(lambda a: _op(name)(a, t, reduction=reduction),
                   lambda a: _torch_reduced(torch, ELEMENTWISE[name](F, a, torch.tensor(t)),
                                            reduction),
                   x, grad_out=g, what=name)


def test_torch_mean_equals_cnnkit_mean():
    """With equal-size samples, cnnkit's "mean" is PyTorch's elementwise mean."""
    torch = torch_or_skip()
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    t = rng.standard_normal((4, 3, 5)).astype(np.float32)
    ref = torch.nn.functional.mse_loss(torch.tensor(x), torch.tensor(t)).item()
    assert ops.mean_squared_error(x, t).item() == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_divergence_vs_torch(reduction):
    torch = torch_or_skip()
    p = softmax_np(rng.standard_normal((6, 5))).astype(np.float32)
    t = softmax_np(rng.standard_normal((6, 5))).astype(np.float32)
    g = rng.standard_normal(6).astype(np.float32) if reduction == "none" else None

    def ref(a):
        per = torch.nn.functional.kl_div(torch.log(a), torch.tensor(t), reduction="none").sum(-1)
        return {"none": per, "sum": per.sum(), "mean": per.mean()}[reduction]

    check_vs_torch(lambda a: ops.kl_divergence(a, t, reduction=reduction), ref, p, grad_out=g,
                   what="kl_divergence")


# ----------------------------------------------------------------------------------------
# Sample weights (Keras: mean = sum(w * l) / N), computed from PyTorch's unreduced losses
# ----------------------------------------------------------------------------------------
def test_sample_weight_semantics_vs_torch():
    torch = torch_or_skip()
    F = torch.nn.functional  # noqa: N806
    z = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    w = np.array([1, 0, 2, 0.5, 0, 1], np.float32)
    per = F.cross_entropy(torch.tensor(z), torch.tensor(y), reduction="none").numpy()
    np.testing.assert_allclose(
        ops.softmax_cross_entropy(z, y, sample_weight=w).item(), (w * per).sum() / 6, rtol=1e-5)
    np.testing.assert_allclose(
        ops.softmax_cross_entropy(z, y, sample_weight=w, reduction="sum").item(),
        (w * per).sum(), rtol=1e-5)
    np.testing.assert_allclose(
        ops.softmax_cross_entropy(z, y, sample_weight=w, reduction="none").data, w * per,
        rtol=1e-5)
    # gradient: rows with weight 0 get none
    t = Tensor(z, requires_grad=True)
    ops.softmax_cross_entropy(t, y, sample_weight=w).backward()
    assert np.all(t.grad[w == 0] == 0) and np.all(t.grad[w != 0] != 0)
    # (N, 1) weights and a per-position weight map for (N, H, W, C) logits
    x = rng.standard_normal((6, 3)).astype(np.float32)
    tt = rng.standard_normal((6, 3)).astype(np.float32)
    per = F.mse_loss(torch.tensor(x), torch.tensor(tt), reduction="none").numpy().mean(1)
    np.testing.assert_allclose(ops.mean_squared_error(x, tt, sample_weight=w[:, None]).item(),
                               (w * per).sum() / 6, rtol=1e-5)
    z4 = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    y4 = rng.integers(0, 4, (2, 3, 3))
    w4 = rng.uniform(0, 1, (2, 3, 3)).astype(np.float32)
    per4 = F.cross_entropy(torch.tensor(z4).permute(0, 3, 1, 2), torch.tensor(y4),
                           reduction="none").numpy()
    np.testing.assert_allclose(ops.softmax_cross_entropy(z4, y4, sample_weight=w4).item(),
                               (w4 * per4).sum() / per4.size, rtol=1e-5)
    wb = np.array([1.0, 3.0], np.float32)  # one weight per image broadcasts over positions
    np.testing.assert_allclose(ops.softmax_cross_entropy(z4, y4, sample_weight=wb).item(),
                               (wb[:, None, None] * per4).sum() / per4.size, rtol=1e-5)


# ----------------------------------------------------------------------------------------
# ONNX SoftmaxCrossEntropyLoss node cases (classes on axis 1)
# ----------------------------------------------------------------------------------------
def test_onnx_softmax_cross_entropy_cases():
    cases = onnx_node_cases(["SoftmaxCrossEntropyLoss"])
    from onnx import helper

    ran, unsupported = [], {}
    for case in cases:
        node = case.model.graph.node[0]
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        inputs, outputs = case.data_sets[0]
        if "ignore_index" in a:
            unsupported[case.name] = "ignore_index is not supported"
            continue
        if len(inputs) > 2:
            unsupported[case.name] = "per-class weights are not supported (use sample_weight)"
            continue
        loss = ops.softmax_cross_entropy(inputs[0], inputs[1], axis=1,
                                         reduction=a.get("reduction", b"mean").decode())
        assert_close_scaled(loss.data, outputs[0], tol=1e-5, what=case.name)
        if len(outputs) > 1:  # the *_log_prob variants also return log_softmax
            assert_close_scaled(ops.log_softmax(inputs[0], axis=1).data, outputs[1], tol=1e-5)
        ran.append(case.name)
    # listed, not dropped
    assert len(ran) == 10 and len(unsupported) == len(cases) - 10, (ran, unsupported)


# ----------------------------------------------------------------------------------------
# Extreme logits
# ----------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_finite(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [-1e4, 1e4, 1e4]], dtype)
    y = np.array([0, 0, 2])
    t = Tensor(z, requires_grad=True)
    loss = ops.softmax_cross_entropy(t, y, reduction="sum")
    loss.backward()
    assert loss.dtype == dtype and np.isfinite(loss.item()) and np.all(np.isfinite(t.grad))
    # right with certainty: 0; wrong by 2e4: 2e4; a tie between two classes: log 2
    np.testing.assert_allclose(ops.softmax_cross_entropy(z, y, reduction="none").data,
                               [0.0, 2e4, np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(t.grad, [[0, 0, 0], [-1, 0, 1], [0, 0.5, -0.5]], atol=1e-6)
    t = Tensor(z, requires_grad=True)
    ops.softmax_cross_entropy(t, softmax_np(z.astype(np.float64)).astype(dtype),
                              label_smoothing=0.1).backward()
    assert np.all(np.isfinite(t.grad))

    x = np.array([1e4, -1e4, 1e4, -1e4], dtype)
    lab = np.array([1, 0, 0, 1], dtype)
    t = Tensor(x, requires_grad=True)
    bce = ops.binary_cross_entropy(t, lab, reduction="none")
    bce.sum().backward()
    np.testing.assert_allclose(bce.data, [0, 0, 1e4, 1e4])
    np.testing.assert_allclose(t.grad, [0, 0, 1, -1])


# ----------------------------------------------------------------------------------------
# Labels, shapes, dtypes and arguments
# ----------------------------------------------------------------------------------------
def test_bad_labels():
    z = np.zeros((3, 10), np.float32)
    with pytest.raises(ValueError, match=r"label 10 is out of range for 10 classes .*\[0, 10\)"):
        ops.softmax_cross_entropy(z, np.array([1, 10, 3]))
    with pytest.raises(ValueError, match="label -1 is out of range for 10 classes"):
        ops.softmax_cross_entropy(z, np.array([1, -1, 3]))
    with pytest.raises(ValueError, match="whole numbers, got 1.5"):
        ops.softmax_cross_entropy(z, np.array([1, 1.5, 3]))
    with pytest.raises(ValueError, match=r"expects labels of shape \(3,\) .* or \(3, 10\)"):
        ops.softmax_cross_entropy(z, np.array([1, 2]))
    with pytest.raises(ValueError, match="label 5 is out of range for 4 classes"):
        ops.softmax_cross_entropy(np.zeros((2, 4, 3), np.float32), np.full((2, 3), 5), axis=1)


def test_label_forms_agree():
    z = rng.standard_normal((4, 3)).astype(np.float32)
    y = np.array([0, 2, 1, 2])
    one_hot = np.eye(3, dtype=np.float32)[y]
    ref = ops.softmax_cross_entropy(z, y).item()
    assert ops.softmax_cross_entropy(z, one_hot).item() == pytest.approx(ref, rel=1e-6)
    assert ops.softmax_cross_entropy(z, y[:, None]).item() == pytest.approx(ref, rel=1e-6)
    assert ops.softmax_cross_entropy(z, y.astype(np.float32)).item() == pytest.approx(ref)
    assert ops.softmax_cross_entropy(z, Tensor(y)).item() == pytest.approx(ref)
    # (N, 1) logits with (N,) labels for the binary / regression losses
    x = rng.standard_normal((5, 1)).astype(np.float32)
    b = rng.integers(0, 2, 5)
    assert ops.binary_cross_entropy(x, b).item() == pytest.approx(
        ops.binary_cross_entropy(x, b[:, None]).item())
    assert ops.mean_squared_error(x[:, 0], x).item() == 0.0


def test_dtype_mismatch():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match="labels has dtype float64 but the prediction has dtype "
                                        "float32"):
        ops.softmax_cross_entropy(z, np.full((3, 4), 0.25))
    with pytest.raises(TypeError, match="mean_squared_error: target has dtype float64"):
        ops.mean_squared_error(z, Tensor(np.zeros((3, 4))))
    with pytest.raises(TypeError, match="binary_cross_entropy: labels has dtype float32"):
        ops.binary_cross_entropy(z.astype(np.float64), z)
    # Python lists and integer targets adapt to the prediction
    assert ops.mean_absolute_error(np.zeros(2, np.float32), [1.0, 3.0]).item() == 2.0
    assert ops.mean_absolute_error(np.zeros(2, np.float32), np.array([1, 3])).dtype == np.float32


def test_bad_arguments():
    z = np.zeros((3, 4), np.float32)
    y = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'sum', 'mean'"):
        ops.softmax_cross_entropy(z, y, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must lie in"):
        ops.softmax_cross_entropy(z, y, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"sample_weight of shape \(4,\) does not fit"):
        ops.softmax_cross_entropy(z, y, sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        ops.softmax_cross_entropy(z, y, axis=2)
    with pytest.raises(ValueError, match=r"mean_squared_error expects target of shape \(3, 4\)"):
        ops.mean_squared_error(z, np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="huber: delta must be > 0"):
        ops.huber(z, z, delta=0)
    with pytest.raises(ValueError, match="huber expects pred of rank >= 1"):
        ops.huber(np.float32(1.0), np.float32(1.0))


def test_labels_get_no_gradient():
    z = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    p = Tensor(softmax_np(rng.standard_normal((3, 4))), requires_grad=True)
    ops.softmax_cross_entropy(z, p).backward()
    assert z.grad is not None and p.grad is None


def test_huber_matches_mse_and_mae_limits():
    p = rng.standard_normal((4, 3))
    t = rng.standard_normal((4, 3))
    np.testing.assert_allclose(ops.huber(p, t, delta=100.0).item(),
                               0.5 * np.mean((p - t) ** 2), rtol=1e-12)
    d = 1e-3
    np.testing.assert_allclose(ops.huber(p, t, delta=d).item(),
                               d * (np.mean(np.abs(p - t)) - d / 2), rtol=1e-12)
