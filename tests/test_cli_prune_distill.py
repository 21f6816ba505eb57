"""``cnnkit prune`` and ``cnnkit distill`` end to end on the embedded digits (tiny models, one
epoch), and their one-line errors with exit status 2."""

import numpy as np
import pytest

from cnnkit import layers, zoo
from cnnkit import random as crandom
from cnnkit.cli import main
from cnnkit.models import Sequential, load_model


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("prune_cli")
    crandom.seed(0)
    zoo.get("mnist_cnn", width=4).save(d / "m.cnnkit")
    Sequential([layers.Input((32, 32, 3)), layers.Conv2D(2, 3), layers.Flatten(),
                layers.Dense(10)]).save(d / "rgb.cnnkit")
    return d


def _rows(text):
    return {line[:18].strip(): line[18:].split() for line in text.splitlines()}


def test_prune_channels_fine_tunes_and_writes_a_smaller_model(small, capsys):
    out = small / "p.cnnkit"
    assert main(["prune", str(small / "m.cnnkit"), "--channels", "0.5", "--fine-tune-epochs",
                 "1", "--out", str(out), "--quiet", "--train-subset", "256"]) == 0
    rows = _rows(capsys.readouterr().out)
    before, after = (int(v.replace(",", "")) for v in rows["parameters"][:2])
    assert before == zoo.get("mnist_cnn", width=4).count_params()
    model = load_model(out)
    assert model.count_params() == after < before / 3
    assert [la.filters for la in model.layers if isinstance(la, layers.Conv2D)] == [2, 2, 4, 4]
    assert {"multiply-adds", "file bytes", "latency ms", "accuracy"} <= set(rows)


def test_prune_sparsity_writes_a_sparse_file(small, capsys):
    out = small / "s.cnnkit"
    assert main(["prune", str(small / "m.cnnkit"), "--sparsity", "0.8",
                 "--fine-tune-epochs", "0", "--out", str(out)]) == 0
    model = load_model(out)
    kernels = [w for w in model.weights if w.name.endswith("kernel")]
    zeros = sum(int((w.data == 0).sum()) for w in kernels) / sum(w.size for w in kernels)
    assert zeros == pytest.approx(0.8, abs=0.01)
    assert out.stat().st_size < (small / "m.cnnkit").stat().st_size / 2


def test_distill_trains_a_student_from_a_teacher(small, capsys):
    out = small / "student.cnnkit"
    assert main(["distill", "--teacher", str(small / "m.cnnkit"), "--student", "mnist_cnn",
                 "--student-width", "2", "--epochs", "1", "--out", str(out), "--quiet",
                 "--train-subset", "256"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[""][:2] == ["teacher", "student"]
    student = load_model(out)
    assert student.count_params() == zoo.get("mnist_cnn", width=2).count_params()
    x = np.zeros((1, 28, 28, 1), np.float32)
    assert student.predict(x).shape == (1, 10)


@pytest.mark.parametrize("args,message", [
    (["prune", "{d}/none.cnnkit", "--channels", "0.5", "--out", "{d}/o.cnnkit"],
     "model file not found"),
    (["prune", "{d}/m.cnnkit", "--channels", "0.5", "--sparsity", "0.5", "--out",
      "{d}/o.cnnkit"], "exactly one of --channels"),
    (["prune", "{d}/m.cnnkit", "--channels", "0", "--out", "{d}/o.cnnkit"],
     "--channels must be > 0"),
    (["prune", "{d}/m.cnnkit", "--channels", "0.5", "--out", "{d}"], "is a folder"),
    (["prune", "{d}/m.cnnkit", "--channels", "0.5", "--out", "{d}/no/o.cnnkit"],
     "does not exist"),
    (["prune", "{d}/rgb.cnnkit", "--channels", "0.5", "--out", "{d}/o.cnnkit"],
     "expects 32x32x3"),
    (["prune", "{d}/m.cnnkit", "--channels", "0.5", "--importance", "x", "--out",
      "{d}/o.cnnkit"], "invalid choice"),
    (["distill", "--teacher", "{d}/m.cnnkit", "--student", "nonet", "--out", "{d}/o.cnnkit"],
     "unknown architecture"),
    (["distill", "--teacher", "{d}/m.cnnkit", "--student", "lenet5", "--student-width", "2",
      "--out", "{d}/o.cnnkit"], "takes no 'width' option"),
    (["distill", "--teacher", "{d}/m.cnnkit", "--alpha", "2", "--out", "{d}/o.cnnkit"],
     "--alpha must be"),
    (["distill", "--student", "mnist_cnn", "--out", "{d}/o.cnnkit"], "--teacher"),
])
def test_mistakes_are_one_line_with_status_2(small, capsys, args, message):
    argv = [a.format(d=small) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1], err
    assert not (small / "o.cnnkit").exists()


@pytest.mark.parametrize("cmd,options", [
    ("prune", ["--channels", "--sparsity", "--importance", "--steps", "--fine-tune-epochs",
               "--out", "--dataset", "--train-subset"]),
    ("distill", ["--teacher", "--student", "--student-width", "--temperature", "--alpha",
                 "--epochs", "--out"]),
])
def test_help_lists_the_options(capsys, cmd, options):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert all(o in text for o in options)
