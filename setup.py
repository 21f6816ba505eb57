"""Build of cnnkit's optional native helpers (everything else is in pyproject.toml).

``cnnkit/kernels/native/_conv.c`` (direct and Winograd convolution kernels), ``_norm.c``
(batch norm, ReLU, 2x2 pooling), ``_qconv.c`` (int8 convolutions), ``_qarith.c`` (int8
add, quantize, max pooling) and ``_dense.c`` (a batch-invariant dense product) are plain C
libraries (no Python C API) that cnnkit loads with
ctypes (:mod:`cnnkit.kernels.native.loader`). They are optional extensions: when one cannot be
compiled the install still succeeds and cnnkit uses its NumPy kernels.

Portable by default: on x86-64 each library is built for the x86-64 baseline (SSE2) and again
as an AVX2 + FMA and an AVX-512 variant; the loader asks the baseline build which the running
CPU can execute (``cnnkit_cpu_level``) and loads the best variant built. Other architectures
(aarch64 included) get one plain build. ``CNNKIT_NATIVE_MARCH=native`` at build time builds
one ``-march=native`` library instead (fastest on the build machine, may crash elsewhere).
Flags keep IEEE float semantics (no -ffast-math); fused multiply-adds are allowed.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE_DIR = "src/cnnkit/kernels/native"
# -Wno-psabi: the 32- and 64-byte vector types only pass between inlined functions
COMMON_FLAGS = ["-O3", "-ffp-contract=fast", "-fno-math-errno", "-Wno-psabi"]
# name suffix -> instruction-set flags; the loader's VARIANTS use the same suffixes
X86_VARIANTS = {
    "": ["-march=x86-64", "-mtune=generic"],
    "_avx2": ["-march=x86-64", "-mtune=generic", "-mavx2", "-mfma"],
    "_avx512": ["-march=x86-64", "-mtune=generic", "-mavx2", "-mfma", "-mavx512f",
                "-mavx512bw", "-mavx512dq", "-mavx512vl"],
}
# library stem -> extra (compile, link) flags: _conv runs its own spinning thread pool
# _qarith repeats NumPy's separately rounded float32 products and sums: no fused multiply-add
LIBRARIES = {"_conv": (["-pthread"], ["-pthread"]), "_norm": ([], []), "_qconv": ([], []),
             "_qarith": (["-ffp-contract=off"], []), "_dense": ([], [])}


def variant_flags(machine: str | None = None,
                  env: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Name suffix -> instruction-set flags of every build of each library."""
    env = os.environ if env is None else env
    if env.get("CNNKIT_NATIVE_MARCH", "").strip().lower() == "native":
        return {"": ["-march=native"]}
    machine = (platform.machine() if machine is None else machine).lower()
    if machine in ("x86_64", "amd64"):
        return dict(X86_VARIANTS)
    return {"": []}


def extensions(machine: str | None = None,
               env: Mapping[str, str] | None = None) -> list[Extension]:
    """One optional Extension per library and variant (all variants of a library share its
    source file; each is compiled in its own temporary folder)."""
    out = []
    for stem, (cflags, lflags) in LIBRARIES.items():
        for suffix, isa in variant_flags(machine, env).items():
            out.append(Extension(f"cnnkit.kernels.native.{stem}{suffix}",
                                 sources=[f"{NATIVE_DIR}/{stem}.c"],
                                 depends=[f"{NATIVE_DIR}/cnk_abi.h"],
                                 extra_compile_args=[*COMMON_FLAGS, *isa, *cflags],
                                 extra_link_args=lflags, optional=True))
    return out


class BuildVariants(build_ext):
    """build_ext with one temporary folder per extension: the variants of a library compile
    the same source, and their object files must not overwrite each other."""

    def build_extension(self, ext: Extension) -> None:
        temp = self.build_temp
        self.build_temp = os.path.join(temp, ext.name)
        try:
            super().build_extension(ext)
        finally:
            self.build_temp = temp


if __name__ == "__main__":
    setup(ext_modules=extensions(), cmdclass={"build_ext": BuildVariants})
