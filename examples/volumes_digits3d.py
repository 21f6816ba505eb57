"""A 3D CNN on volumes: digits of the embedded mnist5k extruded into 3-voxel-thick slabs,
turned by random 3D rotations (up to 30 degrees about a random axis) in a 20^3 grid, and
classified by Conv3D layers. Train: mnist5k's 4,000 training digits, each rotated twice (the
epochs alternate between the two sets) and augmented every epoch (flips along the depth axis,
shifts of up to 2 voxels, Gaussian noise); test: its 1,000 held-out digits, each rotated once
with a fixed seed.

In-plane flips and quarter turns (also in cnnkit.volumes) are left out here: they would make
a 6 and a 9 the same object. Writes volumes_digits3d.png (the figure: test accuracy per epoch
and per digit) and volumes_digits3d_views.png (a picture: projections of test volumes).
``--quick`` (or CNNKIT_EXAMPLE_SMALL=1) trains for a few seconds.

    nice python examples/volumes_digits3d.py [--quick] [--out DIR]
"""

import time
from pathlib import Path

import numpy as np
from _small import quick_and_out

from cnnkit import layers, volumes
from cnnkit.datasets import mnist5k
from cnnkit.models import Sequential
from cnnkit.random import seed as set_seed

SIZE = 20


def model():
    return Sequential([
        layers.Input((SIZE, SIZE, SIZE, 1)),
        layers.Conv3D(8, 3, padding="same", activation="relu"), layers.MaxPooling3D(2),
        layers.Conv3D(16, 3, padding="same", activation="relu"), layers.MaxPooling3D(2),
        layers.Conv3D(32, 3, padding="same", activation="relu"), layers.MaxPooling3D(2),
        layers.Flatten(), layers.Dropout(0.3), layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax")])


def plot(history, y, pred, x_test, out: Path):
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(range(1, len(history) + 1), history, "o-")
    a.set(xlabel="epoch", ylabel="test accuracy", title="3D CNN, rotated digit volumes")
    b.bar(range(10), [np.mean(pred[y == c] == c) for c in range(10)])
    b.set(xticks=range(10), xlabel="digit", ylim=(0.5, 1), title="test accuracy per digit")
    fig.savefig(out / "volumes_digits3d.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    fig, axes = plt.subplots(3, 6, figsize=(8, 4.2))
    for col in range(6):
        v = x_test[col, ..., 0]
        for row, ax in enumerate(axes[:, col]):
            ax.imshow(v.max(axis=row), cmap="magma")  # maximum intensity projection
            ax.set_xticks([]), ax.set_yticks([])
        axes[0, col].set_title(f"{y[col]} -> {pred[col]}", fontsize=9)
    for row, name in enumerate(["along D", "along H", "along W"]):
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.suptitle("Test volumes: maximum projections (true -> predicted)")
    fig.savefig(out / "volumes_digits3d_views.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def main():
    quick, out = quick_and_out(__doc__)
    (xtr, ytr), (xte, yte) = mnist5k.load_data()
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    if quick:
        xtr, ytr, xte, yte = xtr[:100], ytr[:100], xte[:50], yte[:50]
    t0 = time.perf_counter()
    x_test = volumes.digit_volumes(xte, np.random.default_rng(2026), SIZE)
    rng = np.random.default_rng(0)
    x_train = [volumes.digit_volumes(xtr, rng, SIZE) for _ in range(2)]
    print(f"{len(xtr)} x 2 train and {len(xte)} test volumes of {SIZE}^3 voxels, "
          f"{time.perf_counter() - t0:.0f} s")
    set_seed(0)
    net, history = model(), []
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for epoch in range(1 if quick else 8):
        x = volumes.augment(x_train[epoch % 2], rng, flip_axes=(1,), rot90_planes=(),
                            max_shift=2, noise_std=0.05)
        net.fit(x, ytr, batch_size=32, epochs=1, verbose=0)
        pred = net.predict(x_test, verbose=0).argmax(-1)
        history.append(float(np.mean(pred == yte)))
        print(f"epoch {epoch + 1}: test accuracy {history[-1]:.4f}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    plot(history, yte, pred, x_test, out)
    print(f"pictures written to {out.resolve()}")
    if not quick:
        assert history[-1] >= 0.95, f"3D test accuracy {history[-1]:.4f} < 0.95"


if __name__ == "__main__":
    main()
