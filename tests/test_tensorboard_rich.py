"""TensorBoard callback beyond scalars: weight and gradient histograms, the first layer's
filters as an image and the layer graph, read back with the tensorboard package's own reader
and compared with the model's weights, gradients and layers."""

from __future__ import annotations

import io

import numpy as np
import pytest

from cnnkit import layers
from cnnkit.models import Model
from cnnkit.train.callbacks import Callback, TensorBoard


def _model():
    import cnnkit.random as cr

    cr.seed(0)
    inp = layers.Input((8, 8, 3))
    c = layers.Conv2D(5, 3, activation="relu", name="conv")(inp)
    s = layers.Conv2D(5, 1, name="skip")(layers.Cropping2D(1, name="crop")(inp))
    x = layers.Add(name="add")([c, s])
    out = layers.Dense(2, name="fc")(layers.GlobalAveragePooling2D(name="gap")(x))
    m = Model(inp, out)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


class _Keep(Callback):
    """Copies of every weight and gradient at each epoch end (the values the histograms
    must describe)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append({w.name: (w.data.copy(), None if w.grad is None else w.grad.copy())
                          for w in self.model.weights})


def test_histograms_images_and_graph_read_back(tmp_path):
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 2, 24)
    model, keep = _model(), _Keep()
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[
        TensorBoard(tmp_path, histogram_freq=2, write_images=True), keep])
    ea = ea_mod.EventAccumulator(str(tmp_path / "train"), size_guidance={
        ea_mod.HISTOGRAMS: 0, ea_mod.IMAGES: 0})
    ea.Reload()
    tags = ea.Tags()
    assert "conv/kernel" in tags["histograms"] and "conv/kernel/gradient" in tags["histograms"]
    for name in ("conv/kernel", "fc/bias", "skip/kernel"):
        events = ea.Histograms(name)
        assert [e.step for e in events] == [0, 2]  # every second epoch
        for e in events:
            w, g = keep.seen[e.step][name]
            h = e.histogram_value
            assert h.num == w.size and h.min == pytest.approx(w.min())
            assert h.max == pytest.approx(w.max())
            assert h.sum == pytest.approx(float(w.astype(np.float64).sum()), rel=1e-6, abs=1e-9)
            assert h.sum_squares == pytest.approx(float((w.astype(np.float64) ** 2).sum()))
            assert sum(h.bucket) == w.size
            gh = [ev for ev in ea.Histograms(f"{name}/gradient") if ev.step == e.step][0]
            assert gh.histogram_value.sum == pytest.approx(float(g.astype(np.float64).sum()),
                                                           rel=1e-5, abs=1e-9)
    images = ea.Images("conv/kernel")
    assert [e.step for e in images] == [0, 1, 2]
    img = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)))
    # 5 filters in a 3-column grid of 3x3 tiles with 1-pixel gaps: 7 x 11, RGB
    assert img.shape == (7, 11, 3)
    k = keep.seen[2]["conv/kernel"][0]
    for i in range(5):
        r, q = divmod(i, 3)
        f = k[..., i]
        expect = np.round((f - f.min()) / (f.max() - f.min()) * 255)
        np.testing.assert_allclose(img[4 * r:4 * r + 3, 4 * q:4 * q + 3], expect, atol=1)
    assert img[3].max() == 0 and img[:, 3].max() == 0  # the gaps
    graph = ea.Graph()
    nodes = {n.name: (n.op, list(n.input)) for n in graph.node}
    assert nodes["add"] == ("Add", ["conv", "skip"])
    assert nodes["skip"] == ("Conv2D", ["crop"])
    assert nodes["conv"] == ("Conv2D", ["input_layer"]) or nodes["conv"][1] == [
        model.inputs[0].node.layer.name]
    assert nodes["fc"] == ("Dense", ["gap"])


def test_histogram_freq_is_checked():
    with pytest.raises(ValueError, match="histogram_freq must be an int >= 0"):
        TensorBoard("x", histogram_freq=-1)
