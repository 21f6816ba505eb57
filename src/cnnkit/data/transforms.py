"""torchvision's per-image transforms, spelled as in ``torchvision.transforms``, for ported code.

Each takes one image and returns one: a PIL image or an (H, W[, C]) array before
``ToTensor`` (pixels 0-255), a float32 :class:`~cnnkit.Tensor` after it (pixels in [0, 1]).
The one rule that differs from torchvision: images stay channels-last, so ``ToTensor`` gives
(H, W, C), not (C, H, W), and ``DataLoader`` stacks them into the (N, H, W, C) batches cnnkit's
layers take. The work is done by the batch augmentations of :mod:`cnnkit.data.augment`; random
draws come from cnnkit's global generator (``cnnkit.random.seed``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import random as crandom
from ..autograd import Tensor
from . import augment, jitter, warps

__all__ = ["Compose", "ToTensor", "Normalize", "Resize", "CenterCrop", "RandomCrop",
           "RandomResizedCrop", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation",
           "RandomAffine", "ColorJitter", "Lambda"]


def _as_array(img: Any) -> np.ndarray:
    """(H, W, C) pixels of a PIL image, an array or a Tensor."""
    a = img.data if isinstance(img, Tensor) else np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"expected one image (H, W) or (H, W, C), got shape {a.shape}")
    return a


def _hw(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    if len(size) == 1:
        return int(size[0]), int(size[0])
    if len(size) != 2:
        raise ValueError(f"{name}: size must be an int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


class _OnBatch:
    """Runs a batch augmentation on one image; keeps the image's kind (array or Tensor)."""

    def __init__(self, aug: augment.Augmentation):
        self.aug = aug

    def __call__(self, img: Any) -> Any:
        x = _as_array(img)
        out, _ = self.aug(x[None].astype(np.float32), rng=crandom.get_rng())
        out = out[0]
        if isinstance(img, Tensor):
            return Tensor(out.astype(np.float32))
        if x.dtype == np.uint8:  # pixels stay 0-255 integers until ToTensor, as PIL keeps them
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.aug!r})"


class Compose:
    """Apply the transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose expects callables img -> img, got {type(t).__name__}")

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img


class ToTensor:
    """Pixels 0-255 (uint8) -> float32 Tensor (H, W, C) in [0, 1]; float arrays are kept."""

    def __call__(self, img: Any) -> Tensor:
        a = _as_array(img)
        if a.dtype == np.uint8:
            return Tensor(a.astype(np.float32) / np.float32(255))
        return Tensor(a.astype(np.float32))


class Normalize:
    """``(x - mean) / std`` per channel (the last axis) of a Tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be > 0, got {list(std)}")

    def __call__(self, img: Any) -> Tensor:
        if not isinstance(img, Tensor):
            raise TypeError(f"Normalize expects a Tensor (put ToTensor() before it), got "
                            f"{type(img).__name__}")
        c = img.shape[-1]
        if self.mean.size not in (1, c) or self.std.size not in (1, c):
            raise ValueError(f"Normalize: mean/std have {self.mean.size}/{self.std.size} "
                             f"values but the image has {c} channels")
        return Tensor((img.data - self.mean) / self.std)


class Resize(_OnBatch):
    """``size`` (h, w), or an int: the shorter side becomes ``size`` and the longer
    ``int(size * long / short)``, as torchvision."""

    def __init__(self, size: int | Sequence[int], interpolation: str = "bilinear"):
        self.size = size
        self.interpolation = interpolation
        _hw(size, "Resize")

    def __call__(self, img: Any) -> Any:
        h, w = _as_array(img).shape[:2]
        if isinstance(self.size, (int, np.integer)):
            s = int(self.size)
            th, tw = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        else:
            th, tw = _hw(self.size, "Resize")
        self.aug = augment.Resize(th, tw, self.interpolation)
        return super().__call__(img)


class CenterCrop(_OnBatch):
    def __init__(self, size: int | Sequence[int]):
        super().__init__(augment.CenterCrop(*_hw(size, "CenterCrop")))


class RandomCrop(_OnBatch):
    def __init__(self, size: int | Sequence[int], padding: int | None = None,
                 padding_mode: str = "constant", fill: float = 0.0):
        super().__init__(augment.RandomCrop(*_hw(size, "RandomCrop"), padding or 0,
                                            padding_mode, fill))


class RandomResizedCrop(_OnBatch):
    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        super().__init__(augment.RandomResizedCrop(*_hw(size, "RandomResizedCrop"), scale,
                                                   ratio))


class RandomHorizontalFlip(_OnBatch):
    def __init__(self, p: float = 0.5):
        super().__init__(augment.RandomFlip("horizontal", p))


class RandomVerticalFlip(_OnBatch):
    def __init__(self, p: float = 0.5):
        super().__init__(augment.RandomFlip("vertical", p))


class RandomRotation(_OnBatch):
    def __init__(self, degrees: Any, fill: float = 0.0):
        super().__init__(warps.RandomRotation(degrees=degrees, fill_value=fill))


class RandomAffine(_OnBatch):
    def __init__(self, degrees: Any, translate: tuple[float, float] | None = None,
                 scale: tuple[float, float] | None = None, shear: Any = None,
                 fill: float = 0.0):
        super().__init__(warps.RandomAffine(degrees, translate, scale, shear,
                                            fill_value=fill))


class ColorJitter(_OnBatch):
    """Brightness, contrast, saturation and hue jitter; pixels 0-255 before ToTensor, [0, 1]
    after."""

    def __init__(self, brightness: Any = 0.0, contrast: Any = 0.0, saturation: Any = 0.0,
                 hue: Any = 0.0):
        self.args = (brightness, contrast, saturation, hue)
        super().__init__(jitter.ColorJitter(*self.args))

    def __call__(self, img: Any) -> Any:
        top = 1 if isinstance(img, Tensor) else 255
        self.aug = jitter.ColorJitter(*self.args, value_range=(0, top))
        return super().__call__(img)


class Lambda:
    """A function of the image, as a transform."""

    def __init__(self, fn: Callable[[Any], Any]):
        if not callable(fn):
            raise TypeError(f"Lambda expects a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, img: Any) -> Any:
        return self.fn(img)
