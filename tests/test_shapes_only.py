"""layers.build_context.shapes_only: building without weight memory, then the same real build."""

import numpy as np
from helpers import traced_peak

import cnnkit
from cnnkit import layers, models
from cnnkit.layers import build_context as base
from cnnkit.layers.build_context import shapes_only


def _mlp(units: int) -> models.Sequential:
    return models.Sequential([layers.Input((1000,)), layers.Dense(units), layers.Dense(10)])


def test_counts_match_the_closed_form_without_the_memory():
    units = 2_000_000  # 8 GB of float32 weights if allocated
    model, peak = traced_peak(lambda: _shapes_only_build(units))
    assert model.count_params() == (1000 + 1) * units + (units + 1) * 10
    assert peak < 64 << 20


def _shapes_only_build(units: int) -> models.Sequential:
    with shapes_only():
        return _mlp(units)


def test_a_real_build_after_it_is_the_one_it_would_have_been():
    cnnkit.random.seed(7)
    want = _mlp(16)
    cnnkit.random.seed(7)
    _shapes_only_build(16)
    got = _mlp(16)
    for a, b in zip(got.get_weights(), want.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_layer_names_handed_out_inside_are_handed_back():
    before = dict(base._name_counts)
    _shapes_only_build(16)
    assert base._name_counts == before
