"""Language identification of single words: 3,000 words in each of English, German, French,
Spanish, Italian and Portuguese, shipped inside cnnkit (no download).

Sampled from the word lists of Debian's wamerican, wngerman, wfrench, wspanish, witalian and
wportuguese packages (licences in ``data/langid_words.LICENSE.txt``), lowercased, 3-16 letters,
words found in two lists removed; a fixed seeded split of 2,400 train / 600 test words per
language. Built by ``scripts/make_langid_words.py``.
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

LANGUAGES = ["en", "de", "fr", "es", "it", "pt"]


def load_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((words_train, y_train), (words_test, y_test)): words as a str array, labels as int64
    indices into :data:`LANGUAGES`."""
    ref = resources.files("cnnkit.datasets") / "data" / "langid_words.tsv.gz"
    split = {"train": ([], []), "test": ([], [])}
    index = {lang: i for i, lang in enumerate(LANGUAGES)}
    with resources.as_file(ref) as path, gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            part, lang, word = line.rstrip("\n").split("\t")
            split[part][0].append(word)
            split[part][1].append(index[lang])
    return tuple((np.array(w), np.array(y, dtype=np.int64))  # type: ignore[return-value]
                 for w, y in (split["train"], split["test"]))
