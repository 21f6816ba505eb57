"""Composable preprocessing and augmentation of NumPy image batches (N, H, W, C).

Every augmentation is a callable object ``aug(x, y=None, rng=None) -> (x, y)`` with
``get_config()``: ``x`` is a batch (uint8 or float), ``y`` the labels (passed through, or mixed
by Mixup/CutMix), ``rng`` a ``numpy.random.Generator`` (or an int seed; ``None`` draws from
``cnnkit.random``). Random parameters are drawn per sample, and the work is vectorised over
the batch. Flips and crops keep the dtype; anything that interpolates or changes intensities
returns float32 (float64 stays float64). Because the signature matches ``BatchIterator``'s
``transform(xb, yb, rng)``, an augmentation or a ``Compose`` of them plugs in directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import random as crandom
from . import color, geometry
from .geometry import INTERPOLATIONS, as_float, check_choice, check_images

__all__ = [
    "Augmentation", "Compose", "Pipeline", "serialize", "deserialize", "Normalize", "Rescaling",
    "RandomFlip", "RandomCrop", "CenterCrop", "Resize", "RandomResizedCrop",
]

# Moved to their own modules; still importable from here (module ``__getattr__`` below).
_MOVED = {"RandomRotation": "warps", "RandomTranslation": "warps", "RandomZoom": "warps",
          "RandomAffine": "warps", "ColorJitter": "jitter", "Cutout": "erasing",
          "box_masks": "erasing"}

Batch = tuple[np.ndarray, Any]


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator: ``rng`` itself, ``default_rng(rng)`` for an int, else cnnkit's default."""
    if rng is None:
        return crandom.get_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got "
                    f"{type(rng).__name__}")


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(e) for e in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def symmetric_range(value: Any, name: str, where: str) -> tuple[float, float]:
    """``f`` -> (-f, f) (f >= 0); ``(lo, hi)`` -> itself (lo <= hi)."""
    if np.ndim(value) == 0:
        f = float(value)
        if f < 0:
            raise ValueError(f"{where}: {name} must be >= 0 (or a (low, high) pair), got {f}")
        return (-f, f)
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{where}: {name} must be (low, high) with low <= high, got "
                         f"{tuple(value)}")
    return (lo, hi)


def draw_uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    """n draws from U(lo, hi); n copies of lo when lo == hi (no draw)."""
    lo, hi = bounds
    return np.full(n, lo) if lo == hi else rng.uniform(lo, hi, n)


class Augmentation:
    """Base class: subclasses implement ``apply(x, y, rng)`` and ``get_config()``."""

    _registry: dict[str, type[Augmentation]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            Augmentation._registry[cls.__name__] = cls

    def __call__(self, x: Any, y: Any = None,
                 rng: np.random.Generator | int | None = None) -> Batch:
        x = check_images(x, type(self).__name__)
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(x):
                raise ValueError(f"{type(self).__name__}: x has {len(x)} samples but y has "
                                 f"{len(y)}")
        return self.apply(x, y, as_rng(rng))

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Augmentation:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def serialize(aug: Augmentation) -> dict[str, Any]:
    """{"class_name": ..., "config": ...} (JSON-ready)."""
    if not isinstance(aug, Augmentation):
        raise TypeError(f"can only serialize Augmentation objects, got {type(aug).__name__}")
    return {"class_name": type(aug).__name__,
            "config": {k: _jsonable(v) for k, v in aug.get_config().items()}}


def deserialize(config: dict[str, Any]) -> Augmentation:
    """The inverse of ``serialize``."""
    name = config.get("class_name")
    cls = Augmentation._registry.get(name)
    if cls is None:
        raise ValueError(f"unknown augmentation class_name {name!r}; known: "
                         f"{', '.join(sorted(Augmentation._registry))}")
    return cls.from_config(dict(config.get("config", {})))


class Compose(Augmentation):
    """Apply augmentations in order, threading (x, y) and one rng through them."""

    def __init__(self, augmentations: Sequence[Callable[..., Batch]]):
        self.augmentations = list(augmentations)
        for a in self.augmentations:
            if not callable(a):
                raise TypeError(f"Compose expects callables aug(x, y, rng) -> (x, y), got "
                                f"{type(a).__name__}")

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        for a in self.augmentations:
            x, y = a(x, y, rng)
        return x, y

    def get_config(self) -> dict[str, Any]:
        return {"augmentations": [serialize(a) for a in self.augmentations]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Compose:
        return cls([deserialize(c) for c in config["augmentations"]])

    def __len__(self) -> int:
        return len(self.augmentations)


Pipeline = Compose


# ----- preprocessing -------------------------------------------------------------------------
class Normalize(Augmentation):
    """(x - mean) / std per channel. ``adapt(x)`` sets mean and the population std over
    (N, H, W) for each channel (std floored at ``epsilon``)."""

    def __init__(self, mean: Any = None, std: Any = None, epsilon: float = 1e-7):
        if (mean is None) != (std is None):
            raise ValueError("Normalize: give both mean and std, or neither and call adapt(x)")
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)
        self.epsilon = float(epsilon)
        if self.std is not None and np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {self.std.tolist()}")

    def adapt(self, x: Any) -> Normalize:
        x = check_images(x, "Normalize.adapt")
        xd = x.astype(np.float64)
        self.mean = xd.mean(axis=(0, 1, 2))
        self.std = np.maximum(xd.std(axis=(0, 1, 2)), self.epsilon)
        return self

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        if self.mean is None:
            raise ValueError("Normalize has no mean/std: pass them or call adapt(x) first")
        if self.mean.ndim == 1 and self.mean.shape[0] not in (1, x.shape[-1]):
            raise ValueError(f"Normalize was set for {self.mean.shape[0]} channels, got images "
                             f"with {x.shape[-1]} (shape {x.shape})")
        return color.normalize(x, self.mean, self.std), y

    def get_config(self) -> dict[str, Any]:
        return {"mean": None if self.mean is None else self.mean.tolist(),
                "std": None if self.std is None else self.std.tolist(), "epsilon": self.epsilon}


class Rescaling(Augmentation):
    """x * scale + offset (e.g. scale=1/255 maps uint8 to [0, 1])."""

    def __init__(self, scale: float = 1 / 255, offset: float = 0.0):
        self.scale, self.offset = float(scale), float(offset)

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        xf = as_float(x)
        return xf * xf.dtype.type(self.scale) + xf.dtype.type(self.offset), y

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "offset": self.offset}


# ----- flips and crops (dtype kept) ----------------------------------------------------------
class RandomFlip(Augmentation):
    """Mirror each image with probability ``p`` horizontally and/or vertically; with
    ``horizontal_and_vertical`` the two axes are flipped independently."""

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode: str = "horizontal", p: float = 0.5):
        self.mode = check_choice("RandomFlip", "mode", mode, self.MODES)
        if not 0 <= p <= 1:
            raise ValueError(f"RandomFlip: p must be in [0, 1], got {p}")
        self.p = float(p)

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        n = x.shape[0]
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            m = rng.random(n) < self.p
            x = np.where(m[:, None, None, None], x[:, :, ::-1], x)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            m = rng.random(n) < self.p
            x = np.where(m[:, None, None, None], x[:, ::-1], x)
        return x, y

    def get_config(self) -> dict[str, Any]:
        return {"mode": self.mode, "p": self.p}


class RandomCrop(Augmentation):
    """Pad by ``padding`` (constant ``fill_value`` or reflect) and cut a random
    (height, width) window from each image (offsets uniform over all valid positions)."""

    def __init__(self, height: int, width: int, padding: int | tuple[int, int] = 0,
                 pad_mode: str = "constant", fill_value: float = 0.0):
        self.height, self.width = int(height), int(width)
        if self.height < 1 or self.width < 1:
            raise ValueError(f"RandomCrop: height and width must be positive, got "
                             f"{(height, width)}")
        self.padding = padding if np.ndim(padding) == 0 else tuple(padding)
        self.pad_mode = check_choice("RandomCrop", "pad_mode", pad_mode, ("constant", "reflect"))
        self.fill_value = fill_value

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        if self.padding != 0:
            x = geometry.pad(x, self.padding, self.pad_mode, self.fill_value)
        n, h, w, _ = x.shape
        if self.height > h or self.width > w:
            raise ValueError(f"RandomCrop: window ({self.height}, {self.width}) is larger than "
                             f"the padded image {(h, w)}")
        top = rng.integers(0, h - self.height + 1, n)
        left = rng.integers(0, w - self.width + 1, n)
        return geometry.crop(x, top, left, self.height, self.width), y

    def get_config(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "padding": self.padding,
                "pad_mode": self.pad_mode, "fill_value": self.fill_value}


class CenterCrop(Augmentation):
    """The central (height, width) window (deterministic)."""

    def __init__(self, height: int, width: int):
        self.height, self.width = int(height), int(width)

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        return geometry.center_crop(x, self.height, self.width), y

    def get_config(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width}


class Resize(Augmentation):
    """Resize to (height, width), half-pixel centres (deterministic)."""

    def __init__(self, height: int, width: int, interpolation: str = "bilinear"):
        self.height, self.width = int(height), int(width)
        self.interpolation = check_choice("Resize", "interpolation", interpolation,
                                          INTERPOLATIONS)

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        return geometry.resize(x, self.height, self.width, self.interpolation), y

    def get_config(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "interpolation": self.interpolation}


class RandomResizedCrop(Augmentation):
    """Crop a random box of area fraction in ``scale`` and aspect ratio (w/h, log-uniform) in
    ``ratio`` and resize it to (height, width), as in Inception / torchvision: ten attempts per
    sample drawn at once, the first that fits is used, else a centre crop with the ratio
    clamped. Crop-and-resize of the whole batch is one gather at per-sample affine
    coordinates clamped to each box (bilinear, as crop then resize)."""

    def __init__(self, height: int, width: int, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = "bilinear"):
        self.height, self.width = int(height), int(width)
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"RandomResizedCrop: scale must be (low, high) with 0 < low <= "
                             f"high, got {scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"RandomResizedCrop: ratio must be (low, high) with 0 < low <= "
                             f"high, got {ratio}")
        self.interpolation = check_choice("RandomResizedCrop", "interpolation", interpolation,
                                          INTERPOLATIONS)

    def sample_boxes(self, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """(N, 4) integer boxes (top, left, height, width)."""
        tries = 10
        area = h * w * rng.uniform(self.scale[0], self.scale[1], (n, tries))
        ar = np.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), (n, tries)))
        cw = np.rint(np.sqrt(area * ar))
        ch = np.rint(np.sqrt(area / ar))
        ok = (cw >= 1) & (cw <= w) & (ch >= 1) & (ch <= h)
        first = ok.argmax(axis=1)
        rows = np.arange(n)
        cw, ch, found = cw[rows, first], ch[rows, first], ok.any(axis=1)
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            fw, fh = w, round(w / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            fw, fh = round(h * self.ratio[1]), h
        else:
            fw, fh = w, h
        cw, ch = np.where(found, cw, fw), np.where(found, ch, fh)
        top = np.where(found, np.floor(rng.random(n) * (h - ch + 1)), (h - ch) // 2)
        left = np.where(found, np.floor(rng.random(n) * (w - cw + 1)), (w - cw) // 2)
        return np.stack([top, left, ch, cw], axis=1)

    def apply(self, x: np.ndarray, y: Any, rng: np.random.Generator) -> Batch:
        n, h, w, _ = x.shape
        boxes = self.sample_boxes(n, h, w, rng)
        return geometry.crop_and_resize(x, boxes, (self.height, self.width),
                                        self.interpolation), y

    def get_config(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "scale": self.scale,
                "ratio": self.ratio, "interpolation": self.interpolation}


def __getattr__(name: str) -> Any:
    """The augmentations that moved to ``warps``, ``jitter`` and ``erasing``."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f".{_MOVED[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
