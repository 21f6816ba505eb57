"""Build of cnnkit's optional native helper (everything else is in pyproject.toml).

``cnnkit.kernels._native`` is a plain C library (direct convolution kernels, no Python C API)
that cnnkit loads with ctypes. It is an optional extension: when it cannot be compiled (no C
compiler, unsupported flags) the install still succeeds and cnnkit uses its NumPy kernels.
Flags keep IEEE float semantics (no -ffast-math); fused multiply-adds are allowed.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "cnnkit.kernels._native",
            sources=["src/cnnkit/kernels/_native.c"],
            extra_compile_args=["-O3", "-march=native", "-ffp-contract=fast",
                                "-fno-math-errno", "-pthread"],
            extra_link_args=["-pthread"],  # the spinning pool of forward_pieces
            optional=True,
        ),
        Extension(
            "cnnkit.kernels._native_norm",
            sources=["src/cnnkit/kernels/_native_norm.c"],
            extra_compile_args=["-O3", "-march=native", "-ffp-contract=fast",
                                "-fno-math-errno"],
            optional=True,
        ),
    ]
)
