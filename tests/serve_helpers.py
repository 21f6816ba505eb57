"""Shared tools of the serving tests: small models saved to disk and a real server process
(``cnnkit serve``) on a free loopback port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"


def tiny_cnn(seed: int = 0, width: int = 8, classes: int = 10) -> Any:
    """A small digits CNN (random weights): rescale, two conv blocks, dense, classes."""
    from cnnkit import layers, random
    from cnnkit.models import Sequential

    random.seed(seed)
    model = Sequential([
        layers.Input((28, 28, 1)), layers.Rescaling(1 / 255.0),
        layers.Conv2D(width, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(2 * width, 3, use_bias=False), layers.BatchNormalization(),
        layers.ReLU(), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(32, activation="relu"), layers.Dense(classes)], name="tiny_cnn")
    return model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def post(url: str, body: bytes, ctype: str, timeout: float = 30) -> tuple[int, dict, Any]:
    """(status, headers, decoded JSON) of a POST, errors included."""
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def png_bytes(img: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(img, np.uint8).squeeze(-1)).save(buf, format="PNG")
    return buf.getvalue()


@contextlib.contextmanager
def server(models: list[str], *options: str, ready_s: float = 60) -> Iterator[dict]:
    """A ``cnnkit serve`` process; yields {"url", "proc", "log"}; SIGTERM at the end."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", CNNKIT_DEBUG="0")
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"cnnkit-serve-test-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cnnkit.cli", "serve", *models,
                                 "--port", str(port), "--log-level", "info", *options],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    info = {"url": url, "proc": proc, "log": log}
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode}): "
                                   f"{log.read_text()[-2000:]}")
            try:
                if get(url + "/readyz", 2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not get ready: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.unlink(missing_ok=True)
