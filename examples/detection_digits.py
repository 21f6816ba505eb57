"""Object detection: a YOLO-style grid detector finds and classifies real handwritten digits in
64 x 64 scenes (1-4 digits, random scales and positions, some overlapping, stroke clutter).

The backbone is first trained as a classifier of single-digit patches, then the detector
trains on fresh seeded scenes from mnist5k's 4,000 training digits, then is evaluated on the
fixed held-out set of 500 scenes built from the 1,000 test digits (COCO-style mAP, checked
against pycocotools in tests/test_detection_eval.py). Writes to --out (default
runs/detection): detector.cnnkit, metrics.json, pr_curves.png (the figure: precision-recall
at IoU 0.5 per class) and detections.png (the picture: test scenes with boxes, labels,
scores; ground truth in white). Then try:  cnnkit detect runs/detection/detector.cnnkit
runs/detection/scene.png

    python examples/detection_digits.py            # full run (README figures)
    python examples/detection_digits.py --quick    # a few seconds (tests run this)
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from cnnkit import random as crandom
from cnnkit.detection import (
    GridDetectionLoss,
    convert,
    detect,
    digit_patches,
    evaluate_detections,
    fit_detector,
    grid_detector,
    held_out_scenes,
    kmeans_anchors,
    make_scenes,
    pretrain_backbone,
)
from cnnkit.detection.draw import draw_detections, save_png
from cnnkit.files import atomic_write

QUICK = "--quick" in sys.argv or os.environ.get("CNNKIT_EXAMPLE_SMALL") == "1"


def args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny run (seconds)")
    p.add_argument("--small", action="store_true", help="the same as --quick")
    p.add_argument("--out", default="runs/detection-quick" if QUICK else "runs/detection")
    p.add_argument("--epochs", type=int, default=1 if QUICK else 8)
    p.add_argument("--steps", type=int, default=3 if QUICK else 100, help="steps per epoch")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--test-scenes", type=int, default=40 if QUICK else 500)
    p.add_argument("--pretrain", type=int, default=128 if QUICK else 4000,
                   help="digit patches for pretraining the backbone (0: none)")
    p.add_argument("--pretrain-epochs", type=int, default=1 if QUICK else 3)
    p.add_argument("--lambda-cls", type=float, default=2.0, help="weight of the class loss")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def plot_pr(metrics, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for k in range(metrics.ap.shape[0]):
        if not np.isnan(metrics.ap[k, 0]):
            ax.plot(metrics.recall_points, metrics.precision[0, :, k],
                    label=f"{k}: AP {metrics.ap[k, 0]:.3f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"held-out scenes: mAP@0.5 {metrics.map50:.3f}, "
                 f"mAP@[.5:.95] {metrics.map:.3f}")
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def picture(x, dets, gts, path, n=8, threshold=0.3):
    tiles = []
    for i in range(n):
        shown = {k: v[dets[i]["scores"] >= threshold] for k, v in dets[i].items()}
        tiles.append(draw_detections(x[i], shown, [str(d) for d in range(10)], scale=4,
                                     ground_truth=gts[i]))
    rows = [np.concatenate(tiles[r:r + 4], axis=1) for r in range(0, n, 4)]
    save_png(path, np.concatenate(rows, axis=0))


def main():
    a = args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    crandom.seed(a.seed)
    _, g = make_scenes(200 if QUICK else 1000, a.seed + 99)  # box shapes for the anchors
    wh = np.concatenate([convert(d["boxes"], "xyxy", "xywh")[:, 2:] for d in g])
    anchors = kmeans_anchors(wh, 2, seed=a.seed)
    model = grid_detector((64, 64, 1), 10, anchors, class_names=[str(d) for d in range(10)])
    n = a.steps * a.batch_size
    start = time.perf_counter()
    if a.pretrain:  # the backbone first learns digits as a classifier of 32 x 32 patches
        px, py = digit_patches(a.pretrain, a.seed + 7)
        acc = pretrain_backbone(model, px, py, a.pretrain_epochs, seed=a.seed)
        print(f"backbone pretrained on {len(px)} patches: training accuracy {acc:.3f}")
    history = fit_detector(model, lambda e: make_scenes(n, 1000 * (a.seed + 1) + e), a.epochs,
                           a.steps, a.batch_size, lr=3e-3,
                           loss=GridDetectionLoss(model.layers[-1], lambda_cls=a.lambda_cls))
    train_s = time.perf_counter() - start
    x, gts = held_out_scenes(a.test_scenes)
    start = time.perf_counter()
    dets = detect(model, x)
    m = evaluate_detections(dets, gts, 10)
    eval_s = time.perf_counter() - start
    soft = evaluate_detections(detect(model, x, soft=True), gts, 10)
    print(f"held-out ({len(x)} scenes): mAP@0.5 {m.map50:.4f}, mAP@[.5:.95] {m.map:.4f} "
          f"(soft-NMS: {soft.map50:.4f}, {soft.map:.4f}); training {train_s:.0f} s, "
          f"evaluation {eval_s:.1f} s")
    print("AP@0.5 per digit:", " ".join(f"{k}:{v:.3f}" for k, v in
                                         enumerate(m.per_class_ap(0.5))))
    model.save(out / "detector.cnnkit")
    save_png(out / "scene.png", x[0, :, :, 0])
    with atomic_write(out / "metrics.json", "w") as f:
        json.dump({"map50": m.map50, "map": m.map, "map75": m.map75,
                   "soft_nms_map50": soft.map50, "soft_nms_map": soft.map,
                   "ap50_per_class": m.per_class_ap(0.5).tolist(), "train_seconds": train_s,
                   "history": history, "test_scenes": len(x)}, f, indent=1)
    plot_pr(m, out / "pr_curves.png")
    picture(x, dets, gts, out / "detections.png")
    print(f"wrote {out}/: detector.cnnkit, metrics.json, pr_curves.png, detections.png")
    if not QUICK and m.map50 < 0.90:
        raise SystemExit(f"mAP@0.5 {m.map50:.3f} is below the 0.90 this example promises")


if __name__ == "__main__":
    main()
