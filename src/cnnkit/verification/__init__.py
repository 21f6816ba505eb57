"""Verification and one-shot learning with embedding (Siamese) networks: pair and P-K batch
sampling, training with the contrastive or the batch-hard triplet loss (``cnnkit.ops``), ROC
curve and AUC, the distance threshold chosen on validation pairs, N-way one-shot accuracy."""

from .pairs import make_pairs, one_shot_accuracy, pk_batches
from .roc import auc, best_threshold, pair_accuracy, roc_auc, roc_curve
from .training import embed, fit_contrastive, fit_triplet

__all__ = ["make_pairs", "one_shot_accuracy", "pk_batches", "auc", "best_threshold",
           "pair_accuracy", "roc_auc", "roc_curve", "embed", "fit_contrastive", "fit_triplet"]
