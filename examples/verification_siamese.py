"""Verification and one-shot learning on unseen classes: an embedding tower trained on digits
0-4 of the embedded mnist5k, tested on pairs of digits 5-9 only.

Training classes (none of them a digit 5-9, and no image of one):
- the 2,000 training digits 0-4, plus their quarter turns and mirror images as new classes (as
  Omniglot's characters are turned into new classes by Santoro et al. 2016 and Vinyals et al.
  2016): 28 classes;
- chimeras of those digits (``cnnkit.verification.chimera_classes``): the top half of one
  digit 0-4 over the bottom half of another, or left and right halves, in quarter turns: 160
  classes of ``PER_CHIMERA`` images;
- synthetic pen-stroke glyphs (``cnnkit.verification.stroke_glyphs``: random Bezier strokes
  from a random generator, no image data): ``GLYPHS`` classes of ``PER_GLYPH`` instances.
Every batch is randomly turned, shifted and scaled. A conv-BN tower
(``cnnkit.zoo.siamese.conv_bn_backbone``, 128-d unit embeddings) is pretrained with the
normalised-softmax loss (``fit_cosine_softmax``), then fine-tuned once with the contrastive
loss on balanced pairs (three passes) and once with the batch-hard triplet loss on P-K batches.

For each tower, the embeddings are test-time augmented (``embed_tta``: the renormalised mean
of the unit embeddings of each image, its four one-pixel shifts and its turns by +-6 degrees)
and whitened (``WithinClassWhitening``, fitted on the training digits 0-4 only). Reported: ROC
AUC on 2,000 test pairs of digits 5-9 (test split, half same), plain, whitened, and whitened
without test-time augmentation; the distance threshold chosen on pairs of digits 0-4 of the
test split (classes seen in training, images not) with its accuracy on the test pairs; the
5-way one-shot accuracy on the test split's digits 5-9. No digit 5-9 image is used in
training, whitening or the choice of the threshold.
Writes verification_roc.png (the figure), verification_one_shot.png (one-shot trials) and
verification_extra_classes.png (chimeras and glyphs). ``--quick`` (or CNNKIT_EXAMPLE_SMALL=1)
trains for a few seconds.

    nice python examples/verification_siamese.py [--quick] [--out DIR]
"""

import time
from pathlib import Path

import numpy as np
from _small import quick_and_out

from cnnkit import verification
from cnnkit.data import RandomAffine
from cnnkit.datasets import mnist5k
from cnnkit.random import seed as set_seed
from cnnkit.train.schedules import CosineDecay
from cnnkit.zoo.siamese import conv_bn_backbone, embedding_tower

GLYPHS, PER_GLYPH, PER_CHIMERA = 600, 15, 60
EPOCHS, PAIRS, PASSES, FINE_LR, DIM = 6, 8000, 3, 2e-4, 128
SHRINK, TTA_VIEWS = 0.3, verification.tta_views(shift=1.0, angle=6.0)


def tower():
    return embedding_tower((28, 28, 1), embedding_dim=DIM, backbone=conv_bn_backbone(32),
                           l2_normalize=True)


def turned_classes(x, y):
    """Each digit class in four quarter turns and, for 2, 3 and 4, mirrored: a new class each
    (0 and 1 in two turns only: their half turns look like themselves)."""
    xs, ys = [], []
    for d in np.unique(y):
        for mirror in (False, True) if d >= 2 else (False,):
            for k in range(4) if d >= 2 else range(2):
                im = x[y == d][:, :, ::-1] if mirror else x[y == d]
                xs.append(np.rot90(im, k, axes=(1, 2)))
                ys.append(np.full(len(im), len(ys)))
    return np.concatenate(xs), np.concatenate(ys)


def pair_distances(e, y, rng, n=2000):
    i, j, same = verification.make_pairs(y, n, rng)
    return np.linalg.norm(e[i] - e[j], axis=1), same


def scores(e, y, e_seen, y_seen, trials):
    """AUC and ROC points on the test pairs, 5-way one-shot accuracy, the threshold chosen on
    pairs of digits 0-4 and its accuracy on the test pairs."""
    d, same = pair_distances(e, y, np.random.default_rng(1))
    fpr, tpr, _ = verification.roc_curve(-d, same)
    t, _ = verification.best_threshold(*pair_distances(e_seen, y_seen, np.random.default_rng(3)))
    return {"auc": verification.auc(fpr, tpr), "roc": (fpr, tpr), "embeddings": e,
            "one_shot_5way": verification.one_shot_accuracy(e, y, 5, trials,
                                                            np.random.default_rng(2)),
            "threshold_seen": t, "pair_accuracy_seen": verification.pair_accuracy(d, same, t)}


def evaluate(model, white_fit, thr_seen, test, trials):
    """Per view: "plain" (unit embeddings, test-time augmented), "whitened" (the same after
    within-class whitening fitted on the training digits 0-4), "whitened, no TTA"."""
    sets = {"fit": white_fit[0], "seen": thr_seen[0], "test": test[0]}
    out = {}
    for tta in (True, False):
        emb = {k: verification.embed_tta(model, x, TTA_VIEWS) if tta else
               verification.embed(model, x) for k, x in sets.items()}
        white = verification.WithinClassWhitening(SHRINK).fit(emb["fit"], white_fit[1])
        views = (("plain", lambda e: e), ("whitened", white.transform)) if tta else \
            (("whitened, no TTA", white.transform),)
        for view, f in views:
            out[view] = scores(f(emb["test"]), test[1], f(emb["seen"]), thr_seen[1], trials)
    return out


def plot(results, x_test, y_test, extra, out: Path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for (name, r), colour in zip(results.items(), ("C0", "C1", "C2"), strict=False):
        for view, style in (("whitened", "-"), ("plain", ":")):
            ax.plot(*r[view]["roc"], style, color=colour,
                    label=f"{name}, {view} (AUC {r[view]['auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title="Verification ROC, unseen digits 5-9")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(out / "verification_roc.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    best = max(results, key=lambda k: results[k]["whitened"]["auc"])
    e = results[best]["whitened"]["embeddings"]
    rng = np.random.default_rng(7)
    fig, axes = plt.subplots(4, 6, figsize=(7, 5))
    for row in axes:
        support = [rng.choice(np.flatnonzero(y_test == c)) for c in range(5, 10)]
        q = rng.choice(np.flatnonzero(y_test == rng.integers(5, 10)))
        guess = int(np.argmin(np.linalg.norm(e[support] - e[q], axis=1)))
        for a, k in zip(row, [q, *support], strict=True):
            a.imshow(x_test[k, ..., 0], cmap="gray")
            a.set_xticks([]), a.set_yticks([])
        row[0].set_ylabel("query")
        row[1 + guess].set_title("nearest", fontsize=8,
                                 color="green" if y_test[support[guess]] == y_test[q] else "red")
    fig.suptitle(f"5-way one-shot on unseen digits ({best}, whitened)")
    fig.savefig(out / "verification_one_shot.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig, axes = plt.subplots(6, 8, figsize=(7, 5.5))
    for k, a in enumerate(axes.ravel()):  # 4 instances each of 6 chimera, 6 glyph classes
        x, y = extra[k // 24]
        c = (k % 24) // 4 * (7 if k < 24 else 1)  # chimeras: every 7th class, mixed turns
        a.imshow(x[np.flatnonzero(y == c)[k % 4], ..., 0], cmap="gray")
        a.set_xticks([]), a.set_yticks([])
    fig.suptitle("extra training classes: chimeras of digits 0-4 (top), stroke glyphs")
    fig.savefig(out / "verification_extra_classes.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def report(name, r, seconds):
    for view, v in r.items():
        print(f"{name} ({view}): test ROC AUC {v['auc']:.4f}, 5-way one-shot accuracy "
              f"{v['one_shot_5way']:.4f}; threshold on 0-4 pairs {v['threshold_seen']:.3f}: "
              f"test pair accuracy {v['pair_accuracy_seen']:.4f}")
    print(f"  ({seconds:.0f} s)", flush=True)


def main():
    quick, out = quick_and_out(__doc__)
    (xtr, ytr), (xte, yte) = mnist5k.load_data()
    xtr = (xtr[..., None] / 255.0).astype(np.float32)
    xte = (xte[..., None] / 255.0).astype(np.float32)
    seen = (xtr[ytr < 5], ytr[ytr < 5])  # the only digits trained on
    thr_seen = (xte[yte < 5], yte[yte < 5])  # pairs for the threshold: digits 0-4 only
    test = (xte[yte >= 5], yte[yte >= 5])
    if quick:  # fewer images to embed
        thr_seen, test = (thr_seen[0][:300], thr_seen[1][:300]), (test[0][:300], test[1][:300])
    white_fit = (seen[0][:300], seen[1][:300]) if quick else seen  # whitening: digits 0-4
    n = 300 if quick else len(seen[1])
    x_fit, y_fit = turned_classes(seen[0][:n], seen[1][:n])
    gx, gy = verification.stroke_glyphs(20 if quick else GLYPHS, 8 if quick else PER_GLYPH,
                                        np.random.default_rng(11))
    cx, cy = verification.chimera_classes(seen[0], seen[1], 4 if quick else PER_CHIMERA,
                                          np.random.default_rng(13))
    x_fit = np.concatenate([x_fit, gx, cx])
    y_fit = np.concatenate([y_fit, gy + y_fit.max() + 1, cy + y_fit.max() + 1 + gy.max() + 1])
    print(f"training on {len(x_fit)} images of {y_fit.max() + 1} classes")
    affine = RandomAffine(degrees=12, translate=(0.08, 0.08), scale=(0.9, 1.1))

    def augment(xb, rng):
        return affine(xb, rng=rng)[0]

    results, epochs, trials = {}, 1 if quick else EPOCHS, 100 if quick else 2000
    t0 = time.perf_counter()
    set_seed(1)
    base, rng = tower(), np.random.default_rng(1)
    verification.fit_cosine_softmax(base, x_fit, y_fit, epochs=epochs, scale=16.0,
                                    lr=CosineDecay(2e-3, epochs * (len(x_fit) // 64)),
                                    rng=rng, augment=augment, log=print)
    results["normalised softmax"] = evaluate(base, white_fit, thr_seen, test, trials)
    report("normalised softmax", results["normalised softmax"], time.perf_counter() - t0)
    for name in ("contrastive", "triplet"):  # fine-tuned from the pretrained tower
        t0, model, rng = time.perf_counter(), tower(), np.random.default_rng(2)
        verification.embed(model, x_fit[:1])  # builds the weights
        model.set_weights(base.get_weights())
        if name == "contrastive":
            for _ in range(1 if quick else PASSES):  # a fresh Adam each pass
                verification.fit_contrastive(model, x_fit, y_fit, epochs=1,
                                             pairs_per_epoch=256 if quick else PAIRS,
                                             margin=1.0, lr=FINE_LR, rng=rng, augment=augment,
                                             log=print)
        else:
            verification.fit_triplet(model, x_fit, y_fit, epochs=1, p=16, k=4, margin=0.2,
                                     lr=FINE_LR, rng=rng, augment=augment, log=print)
        results[f"+ {name}"] = evaluate(model, white_fit, thr_seen, test, trials)
        report(f"+ {name}", results[f"+ {name}"], time.perf_counter() - t0)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, *test, [(cx, cy), (gx, gy)], out)
    print(f"pictures written to {out.resolve()}")


if __name__ == "__main__":
    main()
