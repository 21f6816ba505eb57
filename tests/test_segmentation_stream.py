"""SceneEpochs (new scenes every epoch) and make_scenes' max_digits."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.segmentation import SceneEpochs, make_scenes

PHOTOS = [np.random.default_rng(k).random((160, 200, 3)) for k in range(2)]  # plain arrays


def _passes(stream, k):
    out = []
    for _ in range(k):
        xs, ms = zip(*stream, strict=True)
        out.append((np.concatenate(xs), np.concatenate(ms)))
    return out


def _sorted_rows(a):
    flat = a.reshape(len(a), -1)
    return flat[np.lexsort(flat.T[::-1])]


def test_each_pass_is_a_new_set_of_scenes_in_shuffled_batches():
    stream = SceneEpochs(10, seed=4, batch_size=4, backgrounds=PHOTOS, epochs=3)
    assert len(stream) == 3  # ceil(10 / 4)
    (x0, m0), (x1, m1), (x2, _) = _passes(stream, 3)
    for e, (x, m) in enumerate(((x0, m0), (x1, m1))):
        want_x, want_m = make_scenes(10, 4 if e == 0 else [4, e], backgrounds=PHOTOS)
        both = np.concatenate([x.reshape(10, -1), m.reshape(10, -1)], axis=1)
        want = np.concatenate([want_x.reshape(10, -1), want_m.reshape(10, -1)], axis=1)
        np.testing.assert_array_equal(_sorted_rows(both), _sorted_rows(want))
    assert not np.array_equal(_sorted_rows(x0), _sorted_rows(x1))
    assert not np.array_equal(_sorted_rows(x1), _sorted_rows(x2))
    assert stream._ahead is None  # nothing painted beyond the last of 3 epochs


def test_the_stream_is_reproducible_with_painting_ahead():
    runs = [_passes(SceneEpochs(9, seed=1, batch_size=3, backgrounds=PHOTOS), 2)
            for _ in range(2)]
    for (xa, ma), (xb, mb) in zip(*runs, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ma, mb)
    SceneEpochs(2, 0, 1).close()  # closing an unused stream is fine


def test_max_digits_bounds_the_digits_per_scene():
    counts = {}
    for k in (1, 5):
        _, m = make_scenes(40, 2, backgrounds=PHOTOS, max_digits=k)
        counts[k] = [len(np.unique(s[s > 0])) for s in m]
        assert min(counts[k]) >= 1 and max(counts[k]) <= k
    assert counts[1] == [1] * 40
    assert np.mean(counts[5]) > 1.5
    with pytest.raises(ValueError, match="max_digits must be >= 1, got 0"):
        make_scenes(2, 0, backgrounds=PHOTOS, max_digits=0)
    with pytest.raises(ValueError, match="n >= 1 and batch_size >= 1"):
        SceneEpochs(0, 0, 4)


def test_fit_trains_a_unet_on_the_stream():
    from cnnkit import zoo
    from cnnkit.segmentation import NUM_CLASSES, pair_transform
    from cnnkit.train import losses, optimizers

    model = zoo.get("unet", input_shape=(64, 64, 3), classes=NUM_CLASSES, depth=1,
                    base_filters=2, rescale=1 / 255)
    model.compile(optimizer=optimizers.Adam(1e-3),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    stream = SceneEpochs(8, seed=0, batch_size=4, backgrounds=PHOTOS, epochs=2,
                         transform=pair_transform(rotation=0.0, zoom=(1.0, 1.0),
                                                  whole_pixels=True))
    hist = model.fit(stream, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2 and stream.epoch == 2
    assert all(np.isfinite(hist.history["loss"]))


def test_scenes_painted_ahead_are_the_epochs_scenes_and_are_kept():
    stream = SceneEpochs(5, seed=2, batch_size=5, backgrounds=PHOTOS, epochs=2)
    stream.paint_ahead(0)
    x, m = stream.scenes(0)
    want_x, want_m = make_scenes(5, 2, backgrounds=PHOTOS)
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(m, want_m)
    assert stream.scenes(0)[0] is x  # kept, not painted again
    (xb, _), = list(stream)  # the first pass shuffles the same five scenes
    np.testing.assert_array_equal(_sorted_rows(xb), _sorted_rows(want_x))
    stream.close()
