"""Semantic segmentation: Dice and IoU metrics (micro / macro, the empty-mask rule stated in
``metrics``), Dice, focal and combined losses, digit-on-photo scenes with a seeded split,
augmentation that moves images and masks together, and mask overlays. The zoo's ``unet``
(``cnnkit.zoo.get("unet")``) is the network these were built for."""

from . import components, data, losses, metrics, predict, pretrain, stream
from .components import component_vote, connected_components
from .data import CLASS_NAMES, NUM_CLASSES, augment_pair, load_backgrounds, make_scenes
from .losses import CombinedLoss, DiceLoss, FocalLoss
from .metrics import confusion_counts, dice_score, iou_score
from .predict import (
    ONE_PIXEL_SHIFTS,
    masks_from_probabilities,
    overlay,
    pair_transform,
    palette,
    predict_masks,
    predict_probabilities,
)
from .pretrain import copy_encoder, digit_crops, encoder_classifier, pretrain_encoder
from .stream import SceneEpochs

__all__ = ["components", "data", "losses", "metrics", "predict", "pretrain", "stream",
           "SceneEpochs", "CLASS_NAMES",
           "NUM_CLASSES", "ONE_PIXEL_SHIFTS", "augment_pair", "load_backgrounds", "make_scenes",
           "CombinedLoss",
           "DiceLoss", "FocalLoss", "component_vote", "confusion_counts",
           "connected_components", "dice_score", "iou_score", "overlay", "pair_transform",
           "palette", "predict_masks", "predict_probabilities", "masks_from_probabilities",
           "copy_encoder", "digit_crops", "encoder_classifier",
           "pretrain_encoder"]
