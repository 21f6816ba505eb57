"""ONNX's own operator test cases through the importer: each one-node model is imported with
``cnnkit.io.load_onnx`` into cnnkit layers, run, and compared with the case's expected outputs
as onnx's backend runner compares them (same shape and dtype, ``assert_allclose`` at the
case's rtol/atol). See ``onnx_import_runner.py`` for which inputs become initializers.

A case the importer refuses on purpose is listed below with the reason (and checked to be
refused still); cases whose data types cnnkit does not read (bfloat16, float8, 4- and 2-bit
types, strings) are skipped by that rule. The default suite runs one case per operator; the
whole set runs under ``-m slow`` and ``test_summary`` prints the counts per operator.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnx", reason="onnx is not installed (test-only reference)")

from onnx_import_runner import OP_TYPES, as_array, collect_cases, run_case  # noqa: E402

_BATCH = ("the operation works along axis 0, which cnnkit models keep as the batch axis "
          "(every layer maps a batch of samples to a batch of samples)")
_INT = ("integer arithmetic: cnnkit's layers compute in floating point (the result comes back "
        "as float, or the integer division is refused)")
_FOLD = ("the output is a constant folded at import (the node's value does not depend on the "
         "data), and a cnnkit Model outputs tensors computed from its inputs")
_TRAIN = "training-mode outputs (statistics, masks): import a model exported for inference"

UNSUPPORTED: dict[str, str] = {
    **{n: _BATCH for n in (
        "test_argmax_default_axis_example", "test_argmax_default_axis_random",
        "test_argmax_default_axis_example_select_last_index",
        "test_argmax_default_axis_random_select_last_index", "test_concat_1d_axis_0",
        "test_concat_1d_axis_negative_1", "test_concat_2d_axis_0",
        "test_concat_2d_axis_negative_2", "test_concat_3d_axis_0",
        "test_concat_3d_axis_negative_3", "test_flatten_axis0", "test_flatten_negative_axis4",
        "test_flatten_axis2", "test_flatten_negative_axis2", "test_flatten_axis3",
        "test_flatten_negative_axis1", "test_gather_0", "test_gather_negative_indices",
        "test_gemm_transposeA", "test_gemm_all_attributes", "test_gemm_default_matrix_bias",
        "test_prelu_example", "test_reduce_max_default_axes_keepdim_example",
        "test_reduce_max_default_axes_keepdims_random",
        "test_reduce_mean_default_axes_keepdims_example",
        "test_reduce_mean_default_axes_keepdims_random",
        "test_reduce_sum_default_axes_keepdims_example",
        "test_reduce_sum_default_axes_keepdims_random", "test_reshape_reordered_all_dims",
        "test_reshape_one_dim", "test_reshape_negative_extended_dims",
        "test_reshape_allowzero_reordered", "test_slice", "test_slice_default_axes",
        "test_slice_default_steps", "test_slice_neg_steps", "test_slice_negative_axes",
        "test_split_equal_parts_1d_opset13", "test_split_variable_parts_1d_opset13",
        "test_split_equal_parts_default_axis_opset13",
        "test_split_variable_parts_default_axis_opset13", "test_split_zero_size_splits_opset13",
        "test_split_equal_parts_1d_opset18", "test_split_variable_parts_1d_opset18",
        "test_split_equal_parts_default_axis_opset18",
        "test_split_variable_parts_default_axis_opset18", "test_split_zero_size_splits_opset18",
        "test_split_1d_uneven_split_opset18", "test_squeeze", "test_transpose_default",
        "test_transpose_all_permutations_2", "test_transpose_all_permutations_3",
        "test_transpose_all_permutations_4", "test_transpose_all_permutations_5",
        "test_unsqueeze_axis_0", "test_matmul_1d_1d", "test_matmul_1d_3d")},
    **{n: _INT for n in (
        "test_clip_default_int8_max", "test_div_int8", "test_div_int16", "test_div_int32_trunc",
        "test_div_uint8", "test_div_uint16", "test_div_uint32", "test_div_uint64",
        "test_max_int8", "test_max_int16", "test_max_int32", "test_max_int64", "test_max_uint8",
        "test_max_uint16", "test_max_uint32", "test_max_uint64", "test_maxpool_2d_uint8",
        "test_min_int8", "test_min_int16", "test_min_int32", "test_min_int64", "test_min_uint8",
        "test_min_uint16", "test_min_uint32", "test_min_uint64", "test_pow_types_int64_float32",
        "test_pow_types_int32_float32", "test_pow_types_int64_int64",
        "test_pow_types_int32_int32", "test_reduce_max_bool_inputs")},
    "test_max_float16": "float16 arithmetic: cnnkit's merge layers compute in float32",
    "test_min_float16": "float16 arithmetic: cnnkit's merge layers compute in float32",
    **{n: _FOLD for n in (
        "test_constant", "test_constantofshape_float_ones", "test_constantofshape_int_zeros",
        "test_constantofshape_int_shape_zero", "test_shape_example", "test_shape",
        "test_shape_start_1", "test_shape_end_1", "test_shape_start_negative_1",
        "test_shape_end_negative_1", "test_shape_start_1_end_negative_1",
        "test_shape_start_1_end_2", "test_shape_clip_start", "test_shape_clip_end",
        "test_shape_start_greater_than_end")},
    **{n: _TRAIN for n in (
        "test_batchnorm_example_training_mode", "test_batchnorm_epsilon_training_mode",
        "test_dropout_default_mask", "test_dropout_default_mask_ratio",
        "test_training_dropout_default", "test_training_dropout_default_mask",
        "test_training_dropout", "test_training_dropout_mask",
        "test_training_dropout_zero_ratio", "test_training_dropout_zero_ratio_mask")},
    "test_gather_2d_indices": "Gather with indices of rank > 1",
    "test_matmul_bcast": "MatMul by a constant of rank 3 (Dense takes a matrix)",
    "test_matmul_4d_1d": "MatMul by a constant vector (Dense takes a matrix)",
    "test_maxpool_with_argmax_2d_precomputed_pads": "MaxPool's Indices output",
    "test_maxpool_with_argmax_2d_precomputed_strides": "MaxPool's Indices output",
    "test_wrap_pad": "Pad mode 'wrap' (cnnkit pads constant, reflect and edge)",
    "test_identity_sequence": "a sequence, not a tensor",
    "test_identity_opt": "an optional, not a tensor",
    "test_reduce_max_empty_set": "a reduction over an empty axis (no identity for max)",
    "test_reduce_max_empty_set_bool": "a reduction over an empty axis (no identity for max)",
}
_READ = {np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32",
                                "int64", "uint8", "uint16", "uint32", "uint64", "bool")}
_DTYPE = "a data type cnnkit does not read (bfloat16, float8, 4- or 2-bit, or strings)"

CASES = collect_cases()
_RESULTS: dict[str, str] = {}


def _op(case: Any) -> str:
    return case.model.graph.node[0].op_type


def skip_reason(case: Any) -> str | None:
    if case.name in UNSUPPORTED:
        return UNSUPPORTED[case.name]
    arrays = [as_array(a) for inputs, outputs in case.data_sets for a in (*inputs, *outputs)]
    if any(a.dtype not in _READ for a in arrays):
        return _DTYPE
    return None


def check(case: Any) -> None:
    for k in range(len(case.data_sets)):
        outs, expected = run_case(case, k)
        assert len(outs) == len(expected), f"{len(outs)} outputs, expected {len(expected)}"
        for i, (out, ref) in enumerate(zip(outs, expected, strict=True)):
            assert out.shape == ref.shape, f"output {i}: shape {out.shape}, expected {ref.shape}"
            assert out.dtype == ref.dtype, f"output {i}: dtype {out.dtype}, expected {ref.dtype}"
            np.testing.assert_allclose(out, ref, rtol=case.rtol, atol=case.atol,
                                       err_msg=f"{case.name}: output {i}, data set {k}")


def _run(case: Any) -> None:
    reason = skip_reason(case)
    if reason is not None:
        _RESULTS[case.name] = "skipped"
        pytest.skip(reason)
    try:
        check(case)
    except BaseException:
        _RESULTS[case.name] = "failed"
        raise
    _RESULTS[case.name] = "passed"


def _one_per_op() -> list[Any]:
    """The first runnable case (by name) of each operator: the default suite's short form."""
    chosen: dict[str, Any] = {}
    for case in sorted(CASES, key=lambda c: c.name):
        if _op(case) not in chosen and skip_reason(case) is None:
            chosen[_op(case)] = case
    return [chosen[op] for op in sorted(chosen)]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in _one_per_op()])
def test_node_case_short(case: Any) -> None:
    _run(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_node_case(case: Any) -> None:
    _run(case)


def test_tables_name_real_cases() -> None:
    """Every listed operator has cases, and every UNSUPPORTED entry names a collected case."""
    names = {c.name for c in CASES}
    missing = set(OP_TYPES) - {_op(c) for c in CASES}
    assert not missing, f"no onnx node cases for {sorted(missing)}"
    assert not set(UNSUPPORTED) - names, f"stale: {sorted(set(UNSUPPORTED) - names)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_is_still_unsupported(name: str) -> None:
    """Each listed case is still refused or wrong, so no entry hides a passing case."""
    case = next(c for c in CASES if c.name == name)
    try:
        check(case)
    except (ValueError, TypeError, AssertionError):
        return
    pytest.fail(f"{name} now passes: remove it from UNSUPPORTED ({UNSUPPORTED[name]!r})")


@pytest.mark.slow
def test_summary() -> None:
    """Counts per operator of the cases that pass through the importer (``-s`` prints them)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for case in CASES:
        status = _RESULTS.get(case.name)
        if status is None:
            reason = skip_reason(case)
            status = "skipped" if reason else "passed"
            if reason is None:
                try:
                    check(case)
                except (ValueError, TypeError, AssertionError):
                    status = "failed"
        counts[_op(case)][status] += 1
    print("\nONNX node cases through load_onnx (passed / skipped / failed):")
    for op in sorted(counts):
        c = counts[op]
        print(f"  {op:22s} {c['passed']:4d} {c['skipped']:4d} {c['failed']:4d}")
    total = sum((c for c in counts.values()), Counter())
    print(f"  {'total':22s} {total['passed']:4d} {total['skipped']:4d} {total['failed']:4d}")
    by_reason: dict[str, list[str]] = defaultdict(list)
    for case in CASES:
        reason = skip_reason(case)
        if reason is not None:
            by_reason[reason].append(case.name)
    print("skipped, by reason:")
    for reason, names in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(names):3d} {reason}\n      {', '.join(sorted(names))}")
    assert total["failed"] == 0
