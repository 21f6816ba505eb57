"""cnnkit.monitor's statistics against SciPy and formulas written here; reference profiles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnkit.monitor import (
    ReferenceProfile,
    kolmogorov_sf,
    ks_2samp,
    median_bandwidth,
    mmd2,
    mmd_test,
    psi,
)


def test_ks_against_scipy():
    stats = pytest.importorskip("scipy.stats", reason="SciPy is the reference for KS")
    rng = np.random.default_rng(0)
    for n, m, shift in ((200, 100, 0.0), (500, 200, 0.3), (50, 400, 1.0), (300, 300, 0.1)):
        a, b = rng.normal(0, 1, n), rng.normal(shift, 1.2, m)
        d, p = ks_2samp(a, b)
        ref = stats.ks_2samp(a, b, method="asymp")
        assert d == pytest.approx(ref.statistic, abs=1e-12)
        # the limiting Kolmogorov distribution, as SciPy's kstwobign
        en = n * m / (n + m)
        assert p == pytest.approx(stats.kstwobign.sf(math.sqrt(en) * d), rel=1e-9, abs=1e-14)
    for lam in (0.3, 0.5, 0.8, 1.0, 1.36, 2.0, 3.0):
        assert kolmogorov_sf(lam) == pytest.approx(stats.kstwobign.sf(lam), rel=1e-9,
                                                   abs=1e-15)


def test_psi_formula():
    r = np.array([30, 50, 20, 0])
    w = np.array([10, 40, 45, 5])
    eps = 1e-4
    pr = np.maximum(r / r.sum(), eps)
    pr /= pr.sum()
    pw = np.maximum(w / w.sum(), eps)
    pw /= pw.sum()
    want = sum((b - a) * math.log(b / a) for a, b in zip(pr, pw, strict=True))
    assert psi(r, w) == pytest.approx(want, rel=1e-12)
    assert psi(r, r) == 0.0
    with pytest.raises(ValueError, match="count arrays"):
        psi(r, w[:3])


def _mmd2_loops(x, y, s):
    """The biased MMD^2 by its definition, one kernel value at a time."""
    def k(a, b):
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * s * s))
    kxx = sum(k(a, b) for a in x for b in x) / len(x) ** 2
    kyy = sum(k(a, b) for a in y for b in y) / len(y) ** 2
    kxy = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    return kxx + kyy - 2 * kxy


def test_mmd_against_its_definition_and_permutation_count():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (12, 3))
    y = rng.normal(0.8, 1, (9, 3))
    s = median_bandwidth(np.concatenate([x, y]))
    d2 = np.sum((np.concatenate([x, y])[:, None] - np.concatenate([x, y])[None]) ** 2, -1)
    assert s == pytest.approx(math.sqrt(np.median(d2[np.triu_indices(21, 1)]) / 2))
    assert mmd2(x, y, s) == pytest.approx(_mmd2_loops(x, y, s), rel=1e-10)
    observed, p = mmd_test(x, y, s, permutations=50, rng=np.random.default_rng(7))
    assert observed == pytest.approx(_mmd2_loops(x, y, s), rel=1e-10)
    # the same relabellings, counted by the definition: p = (k + 1) / (n + 1)
    rng2 = np.random.default_rng(7)
    z = np.concatenate([x, y])
    k = 0
    for _ in range(50):
        perm = rng2.permutation(len(z))
        v = np.concatenate([np.ones(12), np.zeros(9)])[perm].astype(bool)
        k += _mmd2_loops(z[v], z[~v], s) >= observed - 1e-12
    assert p == pytest.approx((k + 1) / 51, abs=1e-15)


def test_mmd_identical_samples_never_alarm_and_p_never_zero():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (40, 5))
    obs, p = mmd_test(x, x.copy(), median_bandwidth(x), permutations=99)
    assert obs == pytest.approx(0.0, abs=1e-12) and p == 1.0  # alibi-detect #544
    far = rng.normal(5, 1, (40, 5))
    _, p_far = mmd_test(x, far, median_bandwidth(x), permutations=99)
    assert p_far == pytest.approx(1 / 100)  # the smallest value: (0 + 1) / (99 + 1), never 0
    with pytest.raises(ValueError, match="permutations"):
        mmd_test(x, far, 1.0, permutations=0)


def test_profile_round_trip_and_refuses_other_files(tmp_path):
    prof = ReferenceProfile(np.ones((5, 1, 2), np.float32), np.arange(10),
                            np.linspace(0, 1, 11), np.arange(10), np.zeros((4, 8), np.float32),
                            1.5, {"model": "m"})
    prof.save(tmp_path / "p.npz")
    back = ReferenceProfile.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(back.class_counts, prof.class_counts)
    np.testing.assert_array_equal(back.embeddings, prof.embeddings)
    assert back.bandwidth == 1.5 and back.meta["model"] == "m"
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError):
        ReferenceProfile.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a cnnkit reference profile"):
        ReferenceProfile.load(tmp_path / "other.npz")


def test_profile_reader_on_damaged_files(tmp_path):
    """Truncated and bit-flipped profiles: a ValueError (or a clean load), nothing else."""
    rng = np.random.default_rng(3)
    prof = ReferenceProfile(rng.random((50, 1, 2)).astype(np.float32), np.arange(10),
                            np.linspace(0, 1, 11), np.arange(10),
                            rng.random((20, 16)).astype(np.float32), 1.0, {"model": "m"})
    prof.save(tmp_path / "p.npz")
    data = (tmp_path / "p.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    for i in range(120):
        if i % 2:
            damaged = data[:int(rng.integers(0, len(data)))]
        else:
            buf = bytearray(data)
            for pos in rng.integers(0, len(buf), 4):
                buf[pos] = int(rng.integers(0, 256))
            damaged = bytes(buf)
        bad.write_bytes(damaged)
        try:
            ReferenceProfile.load(bad)
        except ValueError:
            pass
