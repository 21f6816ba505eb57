"""Softmax cross-entropy and log_softmax on extreme logits (+-3e38, +-inf) against PyTorch.

Reference: torch.nn.functional.cross_entropy / log_softmax, forward and backward, in float32
and float64. Where PyTorch is finite cnnkit must agree; where PyTorch is NaN because an
infinite logit makes the max infinite, cnnkit is NaN too.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import torch_or_skip

from cnnkit import Tensor, ops
from cnnkit.train import losses

INF = float("inf")
ROWS = [
    [3e38, 0.0, -3e38],  # the issue's case: 3e38 - -3e38 overflows float32
    [3e38, 3e38, -3e38],
    [1e30, -1e30, 0.0],
    [-INF, 0.0, 1.0],
    [-INF, -INF, 0.0],
    [INF, 0.0, 1.0],  # an infinite max: NaN in PyTorch as well
    [-INF, -INF, -INF],
    [2.0, -1.0, 0.5],
]
DTYPES = [np.float32, np.float64]


def _torch_ce(torch, z: np.ndarray, target: np.ndarray):
    zt = torch.tensor(z, requires_grad=True)
    tt = torch.tensor(target)
    loss = torch.nn.functional.cross_entropy(zt, tt, reduction="sum")
    loss.backward()
    return loss.item(), zt.grad.numpy()


def _ours_ce(z: np.ndarray, target: np.ndarray):
    zt = Tensor(z, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from the kernels either
        loss = ops.softmax_cross_entropy(zt, target, reduction="sum")
        loss.backward()
    return float(loss.data), zt.grad


def _same(ours, ref, dtype) -> None:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(ref))
    fin = np.isfinite(ref)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours[fin], ref[fin], rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row", ROWS, ids=[str(r) for r in ROWS])
def test_class_index_cross_entropy_matches_torch(row, dtype):
    torch = torch_or_skip()
    z = np.array([row], dtype=dtype)
    for label in range(3):
        y = np.array([label])
        ref_loss, ref_grad = _torch_ce(torch, z, y)
        loss, grad = _ours_ce(z, y)
        _same(loss, ref_loss, dtype)
        _same(grad, ref_grad, dtype)


def test_issue_case_gives_the_large_finite_loss():
    z = np.array([[3e38, 0.0, -3e38]], np.float32)
    loss, grad = _ours_ce(z, np.array([1]))
    assert loss == pytest.approx(3e38, rel=1e-6)  # -log softmax_1 = 3e38 - 0 exactly
    np.testing.assert_array_equal(grad, [[1.0, -1.0, 0.0]])  # softmax - onehot


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row", ROWS, ids=[str(r) for r in ROWS])
def test_probability_targets_skip_zero_classes(row, dtype):
    """With a one-hot probability target the loss equals the class-index loss (PyTorch's
    probability form gives 0 * -inf = NaN here; its class-index form is the reference)."""
    torch = torch_or_skip()
    z = np.array([row], dtype=dtype)
    for label in range(3):
        onehot = np.eye(3, dtype=dtype)[[label]]
        ref_loss, ref_grad = _torch_ce(torch, z, np.array([label]))
        loss, grad = _ours_ce(z, onehot)
        _same(loss, ref_loss, dtype)
        _same(grad, ref_grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_sparse_loss_from_logits_matches_torch(dtype):
    torch = torch_or_skip()
    z = np.array([r for r in ROWS if np.isfinite(max(r))], dtype=dtype)
    y = np.array([1, 2, 0, 2, 2, 1])
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(y), reduction="none")
    ref.sum().backward()
    ours_in = Tensor(z, requires_grad=True)
    ours = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(y, ours_in)
    ops.sum(ours).backward()
    _same(ours.data, ref.detach().numpy(), dtype)
    _same(ours_in.grad, zt.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_matches_torch(dtype):
    torch = torch_or_skip()
    z = np.array(ROWS, dtype=dtype)
    g = np.linspace(-1, 1, z.size).reshape(z.shape).astype(dtype)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.log_softmax(zt, dim=-1)
    ref.backward(torch.tensor(g))
    ours_in = Tensor(z, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = ops.log_softmax(ours_in, axis=-1)
        ours.backward(g)
        soft = ops.softmax(Tensor(z), axis=-1)
    _same(ours.data, ref.detach().numpy(), dtype)
    _same(ours_in.grad, zt.grad.numpy(), dtype)
    _same(soft.data, torch.softmax(torch.tensor(z), dim=-1).numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_style_cross_entropy_loss_matches_torch(dtype):
    """CrossEntropyLoss with class weights and ignore_index on extreme logits."""
    torch = torch_or_skip()
    z = np.array([r for r in ROWS if np.isfinite(max(r))], dtype=dtype)
    y = np.array([1, 2, 0, 2, -100, 1])  # the -inf row's -inf class is ignored
    weight = np.array([0.5, 2.0, 1.0], dtype)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight))(zt, torch.tensor(y))
    ref.backward()
    ours_in = Tensor(z, requires_grad=True)
    ours = losses.CrossEntropyLoss(weight=weight)(ours_in, y)
    ours.backward()
    _same(ours.data, ref.item(), dtype)
    _same(ours_in.grad, zt.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_ignore_class_on_extreme_logits_matches_torch(dtype):
    """An ignored position whose logits make every class but one -inf gives 0, not 0 * inf."""
    torch = torch_or_skip()
    z = np.array([[-INF, -INF, 0.0], [3e38, 0.0, -3e38], [1.0, 2.0, 3.0]], dtype=dtype)
    y = np.array([0, 1, 2])  # the first position is ignored
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor([-100, 1, 2]), reduction="none")
    ref.sum().backward()
    ours_in = Tensor(z, requires_grad=True)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0,
                                                reduction="none")
    ours = loss(y, ours_in)
    ops.sum(ours).backward()
    _same(ours.data, ref.detach().numpy(), dtype)
    _same(ours_in.grad, zt.grad.numpy(), dtype)
