"""Text classification with TextCNN: which of six languages (en, de, fr, es, it, pt) a single
word comes from, read character by character.

Data: the embedded ``langid_words`` set (Debian word lists; 2,400 train / 600 test words per
language). Characters -> Vocabulary (padding 0, unknown 1) -> Kim's multi-width TextCNN
(``cnnkit.zoo.textcnn``, widths 2-5 over character embeddings; each word between boundary
marks ^ and $). The baseline is a multinomial
naive Bayes over character 1-3-grams with word-boundary marks (Laplace smoothing), written here.
Writes text_langid.png (the figure: test accuracy per language, both models) and
text_langid_confusion.png (a picture: the TextCNN's confusion matrix).
``--quick`` (or CNNKIT_EXAMPLE_SMALL=1) trains for a few seconds.

    nice python examples/text_langid_textcnn.py [--quick] [--out DIR]
"""

import time
from collections import Counter
from pathlib import Path

import numpy as np
from _small import quick_and_out

from cnnkit import zoo
from cnnkit.datasets import langid_words
from cnnkit.random import seed as set_seed
from cnnkit.text import Vocabulary, char_tokens

LENGTH = 18  # the longest word in the set (16) and its two boundary marks


def chars(word):
    """The word's characters between boundary marks, so that filters see prefixes and
    suffixes (max-over-time pooling forgets where a match was)."""
    return ["^", *char_tokens(word), "$"]


def ngrams(word, n_max=3):
    w = f"^{word}$"
    return [w[i:i + n] for n in range(1, n_max + 1) for i in range(len(w) - n + 1)]


class NaiveBayes:
    """Multinomial naive Bayes: argmax_c log P(c) + sum_g count(g) log P(g | c),
    P(g | c) = (n_cg + alpha) / (n_c + alpha |V|)."""

    def fit(self, words, y, alpha=1.0):
        self.classes = np.unique(y)
        counts = [Counter(g for w in words[y == c] for g in ngrams(w)) for c in self.classes]
        vocab = set().union(*counts)
        self.prior = np.log(np.bincount(y) / len(y))
        self.logp = [{g: np.log((cnt[g] + alpha) / (sum(cnt.values()) + alpha * len(vocab)))
                      for g in vocab} for cnt in counts]
        self.unseen = [np.log(alpha / (sum(cnt.values()) + alpha * len(vocab)))
                       for cnt in counts]
        return self

    def predict(self, words):
        scores = [[p + sum(lp.get(g, un) for g in ngrams(w))
                   for p, lp, un in zip(self.prior, self.logp, self.unseen, strict=True)]
                  for w in words]
        return np.argmax(scores, axis=1)


def plot(y, pred_nb, pred_cnn, out: Path):
    import matplotlib.pyplot as plt

    langs = langid_words.LANGUAGES
    acc = [[np.mean(p[y == c] == c) for c in range(len(langs))] for p in (pred_nb, pred_cnn)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = np.arange(len(langs))
    ax.bar(xs - 0.2, acc[0], 0.4, label=f"char 1-3-gram naive Bayes ({np.mean(pred_nb == y):.3f})")
    ax.bar(xs + 0.2, acc[1], 0.4, label=f"TextCNN ({np.mean(pred_cnn == y):.3f})")
    ax.set(xticks=xs, xticklabels=langs, ylim=(0, 1.2), ylabel="test accuracy",
           title="Language of a single word, held-out words")
    ax.legend(loc="upper center", ncol=2, fontsize=8)
    fig.savefig(out / "text_langid.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    cm = np.zeros((len(langs), len(langs)), int)
    np.add.at(cm, (y, pred_cnn), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, v, ha="center", va="center", fontsize=7)
    ax.set(xticks=xs, xticklabels=langs, yticks=xs, yticklabels=langs, xlabel="predicted",
           ylabel="true", title="TextCNN confusion (test)")
    fig.savefig(out / "text_langid_confusion.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def main():
    quick, out = quick_and_out(__doc__)
    (w_tr, y_tr), (w_te, y_te) = langid_words.load_data()
    if quick:
        keep = np.random.default_rng(0).permutation(len(w_tr))[:1200]
        w_tr, y_tr = w_tr[keep], y_tr[keep]
    t0 = time.perf_counter()
    pred_nb = NaiveBayes().fit(w_tr, y_tr).predict(w_te)
    acc_nb = float(np.mean(pred_nb == y_te))
    print(f"naive Bayes (char 1-3-grams): test accuracy {acc_nb:.4f}, "
          f"{time.perf_counter() - t0:.1f} s")
    vocab = Vocabulary.build(chars(w) for w in w_tr)
    x_tr = vocab.encode([chars(w) for w in w_tr], LENGTH)
    x_te = vocab.encode([chars(w) for w in w_te], LENGTH)
    set_seed(0)
    model = zoo.get("textcnn", vocab_size=len(vocab), sequence_length=LENGTH,
                    embedding_dim=32, filters=32 if quick else 96, kernel_sizes=(2, 3, 4, 5),
                    dropout=0.5, classes=len(langid_words.LANGUAGES),
                    classifier_activation="softmax")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(x_tr, y_tr, batch_size=64, epochs=1 if quick else 15, verbose=0 if quick else 2)
    pred_cnn = model.predict(x_te, verbose=0).argmax(-1)
    acc_cnn = float(np.mean(pred_cnn == y_te))
    print(f"TextCNN ({len(vocab)} characters): test accuracy {acc_cnn:.4f}, "
          f"{time.perf_counter() - t0:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    plot(y_te, pred_nb, pred_cnn, out)
    print(f"pictures written to {out.resolve()}")
    if not quick:
        assert acc_cnn > acc_nb, f"TextCNN {acc_cnn:.4f} does not beat naive Bayes {acc_nb:.4f}"


if __name__ == "__main__":
    main()
