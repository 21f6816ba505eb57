"""``cnnkit detect`` and ``cnnkit segment``: pictures written for saved models, one-line errors
with status 2 for mistakes; the detector's head survives save and load; boxes are drawn where
the detections say."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.cli import main

pytest.importorskip("PIL", reason="pictures are written with Pillow")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from cnnkit import zoo
    from cnnkit.detection import grid_detector, make_scenes
    from cnnkit.detection.draw import save_png

    d = tmp_path_factory.mktemp("vision")
    det = grid_detector((64, 64, 1), 10, [[12.0, 16.0], [18.0, 22.0]], width=4,
                        class_names=[f"d{i}" for i in range(10)])
    det.save(d / "det.cnnkit")
    seg = zoo.get("unet", input_shape=(32, 32, 3), classes=3, depth=1, base_filters=2,
                  rescale=1 / 255)
    seg.save(d / "seg.cnnkit")
    x, _ = make_scenes(1, 5, "test")
    save_png(d / "scene.png", x[0, :, :, 0])
    save_png(d / "rgb.png", np.random.default_rng(0).integers(0, 255, (40, 48, 3)))
    return d, det


def _png(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_head_round_trips_through_the_model_file(files):
    from cnnkit.detection import find_head
    from cnnkit.models import load_model

    d, det = files
    loaded = load_model(d / "det.cnnkit", compile=False)
    head = find_head(loaded)
    assert head.anchors == [[12.0, 16.0], [18.0, 22.0]] and head.stride == 8
    assert head.class_names == [f"d{i}" for i in range(10)]
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x), det.predict(x), rtol=1e-5, atol=1e-5)
    assert loaded.predict(x).shape == (2, 8, 8, 2, 15)


def test_detect_writes_a_picture(files, capsys):
    d, _ = files
    out = d / "boxes.png"
    assert main(["detect", str(d / "det.cnnkit"), str(d / "scene.png"), "--out", str(out),
                 "--score-threshold", "0"]) == 0
    text = capsys.readouterr().out
    assert "detections (score >= 0.0)" in text and f"wrote {out}" in text
    assert _png(out).shape == (256, 256, 3)  # 64 x 64 enlarged to the 256-pixel minimum


def test_segment_writes_an_overlay(files, capsys):
    d, _ = files
    out = d / "mask.png"
    assert main(["segment", str(d / "seg.cnnkit"), str(d / "rgb.png"), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert _png(out).shape == (256, 256, 3)  # the model's 32 x 32, enlarged 8 times


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("tta", [False, True])
def test_segment_threshold_and_shift_average(files, capsys, tta):
    """Mask read-out written here: mean softmax over the image and its four one-pixel moves
    (reflected borders, each result moved back with edge pixels repeated), then foreground
    where P(class 0) < t, labelled with the likeliest other class."""
    from cnnkit.detection.draw import save_png
    from cnnkit.models import load_model

    d, _ = files
    img = np.random.default_rng(3).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    save_png(d / "rgb32.png", img)
    model = load_model(d / "seg.cnnkit", compile=False)
    x = np.pad(img.astype(np.float32)[None], ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    moves = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)] if tta else [(0, 0)]
    p = 0.0
    for dy, dx in moves:
        out = _softmax(model.predict(x[:, 1 - dy:33 - dy, 1 - dx:33 - dx].copy()))
        out = np.pad(out, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        p = p + out[:, 1 + dy:33 + dy, 1 + dx:33 + dx] / len(moves)
    t = float(np.round(np.median(p[0, ..., 0]), 3))
    want = np.where(p[0, ..., 0] < t, 1 + np.argmax(p[0, ..., 1:], -1), 0)
    argv = ["segment", str(d / "seg.cnnkit"), str(d / "rgb32.png"), "--out",
            str(d / "m.png"), "--background-below", str(t)] + (["--tta"] if tta else [])
    assert main(argv) == 0
    counts = np.bincount(want.ravel(), minlength=3)
    expect = ", ".join(f"class {k}: {n} px" for k, n in enumerate(counts) if n and k > 0)
    assert 0 < counts[0] < want.size and capsys.readouterr().out.startswith(expect)


@pytest.mark.parametrize("argv,message", [
    (["detect", "{d}/seg.cnnkit", "{d}/scene.png"], "not a grid detector"),
    (["segment", "{d}/det.cnnkit", "{d}/scene.png"], "not a segmenter"),
    (["detect", "{d}/det.cnnkit", "{d}/missing.png"], "image not found"),
    (["detect", "{d}/nothing.cnnkit", "{d}/scene.png"], "model file not found"),
    (["detect", "{d}/det.cnnkit", "{d}/scene.png", "--score-threshold", "2"],
     "--score-threshold must be"),
    (["segment", "{d}/seg.cnnkit", "{d}/rgb.png", "--out", "{d}/no/such/dir/x.png"],
     "does not exist"),
    (["segment", "{d}/seg.cnnkit", "{d}/rgb.png", "--background-below", "1.5"],
     "--background-below must be"),
])
def test_mistakes_are_one_line_with_status_2(files, capsys, argv, message):
    d, _ = files
    assert main([a.format(d=d) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("cnnkit")
    assert "error:" in err[0]


def test_boxes_are_drawn_where_the_detections_are():
    from cnnkit.detection.draw import _COLOURS, draw_detections

    img = np.zeros((40, 40), np.uint8)
    det = {"boxes": np.array([[10.0, 20.0, 30.0, 35.0]]), "scores": np.array([0.9]),
           "classes": np.array([3])}
    pic = draw_detections(img, det, [str(i) for i in range(10)], scale=2)
    assert pic.shape == (80, 80, 3)
    assert tuple(pic[50, 20]) == _COLOURS[3]  # left edge (x1 = 10 -> 20), inside y-range
    assert tuple(pic[55, 40]) == (0, 0, 0)  # the box's inside is untouched
