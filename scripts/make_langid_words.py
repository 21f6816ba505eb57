"""Build src/cnnkit/datasets/data/langid_words.tsv.gz (and its licence file) from the word lists
that Debian's wamerican, wngerman, wfrench, wspanish, witalian and wportuguese packages install
in /usr/share/dict/ (``apt-get install -y wamerican wngerman wfrench wspanish witalian
wportuguese``).

Each list is lowercased (Unicode NFC) and reduced to words of 3-16 letters (no apostrophes,
hyphens or digits); a word found in more than one list is dropped from all of them, so every
word has one language. A seeded sample of WORDS_PER_LANGUAGE words per language is split 80/20
into train and test. Lines: ``split<TAB>language<TAB>word``, gzip with a fixed timestamp so
the file is reproducible byte for byte.
"""

from __future__ import annotations

import gzip
import io
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "src" / "cnnkit" / "datasets" / "data" / "langid_words.tsv.gz"
LICENCE = DEST.with_name("langid_words.LICENSE.txt")
LISTS = {"en": ("wamerican", "american-english"), "de": ("wngerman", "ngerman"),
         "fr": ("wfrench", "french"), "es": ("wspanish", "spanish"),
         "it": ("witalian", "italian"), "pt": ("wportuguese", "portuguese")}
WORDS_PER_LANGUAGE = 3000
TEST_FRACTION = 0.2
SEED = 20261202


def words(path: Path) -> set[str]:
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        w = unicodedata.normalize("NFC", line.strip().lower())
        if 3 <= len(w) <= 16 and w.isalpha():
            out.add(w)
    return out


def main() -> None:
    sets = {lang: words(Path("/usr/share/dict") / f) for lang, (_, f) in LISTS.items()}
    seen: dict[str, int] = {}
    for s in sets.values():
        for w in s:
            seen[w] = seen.get(w, 0) + 1
    rng = np.random.default_rng(SEED)
    lines = []
    for lang, s in sets.items():
        unique = sorted(w for w in s if seen[w] == 1)
        pick = [unique[i] for i in rng.choice(len(unique), WORDS_PER_LANGUAGE, replace=False)]
        n_test = int(round(TEST_FRACTION * len(pick)))
        lines += [f"test\t{lang}\t{w}" for w in pick[:n_test]]
        lines += [f"train\t{lang}\t{w}" for w in pick[n_test:]]
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))
    DEST.write_bytes(buf.getvalue())
    parts = [f"langid_words.tsv.gz: {WORDS_PER_LANGUAGE} words per language sampled from "
             "Debian word-list packages by scripts/make_langid_words.py. The words remain under "
             "the licences of their sources, reproduced below from /usr/share/doc/<package>/"
             "copyright.\n"]
    for lang, (pkg, f) in LISTS.items():
        text = (Path("/usr/share/doc") / pkg / "copyright").read_text(encoding="utf-8")
        parts.append(f"\n{'=' * 78}\n{lang}: Debian package {pkg}, /usr/share/dict/{f}\n"
                     f"{'=' * 78}\n{text}")
    LICENCE.write_text("".join(parts), encoding="utf-8")
    print(f"{DEST}: {len(lines)} words, {DEST.stat().st_size} bytes")


if __name__ == "__main__":
    main()
