"""Shared test tools: finite-difference gradient checks and PyTorch comparison."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from cnnkit import Tensor

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test when the shared folder is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not found (the project's shared/ folder is not beside this checkout)")
    return p


def torch_or_skip():
    """Import torch (test-only reference) or skip the test with a reason."""
    return pytest.importorskip("torch", reason="PyTorch (torch==2.13.0) is not installed")


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a||, ||b||), 0 when both are 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def numeric_grads(f: Callable[..., Tensor], arrays: Sequence[np.ndarray], weight: np.ndarray,
                  eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of L = sum(f(*arrays) * weight) with respect to each array."""
    grads = []
    for arr in arrays:
        g = np.zeros_like(arr)
        flat, gflat = arr.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            hi = float((f(*[Tensor(a) for a in arrays]).data * weight).sum())
            flat[i] = old - eps
            lo = float((f(*[Tensor(a) for a in arrays]).data * weight).sum())
            flat[i] = old
            gflat[i] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads


def gradcheck(f: Callable[..., Tensor], *arrays: np.ndarray, tol: float = 1e-6,
              eps: float = 1e-6, seed: int = 0) -> None:
    """Assert autograd gradients of f match central differences in float64 (relative error).

    The scalar checked is L = sum(f(*arrays) * W) for a fixed random W, so every output
    element's gradient path is exercised with a distinct weight.
    """
    arrays = [np.array(a, dtype=np.float64, order="C") for a in arrays]
    ts = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = f(*ts)
    w = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(w)
    num = numeric_grads(f, arrays, w, eps)
    for i, (t, n) in enumerate(zip(ts, num, strict=True)):
        assert t.grad is not None, f"input {i} received no gradient"
        err = rel_error(t.grad, n)
        assert err < tol, f"input {i}: relative error {err:.3e} >= {tol:g}"


def assert_close_scaled(actual: np.ndarray, expected: np.ndarray, tol: float = 1e-4,
                        what: str = "") -> None:
    """max |actual - expected| <= tol * max(1, max |expected|) (error relative to output scale)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what} shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(actual - expected).max(initial=0.0))
    assert err <= tol * scale, f"{what} max abs error {err:.3e} > {tol:g} * scale {scale:.3g}"
