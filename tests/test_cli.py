"""The command line: errors are one line with exit status 2; train, evaluate, predict and
summary work end to end (predict checked on real digits with a real pretrained checkpoint)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import shared_path

from cnnkit import layers
from cnnkit.cli import main
from cnnkit.datasets import mnist5k
from cnnkit.io import load_sequential_state_dict, load_state_dict
from cnnkit.models import Sequential


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args,pattern", [
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["train", "--model", "resnet9000"], "unknown architecture 'resnet9000'"),
    (["train", "--epochs", "zero"], "expected a positive integer, got 'zero'"),
    (["train", "--epochs", "-3"], "expected a positive integer"),
    (["train", "--lr", "-1"], "--lr must be > 0"),
    (["train", "--augment", "lots"], "unknown --augment 'lots'"),
    (["train", "--optimizer", "adamm"], "unknown optimizer 'adamm'"),
    (["evaluate", "missing.cnnkit"], "model file not found: missing.cnnkit"),
    (["predict", "missing.cnnkit", "x.png"], "model file not found"),
    (["summary", "nonexistent_arch"], "unknown architecture 'nonexistent_arch'"),
    (["bogus-command"], "invalid choice"),
])
def test_user_errors_are_one_line_exit_2(args, pattern, capsys):
    code, out, err = run(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert pattern in lines[0] and "Traceback" not in err


def test_not_a_model_and_not_an_image(tmp_path, capsys, digit_model):
    bad = tmp_path / "bad.cnnkit"
    bad.write_text("not a model")
    code, _, err = run(["evaluate", str(bad)], capsys)
    assert code == 2 and "not a readable cnnkit model file" in err
    txt = tmp_path / "notes.png"
    txt.write_text("hello")
    code, _, err = run(["predict", str(digit_model), str(txt)], capsys)
    assert code == 2 and "not a readable image" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["predict", str(digit_model), str(tmp_path / "nope.png")], capsys)
    assert code == 2 and "image not found" in err


def test_help_is_complete():
    for cmd in ([], ["train"], ["evaluate"], ["predict"], ["summary"]):
        r = subprocess.run([sys.executable, "-m", "cnnkit.cli", *cmd, "--help"],
                           capture_output=True, text=True, check=False)
        assert r.returncode == 0 and "usage: cnnkit" in r.stdout
    r = subprocess.run([sys.executable, "-m", "cnnkit.cli", "train", "--help"],
                       capture_output=True, text=True, check=False)
    for opt in ("--model", "--dataset", "--epochs", "--batch-size", "--optimizer", "--lr",
                "--schedule", "--augment", "--val-split", "--seed", "--out"):
        assert opt in r.stdout


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory):
    """The real pretrained digit recognizer (../shared/weights) saved as a cnnkit model with
    its input normalisation inside, so raw 0-255 pixels go in."""
    sd = load_state_dict(shared_path("weights", "digit_recognizer_handwriting_model.pth"))
    blocks = []
    for filters in (32, 64, 128):
        blocks += [layers.Conv2D(filters, 3, padding="same", activation="relu"),
                   layers.MaxPooling2D(2)]
    model = Sequential([layers.Input((28, 28, 1)),
                        layers.Rescaling(1 / (255 * 0.3081), offset=-0.1307 / 0.3081),
                        *blocks, layers.Flatten(), layers.Dense(256, activation="relu"),
                        layers.Dense(10)])
    load_sequential_state_dict(model, sd)
    model.class_names = [str(i) for i in range(10)]
    path = tmp_path_factory.mktemp("digit") / "digits.cnnkit"
    model.save(path)
    return path


def test_predict_real_digits(tmp_path, capsys, digit_model):
    pil = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    _, (x, y) = mnist5k.load_data()
    paths = []
    for i in range(5):
        p = tmp_path / f"digit{i}.png"
        pil.fromarray(x[i]).resize((56, 56)).save(p)  # a larger image: resized back to 28
        paths.append(str(p))
    code, out, _ = run(["predict", str(digit_model), *paths, "--top-k", "2"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 5
    for line, label in zip(lines, y[:5], strict=True):
        top = line.split(": ", 1)[1].split(",")[0]
        assert top.split(":")[0].strip() == str(label), line
        assert float(top.split(":")[1]) > 0.5


def test_predict_photographs(capsys, digit_model):
    """Colour photographs are converted to grayscale and resized: top-k lines, probabilities
    that sum to at most 1."""
    images = [str(shared_path("images", n)) for n in ("chelsea.png", "grace_hopper.jpg")]
    code, out, _ = run(["predict", str(digit_model), *images, "--top-k", "3"], capsys)
    assert code == 0
    for line in out.strip().splitlines():
        probs = [float(p.split(":")[1]) for p in line.split(": ", 1)[1].split(",")]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)
        assert 0 < sum(probs) <= 1.0001


def test_train_evaluate_summary_end_to_end(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, _ = run(["train", "--model", "simple_cnn", "--epochs", "1", "--quiet",
                        "--augment", "none", "--schedule", "none", "--out", str(out_dir)],
                       capsys)
    assert code == 0
    assert "test accuracy:" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.85  # one epoch of 4,000 real digits
    assert (out_dir / "model.cnnkit").is_file() and (out_dir / "history.csv").is_file()
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    assert (out_dir / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run(["evaluate", str(out_dir / "model.cnnkit"), "--out", str(out_dir)],
                       capsys)
    assert code == 0
    acc = float(out.split("accuracy: ")[1].split()[0])
    assert abs(acc - metrics["test_accuracy"]) < 1e-9
    ev = json.loads((out_dir / "evaluation.json").read_text())
    cm = np.array(ev["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 1000 and cm.sum(axis=1).tolist() == [100] * 10
    assert (out_dir / "confusion_matrix.png").is_file()
    code, out, _ = run(["summary", str(out_dir / "model.cnnkit")], capsys)
    assert code == 0 and "Total params: 421,642" in out  # seed 004's SimpleCNN


def test_summary_of_architecture(capsys):
    code, out, _ = run(["summary", "lenet5"], capsys)
    assert code == 0 and "Total params: 61,706" in out
    code, out, _ = run(["summary", "--list"], capsys)
    assert code == 0 and "mnist_cnn" in out.split()


@pytest.mark.parametrize("kind", ["none", "light", "light-erase", "strong", "elastic", "flip",
                                  "flip-erase", "standard"])
def test_every_augmentation_runs_and_keeps_shapes(kind):
    from cnnkit.cli import augmentation

    x = np.random.default_rng(0).integers(0, 255, (4, 28, 28, 1)).astype(np.float32)
    aug = augmentation(kind, x.shape[1:])
    if aug is None:
        assert kind == "none"
        return
    out, y = aug(x, np.arange(4), rng=np.random.default_rng(1))
    assert out.shape == x.shape and y.tolist() == [0, 1, 2, 3]
