"""int8 accuracy on real data (``python -m bench.quantize_accuracy``): post-training
quantization of three trained models, test accuracy of float32 and int8 for each
calibration method, and PyTorch's own int8 model (``torch.ao.quantization`` FX static PTQ,
x86 backend) of the same checkpoint next to cnnkit's.

- mnist5k: the README's model (``cnnkit train``: mnist_cnn, 15 epochs, the default recipe),
  read from ``--mnist5k-model`` (a model.cnnkit written by ``cnnkit train``) or trained here
  for ``--mnist5k-epochs``; scored on the 1,000 embedded test digits.
- digit checkpoint: ``../shared/weights/digit_recognizer_handwriting_model.pth`` (input
  (x/255 - 0.1307) / 0.3081), scored on the 5,000 digits of ``../shared/datasets/mnist5k``.
- Fashion-MNIST: ``--fashion-model`` (a model.cnnkit from ``cnnkit train --dataset
  fashion-mnist``), or with ``--fashion-train N`` the zoo's ``mnist_cnn`` trained here on the
  first N training images for ``--fashion-epochs`` (Adam 2e-3, batch 128, no augmentation);
  scored on the official 10,000 test images.

Calibration: the first 512 training images (mnist5k, Fashion-MNIST) or the first 512 of the
5,000 digits (checkpoint), per-channel weights (7 bits, quantize's default, or
``--weight-bits 8``), uint8 activations.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path
from typing import Any

import numpy as np

from . import common as C

SECTION = "## int8 accuracy (python -m bench.quantize_accuracy)"
TEMPLATE = f"""{SECTION}

{C.block_markers("int8-accuracy")}
"""
SHARED = C.REPO.parent / "shared"
METHODS = ("minmax", "percentile", "entropy", "mse")


def _digit_model() -> Any:
    from cnnkit import layers
    from cnnkit.io.torch_checkpoint import load_state_dict
    from cnnkit.io.torch_weights import load_sequential_state_dict
    from cnnkit.models import Sequential

    state = load_state_dict(SHARED / "weights" / "digit_recognizer_handwriting_model.pth")
    model = Sequential([
        layers.Input((28, 28, 1)), layers.Rescaling(1 / (255 * 0.3081), -0.1307 / 0.3081),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dense(10),
    ])
    load_sequential_state_dict(model, state)
    return model, state


def _digits() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(SHARED / "datasets" / "mnist5k" / "mnist_5k.csv.gz", "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    return data[:, :784].reshape(-1, 28, 28, 1).astype(np.float32), data[:, 784]


def torch_digit_int8(state: dict, calib: np.ndarray, x: np.ndarray) -> np.ndarray:
    """PyTorch's int8 predictions of the digit checkpoint (its own module, the same
    weights; normalisation in NumPy before)."""
    import torch
    from torch import nn
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1152, 256), nn.ReLU(), nn.Linear(256, 10))
    keys = [k for k in state if k.endswith(("weight", "bias"))]
    params = [p for p in net.parameters()]
    with torch.no_grad():
        for p, k in zip(params, keys, strict=True):
            p.copy_(torch.from_numpy(np.asarray(state[k], np.float32)))

    def nchw(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(((a / 255 - 0.1307) / 0.3081)
                                                     .transpose(0, 3, 1, 2)).astype(np.float32))

    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(net.eval(), get_default_qconfig_mapping("x86"),
                          example_inputs=(nchw(calib[:1]),))
    with torch.no_grad():
        prepared(nchw(calib))
        qnet = convert_fx(prepared)
        return np.concatenate([qnet(nchw(x[i:i + 500])).numpy() for i in range(0, len(x), 500)])


def _train_fashion(x: np.ndarray, y: np.ndarray, epochs: int) -> Any:
    """The zoo's mnist_cnn (pixels / 255 inside) trained with Adam 2e-3, batch 128."""
    from cnnkit import losses, optimizers, random, zoo

    random.seed(0)
    model = zoo.get("mnist_cnn")
    model.compile(optimizer=optimizers.Adam(2e-3),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y.astype(np.int64), epochs=epochs, batch_size=128, verbose=2)
    return model


WEIGHT_BITS = {"bits": 7}  # --weight-bits


def _score(model: Any, calib: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from cnnkit.deploy import quantize

    out = {"float32": float(np.mean(model.predict(x).argmax(-1) == y))}
    for m in METHODS:
        q = quantize(model, calib, method=m, weight_bits=WEIGHT_BITS["bits"])
        out[m] = float(np.mean(q.predict(x).argmax(-1) == y))
        print(f"  {m}: {out[m]:.2%}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist5k-model", help="model.cnnkit of `cnnkit train` (mnist5k)")
    ap.add_argument("--fashion-model", help="model.cnnkit of `cnnkit train --dataset "
                    "fashion-mnist`")
    ap.add_argument("--fashion-train", type=int, help="train mnist_cnn on this many images")
    ap.add_argument("--fashion-epochs", type=int, default=2)
    ap.add_argument("--weight-bits", type=int, choices=(7, 8), default=7,
                    help="quantize's weight_bits (7: codes -63..63, the default)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    WEIGHT_BITS["bits"] = args.weight_bits
    from cnnkit import datasets
    from cnnkit.models import load_model

    rows = []
    if args.mnist5k_model:
        (xt, _), (xv, yv) = datasets.mnist5k.load_data()
        model = load_model(Path(args.mnist5k_model), compile=False)
        print("mnist5k model (mnist_cnn, cnnkit train):", flush=True)
        rows.append(("mnist5k `mnist_cnn` (`cnnkit train`, 15 epochs), 1,000 test digits",
                     _score(model, xt[:512, ..., None].astype(np.float32) if xt.ndim == 3
                            else xt[:512].astype(np.float32),
                            xv[..., None].astype(np.float32) if xv.ndim == 3
                            else xv.astype(np.float32), yv), None))
    model, state = _digit_model()
    x, y = _digits()
    print("digit checkpoint:", flush=True)
    scores = _score(model, x[:512], x, y)
    torch_acc = float(np.mean(torch_digit_int8(state, x[:512], x).argmax(-1) == y))
    print(f"  torch.ao int8: {torch_acc:.2%}")
    rows.append(("digit_recognizer_handwriting_model.pth, 5,000 digits", scores, torch_acc))
    if args.fashion_model:
        (xt, _), (xv, yv) = datasets.fashion_mnist.load_data(
            data_dir=str(SHARED / "datasets" / "fashion-mnist"))
        model = load_model(Path(args.fashion_model), compile=False)
        print("Fashion-MNIST model:", flush=True)
        rows.append(("Fashion-MNIST `mnist_cnn` (`cnnkit train`), 10,000 test images",
                     _score(model, xt[:512, ..., None].astype(np.float32),
                            xv[..., None].astype(np.float32), yv), None))
    elif args.fashion_train:
        (xt, yt), (xv, yv) = datasets.fashion_mnist.load_data(
            data_dir=str(SHARED / "datasets" / "fashion-mnist"))
        model = _train_fashion(xt[:args.fashion_train, ..., None].astype(np.float32),
                               yt[:args.fashion_train], args.fashion_epochs)
        print("Fashion-MNIST model:", flush=True)
        rows.append((f"Fashion-MNIST `mnist_cnn` ({args.fashion_epochs} epochs on the first "
                     f"{args.fashion_train} images), 10,000 test images",
                     _score(model, xt[:512, ..., None].astype(np.float32),
                            xv[..., None].astype(np.float32), yv), None))
    if not args.no_write:
        C.update_results(SECTION, TEMPLATE, {"int8-accuracy": render(rows)})


def render(rows: list) -> str:
    head = ("| model | float32 | int8 minmax | int8 percentile (99.99) | int8 entropy | "
            "int8 mse | PyTorch int8 (torch.ao, x86) |\n|---|---|---|---|---|---|---|")
    lines = [head]
    for name, s, torch_acc in rows:
        cells = [f"{s['float32']:.2%}"] + [f"{s[m]:.2%} ({100 * (s[m] - s['float32']):+.2f})"
                                           for m in METHODS]
        t = "" if torch_acc is None else \
            f"{torch_acc:.2%} ({100 * (torch_acc - s['float32']):+.2f})"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {t} |")
    return "\n".join(lines) + "\n\nIn brackets: points against float32.\n"


if __name__ == "__main__":
    main()
