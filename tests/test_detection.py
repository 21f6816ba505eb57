"""cnnkit.detection: boxes, IoU/GIoU, NMS (against brute-force references written here),
anchors and target assignment, the grid loss (finite differences and a PyTorch formula),
decoding, the saved head, and the seeded scenes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cnnkit.detection import anchors as A
from cnnkit.detection import boxes as B
from cnnkit.detection import nms as N
from cnnkit.detection.assign import assign_targets
from cnnkit.detection.decode import decode, postprocess
from cnnkit.kernels import detection as K


def _random_boxes(rng, n, span=50.0):
    xy = rng.uniform(0, span, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 25, (n, 2))], 1)


def _iou_one(a, b):
    """IoU of two xyxy boxes, by the definition."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


# ----- boxes ---------------------------------------------------------------------------------
def test_convert_round_trips_and_closed_form():
    b = np.array([[10.0, 20.0, 30.0, 60.0]])
    assert B.convert(b, "xyxy", "xywh").tolist() == [[10, 20, 20, 40]]
    assert B.convert(b, "xyxy", "cxcywh").tolist() == [[20, 40, 20, 40]]
    rng = np.random.default_rng(0)
    x = _random_boxes(rng, 20)
    for src, dst in itertools.permutations(B.FORMATS, 2):
        there = B.convert(B.convert(x, "xyxy", src), src, dst)
        np.testing.assert_allclose(B.convert(there, dst, "xyxy"), x, atol=1e-12)


def test_iou_and_giou_match_definitions():
    rng = np.random.default_rng(1)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    got_iou, got_giou = B.iou(a, b), B.giou(a, b)
    for i, j in np.ndindex(7, 5):
        u = _iou_one(a[i], b[j])
        assert got_iou[i, j] == pytest.approx(u, abs=1e-12)
        area_a = (a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1])
        area_b = (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1])
        iw = max(0.0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
        ih = max(0.0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
        inter = iw * ih
        union = area_a + area_b - inter
        c = (max(a[i, 2], b[j, 2]) - min(a[i, 0], b[j, 0])) * \
            (max(a[i, 3], b[j, 3]) - min(a[i, 1], b[j, 1]))
        assert got_giou[i, j] == pytest.approx(inter / union - (c - union) / c, abs=1e-12)
    # disjoint boxes far apart: GIoU tends to -1; identical: 1
    assert B.giou([[0, 0, 1, 1]], [[99, 99, 100, 100]])[0, 0] < -0.99
    assert B.giou(a, a).diagonal() == pytest.approx(1.0)


def test_bad_boxes_are_reported():
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\)"):
        B.iou(np.zeros((3, 5)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="src must be one of"):
        B.convert(np.zeros((1, 4)), "yxyx", "xyxy")


# ----- NMS against brute force ----------------------------------------------------------------
def _brute_nms(boxes, scores, classes, t):
    """A box survives iff no surviving box of its class ranked before it overlaps it > t;
    rank = (score descending, index ascending). Decided in rank order by definition."""
    rank = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = []
    for i in rank:
        if all(classes[j] != classes[i] or _iou_one(boxes[i], boxes[j]) <= t for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(6))
def test_batched_nms_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 60
    boxes = _random_boxes(rng, n, span=30)
    scores = np.round(rng.random(n), 1)  # many ties
    classes = rng.integers(0, 3, n)
    for t in (0.3, 0.5, 0.7):
        got = N.batched_nms(boxes, scores, classes, t).tolist()
        want = _brute_nms(boxes, scores, classes, t)
        assert sorted(got) == sorted(want)
        assert [scores[i] for i in got] == sorted(scores[want], reverse=True)


def _brute_soft_nms(boxes, scores, classes, method, sigma, t, floor):
    out = []
    for k in set(classes.tolist()):
        pool = {i: float(scores[i]) for i in range(len(scores)) if classes[i] == k}
        pool = {i: s for i, s in pool.items() if s >= floor}
        while pool:
            best = max(pool, key=lambda i: (pool[i], -i))
            out.append((best, pool.pop(best)))
            for i in list(pool):
                o = _iou_one(boxes[best], boxes[i])
                f = (1 - o if o > t else 1.0) if method == "linear" else np.exp(-o * o / sigma)
                pool[i] *= f
                if pool[i] < floor:
                    del pool[i]
    return out


@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_equals_brute_force(method):
    rng = np.random.default_rng(3)
    boxes = _random_boxes(rng, 40, span=25)
    scores, classes = rng.random(40), rng.integers(0, 2, 40)
    idx, sc = N.soft_nms(boxes, scores, classes, method, sigma=0.5, iou_threshold=0.3,
                         score_threshold=0.05)
    want = dict(_brute_soft_nms(boxes, scores, classes, method, 0.5, 0.3, 0.05))
    assert sorted(idx.tolist()) == sorted(want)
    np.testing.assert_allclose(sc, [want[i] for i in idx], rtol=1e-12)
    assert np.all(np.diff(sc) <= 0)


# ----- anchors and assignment -----------------------------------------------------------------
def test_shape_iou_and_kmeans():
    assert A.shape_iou([[10, 20]], [[20, 10]])[0, 0] == pytest.approx(100 / 300)
    rng = np.random.default_rng(0)
    wh = np.concatenate([rng.normal([10, 10], 0.5, (50, 2)), rng.normal([30, 40], 0.5, (50, 2))])
    np.testing.assert_allclose(A.kmeans_anchors(wh, 2), [[10, 10], [30, 40]], atol=0.5)


def test_assign_targets_closed_form():
    anchors = [[10.0, 10.0], [30.0, 30.0]]
    gt = [{"boxes": np.array([[4.0, 6.0, 16.0, 18.0], [0.0, 0.0, 32.0, 32.0]]),
           "classes": np.array([3, 1])}]
    t = assign_targets(gt, (4, 4), 8, anchors)
    # box 0: centre (10, 12) -> cell row 1, col 1, anchor 0 (12x12 fits 10x10 best)
    assert t.positive[0, 1, 1, 0] and t.class_target[0, 1, 1, 0] == 3
    np.testing.assert_allclose(t.box_target[0, 1, 1, 0],
                               [10 / 8 - 1, 12 / 8 - 1, np.log(12 / 10), np.log(12 / 10)])
    # box 1: centre (16, 16) -> cell (2, 2), anchor 1; weight 2 - area / image area = 1
    assert t.positive[0, 2, 2, 1] and t.box_weight[0, 2, 2, 1] == pytest.approx(1.0)
    assert t.positive.sum() == 2 and (t.negative[t.positive] == 0).all()
    # the same box twice: the second takes the next anchor; a third finds no slot
    gt3 = [{"boxes": np.array([[4.0, 6.0, 16.0, 18.0]] * 3), "classes": np.array([0, 0, 0])}]
    t3 = assign_targets(gt3, (4, 4), 8, anchors)
    assert t3.positive[0, 1, 1].all() and t3.dropped == 1


def test_decode_inverts_the_encoding():
    anchors = np.array([[10.0, 10.0], [30.0, 20.0]])
    gt = [{"boxes": np.array([[3.0, 5.0, 17.0, 21.0], [20.0, 9.0, 50.0, 31.0]]),
           "classes": np.array([0, 2])}]
    t = assign_targets(gt, (8, 8), 8, anchors)
    raw = np.full((1, 8, 8, 2, 8), -20.0)
    g = t.box_target[t.positive]
    raw[t.positive, 0:2] = np.log(g[:, :2] / (1 - g[:, :2]))  # logit: sigmoid^-1
    raw[t.positive, 2:4] = g[:, 2:]
    raw[t.positive, 4] = 20.0
    raw[t.positive, 5 + t.class_target[t.positive]] = 20.0
    boxes, obj, _ = decode(raw, anchors, 8)
    np.testing.assert_allclose(np.sort(boxes[t.positive], 0), np.sort(gt[0]["boxes"], 0),
                               atol=1e-4)
    det = postprocess(raw, anchors, 8, (64, 64))[0]
    assert sorted(det["classes"].tolist()) == [0, 2] and (det["scores"] > 0.99).all()


# ----- the loss -------------------------------------------------------------------------------
def _loss_inputs(seed):
    rng = np.random.default_rng(seed)
    shape = (2, 3, 3, 2)
    raw = rng.normal(size=(*shape, 5 + 3))
    pos = rng.random(shape) < 0.3
    neg = np.where(pos, 0.0, (rng.random(shape) < 0.8).astype(float))
    box = np.concatenate([rng.random((*shape, 2)), rng.normal(0, 0.5, (*shape, 2))], -1)
    cls, w = rng.integers(0, 3, shape), rng.uniform(1, 2, shape)
    return raw, pos, neg, box, cls, w


def test_loss_gradient_matches_finite_differences():
    raw, *rest = _loss_inputs(0)
    _, _, cache = K.grid_detection_loss_forward(raw, *rest, 5.0, 0.7, 1.3)
    grad = K.grid_detection_loss_backward(np.float64(1.0), cache)
    num, eps = np.zeros_like(raw), 1e-6
    for i in np.ndindex(raw.shape):
        up, dn = raw.copy(), raw.copy()
        up[i] += eps
        dn[i] -= eps
        num[i] = (float(K.grid_detection_loss_forward(up, *rest, 5.0, 0.7, 1.3)[0])
                  - float(K.grid_detection_loss_forward(dn, *rest, 5.0, 0.7, 1.3)[0])) / (2 * eps)
    np.testing.assert_allclose(grad, num, atol=1e-6)


def test_loss_matches_pytorch_formula():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference (test extra)")
    import torch.nn.functional as F

    raw, pos, neg, box, cls, w = _loss_inputs(1)
    value, parts, cache = K.grid_detection_loss_forward(raw, pos, neg, box, cls, w, 5.0, 0.7,
                                                        1.5)
    grad = K.grid_detection_loss_backward(np.float64(1.0), cache)
    z = torch.tensor(raw, requires_grad=True)
    p = torch.tensor(pos)
    zp, gb, wp = z[p], torch.tensor(box)[p], torch.tensor(w)[p][:, None]
    l_box = 5.0 * ((wp * (torch.sigmoid(zp[:, :2]) - gb[:, :2]) ** 2).sum()
                   + (wp * (zp[:, 2:4] - gb[:, 2:4]) ** 2).sum())
    f64 = torch.float64
    l_obj = (F.binary_cross_entropy_with_logits(zp[:, 4], torch.ones(len(zp), dtype=f64),
                                                reduction="sum")
             + 0.7 * (torch.tensor(neg) * F.binary_cross_entropy_with_logits(
                 z[..., 4], torch.zeros(z.shape[:-1], dtype=f64), reduction="none")).sum())
    l_cls = 1.5 * F.cross_entropy(zp[:, 5:], torch.tensor(cls)[p], reduction="sum")
    total = (l_box + l_obj + l_cls) / raw.shape[0]
    total.backward()
    assert float(value) == pytest.approx(total.item(), rel=1e-12)
    assert parts["cls"] == pytest.approx(l_cls.item() / 2, rel=1e-12)
    np.testing.assert_allclose(grad, z.grad.numpy(), atol=1e-12)


def test_loss_op_checks_shapes():
    from cnnkit.ops.detection import grid_detection_loss

    raw, pos, neg, box, cls, w = _loss_inputs(2)
    with pytest.raises(ValueError, match="box_target must have shape"):
        grid_detection_loss(raw, pos, neg, box[..., :3], cls, w)
    bad = cls.copy()
    bad[pos] = 7
    with pytest.raises(ValueError, match=r"class targets must lie in \[0, 3\)"):
        grid_detection_loss(raw, pos, neg, box, bad, w)


# ----- scenes and the backbone ----------------------------------------------------------------
def test_scenes_are_seeded_and_boxes_hold_their_digits():
    from cnnkit.detection import digit_patches, make_scenes

    x1, g1 = make_scenes(6, 4, "test")
    x2, g2 = make_scenes(6, 4, "test")
    np.testing.assert_array_equal(x1, x2)
    assert all(np.array_equal(a["boxes"], b["boxes"]) for a, b in zip(g1, g2, strict=True))
    for img, g in zip(x1, g1, strict=True):
        assert 1 <= len(g["classes"]) <= 4 and set(g["classes"].tolist()) <= set(range(10))
        for x1_, y1_, x2_, y2_ in g["boxes"].astype(int):
            assert 0 <= x1_ < x2_ <= 64 and 0 <= y1_ < y2_ <= 64
            assert img[y1_:y2_, x1_:x2_].max() > 150  # strokes inside the box
        if len(g["boxes"]) > 1:  # digits overlap by IoU 0.15 at most
            o = B.iou(g["boxes"], g["boxes"])
            assert o[~np.eye(len(o), dtype=bool)].max() <= 0.15 + 1e-12
    p, y = digit_patches(4, 0)
    assert p.shape == (4, 32, 32, 1) and y.shape == (4,)


def test_copy_backbone_moves_every_backbone_weight():
    from cnnkit.detection.model import backbone_classifier, copy_backbone, grid_detector

    clf, det = backbone_classifier(4), grid_detector(width=4)
    assert copy_backbone(clf, det) == 22
    for a, b in zip(clf.layers[:22], det.layers[:22], strict=True):
        for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_array_equal(wa, wb)
