"""The fused cross-entropy + Dice loss (ops.segmentation.ce_dice_loss, CombinedLoss without
gamma): value and gradient against finite differences and a PyTorch formula written here."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import Tensor
from cnnkit.kernels import segmentation as K
from cnnkit.ops.segmentation import ce_dice_loss
from cnnkit.segmentation import CombinedLoss


def _inputs(seed, shape=(2, 4, 5), c=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(*shape, c)) * 2, rng.integers(0, c, shape)


@pytest.mark.parametrize("alpha,ignore", [(None, True), ([1.0, 5.0, 2.0, 0.5], False)])
def test_ce_dice_gradient_matches_finite_differences(alpha, ignore):
    z, y = _inputs(0)
    a = None if alpha is None else np.array(alpha)
    classes = np.array([not ignore, True, True, True])
    _, cache = K.ce_dice_forward(z, y, a, classes, 1.0, 0.7, 1.3)
    got = K.ce_dice_backward(np.float64(1.0), cache)
    want = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        up, dn = z.copy(), z.copy()
        up[i] += 1e-6
        dn[i] -= 1e-6
        want[i] = (float(K.ce_dice_forward(up, y, a, classes, 1.0, 0.7, 1.3)[0])
                   - float(K.ce_dice_forward(dn, y, a, classes, 1.0, 0.7, 1.3)[0])) / 2e-6
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_ce_dice_matches_pytorch_formula():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference (test extra)")
    z, y = _inputs(1, shape=(3, 6, 5), c=5)
    alpha = [1.0, 5.0, 5.0, 2.0, 0.5]
    zt = torch.tensor(z, requires_grad=True)
    yt = torch.tensor(y)
    logp = torch.log_softmax(zt, -1)
    ce = (-torch.tensor(alpha)[yt] * logp.gather(-1, yt[..., None])[..., 0]).mean()
    p, t = logp.exp(), torch.nn.functional.one_hot(yt, 5).double()
    dice = (2 * (p * t).sum((0, 1, 2)) + 1) / (p.sum((0, 1, 2)) + t.sum((0, 1, 2)) + 1)
    ref = 0.5 * ce + 2.0 * (1 - dice[1:].mean())
    ref.backward()
    zc = Tensor(z, requires_grad=True)
    ours = ce_dice_loss(zc, y, alpha, ce_weight=0.5, dice_weight=2.0)
    ours.backward()
    assert float(ours.data) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(zc.grad, zt.grad.numpy(), atol=1e-12)
    # CombinedLoss without gamma takes this path: same value in float32
    loss = CombinedLoss(ce_weight=0.5, dice_weight=2.0, class_weights=alpha)
    assert float(loss(y, Tensor(z.astype(np.float32))).data) == pytest.approx(ref.item(),
                                                                              rel=1e-5)


def test_ce_dice_arguments_are_checked():
    z, y = _inputs(2)
    with pytest.raises(ValueError, match="one weight per class"):
        ce_dice_loss(z, y, [1.0, 2.0])
    with pytest.raises(ValueError, match="smooth"):
        ce_dice_loss(z, y, smooth=0.0)
