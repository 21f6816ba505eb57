"""Text for CNNs: character and word tokenisers and a vocabulary with padding (id 0) and
unknown (id 1) tokens. The model is ``cnnkit.zoo.textcnn`` (Kim 2014); ``layers.Embedding``
takes pre-set vectors through ``weights=``."""

from .tokenize import char_tokens, word_tokens
from .vocabulary import PAD, UNK, Vocabulary

__all__ = ["char_tokens", "word_tokens", "Vocabulary", "PAD", "UNK"]
