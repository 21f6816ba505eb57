"""Pictures and the arrays behind them (cnnkit.analysis.inspect / pictures / report):
feature maps against PyTorch, filters and activation maximisation against closed forms,
PCA against an eigen-decomposition, t-SNE's perplexity calibration and cluster separation,
the training curve's held-out and learning-rate panels, `cnnkit explain` and
`cnnkit report`, and the report page in a real headless Chromium (selenium): it loads without
console errors and its screenshot shows the plots."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import torch_or_skip

from cnnkit import layers
from cnnkit.analysis import inspect as ins
from cnnkit.analysis import pictures, plots
from cnnkit.cli import main
from cnnkit.models import Sequential

pytest.importorskip("matplotlib")


def _small_model(seed=0):
    import cnnkit.random as cr

    cr.seed(seed)
    return Sequential([layers.Input((28, 28, 1)), layers.Rescaling(1 / 255, name="scale"),
                       layers.Conv2D(6, 3, activation="relu", name="conv"),
                       layers.MaxPooling2D(2, name="pool"),
                       layers.Conv2D(8, 3, activation="relu", name="conv2"),
                       layers.GlobalAveragePooling2D(name="gap"), layers.Dense(10, name="fc")])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run folder as `cnnkit train` writes it, from a small model fitted for 2 epochs on
    600 embedded MNIST digits."""
    from cnnkit.datasets import mnist5k

    (x, y), _ = mnist5k.load_data()
    x = x[:600].astype(np.float32)
    x = x if x.ndim == 4 else x[..., None]
    model = _small_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y[:600], epochs=2, batch_size=32, validation_split=0.2, verbose=0)
    model.class_names = [str(i) for i in range(10)]
    run = tmp_path_factory.mktemp("run")
    model.save(run / "model.cnnkit")
    history = dict(hist.history, learning_rate=[1e-3, 5e-4])
    (run / "metrics.json").write_text(json.dumps({"dataset": "mnist5k", "history": history,
                                                  "class_names": model.class_names}))
    return run, model, x


def test_feature_maps_match_torch():
    torch = torch_or_skip()
    model = _small_model()
    x = np.random.default_rng(0).uniform(0, 255, (3, 28, 28, 1)).astype(np.float32)
    got = ins.feature_maps(model, x, "conv", batch_size=2)
    conv = model.get_layer("conv")
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2) / 255)
    w = torch.from_numpy(conv.kernel.data).permute(3, 2, 0, 1)
    ref = torch.relu(torch.nn.functional.conv2d(xt, w, torch.from_numpy(conv.bias.data)))
    np.testing.assert_allclose(got, ref.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)


def test_first_layer_filters_are_min_max_scaled_kernels():
    model = _small_model()
    k = model.get_layer("conv").kernel.data
    got = ins.first_layer_filters(model)
    assert got.shape == (6, 3, 3, 1)
    for i in range(6):
        f = k[..., i]
        np.testing.assert_allclose(got[i], (f - f.min()) / (f.max() - f.min()), atol=1e-6)


def test_activation_maximisation_finds_the_filter():
    """One linear 3x3 filter on a 3x3 input: the objective is <k, x> - l2 |x|^2, maximised
    by x = k / (2 l2); gradient ascent must turn towards k and climb."""
    model = Sequential([layers.Input((3, 3, 2)),
                        layers.Conv2D(2, 3, use_bias=False, name="lin")])
    x, trace = ins.activation_maximisation(model, "lin", [1], steps=40, lr=0.05, l2=0.01)
    k = model.get_layer("lin").kernel.data[..., 1]
    cos = float((x[0] * k).sum() / np.linalg.norm(x[0]) / np.linalg.norm(k))
    assert cos > 0.99
    assert trace[-1, 0] > trace[0, 0] and np.all(np.diff(trace[:10, 0]) > 0)


def test_pca_matches_eigenvectors_of_the_covariance():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    got = ins.pca(f, 2)
    c = f - f.mean(0)
    vals, vecs = np.linalg.eigh(c.T @ c)
    ref = c @ vecs[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(got), np.abs(ref), rtol=1e-6, atol=1e-8)


def test_tsne_perplexity_and_separation():
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 10, (3, 10))
    labels = np.repeat(np.arange(3), 30)
    f = centres[labels] + rng.normal(size=(90, 10))
    d2 = ((f[:, None] - f[None]) ** 2).sum(-1)
    p = ins._affinities(d2, 10.0)
    row = np.delete(p[5], 5)
    row = row[row > 0]  # far points underflow to 0 (0 log 0 = 0)
    assert abs(-(row * np.log(row)).sum() - np.log(10.0)) < 1e-3  # entropy = log perplexity
    y, kl = ins.tsne(f, perplexity=10, iterations=300)
    nearest = ((y[:, None] - y[None]) ** 2).sum(-1)
    np.fill_diagonal(nearest, np.inf)
    assert (labels[nearest.argmin(1)] == labels).mean() == 1.0
    assert kl < 1.0


def _not_blank(path, min_std=10):
    from PIL import Image

    img = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    return img.std() > min_std


def test_picture_files(tmp_path, trained_run):
    _, model, x = trained_run
    pictures.plot_feature_maps(model, x[0], "conv", tmp_path / "fm.png")
    pictures.plot_filters(model, tmp_path / "filters.png")
    pictures.plot_activation_maximisation(model, "conv2", [0, 1, 2, 3], tmp_path / "am.png",
                                          steps=8)
    feats = ins.feature_maps(model, x[:120], "gap")
    pictures.plot_embedding(feats, np.arange(120) % 10, tmp_path / "emb.png", "pca")
    for name in ("fm", "filters", "am", "emb"):
        assert _not_blank(tmp_path / f"{name}.png"), name
    with pytest.raises(ValueError, match="feature maps need"):
        pictures.plot_feature_maps(model, x[0], "fc", tmp_path / "no.png")


def test_training_curve_has_held_out_and_learning_rate(monkeypatch, tmp_path):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    plots.plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8],
                        "val_accuracy": [0.4, 0.7], "learning_rate": [0.1, 0.05]},
                       tmp_path / "c.png")
    axes = figures[0].axes
    assert [a.get_title() for a in axes] == ["loss", "metrics", "learning rate"]
    assert [ln.get_label() for ln in axes[0].lines] == ["loss", "held-out loss"]
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), [1.1, 0.7])
    np.testing.assert_array_equal(axes[2].lines[0].get_ydata(), [0.1, 0.05])


def test_cli_explain_writes_the_picture(tmp_path, trained_run, capsys):
    from PIL import Image

    run, _, x = trained_run
    Image.fromarray(x[0, :, :, 0].astype(np.uint8)).save(tmp_path / "digit.png")
    out = tmp_path / "why.png"
    assert main(["explain", str(run / "model.cnnkit"), str(tmp_path / "digit.png"),
                 "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and _not_blank(out)
    img = np.asarray(Image.open(out))
    assert img.shape[1] > 2 * img.shape[0]  # three panels side by side
    assert main(["explain", str(run / "model.cnnkit"), str(tmp_path / "digit.png"),
                 "--method", "integrated", "--out", str(tmp_path / "ig.png")]) == 0
    assert main(["explain", str(run / "model.cnnkit"), str(tmp_path / "digit.png"),
                 "--layer", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no layer named 'nope'" in err
    assert main(["explain", str(run / "model.cnnkit"), str(tmp_path / "digit.png"),
                 "--class", "10"]) == 2
    assert "has 10 classes" in capsys.readouterr().err


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_in_headless_chromium(tmp_path, trained_run, capsys):
    run, _, _ = trained_run
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--max-images", "200", "--out", str(out)]) == 0
    page = out.read_text()
    for part in ("Training curves", "Confusion matrix", "Per-class accuracy", "Worst mistakes",
                 "FLOPs per sample", "Araujo"):
        assert part in page, part
    assert main(["report", str(tmp_path / "missing")]) == 2
    browser, driver = _chromium(), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("chromium and chromedriver are not installed (Debian: apt-get install "
                    "chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1600"):
        opts.add_argument(arg)
    opts.binary_location = browser
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=opts, service=Service(driver))
    try:
        d.get(out.resolve().as_uri())
        widths = d.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        errors = [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        shot = tmp_path / "shot.png"
        d.save_screenshot(str(shot))
    finally:
        d.quit()
    assert len(widths) == 3 and min(widths) > 100  # curves, confusion matrix, mistakes
    assert errors == []
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int32)
    colourful = (img.max(-1) - img.min(-1)) > 60  # plot colours, not grey text on white
    assert colourful.mean() > 0.02, colourful.mean()
    assert _not_blank(shot)
