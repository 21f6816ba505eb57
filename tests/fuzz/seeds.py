"""Seed files: real, valid files of every format, made fresh in each run (and the real files
in ../shared when that folder is present). Mutations start from these."""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("CNNKIT_SHARED_DIR",
                             Path(__file__).resolve().parents[3] / "shared"))


@dataclass(frozen=True)
class Seed:
    """A named valid file."""

    name: str
    data: bytes
    suffix: str


def make_model(seed: int = 0):
    """The small model whose files seed .cnnkit mutations (and receives ``load_weights``)."""
    from cnnkit import layers, models
    from cnnkit import random as cnnkit_random

    cnnkit_random.seed(seed)
    model = models.Sequential([
        layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
        layers.BatchNormalization(), layers.MaxPooling2D(), layers.Flatten(),
        layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", seed=seed)
    return model


def _saved(write, suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"seed{suffix}"
        write(path)
        return path.read_bytes()


def cnnkit_seeds(seed: int) -> tuple[list[Seed], list[Seed]]:
    """(model files, weight files): a trained-for-one-step model saved both ways."""
    model = make_model(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((4, 8, 8, 1), dtype=np.float32)
    model.fit(x, np.arange(4) % 3, batch_size=4, epochs=1, verbose=0)
    full = Seed("model.cnnkit", _saved(model.save, ".cnnkit"), ".cnnkit")
    weights = Seed("weights.cnnkit", _saved(model.save_weights, ".cnnkit"), ".cnnkit")
    from cnnkit.models.saving import save_model

    for w in model.weights:  # mostly zeros: the kernels are stored as bit mask + values
        w.data[np.abs(w.data) < np.quantile(np.abs(w.data), 0.8)] = 0
    sparse = Seed("sparse.cnnkit", _saved(lambda p: save_model(model, p, sparse=True),
                                          ".cnnkit"), ".cnnkit")
    return [full, sparse], [weights, full, sparse]


def int8_seeds(seed: int) -> list[Seed]:
    """An int8 model file (cnnkit.deploy.quantize of the seed model)."""
    from cnnkit.deploy import quantize

    model = make_model(seed)
    x = np.random.default_rng(seed).random((8, 8, 8, 1), dtype=np.float32)
    q = quantize(model, x, method="minmax")
    return [Seed("int8.cnnkit", _saved(q.save, ".cnnkit"), ".cnnkit")]


def torch_seeds(seed: int) -> list[Seed]:
    """State dicts written by torch (when installed) and the real .pth files in shared/."""
    out = []
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                  torch.nn.Flatten(), torch.nn.Linear(8, 3))
        mixed = {"half": torch.ones(3, dtype=torch.float16),
                 "bf16": torch.arange(4, dtype=torch.bfloat16),
                 "long": torch.arange(5), "flag": torch.tensor([True, False]),
                 "view": torch.arange(12.0).reshape(3, 4).t()}
        for name, obj in (("net.pt", net.state_dict()), ("wrapped.pt", {
                "state_dict": net.state_dict(), "epoch": 3}), ("mixed.pt", mixed)):
            buf = io.BytesIO()
            torch.save(obj, buf)
            out.append(Seed(name, buf.getvalue(), ".pt"))
    out += [Seed(p.name, p.read_bytes(), ".pth")
            for p in sorted((SHARED / "weights").glob("*.pth"))]
    return out


def safetensors_seeds() -> list[Seed]:
    """A file with several dtypes, written by cnnkit's writer."""
    from cnnkit.io import save_safetensors

    tensors = {"w": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
               "b": np.arange(3, dtype=np.int64), "h": np.ones(5, np.float16),
               "m": np.array([True, False])}
    return [Seed("small.safetensors", _saved(
        lambda p: save_safetensors(tensors, p, {"kind": "fuzz"}), ".safetensors"),
        ".safetensors")]


def idx_seeds() -> tuple[list[Seed], list[Seed]]:
    """(raw, gzip) IDX files: small made ones, and the real Fashion-MNIST t10k files."""
    from cnnkit.datasets.idx import idx_bytes

    arrays = {"images": np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4),
              "labels": np.arange(7, dtype=np.uint8), "floats": np.ones((2, 3), np.float32),
              "shorts": np.arange(6, dtype=np.int16), "doubles": np.zeros(2)}
    raw = [Seed(f"{k}.idx", idx_bytes(a), ".idx") for k, a in arrays.items()]
    gz = [Seed(f"{s.name}.gz", gzip.compress(s.data, mtime=0), ".gz") for s in raw]
    fashion = SHARED / "datasets" / "fashion-mnist"
    gz += [Seed(p.name, p.read_bytes(), ".gz") for p in sorted(fashion.glob("t10k-*.gz"))]
    return raw, gz


def image_seeds(seed: int) -> list[Seed]:
    """Small PNG, JPEG, GIF and BMP files made with Pillow, and the images in shared/."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    out = []
    for fmt, suffix, mode in (("PNG", ".png", "RGB"), ("PNG", ".png", "L"),
                              ("JPEG", ".jpg", "RGB"), ("GIF", ".gif", "P"),
                              ("BMP", ".bmp", "RGB")):
        buf = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buf, format=fmt)
        out.append(Seed(f"small_{mode}{suffix}", buf.getvalue(), suffix))
    images = SHARED / "images"
    out += [Seed(p.name, p.read_bytes(), p.suffix) for p in sorted(images.glob("*"))
            if p.suffix in (".png", ".jpg")]
    return out


def keras_seeds(seed: int) -> dict[str, list[Seed]]:
    """The seed model saved by cnnkit in Keras's formats (.keras, legacy .h5, .weights.h5);
    none without h5py."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        return {}
    model = make_model(seed)
    return {"keras": [Seed("model.keras", _saved(model.save, ".keras"), ".keras")],
            "keras_h5": [Seed("model.h5", _saved(model.save, ".h5"), ".h5")],
            "keras_weights": [Seed("model.weights.h5", _saved(model.save_weights,
                                                              ".weights.h5"), ".h5")]}


def all_seeds(seed: int) -> dict[str, list[Seed]]:
    """Seed files by group (the groups named in ``cases.READERS``)."""
    models_, weights = cnnkit_seeds(seed)
    raw, gz = idx_seeds()
    from .onnxfmt import onnx_seeds

    return {"torch": torch_seeds(seed), "safetensors": safetensors_seeds(),
            "cnnkit_model": models_, "cnnkit_weights": weights, "idx": raw, "idx_gz": gz,
            "cnnkit_int8": int8_seeds(seed),
            "image": image_seeds(seed), "onnx": onnx_seeds(), **keras_seeds(seed)}
