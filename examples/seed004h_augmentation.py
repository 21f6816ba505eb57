"""Seed 004 (torchvision): the training and validation augmentation pipelines.

Changed from the seed: the import only. ``cnnkit.data.transforms`` spells torchvision's
per-image transforms; images stay channels-last, so ``ToTensor`` gives (H, W, C) Tensors.
"""

import numpy as np
from _small import SMALL

from cnnkit.data import transforms

# Comprehensive data augmentation pipeline
train_transform = transforms.Compose([
    transforms.RandomResizedCrop(224),
    transforms.RandomHorizontalFlip(),
    transforms.RandomRotation(15),
    transforms.ColorJitter(brightness=0.2, contrast=0.2,
                           saturation=0.2, hue=0.1),
    transforms.RandomAffine(degrees=0, translate=(0.1, 0.1)),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406],
                         std=[0.229, 0.224, 0.225])
])
# Validation transform (no augmentation)
val_transform = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406],
                         std=[0.229, 0.224, 0.225])
])

size = (240, 300) if SMALL else (480, 640)
image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
x_train, x_val = train_transform(image), val_transform(image)
print("train image:", x_train.shape, "validation image:", x_val.shape)
