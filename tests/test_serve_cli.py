"""``cnnkit serve``'s command line: mistakes are one line and exit 2 before any port opens;
``import cnnkit.serve`` and ``cnnkit.monitor`` need no optional package."""

from __future__ import annotations

import subprocess
import sys

import pytest
from serve_helpers import SRC, tiny_cnn

from cnnkit.cli import main
from cnnkit.cli.serve_cmd import model_names


@pytest.mark.parametrize("argv,words", [
    (["serve", "/no/such/model.cnnkit"], "model file not found"),
    (["serve", "MODEL", "--max-batch-size", "0"], "--max-batch-size"),
    (["serve", "MODEL", "--port", "70000"], "--port"),
    (["serve", "MODEL", "--max-wait-ms", "-1"], "--max-wait-ms"),
    (["serve", "MODEL", "--timeout", "0"], "--timeout"),
    (["serve", "a=MODEL", "a=MODEL"], "two models are named 'a'"),
    (["serve", "a:b=MODEL"], "a model name must be"),
])
def test_usage_errors(tmp_path, capsys, argv, words):
    tiny_cnn().save(tmp_path / "m.cnnkit")
    argv = [a.replace("MODEL", str(tmp_path / "m.cnnkit")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_not_a_classifier(tmp_path, capsys):
    from cnnkit import layers
    from cnnkit.models import Sequential

    Sequential([layers.Input((4, 4, 1)), layers.Conv2D(2, 3)]).save(tmp_path / "c.cnnkit")
    assert main(["serve", str(tmp_path / "c.cnnkit")]) == 2
    assert "not an image classifier" in capsys.readouterr().err


def test_model_names():
    got = model_names(["runs/x/model.cnnkit", "digits=/a/b.cnnkit", "/c/lenet.cnnkit"])
    assert list(got) == ["x", "digits", "lenet"]


def test_imports_need_no_optional_package():
    code = ("import sys\n"
            "for m in ('starlette', 'uvicorn', 'multipart', 'python_multipart', 'PIL'):\n"
            "    sys.modules[m] = None\n"
            "import cnnkit, cnnkit.serve, cnnkit.monitor, cnnkit.cli\n"
            "from cnnkit.serve.app import Server\n"
            "try:\n"
            "    Server({})\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'cnnkit[serve]'" in out.stdout
