"""Your own data: image folders, single images, .npz and CSV files, splitting, mini-batch
iteration with background prefetching, and vectorised augmentation of NumPy image batches
(N, H, W, C)."""

from . import augment, color, geometry, transforms
from .augment import (
    Augmentation,
    CenterCrop,
    Compose,
    Normalize,
    Pipeline,
    RandomCrop,
    RandomFlip,
    RandomResizedCrop,
    Rescaling,
    Resize,
    deserialize,
    serialize,
)
from .color import hsv_to_rgb, normalize, rgb_to_hsv
from .elastic import RandomElastic
from .erasing import Cutout, RandomErasing
from .files import decode_image, image_dataset_from_directory, load_csv, load_image, load_npz
from .geometry import affine, affine_transform, crop_and_resize, resize, rotate, translate, zoom
from .iterator import BatchIterator
from .jitter import ColorJitter
from .loader import DataLoader, Subset, TensorDataset
from .mix import CutMix, Mixup, one_hot
from .randaugment import RandAugment
from .split import train_val_split
from .tta import tta_predict
from .warps import RandomAffine, RandomRotation, RandomTranslation, RandomZoom

__all__ = [
    # files and splitting
    "image_dataset_from_directory", "load_image", "decode_image", "load_npz", "load_csv",
    "train_val_split",
    # iteration
    "BatchIterator", "DataLoader", "TensorDataset", "Subset", "transforms",
    # augmentation objects
    "Augmentation", "Compose", "Pipeline", "serialize", "deserialize", "Normalize", "Rescaling",
    "RandomFlip", "RandomCrop", "CenterCrop", "Resize", "RandomResizedCrop", "RandomRotation",
    "RandomTranslation", "RandomZoom", "RandomAffine", "ColorJitter", "Cutout", "RandomErasing",
    "RandomElastic", "Mixup", "CutMix", "RandAugment", "tta_predict",
    # functional transforms
    "normalize", "rgb_to_hsv", "hsv_to_rgb", "one_hot", "affine_transform", "affine", "rotate",
    "translate", "zoom", "resize", "crop_and_resize",
    # modules
    "augment", "color", "geometry",
]
