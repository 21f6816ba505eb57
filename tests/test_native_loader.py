"""The one loader of the C helpers (kernels/native/loader.py): the ABI version check refuses a
library built for other signatures (a tiny compiled library, and the real one against a
changed expected version), the NumPy path then runs; the CPU variant chosen matches the CPU's
flags (read from /proc/cpuinfo, not from cnnkit); and setup.py builds portable variants
(no -march=native unless CNNKIT_NATIVE_MARCH=native asks, a plain build off x86-64)."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import warnings
from pathlib import Path

import numpy as np
import pytest

from cnnkit.kernels import conv as KC
from cnnkit.kernels import native
from cnnkit.kernels.native import loader

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
built = pytest.mark.skipif(native.library_path() is None, reason="native helper not built")


def _compile(tmp_path: Path, stem: str, body: str) -> Path:
    """A shared library ``stem`` + the extension suffix compiled from C ``body``."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src = tmp_path / f"{stem}.c"
    src.write_text(body)
    out = tmp_path / f"{stem}{SUFFIX}"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return out


def test_refuses_a_library_with_another_abi_version(tmp_path):
    _compile(tmp_path, "_fake", "int cnnkit_abi_version(void) { return 999; }\n"
                                "int cnnkit_cpu_level(void) { return 0; }\n"
                                "int cnk_one(void) { return 1; }\n")
    lib = loader.NativeLibrary("_fake", {"cnk_one": (ctypes.c_int, [])}, folder=tmp_path)
    with pytest.warns(RuntimeWarning, match="ABI version 999, expected"):
        assert lib.load() is None
    assert not lib.available() and lib.variant() is None
    ok = loader.NativeLibrary("_fake", {"cnk_one": (ctypes.c_int, [])}, folder=tmp_path,
                              abi_version=999)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ok.load().cnk_one() == 1 and ok.variant() == "baseline"


def test_refuses_a_library_without_the_version_or_a_function(tmp_path):
    _compile(tmp_path, "_old", "int cnk_one(void) { return 1; }\n")
    with pytest.warns(RuntimeWarning, match="cnnkit_abi_version"):
        assert loader.NativeLibrary("_old", {}, folder=tmp_path).load() is None
    if native.library_path() is not None:
        lib = loader.NativeLibrary("_conv", {"cnk_no_such_kernel": (None, [])},
                                   folder=native.library_path().parent)
        with pytest.warns(RuntimeWarning, match="cnk_no_such_kernel"):
            assert lib.load() is None


@built
def test_abi_mismatch_falls_back_to_numpy(monkeypatch):
    """The real conv library against another expected version: refused with a warning, and
    conv_forward gives the float64 NumPy result on its NumPy path."""
    monkeypatch.setattr(native.conv._LIB, "abi_version", loader.ABI_VERSION + 1)
    for key, value in (("loaded", False), ("lib", None), ("variant", None), ("enabled", None)):
        monkeypatch.setitem(native._state, key, value)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 9, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="not usable"):
        assert native._load() is None
    assert not native.available()
    z, _ = KC.conv_forward(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1))
    ref, _ = KC.conv_forward(x.astype(np.float64), w.astype(np.float64), None, (1, 1),
                             ((1, 1), (1, 1)), (1, 1))
    np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-4)


@built
@pytest.mark.parametrize("mod", [native.conv, native.norm], ids=["conv", "norm"])
def test_each_build_exports_the_abi_version(mod):
    for name, _, _ in loader.VARIANTS:
        path = mod._LIB.path(name)
        if path is None:
            continue
        lib = ctypes.CDLL(str(path))
        assert lib.cnnkit_abi_version() == loader.ABI_VERSION, path.name
        assert lib.cnnkit_cpu_level() in (0, 1, 2)


def test_pick_variants():
    everything = {"avx512", "avx2", "baseline"}
    assert loader.pick_variants(2, everything) == ["avx512", "avx2", "baseline"]
    assert loader.pick_variants(1, everything) == ["avx2", "baseline"]
    assert loader.pick_variants(0, everything) == ["baseline"]
    assert loader.pick_variants(2, {"baseline", "avx2"}) == ["avx2", "baseline"]
    assert loader.pick_variants(2, everything, cap="avx2") == ["avx2", "baseline"]
    assert loader.pick_variants(2, everything, cap="baseline") == ["baseline"]
    assert loader.pick_variants(1, {"avx512"}) == []
    # a library slower than NumPy at baseline: no baseline where faster variants were built
    assert loader.pick_variants(0, everything, baseline_fallback=False) == []
    assert loader.pick_variants(1, everything, baseline_fallback=False) == ["avx2"]
    assert loader.pick_variants(0, {"baseline"}, baseline_fallback=False) == ["baseline"]
    assert loader.pick_variants(0, everything, "baseline", baseline_fallback=False) == [
        "baseline"]


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@built
@pytest.mark.parametrize("mod", [native.conv, native.norm], ids=["conv", "norm"])
def test_dispatch_selects_the_cpus_variant(mod):
    """The variant loaded is the best one built that the CPU's flags allow."""
    if not mod.available():
        pytest.skip("native helper switched off")
    flags = _cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo")
    level = 0
    if {"avx2", "fma"} <= flags:
        level = 2 if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags else 1
    built_now = {name for name, _, _ in loader.VARIANTS if mod._LIB.path(name) is not None}
    cap = os.environ.get("CNNKIT_NATIVE_VARIANT", "").strip().lower() or None
    expected = loader.pick_variants(level, built_now, cap, mod._LIB.baseline_fallback)
    assert mod.variant() == (expected[0] if expected else None)
    if cap is None and level >= 1 and "avx2" in built_now:
        assert mod.variant() in ("avx2", "avx512")  # never the slow baseline on such a CPU


@built
def test_baseline_variant_on_request():
    """CNNKIT_NATIVE_VARIANT=baseline loads the baseline build, whose kernels agree."""
    code = ("import numpy as np; from cnnkit.kernels import native, conv as K; "
            "r = np.random.default_rng(0); x = r.standard_normal((2, 8, 8, 16), np.float32); "
            "w = r.standard_normal((3, 3, 16, 16), np.float32); "
            "z = K.conv_forward(x, w, None, (1, 1), ((1, 1),) * 2, (1, 1))[0]; "
            "ref = K.conv_forward(x.astype(float), w.astype(float), None, (1, 1), "
            "((1, 1),) * 2, (1, 1))[0]; "
            "print(native.variant(), native.norm.variant(), "
            "float(np.abs(z - ref).max() / np.abs(ref).max()))")
    env = {**os.environ, "CNNKIT_NATIVE_VARIANT": "baseline", "CNNKIT_NATIVE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[:2] == ["baseline", "baseline"]
    assert float(out[2]) < 1e-5


def _setup_module():
    path = ROOT / "setup.py"
    if not path.is_file():
        pytest.skip("setup.py not in this checkout")
    spec = importlib.util.spec_from_file_location("cnnkit_setup_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() runs only under __main__
    return module


def test_setup_builds_portable_variants():
    setup = _setup_module()
    x86 = setup.variant_flags("x86_64", env={})
    assert set(x86) == {suffix for _, suffix, _ in loader.VARIANTS}
    assert not any("-march=native" in f or "-mtune=native" in f
                   for flags in x86.values() for f in flags)
    assert not any(f.startswith("-mavx") for f in x86[""])  # the baseline build
    assert "-mavx2" in x86["_avx2"] and "-mavx512f" in x86["_avx512"]
    assert setup.variant_flags("aarch64", env={}) == {"": []}
    assert setup.variant_flags("x86_64", env={"CNNKIT_NATIVE_MARCH": "native"}) == {
        "": ["-march=native"]}
    names = sorted(e.name for e in setup.extensions("x86_64", env={}))
    assert names == sorted(f"cnnkit.kernels.native.{stem}{suffix}"
                           for stem in ("_conv", "_norm", "_qconv", "_qarith", "_dense")
                           for _, suffix, _ in loader.VARIANTS)
    for ext in setup.extensions("x86_64", env={}):
        assert not any("native" in f for f in ext.extra_compile_args), ext.name
        assert all((ROOT / s).is_file() for s in ext.sources)


@built
@pytest.mark.parametrize("mod", [native.conv, native.norm, native.dense],
                         ids=["conv", "norm", "dense"])
def test_baseline_build_has_no_vector_extensions(mod):
    """The x86-64 baseline build uses no AVX register (ymm / zmm) anywhere: it runs on any
    x86-64 CPU. (A CNNKIT_NATIVE_MARCH=native build has no variants next to it: skipped.)"""
    objdump = shutil.which("objdump")
    if objdump is None or mod._LIB.path("avx2") is None:
        pytest.skip("no objdump, or not a portable x86-64 build")
    text = subprocess.run([objdump, "-d", str(mod._LIB.path())], capture_output=True,
                          text=True, check=True).stdout
    assert "%ymm" not in text and "%zmm" not in text
    avx2 = subprocess.run([objdump, "-d", str(mod._LIB.path("avx2"))], capture_output=True,
                          text=True, check=True).stdout
    assert "%ymm" in avx2  # the variant does use them
