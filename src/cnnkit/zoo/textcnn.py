"""TextCNN (Kim 2014, "Convolutional Neural Networks for Sentence Classification").

Token ids (batch, length) -> Embedding (vocab, embedding_dim) -> parallel Conv1D with
``filters`` feature maps for each width in ``kernel_sizes`` (3, 4, 5 in the paper), ReLU ->
max-over-time pooling of each -> concatenation -> dropout (0.5) -> dense to the classes.
Parameters: vocab*dim + sum_k (k*dim + 1)*filters + (len(kernel_sizes)*filters + 1)*classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import layers
from ..models import Model
from .registry import register

__all__ = ["textcnn"]


@register("textcnn")
def textcnn(vocab_size: int = 20000, sequence_length: int | None = 100,
            embedding_dim: int = 300, filters: int = 100,
            kernel_sizes: Sequence[int] = (3, 4, 5), dropout: float = 0.5, classes: int = 2,
            classifier_activation: Any = None, embedding_weights: Any = None,
            trainable_embedding: bool = True, name: str = "textcnn") -> Model:
    """Kim's CNN for sentence classification. "CNN-rand" by default (embeddings learned from
    scratch); ``embedding_weights`` (vocab_size, embedding_dim) pre-sets the vectors, kept
    fixed with ``trainable_embedding=False`` ("CNN-static") or tuned ("CNN-non-static").
    Inputs are integer token ids of shape (batch, sequence_length)."""
    if sequence_length is not None and sequence_length < max(kernel_sizes):
        raise ValueError(f"textcnn: sequence_length {sequence_length} is shorter than the "
                         f"widest filter {max(kernel_sizes)}")
    inputs = layers.Input((sequence_length,), dtype="int64", name="tokens")
    x = layers.Embedding(vocab_size, embedding_dim, weights=embedding_weights,
                         trainable=trainable_embedding, name="embedding")(inputs)
    branches = []
    for k in kernel_sizes:
        b = layers.Conv1D(filters, k, activation="relu", name=f"conv{k}")(x)
        branches.append(layers.GlobalMaxPooling1D(name=f"maxpool{k}")(b))
    x = branches[0] if len(branches) == 1 else layers.Concatenate(name="concat")(branches)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(classes, activation=classifier_activation, name="fc")(x)
    return Model(inputs, x, name=name)
