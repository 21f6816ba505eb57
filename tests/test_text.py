"""cnnkit.text and the language-identification data: tokenisers and the vocabulary against
results written out by hand and collections.Counter; Embedding(weights=) and the TextCNN with
pre-set vectors against PyTorch's nn.Embedding.from_pretrained; the shipped word set against
its stated construction."""

from __future__ import annotations

import gzip
from collections import Counter
from importlib import resources

import numpy as np
import pytest
from helpers import torch_or_skip

from cnnkit import layers, zoo
from cnnkit.datasets import langid_words
from cnnkit.text import PAD, UNK, Vocabulary, char_tokens, word_tokens


def test_tokenisers():
    assert char_tokens("Äbc d") == ["ä", "b", "c", " ", "d"]
    assert char_tokens("Ab", lower=False) == ["A", "b"]
    assert word_tokens("Hello, wörld! It's 2 x_y") == ["hello", "wörld", "it", "s", "2", "x_y"]
    assert word_tokens("Hi, you.", punctuation=True) == ["hi", ",", "you", "."]
    with pytest.raises(TypeError, match="expects a str"):
        char_tokens(b"abc")


def test_vocabulary_build_encode_decode():
    docs = [list("abracadabra"), list("cab"), list("zz")]
    counts = Counter(t for d in docs for t in d)
    v = Vocabulary.build(docs)
    assert v.tokens[:2] == [PAD, UNK] and set(v.tokens[2:]) == set(counts)
    freq = [counts[t] for t in v.tokens[2:]]
    assert freq == sorted(freq, reverse=True)
    small = Vocabulary.build(docs, max_size=4, min_count=2)
    assert small.tokens == [PAD, UNK, "a", "b"]
    ids = small.encode([list("abcq"), list("ba")], length=3)
    np.testing.assert_array_equal(ids, [[2, 3, 1], [3, 2, 0]])
    assert small.decode(ids[1]) == ["b", "a"]
    assert Vocabulary.from_json(v.to_json()).tokens == v.tokens
    with pytest.raises(ValueError, match="starting with"):
        Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match="outside"):
        small.decode([9])
    with pytest.raises(ValueError, match="length"):
        small.encode([["a"]], 0)


def test_embedding_weights_vs_torch_from_pretrained():
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    table = rng.standard_normal((7, 3)).astype(np.float32)
    ids = np.array([[1, 2, 2, 6], [0, 5, 1, 1]])
    g = rng.standard_normal((2, 4, 3)).astype(np.float32)
    ref = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False)
    out_ref = ref(torch.tensor(ids))
    out_ref.backward(torch.tensor(g))
    emb = layers.Embedding(7, 3, weights=table)
    out = emb(ids)
    out.backward(g)
    np.testing.assert_array_equal(out.data, out_ref.detach().numpy())
    np.testing.assert_allclose(emb.embeddings.grad, ref.weight.grad.numpy(), rtol=1e-6)
    frozen = layers.Embedding(7, 3, weights=table, trainable=False)
    frozen(ids)
    assert frozen.trainable_weights == []
    with pytest.raises(ValueError, match=r"weights of shape \(7, 4\)"):
        layers.Embedding(7, 4, weights=table)


def test_textcnn_with_preset_embeddings():
    table = np.random.default_rng(1).standard_normal((20, 8)).astype(np.float32)
    model = zoo.get("textcnn", vocab_size=20, sequence_length=10, embedding_dim=8, filters=4,
                    kernel_sizes=(2, 3), classes=3, embedding_weights=table,
                    trainable_embedding=False)
    out = model(np.zeros((2, 10), dtype=np.int64))
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(model.get_layer("embedding").embeddings.data, table)
    # Kim's count without the frozen table: sum_k (k*dim + 1)*filters + (2*filters + 1)*classes
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == (2 * 8 + 1) * 4 + (3 * 8 + 1) * 4 + (2 * 4 + 1) * 3


def test_langid_words_as_built():
    (w_tr, y_tr), (w_te, y_te) = langid_words.load_data()
    n = len(langid_words.LANGUAGES)
    assert np.bincount(y_tr, minlength=n).tolist() == [2400] * n
    assert np.bincount(y_te, minlength=n).tolist() == [600] * n
    words = np.r_[w_tr, w_te]
    assert len(set(words)) == len(words)  # one language per word, no word in both splits
    assert all(w == w.lower() and w.isalpha() and 3 <= len(w) <= 16 for w in words)
    data = resources.files("cnnkit.datasets") / "data"
    with resources.as_file(data / "langid_words.tsv.gz") as p:
        assert p.stat().st_size < 1_000_000
        assert gzip.open(p).read().count(b"\n") == len(words)
    licence = (data / "langid_words.LICENSE.txt").read_text(encoding="utf-8")
    for pkg in ("wamerican", "wngerman", "wfrench", "wspanish", "witalian", "wportuguese"):
        assert f"Debian package {pkg}" in licence


def test_langid_words_matches_debian_lists():
    """Where the Debian word lists are installed, every shipped word is in its own list."""
    import unicodedata
    from pathlib import Path

    files = {"en": "american-english", "de": "ngerman", "fr": "french", "es": "spanish",
             "it": "italian", "pt": "portuguese"}
    paths = {k: Path("/usr/share/dict") / f for k, f in files.items()}
    if not all(p.exists() for p in paths.values()):
        pytest.skip("the Debian word lists (wamerican ... wportuguese) are not installed")
    (w_tr, y_tr), (w_te, y_te) = langid_words.load_data()
    for k, lang in enumerate(langid_words.LANGUAGES):
        lst = {unicodedata.normalize("NFC", w.strip().lower())
               for w in paths[lang].read_text(encoding="utf-8").splitlines()}
        assert set(np.r_[w_tr[y_tr == k], w_te[y_te == k]]) <= lst, lang
