"""Training: optimizers, learning-rate schedules and schedulers, losses, metrics, callbacks."""

from . import lr_scheduler

__all__ = ["lr_scheduler"]
