"""cnnkit.segmentation: Dice / focal losses (finite differences and PyTorch formulas written
here), Dice / IoU metrics (counts written out here, the empty-mask rule), the joint
image-and-mask augmentation, and the seeded scenes."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.kernels import segmentation as K
from cnnkit.ops.segmentation import focal_loss, soft_dice_loss
from cnnkit.segmentation import metrics as M


def _inputs(seed, shape=(2, 4, 5), c=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(*shape, c)) * 2, rng.integers(0, c, shape)


def _numeric(f, z, eps=1e-6):
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        up, dn = z.copy(), z.copy()
        up[i] += eps
        dn[i] -= eps
        g[i] = (f(up) - f(dn)) / (2 * eps)
    return g


# ----- losses ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ignore_background,per_sample", [(True, False), (False, True)])
def test_dice_gradient_matches_finite_differences(ignore_background, per_sample):
    z, y = _inputs(0)
    classes = np.array([not ignore_background, True, True, True])
    _, cache = K.soft_dice_forward(z, y, classes, 1.0, per_sample)
    got = K.soft_dice_backward(np.float64(1.0), cache)
    want = _numeric(lambda a: float(K.soft_dice_forward(a, y, classes, 1.0, per_sample)[0]), z)
    np.testing.assert_allclose(got, want, atol=1e-8)


@pytest.mark.parametrize("gamma,alpha", [(0.0, None), (2.0, None), (0.5, [0.2, 1, 2, 0.7])])
def test_focal_gradient_matches_finite_differences(gamma, alpha):
    z, y = _inputs(1)
    a = None if alpha is None else np.array(alpha)
    per, cache = K.focal_forward(z, y, gamma, a)
    got = K.focal_backward(np.ones_like(per), cache)
    want = _numeric(lambda b: float(K.focal_forward(b, y, gamma, a)[0].sum()), z)
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_losses_match_pytorch_formulas():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference (test extra)")
    z, y = _inputs(2, shape=(3, 6, 5), c=5)
    # Dice: one value per class over the batch, class 0 left out; and per (sample, class)
    zt = torch.tensor(z, requires_grad=True)
    p = torch.softmax(zt, -1)
    t = torch.nn.functional.one_hot(torch.tensor(y), 5).double()
    inter, total = (p * t).sum((0, 1, 2)), p.sum((0, 1, 2)) + t.sum((0, 1, 2))
    ref = 1 - ((2 * inter + 1) / (total + 1))[1:].mean()
    ref.backward()
    assert float(soft_dice_loss(z, y).data) == pytest.approx(ref.item(), rel=1e-12)
    ps = torch.softmax(torch.tensor(z), -1)
    inter_s, total_s = (ps * t).sum((1, 2)), ps.sum((1, 2)) + t.sum((1, 2))
    ref_s = 1 - ((2 * inter_s + 1) / (total_s + 1))[:, 1:].mean()
    assert float(soft_dice_loss(z, y, per_sample=True).data) == pytest.approx(ref_s.item(),
                                                                              rel=1e-12)
    # focal, alpha per class
    alpha = np.array([0.25, 1.0, 0.5, 2.0, 1.5])
    zf = torch.tensor(z, requires_grad=True)
    logp = torch.log_softmax(zf, -1)
    logpt = logp.gather(-1, torch.tensor(y)[..., None])[..., 0]
    ref_f = (-torch.tensor(alpha)[torch.tensor(y)] * (1 - logpt.exp()) ** 2 * logpt).mean()
    ref_f.backward()
    from cnnkit import Tensor

    zc = Tensor(z, requires_grad=True)
    ours_f = focal_loss(zc, y, 2.0, alpha)
    ours_f.backward()
    assert float(ours_f.data) == pytest.approx(ref_f.item(), rel=1e-12)
    np.testing.assert_allclose(zc.grad, zf.grad.numpy(), atol=1e-12)
    zd = Tensor(z, requires_grad=True)
    soft_dice_loss(zd, y).backward()
    np.testing.assert_allclose(zd.grad, zt.grad.numpy(), atol=1e-12)


def test_focal_with_gamma_0_is_cross_entropy():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference (test extra)")
    z, y = _inputs(3)
    ref = torch.nn.functional.cross_entropy(torch.tensor(z).permute(0, 3, 1, 2),
                                            torch.tensor(y))
    assert float(focal_loss(z, y, gamma=0.0).data) == pytest.approx(ref.item(), rel=1e-12)


def test_focal_gradient_is_finite_at_certainty():
    z = np.array([[[[60.0, 0.0]]]])  # p_t = 1 exactly in float64, with gamma < 1
    per, cache = K.focal_forward(z, np.array([[[0]]]), 0.5, None)
    assert np.isfinite(K.focal_backward(np.ones_like(per), cache)).all()


def test_loss_arguments_are_checked():
    z, y = _inputs(4)
    with pytest.raises(ValueError, match="labels must lie in"):
        soft_dice_loss(z, y + 4)
    with pytest.raises(ValueError, match="expects labels of shape"):
        focal_loss(z, y[:, :2])
    with pytest.raises(ValueError, match="one weight per class"):
        focal_loss(z, y, alpha=[1.0, 2.0])


# ----- metrics --------------------------------------------------------------------------------
def _counts(pred, target, k):
    """TP, FP, FN of class k, counted pixel by pixel."""
    tp = fp = fn = 0
    for p, t in zip(pred.ravel(), target.ravel(), strict=True):
        tp += (p == k) and (t == k)
        fp += (p == k) and (t != k)
        fn += (p != k) and (t == k)
    return tp, fp, fn


def test_dice_and_iou_match_counts_written_out():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (3, 6, 6))
    pred = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, 4, target.shape))
    dice, iou, tps, fps, fns = [], [], 0, 0, 0
    for k in range(1, 4):
        tp, fp, fn = _counts(pred, target, k)
        dice.append(2 * tp / (2 * tp + fp + fn))
        iou.append(tp / (tp + fp + fn))
        tps, fps, fns = tps + tp, fps + fp, fns + fn
    np.testing.assert_allclose(M.dice_score(pred, target, 4, average=None), dice)
    assert M.dice_score(pred, target, 4) == pytest.approx(np.mean(dice))
    assert M.iou_score(pred, target, 4) == pytest.approx(np.mean(iou))
    assert M.dice_score(pred, target, 4, average="micro") == pytest.approx(
        2 * tps / (2 * tps + fps + fns))
    assert M.iou_score(pred, target, 4, average="micro") == pytest.approx(tps / (tps + fps + fns))
    # per image: each image's per-class Dice, averaged over images, then classes
    per = [[2 * a / (2 * a + b + c) if a + b + c else np.nan
            for a, b, c in (_counts(pred[i], target[i], k) for k in range(1, 4))]
           for i in range(3)]
    assert M.dice_score(pred, target, 4, per_image=True) == pytest.approx(
        np.nanmean(np.nanmean(per, axis=0)))


def test_empty_mask_rule():
    t = np.zeros((1, 4, 4), np.int64)
    t[0, :2, :2] = 1
    p = t.copy()
    # class 2 is absent from both: left out (NaN), the mean is over class 1 only
    per = M.dice_score(p, t, 3, average=None)
    assert per[0] == 1 and np.isnan(per[1])
    assert M.dice_score(p, t, 3) == 1.0
    # nothing but background in both: 1 by the rule; a false alarm on empty target: 0
    z = np.zeros((1, 4, 4), np.int64)
    assert M.dice_score(z, z, 3) == 1.0 and M.iou_score(z, z, 3, average="micro") == 1.0
    alarm = z.copy()
    alarm[0, 0, 0] = 2
    assert M.dice_score(alarm, z, 3) == 0.0


# ----- data -----------------------------------------------------------------------------------
def test_augment_pair_moves_mask_with_image():
    from cnnkit.segmentation.data import augment_pair

    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 2, (4, 8, 8)) * 4  # labels 0 and 4 in 4x4-pixel blocks
    masks = np.kron(blocks, np.ones((4, 4), np.int64)).astype(np.uint8)
    images = np.repeat(masks[..., None].astype(np.float32) * 40, 3, axis=-1)
    x, m = augment_pair(images, masks, np.random.default_rng(1), brightness=0.0)
    assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 4}
    # bilinear image vs nearest mask: where the image is purely one label, the mask agrees
    v = x[..., 0] / 40
    pure = (np.abs(v) < 1e-3) | (np.abs(v - 4) < 1e-3)
    assert pure.mean() > 0.3
    np.testing.assert_array_equal(np.round(v[pure]), m[pure])
    # no warp at all: both unchanged
    x0, m0 = augment_pair(images, masks, rng, rotation=0, zoom=(1, 1), translate=0,
                          brightness=0)
    np.testing.assert_array_equal(m0, masks)
    np.testing.assert_allclose(x0, images, atol=1e-4)


def test_augment_pair_whole_pixel_shifts_move_pixels_exactly():
    from cnnkit.segmentation.data import augment_pair

    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, (12, 12, 12, 3)).astype(np.float32)
    masks = rng.integers(0, 11, (12, 12, 12)).astype(np.uint8)
    x, m = augment_pair(images, masks, rng, rotation=0, zoom=(1, 1), translate=0.25,
                        brightness=0, whole_pixels=True)
    shifts = set()
    for i in range(12):  # the centre is the input moved by some whole (dy, dx), |d| <= 3
        found = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if np.array_equal(m[i, 3:-3, 3:-3], masks[i, 3 - dy:9 - dy, 3 - dx:9 - dx])
                 and np.allclose(x[i, 3:-3, 3:-3], images[i, 3 - dy:9 - dy, 3 - dx:9 - dx],
                                 atol=1e-3)]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 3


def test_whole_pixel_moves_repeat_the_edge_beyond_the_border():
    from cnnkit.segmentation.data import _shift

    rng = np.random.default_rng(4)
    a = rng.integers(0, 255, (5, 7, 9, 2))
    dy, dx = np.array([0, 3, -2, 9, -20]), np.array([1, -4, 8, 0, 15])
    got = _shift(a, dy, dx)
    for k in range(5):  # out[i, j] = a[i - dy, j - dx], the image mirrored with its edge pixels
        big = np.pad(a[k], ((21, 21), (21, 21), (0, 0)), mode="symmetric")
        want = big[21 - dy[k]:21 - dy[k] + 7, 21 - dx[k]:21 - dx[k] + 9]
        np.testing.assert_array_equal(got[k], want)


def test_augment_pair_permutes_colour_channels_of_images_only():
    from cnnkit.segmentation.data import augment_pair

    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (16, 8, 8, 3)).astype(np.float32)
    masks = rng.integers(0, 11, (16, 8, 8)).astype(np.uint8)
    x, m = augment_pair(images, masks, rng, rotation=0, zoom=(1, 1), translate=0,
                        brightness=0, permute_channels=True)
    np.testing.assert_array_equal(m, masks)
    orders = set()
    for i in range(16):  # each output channel is one input channel, each used once
        src = [int(np.argmin([np.abs(x[i, ..., c] - images[i, ..., k]).max()
                              for k in range(3)])) for c in range(3)]
        assert sorted(src) == [0, 1, 2]
        np.testing.assert_allclose(x[i], images[i][..., src], atol=1e-3)
        orders.add(tuple(src))
    assert len(orders) > 2


def test_scenes_are_seeded_and_masks_cover_strokes():
    pytest.importorskip("PIL", reason="backgrounds are read with Pillow")
    pytest.importorskip("matplotlib", reason="the default background ships with matplotlib")
    from cnnkit.segmentation.data import make_scenes

    x1, m1 = make_scenes(6, 3, "test")
    x2, m2 = make_scenes(6, 3, "test")
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(m1, m2)
    assert x1.shape == (6, 64, 64, 3) and m1.shape == (6, 64, 64)
    assert (m1.reshape(6, -1) > 0).any(axis=1).all()  # every scene has a digit
    assert m1.max() <= 10


def _recognizer(torch, path):
    """The shared PyTorch MNIST CNN (see ../shared/README.md), rebuilt around its state_dict."""
    nn = torch.nn
    net = nn.Module()
    net.conv_layers = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                    nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    net.fc_layers = nn.Sequential(nn.Linear(1152, 256), nn.ReLU(), nn.Linear(256, 10))
    net.load_state_dict(torch.load(path, map_location="cpu"))
    return lambda x: net.fc_layers(net.conv_layers(x).flatten(1))


def _mnist_frame(torch, stroke):
    """A binary stroke mask as MNIST draws digits: its bounding box squared, scaled to 20 x 20
    and centred in 28 x 28, normalised as the recognizer expects."""
    ys, xs = np.nonzero(stroke)
    b = stroke[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
    s = max(b.shape)
    sq = np.zeros((s, s), np.float32)
    sq[(s - b.shape[0]) // 2:][:b.shape[0], (s - b.shape[1]) // 2:][:, :b.shape[1]] = b
    small = torch.nn.functional.interpolate(torch.tensor(sq)[None, None], size=(20, 20),
                                            mode="bilinear")[0, 0]
    out = torch.zeros(28, 28)
    out[4:24, 4:24] = small
    return (out - 0.1307) / 0.3081


@pytest.mark.parametrize("split", ["train", "test"])
def test_mask_classes_are_the_digits_drawn(split):
    """Each class's mask, read by an independent MNIST classifier, is that digit: the masks'
    labels line up with what the strokes show."""
    from helpers import shared_path, torch_or_skip

    torch = torch_or_skip()
    pytest.importorskip("PIL", reason="backgrounds are read with Pillow")
    pytest.importorskip("matplotlib", reason="the default background ships with matplotlib")
    from cnnkit.segmentation.data import make_scenes

    net = _recognizer(torch, shared_path("weights", "digit_recognizer_handwriting_model.pth"))
    _, masks = make_scenes(60, 5, split)
    frames, labels = [], []
    for m in masks:
        for k in np.unique(m[m > 0]):
            ys, xs = np.nonzero(m == k)
            if max(np.ptp(ys), np.ptp(xs)) < 44:  # one digit of class k, not two
                frames.append(_mnist_frame(torch, m == k))
                labels.append(k - 1)
    with torch.no_grad():
        read = net(torch.stack(frames)[:, None]).argmax(1).numpy()
    assert len(labels) > 60
    assert (read == np.array(labels)).mean() > 0.85


# ----- connected components and the per-blob vote ------------------------------------------
def _flood(fg):
    """Component partition by a depth-first flood fill (8-neighbours), written out here."""
    out = -np.ones(fg.shape, np.int64)
    c = 0
    for start in zip(*np.nonzero(fg), strict=True):
        if out[start] >= 0:
            continue
        out[start], stack = c, [start]
        while stack:
            i, y, x = stack.pop()
            for v, u in ((y + dy, x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)):
                if 0 <= v < fg.shape[1] and 0 <= u < fg.shape[2] and fg[i, v, u] \
                        and out[i, v, u] < 0:
                    out[i, v, u] = c
                    stack.append((i, v, u))
        c += 1
    return out


def test_connected_components_match_flood_fill():
    from cnnkit.segmentation.components import connected_components

    fg = np.random.default_rng(0).random((4, 17, 23)) < 0.45
    got, want = connected_components(fg), _flood(fg)
    assert ((got >= 0) == fg).all()
    pairs = set(zip(got[fg].tolist(), want[fg].tolist(), strict=True))
    assert len(pairs) == len(np.unique(got[fg])) == len(np.unique(want[fg]))  # a bijection


def test_component_vote_gives_each_blob_its_majority_class():
    from cnnkit.segmentation.components import component_vote

    m = np.zeros((1, 6, 8), np.int64)
    m[0, 1:5, 1:3] = [[3, 3], [3, 5], [3, 3], [5, 3]]  # blob A: six 3s, two 5s
    m[0, 1:3, 5:7] = [[4, 2], [2, 2]]  # blob B: three 2s, one 4
    want = np.zeros_like(m)
    want[0, 1:5, 1:3], want[0, 1:3, 5:7] = 3, 2
    np.testing.assert_array_equal(component_vote(m, 6), want)
    scores = np.zeros((1, 6, 8, 6))
    scores[0, 1, 5, 4] = 10.0  # one confident pixel outvotes three
    assert (component_vote(m, 6, scores)[0, 1:3, 5:7] == 4).all()


def test_component_vote_max_extent_votes_only_small_blobs():
    from cnnkit.segmentation.components import blob_extents, component_vote, connected_components

    rng = np.random.default_rng(3)
    m = np.where(rng.random((3, 16, 18)) < 0.3, rng.integers(1, 5, (3, 16, 18)), 0)
    scores = rng.random((3, 16, 18, 5))
    blobs = _flood(m > 0)
    comp = connected_components(m > 0)
    ids, inv = np.unique(comp[comp >= 0], return_inverse=True)
    ext = blob_extents(comp, ids, inv)
    for limit in (1, 3, 6, 40):
        want = m.copy()
        for b in range(blobs.max() + 1):
            i, y, x = np.nonzero(blobs == b)
            height, width = y.max() - y.min() + 1, x.max() - x.min() + 1
            k = int(np.nonzero(comp[i[0], y[0], x[0]] == ids)[0][0])
            assert (ext[k] == (height, width)).all()
            if height <= limit and width <= limit:  # summed scores over classes 1..4
                want[i, y, x] = 1 + int(np.argmax(scores[i, y, x, 1:].sum(axis=0)))
        np.testing.assert_array_equal(component_vote(m, 5, scores, max_extent=limit), want)


# ----- encoder pretraining --------------------------------------------------------------------
def test_digit_crops_are_seeded_single_digits():
    pytest.importorskip("PIL", reason="backgrounds are read with Pillow")
    pytest.importorskip("matplotlib", reason="the default background ships with matplotlib")
    from cnnkit.segmentation.pretrain import digit_crops

    x1, y1 = digit_crops(20, 4, "test")
    x2, y2 = digit_crops(20, 4, "test")
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x1.shape == (20, 48, 48, 3) and x1.dtype == np.uint8
    assert y1.min() >= 0 and y1.max() <= 9 and len(np.unique(y1)) > 3
    with pytest.raises(ValueError, match="split"):
        digit_crops(2, 0, "val")


def test_pretrained_encoder_weights_land_in_the_unet():
    from cnnkit import zoo
    from cnnkit.segmentation.pretrain import copy_encoder, encoder_classifier

    clf = encoder_classifier((32, 32, 3), depth=2, base_filters=4)
    net = zoo.get("unet", input_shape=(64, 64, 3), classes=11, depth=2, base_filters=4,
                  batch_norm=True, rescale=1 / 255)
    rng = np.random.default_rng(0)
    for layer in clf.layers:
        layer.set_weights([rng.normal(size=w.shape).astype(np.float32)
                           for w in layer.get_weights()])
    assert copy_encoder(clf, net) == 4 * 3  # (conv, BN) x 2 in down1, down2, bottleneck
    for name in ("down1.conv1", "down2.bn2", "bottleneck.conv2"):
        for a, b in zip(clf.get_layer(name).get_weights(), net.get_layer(name).get_weights(),
                        strict=True):
            np.testing.assert_array_equal(a, b)
