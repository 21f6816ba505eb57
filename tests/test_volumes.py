"""cnnkit.volumes: augmentation of (N, D, H, W, C) batches against NumPy written here per
sample, the 3D rotation against closed forms (orthogonality, determinant, a quarter turn equal
to np.rot90, mass kept), and a Conv3D model training step on the generated volumes."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import volumes


def _vols(n=6, s=(4, 5, 6), c=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *s, c)).astype(np.float32)


def test_random_flip_matches_per_sample_numpy():
    x = _vols()
    got = volumes.random_flip(x, np.random.default_rng(1), axes=(1, 3))
    rng = np.random.default_rng(1)
    hit1, hit3 = rng.random(6) < 0.5, rng.random(6) < 0.5
    for k in range(6):
        v = x[k]
        v = v[::-1] if hit1[k] else v
        v = v[:, :, ::-1] if hit3[k] else v
        np.testing.assert_array_equal(got[k], v)
    assert hit1.any() and (~hit1).any()


def test_random_rot90_matches_numpy():
    x = _vols(s=(3, 5, 5))
    got = volumes.random_rot90(x, np.random.default_rng(2), planes=((2, 3),))
    k = np.random.default_rng(2).integers(0, 4, 6)
    for i in range(6):
        np.testing.assert_array_equal(got[i], np.rot90(x[i], k[i], axes=(1, 2)))
    with pytest.raises(ValueError, match="equal sizes"):
        volumes.random_rot90(_vols(s=(3, 4, 5)), np.random.default_rng(0), planes=((2, 3),))


def test_random_shift_moves_and_zero_fills():
    x = _vols(n=5, s=(4, 4, 4), c=1) + 10.0
    got = volumes.random_shift(x, np.random.default_rng(3), max_shift=2)
    shifts = np.random.default_rng(3).integers(-2, 3, (5, 3))
    for v, g, (a, b, c) in zip(x, got, shifts, strict=True):
        ref = np.zeros_like(v)
        for d, h, w in np.ndindex(4, 4, 4):  # index by index: out[p + s] = v[p]
            if 0 <= d + a < 4 and 0 <= h + b < 4 and 0 <= w + c < 4:
                ref[d + a, h + b, w + c] = v[d, h, w]
        np.testing.assert_array_equal(g, ref)


def test_noise_and_augment():
    x = np.zeros((200, 4, 4, 4, 1), np.float32)
    y = volumes.gaussian_noise(x, np.random.default_rng(0), std=0.5)
    assert y.dtype == np.float32 and abs(y.std() - 0.5) < 0.01 and abs(y.mean()) < 0.01
    a = volumes.augment(_vols(s=(4, 4, 4)), np.random.default_rng(0), noise_std=0.1)
    assert a.shape == (6, 4, 4, 4, 2)
    with pytest.raises(ValueError, match=r"\(N, D, H, W, C\)"):
        volumes.random_flip(np.zeros((2, 3, 3, 3)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="spatial axes"):
        volumes.random_flip(_vols(), np.random.default_rng(0), axes=(4,))


def test_rotations_are_rotations():
    r = volumes.random_rotations(50, np.random.default_rng(0), max_angle=40)
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    angles = np.degrees(np.arccos(np.clip((np.trace(r, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angles.max() <= 40 + 1e-9 and angles.max() > 20


def test_rotate_quarter_turn_and_identity():
    v = np.random.default_rng(1).random((2, 5, 5, 5))
    eye = np.broadcast_to(np.eye(3), (2, 3, 3)).copy()
    np.testing.assert_allclose(volumes.rotate(v, eye), v, atol=1e-6)
    quarter = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=float)  # 90 deg about D
    got = volumes.rotate(v, np.stack([quarter, quarter]))
    ref = [np.rot90(x, 1, axes=(1, 2)) for x in v]
    ok = [np.allclose(got, ref, atol=1e-6),
          np.allclose(got, [np.rot90(x, -1, axes=(1, 2)) for x in v], atol=1e-6)]
    assert any(ok)  # a quarter turn of the grid, exactly (the sense depends on the axes' order)


def test_digit_volumes_keep_mass():
    rng = np.random.default_rng(0)
    img = np.zeros((3, 28, 28), np.uint8)
    img[:, 10:18, 12:16] = 255
    vol = volumes.digit_volumes(img, rng, size=20, thickness=3, max_angle=25)
    assert vol.shape == (3, 20, 20, 20, 1) and vol.dtype == np.float32
    # trilinear resampling by a rotation keeps the total mass of a block well inside the grid
    np.testing.assert_allclose(vol.sum(axis=(1, 2, 3, 4)), 8 * 4 * 3, rtol=0.03)
    flat = volumes.digit_volumes(img, rng, size=20, thickness=3, max_angle=0)
    ref = np.zeros((20, 20, 20))
    ref[8:11, 6:14, 8:12] = 1.0  # crop 4 pixels per side, slab in the middle three slices
    np.testing.assert_allclose(flat[0, ..., 0], ref, atol=1e-6)


def test_conv3d_model_trains_on_volumes():
    from cnnkit import layers
    from cnnkit.models import Sequential

    rng = np.random.default_rng(0)
    img = np.zeros((40, 28, 28), np.uint8)
    y = np.repeat([0, 1], 20)
    img[y == 0, 8:20, 13:15] = 255  # a bar across one way or the other
    img[y == 1, 13:15, 8:20] = 255
    x = volumes.augment(volumes.digit_volumes(img, rng, size=12, max_angle=15), rng,
                        flip_axes=(1,), rot90_planes=(), max_shift=1, noise_std=0.05)
    net = Sequential([layers.Input((12, 12, 12, 1)), layers.Conv3D(4, 3, activation="relu"),
                      layers.GlobalMaxPooling3D(), layers.Dense(2, activation="softmax")])
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    hist = net.fit(x, y, batch_size=8, epochs=4, verbose=0).history["loss"]
    assert hist[-1] < hist[0]
