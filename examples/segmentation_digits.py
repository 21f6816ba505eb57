"""Semantic segmentation: the zoo's U-Net labels every pixel of 64 x 64 photo crops with
painted real handwritten digits: background or digit 0-9 (11 classes).

Backgrounds are crops of real photographs (--backgrounds: ../shared/images beside the checkout
when present, else the one matplotlib ships; training: the left 60% of each photo, test: the
right 40%); digits come from mnist5k (training: the 4,000 training digits, test: the 1,000
held-out ones). The U-Net's encoder is first trained as a classifier of single digits painted
on photo crops (the same photo regions and digits as training), then the whole network trains
with the combined cross-entropy + Dice loss on crowded training scenes (up to --max-digits
digits each where they find room, against 1-3 in the held-out scenes: more digits to learn
from per step), augmenting images and masks together (--augment
shift: whole-pixel shifts, no resampling; warp: rotation, zoom and shift; brightness and
colour-channel order on the image only). The masks are read from class probabilities averaged
over five one-pixel shifts of the input, a pixel being a digit where P(background) is below
a threshold chosen on 300 training scenes (the cross-entropy weighs digit pixels 5, which
thickens an argmax). Writes to --out (default
runs/segmentation): unet.cnnkit, metrics.json, dice.png (the figure: per-class Dice on the
held-out scenes and the loss per epoch), overlays.png (the picture: test scenes, true masks,
predicted masks) and scene.png. Then try (the example prints the threshold it chose):
cnnkit segment runs/segmentation/unet.cnnkit runs/segmentation/scene.png --tta
--background-below 0.2

    python examples/segmentation_digits.py            # full run (README figures)
    python examples/segmentation_digits.py --long     # the earlier recipe, 2.6x the steps: 24 min
    python examples/segmentation_digits.py --quick    # a few seconds (tests run this)
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import cnnkit
from cnnkit import random as crandom
from cnnkit import zoo
from cnnkit.data import BatchIterator
from cnnkit.detection.draw import save_png
from cnnkit.files import atomic_write
from cnnkit.segmentation import (
    CLASS_NAMES,
    NUM_CLASSES,
    ONE_PIXEL_SHIFTS,
    CombinedLoss,
    SceneEpochs,
    dice_score,
    digit_crops,
    iou_score,
    load_backgrounds,
    make_scenes,
    masks_from_probabilities,
    overlay,
    pair_transform,
    predict_probabilities,
    pretrain_encoder,
)
from cnnkit.train import optimizers, schedules

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
THRESHOLDS = (None, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)  # P(background) below: a digit
QUICK = "--quick" in sys.argv or os.environ.get("CNNKIT_EXAMPLE_SMALL") == "1"
LONG = "--long" in sys.argv and not QUICK  # 21 epochs after 12,000 x 4 pretraining


def args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny run (seconds)")
    p.add_argument("--small", action="store_true", help="the same as --quick")
    p.add_argument("--long", action="store_true",
                   help="the earlier long recipe: --pretrain 12000 --pretrain-epochs 4 "
                        "--epochs 21 --max-digits 3 --lr 3e-3")
    p.add_argument("--out", default="runs/segmentation-quick" if QUICK else
                   "runs/segmentation-long" if LONG else "runs/segmentation")
    p.add_argument("--train-scenes", type=int, default=64 if QUICK else 4000)
    p.add_argument("--test-scenes", type=int, default=16 if QUICK else 500)
    p.add_argument("--epochs", type=int, default=1 if QUICK else 21 if LONG else 8)
    p.add_argument("--base-filters", type=int, default=4 if QUICK else 16)
    p.add_argument("--depth", type=int, default=3, help="U-Net poolings")
    p.add_argument("--pretrain", type=int, default=64 if QUICK else 12000 if LONG else 6000,
                   help="single-digit crops for pretraining the encoder as a classifier "
                        "(0: none)")
    p.add_argument("--pretrain-epochs", type=int, default=1 if QUICK else 4 if LONG else 3)
    p.add_argument("--freeze-encoder", type=int, default=0,
                   help="1: keep the pretrained encoder's weights (and batch-norm statistics) "
                        "fixed while the decoder trains")
    p.add_argument("--lr", type=float, default=3e-3 if LONG else 4e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-digits", type=int, default=3 if LONG else 16,
                   help="digits per training scene: 1 to this many where they find room "
                        "(16: 3.1 digit classes and 14%% stroke pixels per scene on average; "
                        "the held-out scenes have 1-3 digits)")
    p.add_argument("--fresh-scenes", type=int, default=0,
                   help="1: paint new training scenes every epoch (0: the same ones)")
    p.add_argument("--augment", choices=("warp", "shift"), default="shift",
                   help="warp: rotation, zoom and shift (resampled); shift: whole-pixel "
                        "shifts only")
    p.add_argument("--permute-channels", type=int, default=1,
                   help="1: augment with a random order of the colour channels")
    p.add_argument("--dice-weight", type=float, default=1.0,
                   help="weight of the Dice loss next to cross-entropy (0: cross-entropy only)")
    p.add_argument("--fg-weight", type=float, default=5.0,
                   help="cross-entropy weight of digit pixels (background: 1)")
    p.add_argument("--backgrounds", default=str(SHARED_IMAGES) if SHARED_IMAGES.is_dir() else None,
                   help="a folder of photos (default: ../shared/images beside the checkout "
                        "when present, else matplotlib's sample photograph)")
    p.add_argument("--tta", type=int, default=1,
                   help="1: average the class probabilities over 5 one-pixel shifts")
    p.add_argument("--check-scenes", type=int, default=16 if QUICK else 300,
                   help="training scenes on which the background threshold is chosen")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def choose_threshold(model, x, m, shifts):
    """The background threshold (None: plain argmax) with the best macro Dice on training
    scenes, and that Dice."""
    probs = predict_probabilities(model, x, shifts=shifts)
    best = max(((dice_score(masks_from_probabilities(probs, t), m, NUM_CLASSES), i, t)
                for i, t in enumerate(THRESHOLDS)), key=lambda r: (r[0], -r[1]))
    return best[2], best[0]


def figure(per_class, losses, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.bar(range(10), per_class)
    a.set(xticks=range(10), xlabel="digit class", ylabel="Dice (held-out)", ylim=(0, 1),
          title=f"mean Dice {np.nanmean(per_class):.3f}")
    b.plot(range(1, len(losses) + 1), losses, marker="o")
    b.set(xlabel="epoch", ylabel="CE + Dice loss", title="training loss")
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def picture(x, truth, pred, path, n=6, scale=3):
    def big(a):
        return np.kron(a, np.ones((scale, scale), a.dtype)) if a.ndim == 2 else \
            np.repeat(np.repeat(a, scale, 0), scale, 1)

    rows = [np.concatenate([big(x[i]), overlay(big(x[i]), big(truth[i])),
                            overlay(big(x[i]), big(pred[i]))], axis=1) for i in range(n)]
    save_png(path, np.concatenate(rows, axis=0))


def main():
    a = args()
    # keep freed arrays' pages in the process: ~13,000-17,000 page faults and 55-70 ms of
    # system time less per U-Net step (1.13-1.15x wall, bench/RESULTS.md 2026-12-03)
    cnnkit.tune_malloc()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    crandom.seed(a.seed)
    bg = load_backgrounds(a.backgrounds)
    stream = SceneEpochs(a.train_scenes, a.seed, a.batch_size, backgrounds=bg,
                         max_digits=a.max_digits, epochs=a.epochs if a.fresh_scenes else 1)
    stream.paint_ahead(0)  # make_scenes(a.train_scenes, a.seed, "train", ...) while pretraining
    xv, mv = make_scenes(a.test_scenes, 2026, "test", backgrounds=bg)
    model = zoo.get("unet", input_shape=(64, 64, 3), classes=NUM_CLASSES, depth=a.depth,
                    base_filters=a.base_filters, batch_norm=True, rescale=1 / 255)
    start = time.perf_counter()
    if a.pretrain:  # the encoder first learns digits as a classifier of 48 x 48 crops
        px, py = digit_crops(a.pretrain, a.seed + 7, "train", backgrounds=bg)
        acc = pretrain_encoder(model, px, py, a.pretrain_epochs, a.depth, a.base_filters,
                               seed=a.seed)
        print(f"encoder pretrained on {len(px)} digit crops: training accuracy {acc:.3f}")
        if a.freeze_encoder:
            for layer in model.layers:
                if layer.name.startswith(("down", "bottleneck")):
                    layer.trainable = False
    x, m = stream.scenes(0)
    geometry = {} if a.augment == "warp" else {"rotation": 0.0, "zoom": (1.0, 1.0),
                                               "whole_pixels": True}
    stream.transform = pair_transform(permute_channels=a.permute_channels, **geometry)
    batches = stream if a.fresh_scenes else BatchIterator(
        x, m, batch_size=a.batch_size, shuffle=True, seed=a.seed, transform=stream.transform)
    lr = schedules.CosineDecay(a.lr, len(batches) * a.epochs, alpha=0.02)
    model.compile(optimizer=optimizers.Adam(learning_rate=lr),
                  loss=CombinedLoss(dice_weight=a.dice_weight,
                                    class_weights=[1.0] + [a.fg_weight] * 10))
    history = model.fit(batches, epochs=a.epochs, verbose=2)
    stream.close()
    train_s = time.perf_counter() - start
    shifts = ONE_PIXEL_SHIFTS if a.tta else ((0, 0),)
    bg_below, train_dice = choose_threshold(model, x[:a.check_scenes], m[:a.check_scenes],
                                            shifts)
    probs = predict_probabilities(model, xv, shifts=shifts)
    pred = masks_from_probabilities(probs, bg_below)
    per_class = dice_score(pred, mv, NUM_CLASSES, average=None)
    scores = {"dice_macro": dice_score(pred, mv, NUM_CLASSES),
              "dice_micro": dice_score(pred, mv, NUM_CLASSES, average="micro"),
              "dice_macro_per_image": dice_score(pred, mv, NUM_CLASSES, per_image=True),
              "iou_macro": iou_score(pred, mv, NUM_CLASSES),
              "iou_micro": iou_score(pred, mv, NUM_CLASSES, average="micro"),
              "dice_foreground": dice_score(pred > 0, mv > 0, 2),
              "dice_macro_argmax": dice_score(masks_from_probabilities(probs), mv, NUM_CLASSES),
              "dice_macro_training_scenes": train_dice}
    print(f"background threshold {bg_below} (chosen on {a.check_scenes} training scenes), "
          f"{len(shifts)} shift(s) averaged")
    print(f"held-out ({len(xv)} scenes): " + ", ".join(f"{k} {v:.4f}"
                                                         for k, v in scores.items())
          + f"; training {train_s:.0f} s, process CPU so far {time.process_time():.0f} s")
    print("Dice per class:", " ".join(f"{n.split()[-1]}:{d:.3f}"
                                      for n, d in zip(CLASS_NAMES[1:], per_class, strict=True)))
    model.save(out / "unet.cnnkit")
    save_png(out / "scene.png", xv[0])
    with atomic_write(out / "metrics.json", "w") as f:
        json.dump({**scores, "dice_per_class": per_class.tolist(), "train_seconds": train_s,
                   "cpu_seconds": time.process_time(),
                   "loss": history.history["loss"], "test_scenes": len(xv)}, f, indent=1)
    figure(per_class, history.history["loss"], out / "dice.png")
    picture(xv, mv, pred, out / "overlays.png")
    print(f"wrote {out}/: unet.cnnkit, metrics.json, dice.png, overlays.png, scene.png")
    readout = (" --tta" if a.tta else "") + ("" if bg_below is None
                                             else f" --background-below {bg_below}")
    print(f"the same read-out on one image: cnnkit segment {out}/unet.cnnkit "
          f"{out}/scene.png{readout}")
    if not QUICK and scores["dice_macro"] < 0.90:
        print(f"note: mean Dice {scores['dice_macro']:.3f} is below issue 16's target of 0.90 "
              f"(see README, Semantic segmentation)")


if __name__ == "__main__":
    main()
