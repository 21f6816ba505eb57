"""COCO-style detection evaluation: AP per class and IoU threshold, mAP@0.5, mAP@[.5:.95] and
precision-recall curves, following the COCO evaluation protocol (area range "all", no crowd
boxes).

Per image and class, the detections are sorted by score (stable) and only the first
``max_dets`` kept. At each IoU threshold t, detections are matched greedily from the highest
score down: each takes the unmatched ground-truth box of the same class with the largest IoU,
if that IoU >= t (ties: the later box). Per class, the detections of all images are ranked by
score (stable, images in order); precision p_i = TP_i / i and recall r_i = TP_i / G after the
i-th; precision is made non-increasing from the right; AP is its mean at the 101 recall
points 0, 0.01, ..., 1 (the first rank reaching each recall; 0 where none does). A class with no
ground truth in any image has no AP (NaN) and is left out of the means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .boxes import check_boxes, iou

__all__ = ["COCO_IOU_THRESHOLDS", "RECALL_POINTS", "DetectionMetrics", "evaluate",
           "match_image"]

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class DetectionMetrics:
    """ap: (classes, thresholds), NaN for classes without ground truth; precision:
    (thresholds, recall points, classes) interpolated PR curves (NaN likewise)."""

    ap: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    iou_thresholds: np.ndarray
    recall_points: np.ndarray = field(default_factory=lambda: RECALL_POINTS.copy())

    def _at(self, t: float) -> int:
        hit = np.flatnonzero(np.isclose(self.iou_thresholds, t))
        if not len(hit):
            raise ValueError(f"IoU threshold {t} was not evaluated "
                             f"(evaluated: {np.round(self.iou_thresholds, 3).tolist()})")
        return int(hit[0])

    @property
    def map(self) -> float:
        """Mean AP over classes with ground truth and all IoU thresholds."""
        return _nanmean(self.ap)

    @property
    def map50(self) -> float:
        return _nanmean(self.ap[:, self._at(0.5)])

    @property
    def map75(self) -> float:
        return _nanmean(self.ap[:, self._at(0.75)])

    def per_class_ap(self, t: float = 0.5) -> np.ndarray:
        """AP of each class at IoU threshold ``t`` (NaN for classes without ground truth)."""
        return self.ap[:, self._at(t)].copy()


def _nanmean(a: np.ndarray) -> float:
    ok = ~np.isnan(a)
    return float(a[ok].mean()) if ok.any() else float("nan")


def _image(item: Any, what: str, i: int, scored: bool) -> tuple[np.ndarray, ...]:
    if not isinstance(item, dict):
        raise TypeError(f"evaluate: {what}[{i}] must be a dict with 'boxes' and 'classes', "
                        f"got {type(item).__name__}")
    b = check_boxes(item.get("boxes", np.zeros((0, 4))), f"{what}[{i}]['boxes']").reshape(-1, 4)
    c = np.asarray(item.get("classes", np.zeros(0)), dtype=np.int64).reshape(-1)
    s = np.asarray(item.get("scores", np.ones(len(b))), dtype=np.float64).reshape(-1)
    if len(c) != len(b) or (scored and len(s) != len(b)):
        raise ValueError(f"evaluate: {what}[{i}] has {len(b)} boxes but {len(c)} classes"
                         + (f" and {len(s)} scores" if scored else ""))
    return b.astype(np.float64), c, s


def match_image(dt_boxes: np.ndarray, gt_boxes: np.ndarray, thresholds: np.ndarray
                ) -> np.ndarray:
    """(thresholds, detections) bool: whether each detection (in the order given, best first)
    matches a ground-truth box at each threshold."""
    matched = np.zeros((len(thresholds), len(dt_boxes)), bool)
    if not len(gt_boxes) or not len(dt_boxes):
        return matched
    ious = iou(dt_boxes, gt_boxes)
    for ti, t in enumerate(thresholds):
        taken = np.zeros(len(gt_boxes), bool)
        for d in range(len(dt_boxes)):
            cand = np.where(taken, -1.0, ious[d])
            best = cand.max()
            if best >= min(t, 1 - 1e-10):
                g = int(np.flatnonzero(cand == best)[-1])
                taken[g] = matched[ti, d] = True
    return matched


def _class_curve(scores: np.ndarray, hits: np.ndarray, n_gt: int, points: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision at ``points`` (thresholds, points) and final recall."""
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(hits[:, order], axis=1, dtype=np.float64)
    fp = np.cumsum(~hits[:, order], axis=1, dtype=np.float64)
    q = np.zeros((hits.shape[0], len(points)))
    recall = np.zeros(hits.shape[0])
    for t in range(hits.shape[0]):
        if not len(order):
            continue
        rc = tp[t] / n_gt
        pr = tp[t] / (tp[t] + fp[t] + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # non-increasing from the right
        idx = np.searchsorted(rc, points, side="left")
        q[t] = np.where(idx < len(pr), pr[np.minimum(idx, len(pr) - 1)], 0.0)
        recall[t] = rc[-1]
    return q, recall


def evaluate(detections: Sequence[dict], ground_truths: Sequence[dict], num_classes: int,
             iou_thresholds: Any = COCO_IOU_THRESHOLDS, max_dets: int = 100
             ) -> DetectionMetrics:
    """COCO-style AP of ``detections`` against ``ground_truths`` (one dict per image each:
    'boxes' xyxy (n, 4), 'classes' (n,), and 'scores' (n,) for detections)."""
    if len(detections) != len(ground_truths):
        raise ValueError(f"evaluate: {len(detections)} detection entries for "
                         f"{len(ground_truths)} images")
    if max_dets < 1:
        raise ValueError(f"evaluate: max_dets must be >= 1, got {max_dets}")
    ts = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    dts = [_image(d, "detections", i, True) for i, d in enumerate(detections)]
    gts = [_image(g, "ground_truths", i, False) for i, g in enumerate(ground_truths)]
    ap = np.full((num_classes, len(ts)), np.nan)
    prec = np.full((len(ts), len(RECALL_POINTS), num_classes), np.nan)
    rec = np.full((len(ts), num_classes), np.nan)
    for k in range(num_classes):
        scores, hits, n_gt = [], [], 0
        for (db, dc, ds), (gb, gc, _) in zip(dts, gts, strict=True):
            sel = np.flatnonzero(dc == k)
            sel = sel[np.argsort(-ds[sel], kind="mergesort")][:max_dets]
            g = gb[gc == k]
            n_gt += len(g)
            scores.append(ds[sel])
            hits.append(match_image(db[sel], g, ts))
        if n_gt == 0:
            continue
        q, r = _class_curve(np.concatenate(scores), np.concatenate(hits, axis=1), n_gt,
                            RECALL_POINTS)
        prec[:, :, k], rec[:, k], ap[k] = q, r, q.mean(axis=1)
    return DetectionMetrics(ap=ap, precision=prec, recall=rec, iou_thresholds=ts)
