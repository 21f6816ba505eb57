"""Training and running the grid detector: the loss from ground-truth boxes, a training loop
(Adam, cosine decay, fresh seeded scenes or a fixed set), and detection on image batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..ops.detection import grid_detection_loss
from .assign import assign_targets
from .decode import decode, postprocess
from .model import GridHead, backbone_classifier, copy_backbone, find_head

__all__ = ["GridDetectionLoss", "fit_detector", "detect", "pretrain_backbone"]


class GridDetectionLoss:
    """``loss(raw, ground_truths)`` -> scalar Tensor for raw outputs (N, rows, cols, A, 5 + C)
    of a model ending in ``head``; ``parts`` holds the last box / obj / cls values."""

    def __init__(self, head: GridHead, lambda_box: float = 5.0, lambda_noobj: float = 1.0,
                 lambda_cls: float = 1.0, ignore_threshold: float = 0.5):
        self.head = head
        self.lambda_box, self.lambda_noobj = float(lambda_box), float(lambda_noobj)
        self.lambda_cls = float(lambda_cls)
        self.ignore_threshold = float(ignore_threshold)
        self.parts: dict[str, float] = {}

    def __call__(self, raw: Any, ground_truths: Sequence[dict]) -> Any:
        data = np.asarray(raw.data if hasattr(raw, "data") else raw)
        boxes, _, _ = decode(data, self.head.anchors, self.head.stride)
        t = assign_targets(ground_truths, data.shape[1:3], self.head.stride, self.head.anchors,
                           boxes, self.ignore_threshold)
        loss, self.parts = grid_detection_loss(raw, t.positive, t.negative, t.box_target,
                                               t.class_target, t.box_weight, self.lambda_box,
                                               self.lambda_noobj, self.lambda_cls)
        return loss


def fit_detector(model: Any, scenes: Callable[[int], tuple[np.ndarray, list[dict]]],
                 epochs: int, steps_per_epoch: int, batch_size: int = 32, lr: float = 2e-3,
                 log: Callable[[str], None] | None = print,
                 loss: GridDetectionLoss | None = None) -> list[dict]:
    """Train ``model`` (ending in a GridHead) for ``epochs`` x ``steps_per_epoch`` Adam steps
    with cosine decay; ``scenes(epoch)`` gives that epoch's (images, ground truths), at least
    steps_per_epoch x batch_size of them; ``loss`` defaults to GridDetectionLoss(head). Returns
    one dict of mean losses per epoch."""
    from ..train import optimizers, schedules

    head = find_head(model)
    criterion = loss if loss is not None else GridDetectionLoss(head)
    total = epochs * steps_per_epoch
    opt = optimizers.Adam(model.parameters(), learning_rate=schedules.CosineDecay(
        lr, total, alpha=0.02, warmup_target=lr, warmup_steps=min(100, total // 10)))
    history = []
    model.train()
    for epoch in range(epochs):
        start, sums = time.perf_counter(), {"loss": 0.0, "box": 0.0, "obj": 0.0, "cls": 0.0}
        x, gts = scenes(epoch)
        order = np.random.default_rng(epoch).permutation(len(x))
        for s in range(steps_per_epoch):
            idx = order[s * batch_size:(s + 1) * batch_size]
            opt.zero_grad()
            loss = criterion(model(x[idx].astype(np.float32), training=True),
                             [gts[i] for i in idx])
            loss.backward()
            opt.step()
            sums["loss"] += float(loss.data)
            for k, v in criterion.parts.items():
                sums[k] += v
        row = {k: v / steps_per_epoch for k, v in sums.items()}
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.3f} (box {row['box']:.3f}, "
                f"obj {row['obj']:.3f}, cls {row['cls']:.3f}), {row['seconds']:.1f} s")
    model.eval()
    return history


def detect(model: Any, images: np.ndarray, score_threshold: float = 0.05,
           iou_threshold: float = 0.5, max_dets: int = 100, soft: bool = False,
           batch_size: int = 64) -> list[dict]:
    """Detections (see ``postprocess``) for a batch of images (N, H, W, C) in model pixels."""
    head = find_head(model)
    raw = model.predict(np.asarray(images, np.float32), batch_size=batch_size)
    return postprocess(raw, head.anchors, head.stride, images.shape[1:3], score_threshold,
                       iou_threshold, max_dets, soft)


def pretrain_backbone(detector: Any, patches: np.ndarray, labels: np.ndarray, epochs: int,
                      width: int = 16, batch_size: int = 64, lr: float = 3e-3,
                      seed: int = 0) -> float:
    """Train ``backbone_classifier`` on digit patches (Adam, cosine decay), copy its backbone
    into ``detector``; returns the last epoch's training accuracy."""
    from ..train import losses, optimizers, schedules

    clf = backbone_classifier(width, int(labels.max()) + 1, patches.shape[1])
    steps = -(-len(patches) // batch_size) * epochs
    clf.compile(optimizer=optimizers.Adam(learning_rate=schedules.CosineDecay(lr, steps,
                                                                              alpha=0.05)),
                loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"], seed=seed)
    hist = clf.fit(patches.astype(np.float32), labels, batch_size=batch_size, epochs=epochs,
                   verbose=2)
    copy_backbone(clf, detector)
    return float(hist.history["accuracy"][-1])
