"""The conv dispatch thresholds (kernels/conv/dispatch.py): one frozen object, replaced as a
whole (context manager or monkeypatch), read at call time by the block cuts and the cached
forward plan, whose cache keys on the object."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cnnkit.kernels import conv as KC
from cnnkit.kernels import native
from cnnkit.kernels.conv import dispatch

rng = np.random.default_rng(11)


def test_thresholds_are_one_frozen_object():
    t = dispatch.THRESHOLDS
    assert isinstance(t, KC.ConvThresholds)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.block_bytes = 1  # type: ignore[misc]
    assert hash(t) == hash(dataclasses.replace(t))  # usable as a cache key


def test_overridden_changes_the_cut_and_restores():
    """10 items of 1000 bytes: blocks of block_bytes // 1000 items (closed form)."""
    before = dispatch.THRESHOLDS
    with dispatch.overridden(block_bytes=3000, min_blocks_bytes=1 << 40) as t:
        assert dispatch.THRESHOLDS is t and t.block_bytes == 3000
        blocks = dispatch.batch_blocks(10, 1000)
    assert len(blocks) == 4 and blocks[0] == (0, 2) and blocks[-1][1] == 10
    assert all(b - a <= 3 for a, b in blocks)
    assert dispatch.THRESHOLDS is before
    assert dispatch.batch_blocks(10, 1000) == [(0, 10)]  # 10 kB < the 4 MiB default


def test_overridden_restores_after_an_error():
    before = dispatch.THRESHOLDS
    with pytest.raises(RuntimeError), dispatch.overridden(native_blocks=3):
        raise RuntimeError
    assert dispatch.THRESHOLDS is before
    with pytest.raises(TypeError):
        with dispatch.overridden(no_such_threshold=1):
            pass


def test_cached_plan_follows_the_thresholds(monkeypatch):
    """The same call under other thresholds gets a fresh plan: Winograd on, then off."""
    if not native.available():
        pytest.skip("native helper not built or switched off")
    calls = []
    for name in ("forward", "forward_winograd", "forward_pieces"):
        real = getattr(native, name)
        monkeypatch.setattr(native, name,
                            lambda *a, _real=real, _name=name: (calls.append(_name), _real(*a)))
    x = rng.standard_normal((8, 16, 16, 32)).astype(np.float32)
    w = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    pads = ((1, 1), (1, 1))
    with dispatch.overridden(native_min_pool_macs=1 << 62):
        z1, _ = KC.conv_forward(x, w, None, (1, 1), pads, (1, 1))
    with dispatch.overridden(native_min_pool_macs=1 << 62, winograd_min_channels=1 << 20):
        z2, _ = KC.conv_forward(x, w, None, (1, 1), pads, (1, 1))
    assert calls == ["forward_winograd", "forward"]
    ref, _ = KC.conv_forward(x.astype(np.float64), w.astype(np.float64), None, (1, 1), pads,
                             (1, 1))
    for z in (z1, z2):
        np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-4)
