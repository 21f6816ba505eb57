"""Training: optimizers, learning-rate schedules, losses, metrics, callbacks, regularizers."""
