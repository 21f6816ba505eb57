"""Two-sample drift statistics on NumPy arrays: PSI, Kolmogorov-Smirnov, MMD.

- Population stability index over shared bins, with reference shares r_i and window shares
  w_i (each floored at ``eps`` so an empty bin stays finite)::

      PSI = sum_i (w_i - r_i) * ln(w_i / r_i)

- Two-sample Kolmogorov-Smirnov: D = sup_x |F_ref(x) - F_win(x)| over the empirical CDFs;
  p-value from the limiting Kolmogorov distribution at lambda = sqrt(n m / (n + m)) * D::

      Q(lambda) = 2 * sum_{k>=1} (-1)^(k-1) exp(-2 k^2 lambda^2)

- Maximum mean discrepancy with the Gaussian kernel k(a, b) = exp(-|a - b|^2 / (2 s^2)),
  biased estimate MMD^2 = mean K_XX + mean K_YY - 2 mean K_XY; its permutation p-value is
  (k + 1) / (n + 1), k the number of the n random relabellings of the pooled sample whose
  MMD^2 reaches the observed one (counting the observed labelling itself: never 0).
"""

from __future__ import annotations

import numpy as np

__all__ = ["psi", "ks_2samp", "kolmogorov_sf", "mmd2", "mmd_test", "median_bandwidth",
           "shares"]


def shares(counts: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """counts / total, each share at least ``eps`` (renormalised)."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    p = c / total if total > 0 else np.full_like(c, 1.0 / max(len(c), 1))
    p = np.maximum(p, eps)
    return p / p.sum()


def psi(reference_counts: np.ndarray, window_counts: np.ndarray, eps: float = 1e-4) -> float:
    """PSI = sum (w - r) ln(w / r) over the bins' shares (module docstring)."""
    r, w = np.asarray(reference_counts), np.asarray(window_counts)
    if r.shape != w.shape or r.ndim != 1:
        raise ValueError(f"psi: expected two 1-D count arrays of one length, got shapes "
                         f"{r.shape} and {w.shape}")
    pr, pw = shares(r, eps), shares(w, eps)
    return float(np.sum((pw - pr) * np.log(pw / pr)))


def kolmogorov_sf(lam: float, terms: int = 100) -> float:
    """P(K > lambda) for the Kolmogorov distribution: 2 sum (-1)^(k-1) exp(-2 k^2 lambda^2)."""
    if lam <= 0:
        return 1.0
    if lam < 0.2:  # the series converges slowly here; the sum is 1 to double precision
        return 1.0
    k = np.arange(1, terms + 1, dtype=np.float64)
    s = 2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k * k * lam * lam))
    return float(min(max(s, 0.0), 1.0))


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(D, p-value) of the two-sample Kolmogorov-Smirnov test (module docstring)."""
    a = np.sort(np.asarray(a, dtype=np.float64).ravel())
    b = np.sort(np.asarray(b, dtype=np.float64).ravel())
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError(f"ks_2samp: both samples need values, got {n} and {m}")
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / n
    fb = np.searchsorted(b, grid, side="right") / m
    d = float(np.max(np.abs(fa - fb)))
    return d, kolmogorov_sf(np.sqrt(n * m / (n + m)) * d)


def _sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d, 0.0)


def median_bandwidth(x: np.ndarray) -> float:
    """s for the Gaussian kernel: sqrt(median / 2) of the pairwise squared distances (> 0)."""
    x = np.asarray(x, dtype=np.float64)
    d = _sq_dists(x, x)[np.triu_indices(len(x), 1)]
    med = float(np.median(d)) if d.size else 1.0
    return float(np.sqrt(med / 2.0)) if med > 0 else 1.0


def mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """Biased MMD^2 = mean K_XX + mean K_YY - 2 mean K_XY for the Gaussian kernel."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    g = 1.0 / (2.0 * bandwidth * bandwidth)
    kxx = np.exp(-g * _sq_dists(x, x)).mean()
    kyy = np.exp(-g * _sq_dists(y, y)).mean()
    kxy = np.exp(-g * _sq_dists(x, y)).mean()
    return float(kxx + kyy - 2.0 * kxy)


def mmd_test(x: np.ndarray, y: np.ndarray, bandwidth: float, permutations: int = 200,
             rng: np.random.Generator | None = None) -> tuple[float, float]:
    """(MMD^2, permutation p-value (k + 1) / (n + 1)) for samples x (n, d) and y (m, d).

    With the pooled kernel matrix K and labelling weights v (1/n on x's rows, -1/m on y's),
    MMD^2 = v^T K v, so every relabelling costs one matrix-vector product."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or not len(x) or not len(y):
        raise ValueError(f"mmd_test: expected two non-empty (n, d) arrays of one width, got "
                         f"shapes {x.shape} and {y.shape}")
    if permutations < 1:
        raise ValueError(f"mmd_test: permutations must be >= 1, got {permutations}")
    rng = rng if rng is not None else np.random.default_rng(0)
    z = np.concatenate([x, y])
    k = np.exp(-_sq_dists(z, z) / (2.0 * bandwidth * bandwidth))
    n, total = len(x), len(z)
    v = np.concatenate([np.full(n, 1.0 / n), np.full(total - n, -1.0 / (total - n))])
    observed = float(v @ k @ v)
    vs = np.stack([v[rng.permutation(total)] for _ in range(permutations)])
    stats = np.einsum("pi,pi->p", vs @ k, vs)
    # a relabelling "reaches" the observed value up to rounding of the same sums
    hits = int(np.sum(stats >= observed - 1e-12 * max(1.0, abs(observed))))
    return observed, (hits + 1) / (permutations + 1)
