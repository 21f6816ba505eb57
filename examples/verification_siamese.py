"""Verification and one-shot learning on unseen classes: a Siamese embedding trained on digits
0-4 of the embedded mnist5k, tested on pairs of digits 5-9 only.

Two towers are trained, one with the contrastive loss on balanced pairs and one with the
batch-hard triplet loss (soft margin) on P-K batches, both on randomly turned, shifted and
scaled digits. The 2,000 training digits also make new classes by
quarter turns and mirroring (as Omniglot's characters are turned into new classes by Santoro
et al. 2016 and Vinyals et al. 2016): 28 classes, none of them a 5-9. For each tower: ROC AUC
on test pairs of digits 5-9 (test split), the distance threshold chosen on validation pairs of
digits 5-9 (train split) and its accuracy on the test pairs, and 5-way one-shot accuracy on
the test split's digits 5-9.
Writes verification_roc.png (the figure) and verification_one_shot.png (a picture of one-shot
trials). ``--quick`` (or CNNKIT_EXAMPLE_SMALL=1) trains for a few seconds.

    nice python examples/verification_siamese.py [--quick] [--out DIR]
"""

import time
from pathlib import Path

import numpy as np
from _small import quick_and_out

from cnnkit import layers, verification
from cnnkit.data.augment import RandomAffine
from cnnkit.datasets import mnist5k
from cnnkit.models import Sequential
from cnnkit.random import seed as set_seed
from cnnkit.zoo.siamese import embedding_tower


def tower():
    backbone = Sequential([
        layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"), layers.Flatten()])
    return embedding_tower((28, 28, 1), embedding_dim=64, backbone=backbone, l2_normalize=True)


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


def evaluate(model, val, test, rng, trials):
    """AUC, threshold (val), test pair accuracy, 5-way one-shot accuracy, ROC points."""
    out = {}
    for name, (x, y) in (("val", val), ("test", test)):
        e = verification.embed(model, x)
        i, j, same = verification.make_pairs(y, 2000, rng)
        out[name] = (e, y, np.linalg.norm(e[i] - e[j], axis=1), same, (i, j))
    _, _, d_val, s_val, _ = out["val"]
    e, y, d, same, ij = out["test"]
    t, _ = verification.best_threshold(d_val, s_val)
    fpr, tpr, _ = verification.roc_curve(-d, same)
    return {"auc": verification.auc(fpr, tpr), "threshold": t,
            "pair_accuracy": verification.pair_accuracy(d, same, t),
            "one_shot_5way": verification.one_shot_accuracy(e, y, 5, trials, rng),
            "roc": (fpr, tpr), "embeddings": e}


def plot(results, x_test, y_test, out: Path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, r in results.items():
        ax.plot(*r["roc"], label=f"{name} (AUC {r['auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title="Verification ROC, unseen digits 5-9")
    ax.legend(loc="lower right")
    fig.savefig(out / "verification_roc.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    e = results["contrastive"]["embeddings"]
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
    fig.suptitle("5-way one-shot on unseen digits (contrastive tower)")
    fig.savefig(out / "verification_one_shot.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def main():
    quick, out = quick_and_out(__doc__)
    (xtr, ytr), (xte, yte) = mnist5k.load_data()
    xtr = (xtr[..., None] / 255.0).astype(np.float32)
    xte = (xte[..., None] / 255.0).astype(np.float32)
    seen, unseen_tr, unseen_te = ytr < 5, ytr >= 5, yte >= 5
    x_fit, y_fit = xtr[seen], ytr[seen]
    val, test = (xtr[unseen_tr], ytr[unseen_tr]), (xte[unseen_te], yte[unseen_te])
    if quick:
        x_fit, y_fit = x_fit[:300], y_fit[:300]
    x_fit, y_fit = turned_classes(x_fit, y_fit)
    affine = RandomAffine(degrees=12, translate=(0.08, 0.08), scale=(0.9, 1.1))

    def augment(xb, rng):
        return affine(xb, rng=rng)[0]

    results = {}
    for name in ("contrastive", "triplet"):
        set_seed(0)
        rng, model, t0 = np.random.default_rng(0), tower(), time.perf_counter()
        if name == "contrastive":
            verification.fit_contrastive(model, x_fit, y_fit, epochs=1 if quick else 6,
                                         margin=1.0, pairs_per_epoch=256 if quick else 6000,
                                         rng=rng, augment=augment, log=print)
        else:  # the soft margin: softplus(d_ap - d_an)
            verification.fit_triplet(model, x_fit, y_fit, epochs=1 if quick else 20, p=8,
                                     k=6, margin=0.0, soft=True, rng=rng, augment=augment,
                                     log=print)
        r = evaluate(model, val, test, np.random.default_rng(1), 100 if quick else 2000)
        results[name] = r
        print(f"{name}: test ROC AUC {r['auc']:.4f}, threshold {r['threshold']:.3f} (val), "
              f"test pair accuracy {r['pair_accuracy']:.4f}, 5-way one-shot accuracy "
              f"{r['one_shot_5way']:.4f}, {time.perf_counter() - t0:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    plot(results, *test, out)
    print(f"pictures written to {out.resolve()}")


if __name__ == "__main__":
    main()
