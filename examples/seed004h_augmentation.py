"""Seed 004 (torchvision): the training and validation augmentation pipelines.

Changed from the seed: the import and every transform's spelling. cnnkit's augmentations take a
whole NHWC batch (``aug(x)`` returns ``(x, y)``), so ``ToTensor`` becomes ``Rescaling(1/255)``
on uint8 pixels; sizes are (height, width); ``RandomHorizontalFlip()`` is
``RandomFlip("horizontal")``; ColorJitter's ``value_range`` says the pixels are in [0, 1].
"""

import numpy as np
from _small import SMALL

from cnnkit.data import augment as transforms

size, resize = (64, 72) if SMALL else (224, 256)

# Comprehensive data augmentation pipeline
train_transform = transforms.Compose([
    transforms.RandomResizedCrop(size, size),
    transforms.RandomFlip("horizontal"),
    transforms.RandomRotation(degrees=15),
    transforms.Rescaling(1 / 255),
    transforms.ColorJitter(brightness=0.2, contrast=0.2,
                           saturation=0.2, hue=0.1, value_range=(0, 1)),
    transforms.RandomAffine(degrees=0, translate=(0.1, 0.1)),
    transforms.Normalize(mean=[0.485, 0.456, 0.406],
                         std=[0.229, 0.224, 0.225])
])

# Validation transform (no augmentation)
val_transform = transforms.Compose([
    transforms.Resize(resize, resize),
    transforms.CenterCrop(size, size),
    transforms.Rescaling(1 / 255),
    transforms.Normalize(mean=[0.485, 0.456, 0.406],
                         std=[0.229, 0.224, 0.225])
])

images = np.random.default_rng(0).integers(0, 256, (4, 100, 120, 3)).astype(np.float32)
x_train, _ = train_transform(images, rng=0)
x_val, _ = val_transform(images)
print("train batch:", x_train.shape, "validation batch:", x_val.shape)
