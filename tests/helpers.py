"""Shared test tools: finite-difference gradient checks, the PyTorch comparison
(:func:`check_vs_torch`) and the ONNX node test case loader (:func:`onnx_node_cases`)."""

from __future__ import annotations

import tracemalloc
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

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


def torch_grads(fn: Callable[..., Any], arrays: Sequence[np.ndarray | None], grad_out: Any
                ) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Run the PyTorch ``fn`` on float32 leaves made from ``arrays`` (None stays None); return
    its output and the gradients of L = sum(out * grad_out)."""
    torch = torch_or_skip()
    leaves = [None if a is None else
              torch.tensor(np.asarray(a, dtype=np.float32), requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.backward(torch.tensor(np.asarray(grad_out, dtype=np.float32)))
    return out.detach().numpy(), [None if t is None else t.grad.numpy() for t in leaves]


def cnnkit_grads(fn: Callable[..., Tensor], arrays: Sequence[np.ndarray | None], grad_out: Any
                 ) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """As :func:`torch_grads` for a cnnkit function of float32 Tensors."""
    leaves = [None if a is None else Tensor(np.asarray(a, dtype=np.float32), requires_grad=True)
              for a in arrays]
    out = fn(*leaves)
    out.backward(np.asarray(grad_out, dtype=np.float32))
    return out.data, [None if t is None else t.grad for t in leaves]


def check_vs_torch(ours: Callable[..., Tensor], theirs: Callable[..., Any],
                   *arrays: np.ndarray | None, grad_out: np.ndarray | None = None,
                   rtol: float = 1e-4, atol: float = 1e-5, what: str = "op",
                   seed: int = 0) -> None:
    """Forward and backward of ``ours`` (cnnkit) against ``theirs`` (PyTorch) in float32.

    Both receive leaves made from the same ``arrays`` (None stays None, every other array gets
    a gradient) in cnnkit's channels-last layout; ``theirs`` converts to and from PyTorch's
    layout itself. L = sum(out * grad_out) is differentiated (``grad_out`` standard normal
    from ``seed`` when None). Output and every gradient must be float32 and satisfy, with
    scale = max(1, max |reference|): |ours - ref| <= atol * scale + rtol * |ref|.
    """
    if grad_out is None:
        out_shape = ours(*[None if a is None else Tensor(np.asarray(a, np.float32))
                           for a in arrays]).shape
        grad_out = np.random.default_rng(seed).standard_normal(out_shape)
    out, grads = cnnkit_grads(ours, arrays, grad_out)
    ref, ref_grads = torch_grads(theirs, arrays, grad_out)
    _assert_close_float32(out, ref, rtol, atol, f"{what} forward")
    for i, (g, rg) in enumerate(zip(grads, ref_grads, strict=True)):
        if rg is not None:
            _assert_close_float32(g, rg, rtol, atol, f"{what} gradient of input {i}")


def _assert_close_float32(actual: Any, expected: Any, rtol: float, atol: float, what: str
                          ) -> None:
    assert actual is not None, f"{what}: no value"
    assert actual.dtype == np.float32, f"{what}: dtype {actual.dtype}, expected float32"
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def onnx_node_cases(op_types: Iterable[str], skip_if_none: bool = True) -> list[Any]:
    """onnx's node test cases (``onnx.backend.test.case.node.collect_testcases``) whose model
    is one node of an operator in ``op_types`` (default domain) with at least one data set.

    Multi-node models (the ``*_expanded`` function bodies) are not cases of the op itself.
    Skips the test when onnx is absent, and when nothing matched if ``skip_if_none``.
    """
    pytest.importorskip("onnx", reason="onnx is not installed (test-only reference)")
    from onnx.backend.test.case.node import collect_testcases

    wanted = set(op_types)
    with warnings.catch_warnings():  # case generators for other ops overflow on purpose
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    found = []
    for tc in cases:
        if tc.model is None or not tc.data_sets:
            continue
        nodes = tc.model.graph.node
        if len(nodes) == 1 and nodes[0].op_type in wanted and nodes[0].domain in ("", "ai.onnx"):
            found.append(tc)
    if not found and skip_if_none:
        pytest.skip(f"no onnx node test case of {sorted(wanted)} (onnx's collect_testcases() "
                    f"cache keeps the first call's op_type filter)")
    return found


def traced_peak(fn: Callable[[], Any], catch: type[BaseException] | tuple = ()) -> tuple[Any, int]:
    """(fn()'s result, or the ``catch`` exception it raised; tracemalloc's peak in bytes)."""
    tracemalloc.start()
    try:
        try:
            result = fn()
        except catch as e:
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
