"""The calculators of cnnkit.analysis.calc against PyTorch layers (output shapes, parameter
counts, FlopCounterMode's FLOPs) and closed forms; `cnnkit calc` prints the same steps."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from helpers import torch_or_skip

from cnnkit.analysis import calc
from cnnkit.cli import main

CONV_CASES = [(w, k, s, p, d) for w, k, s, p, d in itertools.product(
    (1, 5, 7, 28, 31, 224), (1, 2, 3, 5, 7), (1, 2, 3), (0, 1, 3), (1, 2))
    if w + 2 * p >= d * (k - 1) + 1][::5]  # a fifth of the grid (about 90 cases)


def test_seed_example_steps():
    r = calc.conv((224, 224, 3), 64, 7, 2, 3)
    assert "height: (224 - 7 + 2*3) / 2 + 1 = 112.5 -> floor -> 112" in r.steps
    assert r["output_shape"] == (112, 112, 64)
    assert r["params"] == (7 * 7 * 3 + 1) * 64 == 9472
    assert r["macs"] == 112 * 112 * 7 * 7 * 3 * 64
    assert r["memory"] == 112 * 112 * 64 * 4


def test_conv_shapes_params_and_flops_match_torch():
    torch = torch_or_skip()
    from torch.utils.flop_counter import FlopCounterMode

    rng = np.random.default_rng(0)
    for w, k, s, p, d in CONV_CASES:
        cin, cout, g = int(rng.integers(1, 4)) * 2, int(rng.integers(1, 4)) * 2, 2
        bias = bool(rng.integers(2))
        layer = torch.nn.Conv2d(cin, cout, k, s, p, d, groups=g, bias=bias, device="meta")
        x = torch.zeros(1, cin, w, w + 3, device="meta")  # shapes only
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            y = layer(x)
        r = calc.conv((w, w + 3, cin), cout, k, s, p, d, g, bias)
        assert r["output_shape"] == (y.shape[2], y.shape[3], cout), (w, k, s, p, d)
        assert r["params"] == sum(t.numel() for t in layer.parameters())
        # FlopCounterMode: 2 FLOPs per multiply-add, bias not counted
        assert 2 * r["macs"] == counter.get_total_flops()
        assert r["flops"] == 2 * r["macs"] + (y[0].numel() if bias else 0)


def test_pool_shapes_match_torch_floor_and_ceil():
    torch = torch_or_skip()
    for w, k, s, p in itertools.product((1, 4, 7, 8, 13, 112), (1, 2, 3, 5), (1, 2, 3),
                                        (0, 1, 2)):
        if p > k // 2 or w + 2 * p < k:
            continue  # torch refuses padding > kernel/2
        for ceil in (False, True):
            y = torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil)(torch.zeros(1, 2, w, w,
                                                                        device="meta"))
            r = calc.pool((w, w, 2), k, s, p, ceil_mode=ceil)
            assert r["output_shape"][:2] == tuple(y.shape[2:]), (w, k, s, p, ceil)
            assert r["flops"] == y.numel() * (k * k - 1)


def test_conv_transpose_shapes_match_torch():
    torch = torch_or_skip()
    for w, k, s, p, op, d in itertools.product((1, 3, 7), (1, 2, 3, 4), (1, 2, 3), (0, 1),
                                               (0, 1), (1, 2)):
        if op >= max(s, d):
            continue
        layer = torch.nn.ConvTranspose2d(3, 4, k, s, p, op, dilation=d, device="meta")
        try:
            y = layer(torch.zeros(1, 3, w, w, device="meta"))
        except RuntimeError:  # torch: "Output size is too small"
            with pytest.raises(calc.InvalidConfiguration, match="crops the whole output"):
                calc.conv_transpose((w, w, 3), 4, k, s, p, op, d)
            continue
        r = calc.conv_transpose((w, w, 3), 4, k, s, p, op, d)
        assert r["output_shape"] == (y.shape[2], y.shape[3], 4), (w, k, s, p, op, d)
        assert r["params"] == sum(t.numel() for t in layer.parameters())
        assert r["macs"] == w * w * k * k * 3 * 4


def test_same_padding_is_ceil_of_size_over_stride():
    for w, k, s, d in itertools.product(range(1, 20), (1, 2, 3, 4, 7), (1, 2, 3), (1, 2)):
        r = calc.output_size(w, k, s, "same", d)
        assert r.value == math.ceil(w / s)
        pads = [int(t) for t in r.steps[-1].split("->")[-1].split() if t.isdigit()]
        assert sum(pads) == max((math.ceil(w / s) - 1) * s + d * (k - 1) + 1 - w, 0)
        assert pads[1] - pads[0] in (0, 1)  # the odd cell at the end


def test_dropped_pixels_and_invalid_configurations():
    r = calc.output_size(224, 3, 2, 0)
    assert r.value == 111
    assert any("last 1 input row(s)" in w for w in r.warnings)
    assert not calc.output_size(224, 7, 2, 3).warnings  # only a padding cell is unread
    assert not calc.output_size(224, 2, 2, 0).warnings
    r = calc.output_size(10, 3, 1, 3)
    assert any("read only padding" in w for w in r.warnings)
    with pytest.raises(calc.InvalidConfiguration, match=r"\(3 - 5\) / 1 \+ 1 = -1 < 1"):
        calc.output_size(3, 5)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        calc.conv((8, 8, 4), 6, 3, groups=3)
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        calc.output_size(8, 3, 0)
    with pytest.raises(ValueError, match="padding must be 'valid', 'same'"):
        calc.output_size(8, 3, 1, "full")


def test_dense_closed_form():
    r = calc.dense(9216, 4096)
    assert r["params"] == 9217 * 4096 and r["macs"] == 9216 * 4096
    assert r["flops"] == 2 * 9216 * 4096 + 4096
    assert calc.dense(10, 3, bias=False)["params"] == 30


def test_cli_calc_prints_steps_and_refuses_mistakes(capsys):
    assert main(["calc", "conv", "--input", "224", "224", "3", "--kernel", "7", "--stride", "2",
                 "--padding", "3", "--filters", "64"]) == 0
    out = capsys.readouterr().out
    assert "(224 - 7 + 2*3) / 2 + 1 = 112.5 -> floor -> 112" in out
    assert "parameters = (7*7*3 + 1) * 64 = 9,472" in out
    assert main(["calc", "pool", "--input", "112", "112", "64", "--pool", "3", "--stride", "2",
                 "--padding", "1"]) == 0
    assert "56.5 -> floor -> 56" in capsys.readouterr().out
    assert main(["calc", "dense", "--input", "9216", "--units", "4096"]) == 0
    assert "37,752,832" in capsys.readouterr().out
    assert main(["calc", "convtranspose", "--input", "7", "7", "16", "--kernel", "4",
                 "--stride", "2", "--padding", "1", "--filters", "8"]) == 0
    assert "(7 - 1)*2 - 2*1 + 4 + 0 = 14" in capsys.readouterr().out
    assert main(["calc", "pool", "--input", "5", "5", "3", "--pool", "7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no output" in err
    assert main(["calc", "conv", "--input", "5", "5", "3", "--kernel", "3", "--filters", "2",
                 "--padding", "x"]) == 2
    assert "--padding must be" in capsys.readouterr().err
