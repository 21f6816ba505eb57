"""PyTorch's learning-rate schedulers for a hand-written loop (``torch.optim.lr_scheduler``).

    sched = lr_scheduler.CosineAnnealingLR(optimizer, T_max=100)
    for epoch in range(100):
        train_one_epoch()          # optimizer.step() inside
        sched.step()               # after optimizer.step(), as in PyTorch

A scheduler sets ``optimizer.param_groups[0]["lr"]``, which for a cnnkit optimizer is its
``learning_rate`` (one rate for all parameters). The optimizer must be created with a constant
learning rate; Keras-style schedules (:mod:`cnnkit.train.schedules`) are the other way.
"""

from .lr_scheduler_base import LRScheduler
from .lr_scheduler_cycle import ChainedScheduler, OneCycleLR, ReduceLROnPlateau, SequentialLR
from .lr_scheduler_simple import (
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "ConstantLR", "LinearLR",
           "LambdaLR", "MultiplicativeLR", "PolynomialLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "OneCycleLR", "ReduceLROnPlateau", "SequentialLR",
           "ChainedScheduler"]
