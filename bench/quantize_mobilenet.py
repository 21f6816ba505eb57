"""MobileNet v2 int8 on a small real task (``python -m bench.quantize_mobilenet``): the zoo's
``mobilenet_v2`` (width 1.0, input 32x32x1: Fashion-MNIST padded from 28x28, pixels / 255,
10 classes) trained briefly from scratch on the first ``--train`` training images, then
quantized per channel and per tensor (post-training, percentile calibration on 512 training
images), then fine-tuned with quantization-aware training (``prepare_qat``, Adam, lr 1e-4,
``--qat-epochs`` on the same images) and converted. Accuracy on the first ``--test`` of the
official test images. Every setting is printed; the numbers go to bench/RESULTS.md."""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import common as C

SECTION = "## MobileNet v2 int8 and QAT (python -m bench.quantize_mobilenet)"
TEMPLATE = f"""{SECTION}

{C.block_markers("mobilenet-int8")}
"""


def _data(n_train: int, n_test: int) -> tuple:
    from cnnkit import datasets

    (xt, yt), (xv, yv) = datasets.fashion_mnist.load_data(
        data_dir=str(C.REPO.parent / "shared" / "datasets" / "fashion-mnist"))

    def prep(x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), 32, 32, 1), np.float32)
        out[:, 2:30, 2:30, 0] = x / 255.0
        return out

    return prep(xt[:n_train]), yt[:n_train].astype(np.int64), prep(xv[:n_test]), \
        yv[:n_test].astype(np.int64)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    from cnnkit import losses, optimizers, random, zoo
    from cnnkit.deploy import prepare_qat, quantize

    random.seed(0)
    xt, yt, xv, yv = _data(args.train, args.test)
    model = zoo.get("mobilenet_v2", input_shape=(32, 32, 1), classes=10)
    model.compile(optimizer=optimizers.Adam(2e-3),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    t0 = time.perf_counter()
    model.fit(xt, yt, epochs=args.epochs, batch_size=64, verbose=2)
    t_train = time.perf_counter() - t0

    def acc(m: object) -> float:
        return float(np.mean(m.predict(xv).argmax(-1) == yv))  # type: ignore[attr-defined]

    res = {"float32": acc(model)}
    calib = xt[:512]
    res["PTQ per channel"] = acc(quantize(model, calib))
    res["PTQ per tensor"] = acc(quantize(model, calib, per_channel=False))
    print(res, flush=True)
    qat = prepare_qat(model, calib)
    model.compile(optimizer=optimizers.Adam(1e-4),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    t0 = time.perf_counter()
    model.fit(xt, yt, epochs=args.qat_epochs, batch_size=64, verbose=2)
    t_qat = time.perf_counter() - t0
    res["QAT per channel"] = acc(qat.convert())
    res["float32 after QAT fine-tuning"] = acc(model)
    print(res, flush=True)
    line = (f"mobilenet_v2 (width 1.0, 32x32x1, 10 classes) trained {args.epochs} epochs on "
            f"{args.train} Fashion-MNIST images ({t_train:.0f} s), QAT {args.qat_epochs} "
            f"epoch(s) ({t_qat:.0f} s); test accuracy on {args.test} test images:\n\n"
            "| model | accuracy | points against float32 |\n|---|---|---|\n")
    line += "\n".join(f"| {k} | {v:.2%} | {100 * (v - res['float32']):+.2f} |"
                      for k, v in res.items())
    print(line)
    if not args.no_write:
        C.update_results(SECTION, TEMPLATE, {"mobilenet-int8": line})


if __name__ == "__main__":
    main()
