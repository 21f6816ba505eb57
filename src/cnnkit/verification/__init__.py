"""Verification and one-shot learning with embedding (Siamese) networks: pair and P-K batch
sampling, training with the contrastive or the batch-hard triplet loss (``cnnkit.ops``), ROC
curve and AUC, the distance threshold chosen on validation pairs, N-way one-shot accuracy;
the normalised-softmax (cosine-margin) loss; within-class whitening of embeddings; synthetic
extra training classes (stroke glyphs, chimeras of half images); test-time augmentation of
embeddings."""

from .pairs import make_pairs, one_shot_accuracy, pk_batches
from .roc import auc, best_threshold, pair_accuracy, roc_auc, roc_curve
from .synthetic import chimera_classes, stroke_glyphs
from .training import cosine_softmax_loss, embed, fit_contrastive, fit_cosine_softmax, fit_triplet
from .tta import embed_tta, tta_views
from .whitening import WithinClassWhitening

__all__ = ["make_pairs", "one_shot_accuracy", "pk_batches", "auc", "best_threshold",
           "pair_accuracy", "roc_auc", "roc_curve", "embed", "fit_contrastive", "fit_triplet",
           "fit_cosine_softmax", "cosine_softmax_loss", "stroke_glyphs", "chimera_classes",
           "WithinClassWhitening", "embed_tta", "tta_views"]
