"""Forward of cnnkit.ops against the ONNX operator test cases.

``onnx.backend.test.case.node.collect_testcases()`` builds every node test case in memory: a
one-node model plus (inputs, expected outputs). Each case of an operator cnnkit has (selected by
the node's op_type, see ``onnx_runner.OP_TYPES``) is translated into ``cnnkit.ops`` calls in
channels-last layout (``onnx_runner.py``) and compared with the expected outputs the way onnx's
own backend runner compares them: same shape, same dtype, ``numpy.testing.assert_allclose`` at
the case's ``rtol``/``atol`` (onnx sets 1e-3 / 1e-7 on every node case).

A case cnnkit does not support is listed by name in ``UNSUPPORTED`` with the reason and
skipped; a case that fails because of a bug in cnnkit is listed in ``KNOWN_BUGS`` and marked
``xfail(strict=True)``. ``test_summary`` prints the counts per operator (run with ``-s``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx", reason="onnx is not installed (test-only reference)")

from onnx_runner import OP_TYPES, Unsupported, collect_cases, node_of, run_case  # noqa: E402

_INT = ("integer dtype {}: cnnkit.ops compute in floating point (integer inputs come back "
        "as float32, onnx expects the integer dtype)")

UNSUPPORTED: dict[str, str] = {
    # Add: integer tensors
    "test_add_int8": _INT.format("int8"),
    "test_add_int16": _INT.format("int16"),
    "test_add_uint8": _INT.format("uint8"),
    "test_add_uint16": _INT.format("uint16"),
    "test_add_uint32": _INT.format("uint32"),
    "test_add_uint64": _INT.format("uint64"),
    # MaxPool
    "test_maxpool_2d_uint8": _INT.format("uint8"),
    "test_maxpool_with_argmax_2d_precomputed_pads":
        "MaxPool second output Indices (argmax): cnnkit.ops.max_pool returns values only",
    "test_maxpool_with_argmax_2d_precomputed_strides":
        "MaxPool second output Indices with storage_order=1: cnnkit.ops.max_pool returns "
        "values only",
    # Pad
    "test_wrap_pad": ("Pad mode 'wrap': cnnkit.ops.pad has constant, reflect and edge "
                      "(raises ValueError)"),
}

# Cases that fail because of a bug in a cnnkit module: name -> what was observed.
KNOWN_BUGS: dict[str, str] = {}

CASES = collect_cases()
_RESULTS: dict[str, str] = {}  # case name -> passed / skipped / known bug / xpass / failed


def _op(case: Any) -> str:
    return node_of(case).op_type


def _check(case: Any) -> None:
    """Run every data set of ``case`` and compare like onnx's backend runner does."""
    for k in range(len(case.data_sets)):
        try:
            outs, expected = run_case(case, k)
        except Unsupported as e:
            pytest.fail(f"translation reports an unsupported feature ({e}) but "
                        f"{case.name} is not listed in UNSUPPORTED")
        assert len(outs) == len(expected), \
            f"{len(outs)} outputs, expected {len(expected)}"
        for i, (out, ref) in enumerate(zip(outs, expected, strict=True)):
            assert out.shape == ref.shape, \
                f"output {i} has shape {out.shape}, expected {ref.shape}"
            assert out.dtype == ref.dtype, \
                f"output {i} has dtype {out.dtype}, expected {ref.dtype}"
            np.testing.assert_allclose(out, ref, rtol=case.rtol, atol=case.atol,
                                       err_msg=f"{case.name}: output {i}, data set {k}")


def _status(case: Any) -> str:
    """Run ``case`` and classify it (for the summary when the test itself did not run)."""
    if case.name in UNSUPPORTED:
        return "skipped"
    try:
        _check(case)
    except BaseException:  # noqa: BLE001  (pytest.fail raises an outcome, not an Exception)
        return "known bug" if case.name in KNOWN_BUGS else "failed"
    return "xpass" if case.name in KNOWN_BUGS else "passed"


def _params() -> list[Any]:
    out = []
    for case in CASES:
        marks = []
        if case.name in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case.name]))
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_onnx_case(case: Any) -> None:
    name = case.name
    if name in UNSUPPORTED:
        _RESULTS[name] = "skipped"
        pytest.skip(UNSUPPORTED[name])
    try:
        _check(case)
    except BaseException:
        _RESULTS[name] = "known bug" if name in KNOWN_BUGS else "failed"
        raise
    _RESULTS[name] = "xpass" if name in KNOWN_BUGS else "passed"


def test_tables_name_real_cases() -> None:
    """Every op has cases; UNSUPPORTED and KNOWN_BUGS name collected cases, none twice."""
    names = {c.name for c in CASES}
    ops_seen = {_op(c) for c in CASES}
    assert ops_seen == set(OP_TYPES), \
        f"no onnx cases collected for {sorted(set(OP_TYPES) - ops_seen)}"
    assert not set(UNSUPPORTED) - names, f"stale UNSUPPORTED: {sorted(set(UNSUPPORTED) - names)}"
    assert not set(KNOWN_BUGS) - names, f"stale KNOWN_BUGS: {sorted(set(KNOWN_BUGS) - names)}"
    assert not set(UNSUPPORTED) & set(KNOWN_BUGS)


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_is_still_unsupported(name: str) -> None:
    """Each UNSUPPORTED case really fails its translation, so no entry hides a passing case."""
    case = next(c for c in CASES if c.name == name)
    try:
        _check(case)
    except BaseException as e:  # noqa: BLE001  (AssertionError, Unsupported, pytest.fail)
        if isinstance(e, KeyboardInterrupt):
            raise
        return
    pytest.fail(f"{name} now passes: remove it from UNSUPPORTED ({UNSUPPORTED[name]!r})")


def test_summary() -> None:
    """Print passed / skipped / known-bug / failed counts per op (``pytest -s`` shows them)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for case in CASES:
        status = _RESULTS.get(case.name) or _status(case)
        counts[_op(case)][status] += 1
    cols = ["passed", "skipped", "known bug", "failed", "xpass"]
    lines = [f"\nONNX node test cases through cnnkit.ops ({len(CASES)} cases)",
             f"{'op':<20}" + "".join(f"{c:>11}" for c in cols)]
    total: Counter = Counter()
    for op in OP_TYPES:
        total.update(counts[op])
        lines.append(f"{op:<20}" + "".join(f"{counts[op][c]:>11}" for c in cols))
    lines.append(f"{'total':<20}" + "".join(f"{total[c]:>11}" for c in cols))
    print("\n".join(lines))
    assert sum(total.values()) == len(CASES)
