"""cnnkit.detection.evaluate against pycocotools' COCOeval on the same detections, including
its edge cases: images without detections, classes without ground truth, classes without
detections, and maxDets smaller than the detections per image."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from cnnkit.detection import evaluate as ev


def _scene(rng, n_images, n_classes, skip_gt_class=None, skip_dt_class=None, empty_dt=()):
    gts, dts = [], []
    for i in range(n_images):
        ng = int(rng.integers(0, 6))
        xy = rng.uniform(0, 80, (ng, 2))
        g = np.concatenate([xy, xy + rng.uniform(5, 30, (ng, 2))], 1)
        gc = rng.integers(0, n_classes, ng)
        if skip_gt_class is not None:
            gc[gc == skip_gt_class] = (skip_gt_class + 1) % n_classes
        # detections: jittered copies of ground truth (some), plus random boxes
        keep = rng.random(ng) < 0.8
        jit = g[keep] + rng.normal(0, 3, (int(keep.sum()), 4))
        nr = int(rng.integers(0, 5))
        r_xy = rng.uniform(0, 80, (nr, 2))
        rnd = np.concatenate([r_xy, r_xy + rng.uniform(5, 30, (nr, 2))], 1)
        d = np.concatenate([jit, rnd])
        dc = np.concatenate([np.where(rng.random(int(keep.sum())) < 0.85, gc[keep],
                                      rng.integers(0, n_classes, int(keep.sum()))),
                             rng.integers(0, n_classes, nr)])
        ds = np.round(rng.random(len(d)), 2)  # rounded: ties in score occur
        if skip_dt_class is not None:
            m = dc != skip_dt_class
            d, dc, ds = d[m], dc[m], ds[m]
        if i in empty_dt:
            d, dc, ds = d[:0], dc[:0], ds[:0]
        gts.append({"boxes": g, "classes": gc})
        dts.append({"boxes": d, "classes": dc, "scores": ds})
    return dts, gts


def _coco(dts, gts, n_classes, max_dets):
    pytest.importorskip("pycocotools", reason="pycocotools is the reference (test extra)")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    anns, res = [], []
    for i, g in enumerate(gts):
        for b, c in zip(g["boxes"], g["classes"], strict=True):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(c),
                         "bbox": xywh(b), "area": float(w * h), "iscrowd": 0})
    for i, d in enumerate(dts):
        for b, c, s in zip(d["boxes"], d["classes"], d["scores"], strict=True):
            res.append({"image_id": i, "category_id": int(c), "bbox": xywh(b),
                        "score": float(s)})
    gt = COCO()
    gt.dataset = {"images": [{"id": i} for i in range(len(gts))], "annotations": anns,
                  "categories": [{"id": k} for k in range(n_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(res)
        e = COCOeval(gt, dt, "bbox")
        e.params.maxDets = [max_dets]
        e.params.areaRng = [e.params.areaRng[0]]
        e.params.areaRngLbl = ["all"]
        e.evaluate()
        e.accumulate()
    return e.eval["precision"][:, :, :, 0, 0]  # (T, R, K)


def _compare(dts, gts, n_classes, max_dets=100):
    ref = _coco(dts, gts, n_classes, max_dets)
    got = ev.evaluate(dts, gts, n_classes, max_dets=max_dets)
    ref_p = np.where(ref < 0, np.nan, ref)
    np.testing.assert_allclose(got.precision, ref_p, atol=1e-12, equal_nan=True)
    ref_ap = np.where((ref > -1).all(axis=1), ref.mean(axis=1), np.nan).T  # (K, T)
    np.testing.assert_allclose(got.ap, ref_ap, atol=1e-12, equal_nan=True)
    valid = ref > -1
    assert got.map == pytest.approx(ref[valid].mean(), abs=1e-12)
    assert got.map50 == pytest.approx(ref[0][valid[0]].mean(), abs=1e-12)
    return got


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_equals_pycocotools(seed):
    rng = np.random.default_rng(seed)
    dts, gts = _scene(rng, 12, 4)
    got = _compare(dts, gts, 4)
    assert 0 < got.map50 < 1


def test_edge_cases_equal_pycocotools():
    rng = np.random.default_rng(7)
    # class 2: no ground truth anywhere (detections of it only add nothing: AP NaN, left out);
    # class 3: no detections (AP 0); images 0 and 3: no detections at all
    dts, gts = _scene(rng, 10, 5, skip_gt_class=2, skip_dt_class=3, empty_dt=(0, 3))
    assert any((d["classes"] == 2).any() for d in dts)
    got = _compare(dts, gts, 5)
    assert np.isnan(got.ap[2]).all()
    assert (got.ap[3] == 0).all()


@pytest.mark.parametrize("max_dets", [1, 2, 10])
def test_max_dets_equals_pycocotools(max_dets):
    rng = np.random.default_rng(11)
    dts, gts = _scene(rng, 15, 3)
    _compare(dts, gts, 3, max_dets)


def test_closed_form_cases():
    g = {"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30.0]]), "classes": np.array([0, 0])}
    # no detections at all: AP 0 for the class with ground truth (pycocotools refuses to
    # load an empty result list)
    none = {"boxes": np.zeros((0, 4)), "classes": np.zeros(0), "scores": np.zeros(0)}
    assert ev.evaluate([none], [g], 1).map50 == 0
    # one exact hit then one miss: precision 1 up to recall 0.5, then 0 -> AP = 51/101
    d = {"boxes": np.array([[0, 0, 10, 10], [50, 50, 60, 60.0]]), "classes": np.array([0, 0]),
         "scores": np.array([0.9, 0.8])}
    assert ev.evaluate([d], [g], 1).map50 == pytest.approx(51 / 101)


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="3 detection entries for 2 images"):
        ev.evaluate([{}] * 3, [{}] * 2, 1)
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate([{"boxes": np.zeros((2, 3)), "classes": [0, 0], "scores": [1, 1]}],
                    [{"boxes": np.zeros((0, 4)), "classes": []}], 1)
