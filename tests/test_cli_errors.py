"""The command line never shows a traceback: every mistake (bad option value, missing or
damaged file, model that does not fit the data, output path that cannot be written) is one
line on stderr naming the option or file, exit status 2, caught before any training starts.
Each case runs ``python -m cnnkit.cli`` in a child process, as a user would."""

import gzip
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cnnkit import layers
from cnnkit.cli import checks
from cnnkit.models import Sequential

CLI = [sys.executable, "-m", "cnnkit.cli"]


def cli(*args, cwd=None):
    env = dict(os.environ, CNNKIT_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("CNNKIT_DEBUG", None)
    try:
        return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=120, check=False)
    except subprocess.TimeoutExpired:  # a mistake not caught before training: fail this case
        return subprocess.CompletedProcess(args, -9, "", "still running after 120 s")


def _model(path, input_shape, head):
    model = Sequential([layers.Input(input_shape), *head, layers.Dense(3)], name=path.stem)
    model.save(path)
    return path


def _png(path, shape):
    pil = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    pil.fromarray(np.full(shape, 128, np.uint8)).save(path)
    return path


def _idx_dir(d, content):
    """A --data-dir holding the four IDX file names with ``content(stem)`` as bytes."""
    d.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (d / f"{stem}.gz").write_bytes(content(stem))
    return d


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    """Every file a case needs, made once: tiny models, images, folders, IDX folders."""
    d = tmp_path_factory.mktemp("cli_errors")
    def pool():
        return [layers.Conv2D(2, 3), layers.GlobalAveragePooling2D()]

    files = {
        "gray": _model(d / "gray.cnnkit", (28, 28, 1), pool()),
        "rgb": _model(d / "rgb.cnnkit", (28, 28, 3), pool()),
        "fcn": _model(d / "fcn.cnnkit", (None, None, 1), pool()),
        "vector": _model(d / "vector.cnnkit", (8,), []),
        "img": _png(d / "img.png", (20, 20)),
        "tiny": _png(d / "tiny.png", (1, 1)),
    }
    raw = files["gray"].read_bytes()
    for name, data in (("text.cnnkit", b"just some text\n"), ("trunc.cnnkit", raw[:len(raw) // 2]),
                       ("badhdr.cnnkit", b"\0\0\0\0" + raw[4:]), ("notimg.png", b"hello"),
                       ("truncimg.png", files["img"].read_bytes()[:40]), ("plain.txt", b"x")):
        files[name.replace(".", "_")] = d / name
        (d / name).write_bytes(data)
    for c in ("a", "b"):  # 2 images: too few for a 20% test split
        (d / "small" / c).mkdir(parents=True)
        _png(d / "small" / c / "x.png", (8, 8))
    for c in ("a", "b", "c"):  # 6 images: 1 for testing, 5 for training
        (d / "six" / c).mkdir(parents=True)
        for i in range(2):
            _png(d / "six" / c / f"{i}.png", (8, 8))
    (d / "empty").mkdir()
    (d / "noimages" / "a").mkdir(parents=True)
    (d / "noimages" / "a" / "readme.txt").write_text("no images here")
    (d / "broken" / "a").mkdir(parents=True)
    (d / "broken" / "a" / "bad.png").write_bytes(b"not a png")
    files.update(small=d / "small", empty=d / "empty", noimages=d / "noimages",
                 broken=d / "broken", six=d / "six", dir=d, missing=d / "missing.cnnkit")
    from cnnkit.io import save_safetensors

    files["weights"] = d / "w.safetensors"
    save_safetensors({"conv1.weight": np.zeros((2, 3), np.float32)}, files["weights"])
    files["sha"] = _idx_dir(d / "idx_sha", lambda stem: gzip.compress(b"wrong data"))
    files["truncgz"] = _idx_dir(d / "idx_trunc", lambda stem: gzip.compress(b"x" * 999)[:20])
    files["notgz"] = _idx_dir(d / "idx_notgz", lambda stem: b"plain text, not gzip")
    return files


# (arguments, what the one line must contain); {name} is a path from the fixture
CASES = [
    # model files
    (["evaluate", "{badhdr_cnnkit}"], "{badhdr_cnnkit}"),
    (["evaluate", "{trunc_cnnkit}"], "{trunc_cnnkit}"),
    (["evaluate", "{text_cnnkit}"], "{text_cnnkit}"),
    (["evaluate", "{missing}"], "model file not found: {missing}"),
    (["evaluate", "{dir}"], "{dir} is a directory"),
    (["summary", "{text_cnnkit}"], "{text_cnnkit}"),
    (["summary", "{missing}"], "model file not found"),
    (["summary", "{gray}", "--input-shape", "28", "28", "1"], "--input-shape"),
    (["predict", "{missing}", "{img}"], "model file not found"),
    # model against data
    (["evaluate", "{rgb}"], "expects 28x28x3 images, data set 'mnist5k' has 28x28x1"),
    (["evaluate", "{vector}"], "{vector}"),
    (["evaluate", "{gray}", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["evaluate", "{fcn}", "--dataset", "{small}"], "{small}"),
    (["train", "--model", "{rgb}"], "--model {rgb}: model 'rgb' expects 28x28x3"),
    (["train", "--model", "{fcn}"], "--model {fcn}: model 'fcn' scores 3 classes"),
    (["train", "--model", "{missing}"], "model file not found"),
    (["train", "--model", "vgg16"], "architecture 'vgg16' cannot take 28x28x1 input"),
    (["train", "--model", "textcnn"], "--model textcnn"),
    (["train", "--model", "siamese"], "--model siamese"),
    (["train", "--model", "unet"], "--model unet"),
    (["train", "--model", "resnet9000"], "unknown architecture 'resnet9000'"),
    (["train", "--dataset", "{small}", "--image-size", "1", "1"], "--image-size 1 1"),
    # predict
    (["predict", "{fcn}", "{tiny}"], "{tiny}"),
    (["predict", "{vector}", "{img}"], "{vector}"),
    (["predict", "{gray}", "{notimg_png}"], "{notimg_png} is not a readable image"),
    (["predict", "{gray}", "{truncimg_png}"], "{truncimg_png}"),
    (["predict", "{gray}", "{dir}/nope.png"], "image not found: {dir}/nope.png"),
    (["predict", "{gray}", "{dir}"], "{dir} is a directory"),
    (["predict", "{gray}", "{img}", "--top-k", "0"], "--top-k"),
    (["predict", "{gray}"], "images"),
    # data sets
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["train", "--dataset", "{plain_txt}"], "--dataset {plain_txt}"),
    (["train", "--dataset", "{small}"], "--dataset {small}: 2 image(s) are too few"),
    (["train", "--dataset", "{six}", "--image-size", "8", "8", "--model", "simple_cnn",
      "--val-split", "0.05"], "--val-split 0.05 of 5 training images"),
    (["train", "--dataset", "{empty}"], "{empty}"),
    (["train", "--dataset", "{noimages}"], "{noimages}"),
    (["train", "--dataset", "{broken}"], "bad.png"),
    (["train", "--dataset", "mnist", "--data-dir", "{dir}/nowhere"], "--data-dir {dir}/nowhere"),
    (["train", "--dataset", "mnist", "--data-dir", "{sha}"], "--data-dir {sha}"),
    (["train", "--dataset", "mnist", "--data-dir", "{truncgz}"], "--data-dir {truncgz}"),
    (["train", "--dataset", "fashion-mnist", "--data-dir", "{notgz}"], "--data-dir {notgz}"),
    (["train", "--data-dir", "{sha}"], "--data-dir"),
    (["train", "--image-size", "32", "32"], "--image-size"),
    (["train", "--grayscale"], "--grayscale"),
    # output folders
    (["train", "--out", "{img}"], "--out {img}: exists and is not a folder"),
    (["train", "--out", "{img}/run"], "--out {img}/run"),
    (["evaluate", "{gray}", "--out", "{img}"], "--out {img}"),
    # option values
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--seed", str(2**32)], "--seed"),
    (["train", "--seed", "x"], "--seed"),
    (["train", "--lr", "inf"], "--lr must be"),
    (["train", "--lr", "nan"], "--lr must be"),
    (["train", "--lr", "0"], "--lr must be"),
    (["train", "--lr", "100"], "--lr must be"),
    (["train", "--lr", "fast"], "--lr must be"),
    (["train", "--val-split", "1"], "--val-split must be"),
    (["train", "--val-split", "nan"], "--val-split must be"),
    (["train", "--val-split", "-0.1"], "--val-split must be"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs"], "--epochs"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--batch-size", "1.5"], "--batch-size"),
    (["train", "--image-size", "0", "8"], "--image-size"),
    (["train", "--image-size", "5000", "5000"], "--image-size"),
    (["train", "--augment", "lots"], "--augment"),
    (["train", "--schedule", "fast"], "--schedule"),
    (["train", "--optimizer", "adamm"], "--optimizer"),
    (["train", "--no-such-option"], "--no-such-option"),
    (["summary", "textcnn", "--input-shape", "28", "28", "1"], "architecture 'textcnn'"),
    (["summary", "mnist_cnn", "--input-shape", "28"], "--input-shape 28"),
    (["summary", "mnist_cnn", "--input-shape", "3", "3", "1"], "cannot take 3x3x1 input"),
    (["summary", "mnist_cnn", "--input-shape", "0", "28", "1"], "--input-shape"),
    (["summary", "siamese", "--classes", "4"], "--classes 4"),
    (["summary", "--classes", "4"], "--classes"),
    (["summary", "nonexistent_arch"], "unknown architecture 'nonexistent_arch'"),
    (["bogus-command"], "invalid choice"),
    # export and convert (output names relative: nothing may appear in the working folder)
    (["export", "{gray}", "out.keras"], "out.keras: export writes ONNX files"),
    (["export", "{missing}", "o.onnx"], "model file not found: {missing}"),
    (["export", "{weights}", "o.onnx"], "give --architecture NAME"),
    (["export", "{gray}", "o.onnx", "--opset", "8"], "--opset"),
    (["export", "{gray}", "o.onnx", "--layout", "nwhc"], "--layout"),
    (["export", "{gray}", "o.onnx", "--architecture", "resnet20"], "--architecture"),
    (["convert", "{gray}", "o.pth"], "o.pth: cnnkit does not write .pth"),
    (["convert", "{gray}", "o.tflite"], "unknown model file type '.tflite'"),
    (["convert", "{plain_txt}", "o.onnx"], "unknown model file type '.txt'"),
    (["convert", "{gray}", "nowhere/o.onnx"], "the folder nowhere does not exist"),
    (["convert", "{gray}", "{gray}"], "would overwrite the input"),
    (["convert", "{gray}", "o.cnnkit", "--opset", "13"], "apply to .onnx output"),
    (["convert", "{text_cnnkit}", "o.onnx"], "{text_cnnkit}"),
    (["convert", "{weights}", "o.onnx", "--architecture", "resnet9000"],
     "unknown architecture 'resnet9000'"),
    (["convert", "{weights}", "o.onnx", "--architecture", "resnet20"],
     "{weights}: state dict does not match"),
]


@pytest.fixture(scope="module")
def results(f, tmp_path_factory):
    """Every case's finished child process, run a few at a time (one per CPU), each in an
    empty working folder of its own: (folder, CompletedProcess) by case index."""
    paths = {k: str(v) for k, v in f.items()}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        jobs = []
        for i, (args, _) in enumerate(CASES):
            cwd = tmp_path_factory.mktemp(f"case{i}")
            jobs.append((cwd, pool.submit(cli, *(a.format(**paths) for a in args), cwd=cwd)))
        return [(cwd, job.result()) for cwd, job in jobs]


@pytest.mark.parametrize("i", range(len(CASES)), ids=[" ".join(a) for a, _ in CASES])
def test_mistake_is_one_line_exit_2(i, f, results):
    paths = {k: str(v) for k, v in f.items()}
    expected = CASES[i][1]
    tmp_path, r = results[i]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("cnnkit"), lines[0]
    assert "error: " in lines[0] and "internal error" not in lines[0], lines[0]
    assert expected.format(**paths) in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == []  # caught before anything was written (no runs/)


def test_plain_cnnkit_prints_short_usage():
    r = cli()
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("usage: cnnkit")
    assert "a command is required" in lines[1]


def test_help_and_version_exit_0():
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("cnnkit ")


def test_summary_huge_input_by_shape_inference():
    """10^10-pixel input: the summary is computed without allocating the 10 TB of weights.
    mnist_cnn by hand: convs 3*3*1*16 + 3*3*16*16 + 3*3*16*32 + 3*3*32*32, four batch norms
    (4 arrays of 16, 16, 32, 32), dense (25000*25000*32)*128 + 128, dense 128*10 + 10."""
    r = cli("summary", "mnist_cnn", "--input-shape", "100000", "100000", "1")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    convs = 9 * (1 * 16 + 16 * 16 + 16 * 32 + 32 * 32)
    bns = 4 * (16 + 16 + 32 + 32)
    dense = 25000 * 25000 * 32 * 128 + 128 + 128 * 10 + 10
    assert f"Total params: {convs + bns + dense:,}" in r.stdout


def test_predict_fully_convolutional_model_at_image_size(f):
    """A model taking any height and width reads each image at its own size."""
    r = cli("predict", f["fcn"], f["img"], "--top-k", "3")
    assert r.returncode == 0, r.stderr
    probs = [float(p.split(":")[1]) for p in r.stdout.split(": ", 1)[1].split(",")]
    assert len(probs) == 3 and abs(sum(probs) - 1) < 2e-3


def test_unwritable_out_folder(tmp_path):
    if os.name != "posix" or os.geteuid() == 0:
        pytest.skip("needs a POSIX user without root's right to write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        r = cli("train", "--out", locked / "run")
    finally:
        locked.chmod(0o700)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"--out {locked / 'run'}: cannot write in {locked}" in r.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses Linux's /proc")
def test_out_folder_that_cannot_be_created(tmp_path):
    """Even root cannot make a folder in /proc: found before the data is read."""
    r = cli("train", "--out", "/proc/cnnkit-test/run", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("cnnkit: error: --out /proc/cnnkit-test/run: cannot write in "
                                "/proc (No such file or directory)")


def test_closed_output_pipe_ends_quietly():
    """`cnnkit summary densenet201 | head -1`: the reader is gone; no traceback, status 1."""
    env = dict(os.environ, CNNKIT_NUM_THREADS="1")
    env.pop("CNNKIT_DEBUG", None)
    p = subprocess.Popen([*CLI, "summary", "densenet201"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    p.stdout.close()  # before the child writes anything
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 1 and err == "", err


def test_internal_error_is_one_line_exit_1(monkeypatch, capsys):
    """A bug (an exception type the library does not document for bad input) says so in one
    line with exit status 1; CNNKIT_DEBUG=1 lets the traceback through."""
    from cnnkit import cli as cli_pkg

    def broken(args):
        raise TypeError("unsupported operand")

    monkeypatch.setitem(cli_pkg.COMMANDS, "summary", broken)
    monkeypatch.delenv("CNNKIT_DEBUG", raising=False)
    assert cli_pkg.main(["summary", "lenet5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cnnkit: internal error: TypeError")
    assert "CNNKIT_DEBUG=1" in err[0]
    monkeypatch.setenv("CNNKIT_DEBUG", "1")
    with pytest.raises(TypeError):
        cli_pkg.main(["summary", "lenet5"])


def test_interrupt_exits_130(monkeypatch, capsys):
    from cnnkit import cli as cli_pkg

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli_pkg.COMMANDS, "summary", interrupted)
    monkeypatch.delenv("CNNKIT_DEBUG", raising=False)
    assert cli_pkg.main(["summary", "lenet5"]) == 130
    assert capsys.readouterr().err.strip() == "cnnkit: interrupted"


def test_memory_budget_reported_before_allocating():
    """The shape-only build gives the weight bytes: 4 copies of mnist_cnn's at 28x28x1 is
    4 * 4 bytes * params; a budget below that is one UsageError naming the option."""
    from cnnkit.cli.errors import UsageError

    model = checks.build_arch("mnist_cnn", (28, 28, 1), 10, "--model mnist_cnn",
                              allocate=False)
    params = sum(int(np.prod(w.shape)) for w in model.weights)
    checks.check_memory(model, "--model mnist_cnn", budget=16 * params)  # fits exactly
    with pytest.raises(UsageError, match="--model mnist_cnn: model 'mnist_cnn' has"):
        checks.check_memory(model, "--model mnist_cnn", budget=16 * params - 1)


def test_shape_only_build_changes_nothing(monkeypatch):
    """The check build before the real one leaves layer names and random numbers alone: the
    real model equals the zoo's own build under the same seed."""
    from cnnkit import random as crandom
    from cnnkit import zoo
    from cnnkit.layers import build_context as base

    monkeypatch.setattr(base, "_name_counts", {})  # fresh layer names, restored afterwards
    crandom.seed(5)
    ref = zoo.get("lenet5", input_shape=(28, 28, 1), classes=10)
    monkeypatch.setattr(base, "_name_counts", {})
    crandom.seed(5)
    got = checks.build_arch("lenet5", (28, 28, 1), 10, "--model lenet5")
    assert [w.name for w in got.weights] == [w.name for w in ref.weights]
    assert all(np.array_equal(a.data, b.data) for a, b in zip(got.weights, ref.weights,
                                                              strict=True))
    assert got.seed == ref.seed


def test_missing_optional_dependency_is_one_line_exit_2(monkeypatch, capsys):
    from cnnkit import cli as cli_pkg

    def needs_pillow(args):
        raise ImportError("reading image files needs Pillow: pip install pillow")

    monkeypatch.setitem(cli_pkg.COMMANDS, "summary", needs_pillow)
    monkeypatch.delenv("CNNKIT_DEBUG", raising=False)
    assert cli_pkg.main(["summary", "lenet5"]) == 2
    assert capsys.readouterr().err == ("cnnkit: error: reading image files needs Pillow: pip "
                                       "install pillow\n")
