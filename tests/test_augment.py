"""Augmentation of NumPy image batches: geometry against np.rot90 / np.roll / PyTorch's
grid_sample and interpolate, colour against colorsys and Pillow's ImageEnhance, mixing labels
against pasted areas, seeding, configs and bad inputs."""

import colorsys
import json

import numpy as np
import pytest
from helpers import assert_close_scaled, torch_or_skip

from cnnkit.data import (
    CenterCrop,
    ColorJitter,
    Compose,
    CutMix,
    Cutout,
    Mixup,
    Normalize,
    RandAugment,
    RandomAffine,
    RandomCrop,
    RandomFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Rescaling,
    Resize,
    deserialize,
    geometry,
    hsv_to_rgb,
    normalize,
    rgb_to_hsv,
    serialize,
)
from cnnkit.data import color as C

rng = np.random.default_rng(0)


def images(n=4, h=7, w=9, c=3, dtype=np.float32):
    return rng.random((n, h, w, c)).astype(dtype)


def uint8_images(n=4, h=7, w=9, c=3):
    return rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)


# ----- flips and crops ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
def test_flip_twice_with_same_seed_is_identity(mode):
    x = uint8_images(16)
    flip = RandomFlip(mode)
    once, _ = flip(x, rng=np.random.default_rng(3))
    twice, _ = flip(once, rng=np.random.default_rng(3))
    assert once.dtype == np.uint8 and not np.array_equal(once, x)
    np.testing.assert_array_equal(twice, x)


def test_flip_probability_one_and_zero():
    x = images(3)
    np.testing.assert_array_equal(RandomFlip("horizontal", p=1.0)(x, rng=0)[0], x[:, :, ::-1])
    np.testing.assert_array_equal(RandomFlip("vertical", p=1.0)(x, rng=0)[0], x[:, ::-1])
    both = RandomFlip("horizontal_and_vertical", p=1.0)(x, rng=0)[0]
    np.testing.assert_array_equal(both, x[:, ::-1, ::-1])
    np.testing.assert_array_equal(RandomFlip(p=0.0)(x, rng=0)[0], x)


@pytest.mark.parametrize("padding,pad_mode", [(0, "constant"), (2, "constant"), (3, "reflect"),
                                              ((1, 2), "constant")])
def test_random_crop_shape_and_content(padding, pad_mode):
    x = uint8_images(6, 8, 10, 2)
    out, _ = RandomCrop(6, 7, padding=padding, pad_mode=pad_mode)(x, rng=1)
    assert out.shape == (6, 6, 7, 2) and out.dtype == np.uint8
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)),
                    mode="reflect" if pad_mode == "reflect" else "constant")
    for i in range(len(x)):  # each crop is some window of its own padded image
        found = [(t, l) for t in range(padded.shape[1] - 5) for l in range(padded.shape[2] - 6)
                 if np.array_equal(padded[i, t:t + 6, l:l + 7], out[i])]
        assert found, f"crop {i} is not a window of its padded image"


def test_center_crop_and_resize_shapes():
    x = images(2, 9, 8)
    np.testing.assert_array_equal(CenterCrop(5, 4)(x)[0], x[:, 2:7, 2:6])
    assert Resize(4, 13)(x)[0].shape == (2, 4, 13, 3)


def test_random_resized_crop_shapes_and_identity():
    x = uint8_images(8, 12, 10, 3)
    out, _ = RandomResizedCrop(5, 6)(x, rng=0)
    assert out.shape == (8, 5, 6, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    same = RandomResizedCrop(12, 10, scale=(1, 1), ratio=(10 / 12, 10 / 12))(x, rng=0)[0]
    np.testing.assert_allclose(same, x, atol=1e-4)
    boxes = RandomResizedCrop(5, 6, scale=(0.2, 0.5)).sample_boxes(500, 12, 10, rng)
    top, left, bh, bw = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + bh <= 12).all()
    assert (left + bw <= 10).all()
    frac = bh * bw / 120
    assert frac.min() > 0.1 and frac.max() < 0.65  # area fraction ~ scale, up to rounding


def test_resized_crop_matches_torch_interpolate():
    torch = torch_or_skip()
    x = images(2, 11, 9, 3)
    out = geometry.crop_and_resize(x, np.array([[2, 1, 6, 5], [0, 3, 11, 6]]), (4, 7))
    for i, (t, l, h, w) in enumerate([(2, 1, 6, 5), (0, 3, 11, 6)]):
        window = torch.from_numpy(x[i:i + 1, t:t + h, l:l + w]).permute(0, 3, 1, 2)
        ref = torch.nn.functional.interpolate(window, size=(4, 7), mode="bilinear",
                                              align_corners=False, antialias=False)
        assert_close_scaled(out[i], ref[0].permute(1, 2, 0).numpy(), 1e-5)


@pytest.mark.parametrize("size", [(4, 5), (15, 6), (7, 9)])
def test_resize_matches_torch_interpolate(size):
    torch = torch_or_skip()
    x = images(3, 7, 9, 2)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=size,
                                          mode="bilinear", align_corners=False)
    assert_close_scaled(geometry.resize(x, *size), ref.permute(0, 2, 3, 1).numpy(), 1e-5)
    near = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=size,
                                           mode="nearest-exact")
    assert_close_scaled(geometry.resize(x, *size, interpolation="nearest"),
                        near.permute(0, 2, 3, 1).numpy(), 1e-6)


# ----- affine warps ---------------------------------------------------------------------------
def test_rotation_by_90_degrees_equals_rot90():
    x = images(4, 6, 6, 2)
    for k in (1, 2, 3, -1):
        np.testing.assert_allclose(geometry.rotate(x, 90 * k), np.rot90(x, k, axes=(1, 2)),
                                   atol=1e-6)
    per_sample = geometry.rotate(x, np.array([90.0, 180.0, -90.0, 0.0]))
    for i, k in enumerate((1, 2, -1, 0)):
        np.testing.assert_allclose(per_sample[i], np.rot90(x[i], k), atol=1e-6)
    rect = images(2, 5, 8)  # 180 degrees on a non-square image: both flips
    np.testing.assert_allclose(geometry.rotate(rect, 180), rect[:, ::-1, ::-1], atol=1e-6)
    out, _ = RandomRotation(factor=(0.25, 0.25))(x, rng=0)  # Keras factor: a quarter turn
    np.testing.assert_allclose(out, np.rot90(x, 1, axes=(1, 2)), atol=1e-6)
    out, _ = RandomRotation(degrees=(-90, -90), interpolation="nearest")(x, rng=0)
    np.testing.assert_allclose(out, np.rot90(x, -1, axes=(1, 2)), atol=1e-6)


@pytest.mark.parametrize("dx,dy", [(2, 0), (0, -3), (-1, 2), (3, 1)])
def test_integer_translation_equals_roll_with_zero_fill(dx, dy):
    x = images(3, 6, 7, 2) + 1  # no zeros in the content
    expected = np.roll(x, (dy, dx), axis=(1, 2))
    if dy > 0:
        expected[:, :dy] = 0
    elif dy < 0:
        expected[:, dy:] = 0
    if dx > 0:
        expected[:, :, :dx] = 0
    elif dx < 0:
        expected[:, :, dx:] = 0
    for interp in ("bilinear", "nearest"):
        np.testing.assert_allclose(geometry.translate(x, dx, dy, interp), expected, atol=1e-6)
    wrapped = geometry.translate(x, dx, dy, fill_mode="wrap")
    np.testing.assert_allclose(wrapped, np.roll(x, (dy, dx), axis=(1, 2)), atol=1e-6)
    rt = RandomTranslation((dy / 6, dy / 6), (dx / 7, dx / 7))
    np.testing.assert_allclose(rt(x, rng=0)[0], expected, atol=1e-5)


def test_translation_fill_modes():
    x = images(1, 1, 5, 1)
    row = x[0, 0, :, 0]
    near = geometry.translate(x, 2, 0, fill_mode="nearest")[0, 0, :, 0]
    np.testing.assert_allclose(near, [row[0], row[0], row[0], row[1], row[2]], atol=1e-6)
    refl = geometry.translate(x, 2, 0, fill_mode="reflect")[0, 0, :, 0]
    np.testing.assert_allclose(refl, [row[1], row[0], row[0], row[1], row[2]], atol=1e-6)
    const = geometry.translate(x, -2, 0, fill_value=7.0)[0, 0, :, 0]
    np.testing.assert_allclose(const, [row[2], row[3], row[4], 7, 7], atol=1e-6)


def test_identity_parameters_give_identity():
    x = images(3, 6, 5, 3)
    for out in (geometry.zoom(x, 1.0), geometry.affine(x), geometry.rotate(x, 0.0),
                geometry.resize(x, 6, 5), RandomZoom(0.0)(x, rng=0)[0],
                RandomAffine()(x, rng=0)[0], RandomRotation(degrees=0)(x, rng=0)[0],
                RandomTranslation(0.0, 0.0)(x, rng=0)[0],
                RandomAffine(degrees=(0, 0), translate=(0, 0), scale=(1, 1),
                             shear=(0, 0, 0, 0))(x, rng=0)[0]):
        np.testing.assert_allclose(out, x, atol=1e-6)


def test_zoom_direction_as_keras():
    x = np.zeros((1, 21, 21, 1), np.float32)
    x[0, 8:13, 8:13] = 1  # a 5x5 square in the centre
    zoomed_in = RandomZoom((-0.5, -0.5), interpolation="nearest")(x, rng=0)[0]
    zoomed_out = RandomZoom((1.0, 1.0), interpolation="nearest")(x, rng=0)[0]
    assert zoomed_in.sum() == 100 and zoomed_out.sum() < 25  # 10x10 in; smaller out
    only_width = RandomZoom((0.0, 0.0), (-0.5, -0.5), interpolation="nearest")(x, rng=0)[0]
    assert only_width[0, 10].sum() == 10 and only_width[0, :, 10].sum() == 5


def test_shear_by_45_degrees_shifts_rows():
    """x-shear with factor tan(45) = 1 about the centre row cy: out[i, j] = x[i, j - (i - cy)]."""
    x = images(2, 5, 9, 1) + 1
    out = geometry.affine(x, shear=(45.0, 0.0), interpolation="nearest")
    expected = np.zeros_like(x)
    for i in range(5):
        d = i - 2
        expected[:, i] = np.roll(x[:, i], d, axis=1)
        if d > 0:
            expected[:, i, :d] = 0
        elif d < 0:
            expected[:, i, d:] = 0
    np.testing.assert_allclose(out, expected, atol=1e-6)
    out_y = geometry.affine(np.swapaxes(x, 1, 2), shear=(0.0, 45.0), interpolation="nearest")
    np.testing.assert_allclose(np.swapaxes(out_y, 1, 2), expected, atol=1e-6)


def test_affine_with_scale_two_equals_zoom():
    x = images(2, 8, 8)
    np.testing.assert_allclose(geometry.affine(x, scale=2.0), geometry.zoom(x, 2.0), atol=1e-6)


@pytest.mark.parametrize("fill_mode,padding_mode", [("constant", "zeros"),
                                                    ("nearest", "border"),
                                                    ("reflect", "reflection")])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_transform_matches_torch_grid_sample(fill_mode, padding_mode, interpolation):
    """Random per-sample inverse maps; grid_sample (align_corners=False) samples pixel
    x = ((g + 1) W - 1) / 2, so the grid is g = (2 x + 1) / W - 1."""
    torch = torch_or_skip()
    n, h, w, c = 5, 7, 9, 3
    x = images(n, h, w, c)
    a = np.zeros((n, 2, 3))
    a[:, :, :2] = np.eye(2) + 0.4 * rng.standard_normal((n, 2, 2))
    a[:, :, 2] = rng.uniform(-3, 6, (n, 2))
    ho, wo = 6, 8
    out = geometry.affine_transform(x, a, (ho, wo), interpolation, fill_mode)
    jj, ii = np.meshgrid(np.arange(wo), np.arange(ho))
    sx = a[:, 0, 0, None, None] * jj + a[:, 0, 1, None, None] * ii + a[:, 0, 2, None, None]
    sy = a[:, 1, 0, None, None] * jj + a[:, 1, 1, None, None] * ii + a[:, 1, 2, None, None]
    grid = np.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], axis=-1)
    ref = torch.nn.functional.grid_sample(
        torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(grid.astype(np.float32)),
        mode=interpolation, padding_mode=padding_mode, align_corners=False)
    ref = ref.permute(0, 2, 3, 1).numpy()
    if interpolation == "nearest":  # ties (x.5) round differently; compare where not a tie
        tie = (np.abs(sx % 1 - 0.5) < 1e-4) | (np.abs(sy % 1 - 0.5) < 1e-4)
        out, ref = out[~tie], ref[~tie]
    assert_close_scaled(out, ref, 1e-5)


def test_warp_dtypes():
    assert geometry.rotate(uint8_images(2), 10).dtype == np.float32
    assert geometry.rotate(images(2, dtype=np.float64), 10).dtype == np.float64
    assert RandomAffine(10)(images(2))[0].dtype == np.float32


# ----- normalisation and colour ---------------------------------------------------------------
def test_normalize_adapt_gives_zero_mean_unit_std():
    x = (rng.random((20, 5, 6, 3)) * [10, 50, 200] + [1, -5, 30]).astype(np.float32)
    norm = Normalize().adapt(x)
    out, _ = norm(x)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-4)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    np.testing.assert_allclose(normalize(x, mean, std), (x - np.array(mean)) / np.array(std),
                               rtol=1e-5)
    again = Normalize(**norm.get_config())(x)[0]
    np.testing.assert_allclose(again, out, rtol=1e-6)
    np.testing.assert_allclose(Rescaling(1 / 255)(uint8_images())[0].max(), 1.0, atol=1e-2)


def test_rgb_hsv_against_colorsys_and_round_trip():
    rgb = rng.random((50, 3))
    rgb[:5] = rgb[:5, :1]  # greys (undefined hue)
    rgb[5] = 0
    hsv = rgb_to_hsv(rgb)
    ref = np.array([colorsys.rgb_to_hsv(*p) for p in rgb])
    np.testing.assert_allclose(hsv, ref, atol=1e-12)
    np.testing.assert_allclose(hsv_to_rgb(ref), np.array([colorsys.hsv_to_rgb(*p) for p in ref]),
                               atol=1e-12)
    x = images(3, 5, 4)
    np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-6)
    np.testing.assert_allclose(C.adjust_hue(x, 0.0), x, atol=1e-6)


def test_hue_shift_against_colorsys():
    x = images(2, 3, 4, dtype=np.float64)
    shift = np.array([0.25, -0.4])
    out = C.adjust_hue(x, shift)
    for n in range(2):
        for i in range(3):
            for j in range(4):
                h, s, v = colorsys.rgb_to_hsv(*x[n, i, j])
                np.testing.assert_allclose(out[n, i, j],
                                           colorsys.hsv_to_rgb((h + shift[n]) % 1, s, v),
                                           atol=1e-12)


@pytest.mark.parametrize("what,factor", [("Brightness", 1.6), ("Contrast", 0.4),
                                         ("Contrast", 1.7), ("Color", 0.3), ("Color", 1.8)])
def test_color_jitter_against_pillow_image_enhance(what, factor):
    Image = pytest.importorskip("PIL.Image")
    ImageEnhance = pytest.importorskip("PIL.ImageEnhance")
    x = uint8_images(1, 12, 10)
    kw = {"Brightness": "brightness", "Contrast": "contrast", "Color": "saturation"}[what]
    out, _ = ColorJitter(**{kw: (factor, factor)})(x, rng=0)
    ref = getattr(ImageEnhance, what)(Image.fromarray(x[0])).enhance(factor)
    # Pillow works in 8-bit integers (grey levels and the contrast mean are rounded)
    assert np.abs(out[0] - np.asarray(ref, np.float32)).max() <= 2.0


def test_color_jitter_grayscale_and_identity():
    g = uint8_images(3, 5, 5, 1)
    out, _ = ColorJitter(brightness=(0.5, 0.5), saturation=0.9, hue=0.4)(g, rng=0)
    np.testing.assert_allclose(out, g * 0.5, atol=1e-4)  # saturation and hue do not apply
    x = images(3)
    np.testing.assert_allclose(ColorJitter(value_range=(0, 1))(x, rng=0)[0], x, atol=1e-6)
    grey = ColorJitter(saturation=(0, 0), value_range=(0, 1))(x, rng=0)[0]
    luma = x @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(grey, np.repeat(luma[..., None], 3, -1), atol=1e-6)
    out = ColorJitter(0.4, 0.4, 0.4, 0.1)(uint8_images(8), rng=0)[0]
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 255


def test_solarize_posterize_autocontrast():
    u = np.array([0.0, 0.2, 0.5, 0.9, 1.0]).reshape(1, 1, 5, 1)
    np.testing.assert_allclose(C.solarize(u, 0.5).ravel(), [0, 0.2, 0.5, 0.1, 0])
    levels = np.arange(256, dtype=np.float64).reshape(1, 1, 256, 1)
    np.testing.assert_allclose(C.posterize(levels / 255, 3).ravel() * 255,
                               (np.arange(256) & 0b11100000))
    ac = C.autocontrast(np.array([0.2, 0.4, 0.6]).reshape(1, 1, 3, 1))
    np.testing.assert_allclose(ac.ravel(), [0, 0.5, 1])


# ----- occlusion and mixing ------------------------------------------------------------------
def test_cutout_holes():
    x = np.ones((50, 12, 12, 1), np.uint8)
    out, _ = Cutout(length=4)(x, rng=0)
    assert out.dtype == np.uint8
    zeros = (out == 0).sum(axis=(1, 2, 3))
    assert (zeros >= 4).all() and (zeros <= 16).all() and (zeros == 16).any()
    for i in range(10):  # the hole is one axis-aligned rectangle of side <= 4
        r, c = np.nonzero(out[i, ..., 0] == 0)
        assert r.max() - r.min() < 4 and c.max() - c.min() < 4
        assert zeros[i] == (r.max() - r.min() + 1) * (c.max() - c.min() + 1)
    more = Cutout(length=(2, 3), n_holes=3, fill_value=5)(np.zeros((20, 9, 9, 2)), rng=0)[0]
    assert ((more == 5).sum(axis=(1, 2, 3)) <= 3 * 6 * 2).all()


def label_coded(n=12, h=8, w=8, c=2):
    """Image i is constant i + 1 in every pixel; its label is i (n classes)."""
    x = np.broadcast_to(np.arange(1, n + 1, dtype=np.float32)[:, None, None, None],
                        (n, h, w, c)).copy()
    return x, np.arange(n)


def test_mixup_labels_sum_to_one_and_match_pixels():
    x, y = label_coded()
    xm, ym = Mixup(alpha=0.4, num_classes=12)(x, y, rng=0)
    assert ym.shape == (12, 12) and ym.dtype == np.float32
    np.testing.assert_allclose(ym.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(xm[:, 0, 0, 0], ym @ np.arange(1, 13), rtol=1e-5)
    soft = np.full((12, 4), 0.25, np.float32)
    np.testing.assert_allclose(Mixup(1.0)(x, soft, rng=0)[1], soft, atol=1e-6)


def test_cutmix_label_weights_equal_pasted_area():
    x, y = label_coded(16, 10, 12, 1)
    xm, ym = CutMix(alpha=1.0, num_classes=16)(x, y, rng=3)
    np.testing.assert_allclose(ym.sum(axis=1), 1, atol=1e-6)
    assert np.array_equal(xm, xm.astype(int)) and xm.dtype == x.dtype
    mixed = 0
    for i in range(16):
        values, counts = np.unique(xm[i], return_counts=True)
        fractions = dict(zip(values.astype(int) - 1, counts / xm[i].size, strict=True))
        others = {k: f for k, f in fractions.items() if k != i}
        assert len(others) <= 1
        for k, f in others.items():  # the partner's weight is its area share
            np.testing.assert_allclose(ym[i, k], f, atol=1e-6)
            np.testing.assert_allclose(ym[i, i], 1 - f, atol=1e-6)
            mixed += 1
        if not others:
            np.testing.assert_allclose(ym[i, i], 1, atol=1e-6)
    assert mixed >= 8


def test_mixing_needs_labels_and_num_classes():
    x, y = label_coded()
    with pytest.raises(ValueError, match="num_classes"):
        Mixup()(x, y)
    with pytest.raises(ValueError, match="call it with y"):
        CutMix(num_classes=3)(x)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        CutMix(num_classes=5)(x, y)
    with pytest.raises(ValueError, match="alpha"):
        Mixup(alpha=0)


# ----- RandAugment, composition, seeding, configs ---------------------------------------------
def test_randaugment_zero_magnitude_is_identity_and_per_sample():
    x = uint8_images(6)
    ops = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY", "Brightness", "Contrast",
           "Color", "Posterize", "Identity")
    out, _ = RandAugment(num_ops=3, magnitude=0, ops=ops)(x, rng=0)
    np.testing.assert_allclose(out, x, atol=1e-3)
    same = np.repeat(uint8_images(1, 10, 10), 16, axis=0)
    out, _ = RandAugment(num_ops=2, magnitude=9)(same, rng=0)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 255
    distinct = {out[i].tobytes() for i in range(16)}
    assert len(distinct) > 4  # each sample drew its own operations
    gray = RandAugment(magnitude=5)(uint8_images(4, c=1), rng=1)[0]
    assert gray.shape == (4, 7, 9, 1)


def pipeline():
    return Compose([RandomFlip("horizontal_and_vertical"), RandomCrop(6, 6, padding=1),
                    RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5),
                    ColorJitter(0.2, 0.2, 0.2, 0.05), Cutout(2), RandAugment(2, 5),
                    RandomResizedCrop(5, 5), Normalize([100.0] * 3, [50.0] * 3)])


def test_same_seed_same_batch_different_seed_different():
    x = uint8_images(8)
    a, _ = pipeline()(x, rng=np.random.default_rng(7))
    b, _ = pipeline()(x, rng=np.random.default_rng(7))
    c, _ = pipeline()(x, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (8, 5, 5, 3) and not np.allclose(a, c)


def test_labels_stay_with_their_images():
    x, y = label_coded(10, 8, 8, 3)
    aug = Compose([RandomFlip("horizontal_and_vertical"), RandomCrop(6, 6),
                   RandomRotation(degrees=(90, 90), interpolation="nearest"),
                   RandomResizedCrop(4, 4), ColorJitter(brightness=0, value_range=(0, 20))])
    xa, ya = aug(x, y, rng=0)
    np.testing.assert_array_equal(ya, y)
    np.testing.assert_allclose(xa[:, 1:3, 1:3].mean(axis=(1, 2, 3)), y + 1, atol=1e-5)


def test_config_round_trip():
    p = pipeline()
    cfg = json.loads(json.dumps(serialize(p)))
    q = deserialize(cfg)
    assert json.dumps(serialize(q)) == json.dumps(cfg)
    x = uint8_images(4)
    np.testing.assert_array_equal(p(x, rng=5)[0], q(x, rng=5)[0])
    for aug in (RandomRotation(factor=0.1), RandomZoom(0.2, (-0.1, 0.3)), Mixup(0.3, 4),
                CutMix(num_classes=3), RandomTranslation(0.1, 0.2), Rescaling(0.5, 1.0),
                CenterCrop(3, 3), Resize(2, 2)):
        again = deserialize(json.loads(json.dumps(serialize(aug))))
        assert again.get_config() == aug.get_config()
        assert type(again).__name__ in repr(again)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"RandomFlip expects x of rank 4 \(N, H, W, C\), got "
                                         r"rank 3 \(shape \(5, 5, 3\)\)"):
        RandomFlip()(np.zeros((5, 5, 3)))
    with pytest.raises(ValueError, match="mode must be one of"):
        RandomFlip("diagonal")
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(9, 9)(np.zeros((1, 5, 5, 1)))
    with pytest.raises(ValueError, match="exactly one of factor"):
        RandomRotation(factor=0.1, degrees=10)
    with pytest.raises(ValueError, match="exactly one of factor"):
        RandomRotation()
    with pytest.raises(ValueError, match="hue must lie in"):
        ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="1 or 3 channels, got 4"):
        ColorJitter(0.1)(np.zeros((1, 4, 4, 4)))
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        RandomZoom(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="factors must be > -1"):
        RandomZoom((-1.0, 0.0))
    with pytest.raises(ValueError, match="call adapt"):
        Normalize()(images())
    with pytest.raises(ValueError, match="set for 3 channels, got images with 2"):
        Normalize().adapt(images())(images(c=2))
    with pytest.raises(ValueError, match="x has 4 samples but y has 3"):
        RandomFlip()(images(), np.arange(3))
    with pytest.raises(ValueError, match=r"matrix of shape \(4, 2, 3\)"):
        geometry.affine_transform(images(), np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match="unknown augmentation"):
        deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError, match="rng must be"):
        RandomFlip()(images(), rng="seed")
    with pytest.raises(ValueError, match="magnitude must be in"):
        RandAugment(magnitude=11)
    with pytest.raises(ValueError, match="reflect padding"):
        RandomCrop(2, 2, padding=5, pad_mode="reflect")(images(1, 4, 4))
