"""A vocabulary: tokens <-> integer ids, with id 0 for padding and id 1 for unknown tokens.

Built from token lists by frequency (ties broken by first appearance), optionally keeping the
``max_size`` most frequent tokens of at least ``min_count`` occurrences. ``encode`` maps a
token list to a fixed ``length``: truncated at the end, padded with 0 at the end.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["Vocabulary", "PAD", "UNK"]

PAD, UNK = "<pad>", "<unk>"


class Vocabulary:
    """Token <-> id table; ``tokens[0]`` is :data:`PAD`, ``tokens[1]`` is :data:`UNK`."""

    pad_id, unk_id = 0, 1

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"Vocabulary expects tokens starting with {[PAD, UNK]}, got "
                             f"{tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("Vocabulary expects distinct tokens")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, documents: Iterable[Sequence[str]], max_size: int | None = None,
              min_count: int = 1) -> Vocabulary:
        """From token lists: the most frequent tokens (count >= ``min_count``), at most
        ``max_size`` ids in all (padding and unknown included)."""
        if max_size is not None and max_size < 2:
            raise ValueError(f"Vocabulary.build: max_size must be >= 2 (padding and unknown), "
                             f"got {max_size}")
        counts = Counter(t for doc in documents for t in doc)
        counts.pop(PAD, None), counts.pop(UNK, None)
        kept = [t for t, c in counts.most_common() if c >= min_count]  # stable for ties
        if max_size is not None:
            kept = kept[:max_size - 2]
        return cls([PAD, UNK, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """The id of each token, :attr:`unk_id` for tokens not in the vocabulary."""
        return [self.index.get(t, self.unk_id) for t in tokens]

    def encode(self, documents: Sequence[Sequence[str]], length: int) -> np.ndarray:
        """(N, length) int64 ids: each token list truncated to ``length`` and padded with 0."""
        if length < 1:
            raise ValueError(f"Vocabulary.encode: length must be >= 1, got {length}")
        out = np.full((len(documents), length), self.pad_id, dtype=np.int64)
        for row, doc in zip(out, documents, strict=True):
            ids = self.ids(list(doc)[:length])
            row[:len(ids)] = ids
        return out

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens for ``ids``, padding dropped."""
        out = []
        for i in ids:
            if not 0 <= int(i) < len(self.tokens):
                raise ValueError(f"Vocabulary.decode: id {i} is outside [0, {len(self.tokens)})")
            if int(i) != self.pad_id:
                out.append(self.tokens[int(i)])
        return out

    def to_json(self) -> str:
        return json.dumps({"tokens": self.tokens}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        data: Any = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list) or \
                not all(isinstance(t, str) for t in data["tokens"]):
            raise ValueError("Vocabulary.from_json expects {\"tokens\": [str, ...]}")
        return cls(data["tokens"])
