"""Calibration: the range [lo, hi] an activation tensor is quantized over, chosen from the
values seen on calibration data.

An :class:`Observer` keeps the running min and max (first pass) and then a histogram of
|x| over [0, max|x|] in BINS bins (second pass). A method gives a threshold T on |x|; the
range is [max(min, -T), min(max, T)] (so [0, T] after a ReLU). With L levels per side
(L = 256 for non-negative data, 128 otherwise):

- ``minmax``: T = max|x|.
- ``percentile``: T = the p-th percentile of |x| (p = 99.99 by default), read from the
  histogram (linear inside the bin).
- ``entropy`` (TensorRT's calibration, "8-bit inference with TensorRT", Migacz 2017): for
  each candidate i >= L bins (every STRIDE-th), P = hist[:i] with the outliers
  sum(hist[i:]) added to its last bin; Q = hist[:i] (without them) merged into L groups of
  consecutive bins, each group's total spread evenly over its non-empty bins;
  T = i * width for the i minimising KL(P || Q) = sum P log(P / Q) (P, Q normalised).
  The first bin's count is replaced by the second's first (as NVIDIA's pytorch-quantization
  does): the spike of exact zeros after a ReLU would otherwise favour tiny thresholds.
- ``mse``: T minimising the expected squared error sum_b hist[b] e(c_b, T) over bin centres
  c_b, e = (c - T)^2 above T, else the rounding error (c - d rint(c / d))^2, d = T / (L - 1)
  one-sided, 2 T / 255 two-sided.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BINS", "METHODS", "Observer", "entropy_threshold", "mse_threshold",
           "percentile_threshold"]

BINS = 2048
STRIDE = 4  # entropy candidates: every 4th bin (480 KL evaluations instead of 1920)
METHODS = ("minmax", "percentile", "entropy", "mse")


class Observer:
    """Running statistics of one tensor over calibration batches: ``update`` during the
    first pass (min, max), ``update_histogram`` during the second; ``range(method)``."""

    def __init__(self, bins: int = BINS):
        self.bins = bins
        self.lo, self.hi = np.inf, -np.inf
        self.hist: np.ndarray | None = None

    @property
    def absmax(self) -> float:
        return float(max(abs(self.lo), abs(self.hi))) if np.isfinite(self.lo) else 0.0

    def update(self, x: np.ndarray) -> None:
        if x.size:
            self.lo = min(self.lo, float(x.min()))
            self.hi = max(self.hi, float(x.max()))

    def update_histogram(self, x: np.ndarray) -> None:
        top = self.absmax
        if self.hist is None:
            self.hist = np.zeros(self.bins, np.int64)
        if top <= 0 or x.size == 0:
            return
        idx = np.minimum((np.abs(x.ravel()) * (self.bins / top)).astype(np.int64),
                         self.bins - 1)
        self.hist += np.bincount(idx, minlength=self.bins)

    def range(self, method: str = "minmax", percentile: float = 99.99) -> tuple[float, float]:
        """(lo, hi) of the chosen method (see the module docstring)."""
        if method not in METHODS:
            raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
        if not np.isfinite(self.lo):
            return 0.0, 0.0
        top = self.absmax
        if method == "minmax" or self.hist is None or top <= 0:
            return self.lo, self.hi
        levels = 256 if self.lo >= 0 else 128
        width = top / self.bins
        if method == "percentile":
            t = percentile_threshold(self.hist, width, percentile)
        elif method == "entropy":
            t = entropy_threshold(self.hist, width, levels, STRIDE)
        else:
            t = mse_threshold(self.hist, width, self.lo >= 0)
        return max(self.lo, -t), min(self.hi, t)


def percentile_threshold(hist: np.ndarray, width: float, p: float) -> float:
    """The p-th percentile of the values a histogram of bin ``width`` counts (linear inside
    the bin)."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    cum = np.cumsum(hist, dtype=np.float64)
    target = cum[-1] * p / 100.0
    i = int(np.searchsorted(cum, target))
    i = min(i, len(hist) - 1)
    before = cum[i - 1] if i > 0 else 0.0
    frac = (target - before) / hist[i] if hist[i] > 0 else 1.0
    return float((i + min(max(frac, 0.0), 1.0)) * width)


def _kl_for(hist: np.ndarray, i: int, levels: int) -> float:
    """KL(P || Q) of candidate i (module docstring)."""
    bins = hist[:i].astype(np.float64)
    p = bins.copy()
    p[i - 1] += hist[i:].sum()
    used = bins > 0
    starts = (np.arange(levels) * i) // levels  # strictly increasing for i >= levels
    sums = np.add.reduceat(bins, starts)
    counts = np.add.reduceat(used.astype(np.int64), starts)
    group = np.repeat(np.arange(levels), np.diff(np.append(starts, i)))
    q = np.where(used, sums[group] / np.maximum(counts[group], 1), 0.0)
    p /= p.sum()
    q /= q.sum()
    live = p > 0
    if np.any(live & (q == 0)):
        return float("inf")
    return float(np.sum(p[live] * np.log(p[live] / q[live])))


def entropy_threshold(hist: np.ndarray, width: float, levels: int = 128,
                      stride: int = 1) -> float:
    """TensorRT's KL-divergence threshold (module docstring) over candidates levels,
    levels + stride, ..., len(hist)."""
    n = len(hist)
    if n <= levels:
        return float(n * width)
    hist = hist.copy()
    hist[0] = hist[1]  # the exact zeros after a ReLU would dominate the KL otherwise
    last = int(np.max(np.nonzero(hist)[0])) + 1 if hist.any() else n
    candidates = [i for i in range(levels, n + 1, stride) if i <= max(last, levels)]
    kls = [_kl_for(hist, i, levels) for i in candidates]
    best = candidates[int(np.argmin(kls))]
    return float(best * width)


def mse_threshold(hist: np.ndarray, width: float, one_sided: bool,
                  candidates: int = 256) -> float:
    """The threshold minimising the histogram's expected squared quantization error
    (module docstring), over ``candidates`` thresholds evenly spaced up to the top."""
    n = len(hist)
    centres = (np.arange(n) + 0.5) * width
    ts = np.linspace(n * width / candidates, n * width, candidates)
    h = hist.astype(np.float64)
    best, best_err = ts[-1], np.inf
    for t in ts:
        step = t / 255.0 if one_sided else 2 * t / 255.0
        inside = centres <= t
        err_in = centres - step * np.rint(centres / step)
        err = np.where(inside, err_in ** 2, (centres - t) ** 2)
        total = float(np.dot(h, err))
        if total < best_err:
            best, best_err = t, total
    return float(best)
