"""Durable saves: stale temporaries of killed saves are removed, a kill -9 mid-save keeps the
old file, saving into a missing or unwritable folder fails cleanly, and a file naming a layer
that cnnkit defines outside cnnkit.layers loads in a fresh process."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import cnnkit
from cnnkit import layers
from cnnkit.files import atomic_write, remove_stale_temporaries
from cnnkit.models import Sequential, load_model

ENV = {**os.environ, "CNNKIT_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _small():
    cnnkit.random.seed(0)
    return Sequential([layers.Input((4,)), layers.Dense(3)])


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    target = tmp_path / "m.cnnkit"
    dead = tmp_path / f".m.cnnkit.{_dead_pid()}.abcd1234.tmp"
    old_style = tmp_path / ".m.cnnkit.zzzz9999.tmp"
    alive = tmp_path / f".m.cnnkit.{os.getppid()}.abcd1234.tmp"
    other_target = tmp_path / f".n.cnnkit.{_dead_pid()}.abcd1234.tmp"
    not_ours = tmp_path / ".m.cnnkit.keep.tmp"
    for p in (dead, old_style, alive, other_target, not_ours):
        p.write_bytes(b"partial")
    os.utime(old_style, (time.time() - 3600, time.time() - 3600))
    _small().save(target)
    assert not dead.exists() and not old_style.exists()
    assert alive.exists() and other_target.exists() and not_ours.exists()
    assert load_model(target).count_params() == 15
    assert remove_stale_temporaries(target) == []


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write(b"new, half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_saving_into_a_bad_folder_fails_cleanly(tmp_path):
    m = _small()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        m.save(tmp_path / "missing" / "m.cnnkit")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        m.save(tmp_path / "file" / "m.cnnkit")
    with pytest.raises(IsADirectoryError):
        m.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that can write anywhere")
        with pytest.raises(PermissionError):
            m.save(locked / "m.cnnkit")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


_SAVER = textwrap.dedent("""
    import sys
    import cnnkit
    from cnnkit import layers
    from cnnkit.models import Sequential
    cnnkit.random.seed(int(sys.argv[2]))
    m = Sequential([layers.Input((1000,)), layers.Dense(2000)])  # 8 MB of weights
    m.save(sys.argv[1])
    print("saved", flush=True)
    while True:
        m.save(sys.argv[1])
""")


@pytest.mark.skipif(os.name != "posix", reason="kill -9 is POSIX")
def test_kill_9_mid_save_keeps_old_file_and_next_save_cleans_up(tmp_path):
    target = tmp_path / "big.cnnkit"
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(target), "1"],
                            stdout=subprocess.PIPE, env=ENV, text=True)
    try:
        assert proc.stdout.readline().strip() == "saved"
        deadline = time.time() + 60
        while time.time() < deadline and not list(tmp_path.glob(".big.cnnkit.*.tmp")):
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stdout.close()
    model = load_model(target)  # the last complete save
    assert model.count_params() == 1000 * 2000 + 2000
    # (the temporary may be gone if the kill came just after a rename)
    model.save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["big.cnnkit"]


def test_every_cnnkit_layer_lives_where_the_loader_finds_it():
    """load_model finds classes in cnnkit.layers and cnnkit.models only: none elsewhere."""
    found = {}
    for mi in pkgutil.walk_packages(cnnkit.__path__, "cnnkit."):
        if mi.name.startswith(("cnnkit.layers", "cnnkit.models", "cnnkit.kernels")) \
                or mi.name.endswith(".__main__"):
            continue
        mod = importlib.import_module(mi.name)
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, layers.Layer) \
                    and obj.__module__ == mi.name:
                found[name] = mi.name
    assert found == {}


_ZOO_SAVE = textwrap.dedent("""
    import sys
    import numpy as np
    import cnnkit
    from cnnkit import layers
    from cnnkit.models import Sequential
    from cnnkit.zoo.blocks import AdaptiveAveragePooling2D
    cnnkit.random.seed(0)
    m = Sequential([layers.Input((7, 7, 2)), layers.Conv2D(3, 3),
                    AdaptiveAveragePooling2D(2), layers.Flatten(), layers.Dense(2)])
    x = np.random.default_rng(0).random((2, 7, 7, 2), dtype=np.float32)
    m.save(sys.argv[1])
    np.save(sys.argv[2], m.predict(x))
""")

_ZOO_LOAD = textwrap.dedent("""
    import sys
    import numpy as np
    from cnnkit.models import load_model
    assert "cnnkit.zoo" not in sys.modules
    m = load_model(sys.argv[1])
    x = np.random.default_rng(0).random((2, 7, 7, 2), dtype=np.float32)
    np.testing.assert_array_equal(m.predict(x), np.load(sys.argv[2]))
    print(type(m.layers[1]).__name__)
""")


def test_model_with_a_zoo_layer_loads_in_a_fresh_process(tmp_path):
    path, ref = str(tmp_path / "z.cnnkit"), str(tmp_path / "ref.npy")
    subprocess.run([sys.executable, "-c", _ZOO_SAVE, path, ref], check=True, env=ENV)
    out = subprocess.run([sys.executable, "-c", _ZOO_LOAD, path, ref], check=True, env=ENV,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "AdaptiveAveragePooling2D"


def test_load_never_imports_a_module_the_file_names(tmp_path):
    m = _small()
    m.save(tmp_path / "m.cnnkit")
    import json
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.cnnkit") as z:
        members = {n: z.read(n) for n in z.namelist()}
    import io

    meta = json.loads(np.load(io.BytesIO(members["__meta__.npy"])).tobytes())
    meta["model"]["config"]["layers"][0]["class_name"] = "antigravity"
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), np.uint8))
    members["__meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "bad.cnnkit", "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    with pytest.raises(ValueError, match="unknown layer class 'antigravity'"):
        load_model(tmp_path / "bad.cnnkit")
    assert "antigravity" not in sys.modules


def test_written_files_get_the_umask_mode(tmp_path):
    """A file made by atomic_write has the mode open() would give it (mkstemp's is 0600)."""
    import os

    from cnnkit.files import atomic_write

    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.bin") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
