"""Arrays behind the pictures: feature maps of any layer, the first layer's filters, inputs
that maximise a channel (activation maximisation), and 2-D embeddings (PCA, t-SNE).

- activation maximisation (Erhan et al. 2009): gradient ascent on the input of
  ``mean_ij A_c(x)_ij - l2 * ||x||^2``, normalised steps ``x += lr * g / (std(g) + 1e-8)``,
  from small noise;
- PCA: the centred data projected on the leading right singular vectors;
- t-SNE (van der Maaten & Hinton 2008): Gaussian affinities with a per-point bandwidth found
  by bisection to the given perplexity, symmetrised ``P = (P_j|i + P_i|j) / 2n``; Student-t
  affinities Q in 2-D; gradient ``4 sum_j (p_ij - q_ij)(y_i - y_j) / (1 + |y_i - y_j|^2)``,
  early exaggeration 12 for the first quarter of the iterations, momentum 0.5 then 0.8.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..layers.conv import _Conv
from .graph_run import forward_until, frozen_weights


def feature_maps(model: Any, images: Any, layer: str, batch_size: int = 64) -> np.ndarray:
    """``layer``'s output (N, h, w, C) for ``images``, in inference mode."""
    x = np.asarray(images, dtype=np.float32)
    parts = [forward_until(model, x[i:i + batch_size], layer, grad=False)[1].data
             for i in range(0, len(x), batch_size)]
    return np.concatenate(parts)


def first_conv(model: Any) -> Any:
    """The first convolution layer with a kernel (KH, KW, C_in, C_out)."""
    for la in model.layers:
        if isinstance(la, _Conv) and la.rank == 2 and la.built:
            return la
        if hasattr(la, "layers") and la is not model and la.layers:
            inner = first_conv(la)
            if inner is not None:
                return inner
    return None


def first_layer_filters(model: Any) -> np.ndarray:
    """The first convolution's kernels as images (C_out, KH, KW, C_in), each scaled to
    [0, 1] over its own values (a constant filter becomes 0.5)."""
    conv = first_conv(model)
    if conv is None:
        raise ValueError(f"model '{model.name}' has no built 2-D convolution layer")
    k = np.moveaxis(np.asarray(conv.kernel.data, dtype=np.float32), -1, 0)
    lo = k.min(axis=(1, 2, 3), keepdims=True)
    span = k.max(axis=(1, 2, 3), keepdims=True) - lo
    return np.where(span > 0, (k - lo) / np.where(span > 0, span, 1), 0.5)


def activation_maximisation(model: Any, layer: str, channels: Any, input_shape: Any = None,
                            steps: int = 64, lr: float = 0.1, l2: float = 1e-3,
                            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (len(channels), H, W, C) that maximise the mean activation of each channel of
    ``layer`` (see module doc), and the objective per step (steps, len(channels))."""
    chans = np.atleast_1d(np.asarray(channels, dtype=np.int64))
    shape = tuple(input_shape or model.input_shape[1:])
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.01, (len(chans), *shape)).astype(np.float32)
    trace = np.empty((steps, len(chans)), np.float32)
    with frozen_weights(model):
        for s in range(steps):
            leaf, out = forward_until(model, x, layer)
            if out.ndim != 4 or chans.max() >= out.shape[-1]:
                raise ValueError(f"layer '{layer}' gives shape {out.shape}; channels "
                                 f"{chans.tolist()} need a (N, h, w, C) output with C > "
                                 f"{chans.max()}")
            mask = np.zeros(out.shape, np.float32)
            mask[np.arange(len(chans)), :, :, chans] = 1.0 / (out.shape[1] * out.shape[2])
            obj = (out.data * mask).sum((1, 2, 3))
            trace[s] = obj - l2 * (x ** 2).sum((1, 2, 3))
            (out * Tensor(mask)).sum().backward()
            g = leaf.grad - 2 * l2 * x
            x = x + lr * g / (g.std(axis=(1, 2, 3), keepdims=True) + 1e-8)
    return x, trace


def pca(features: np.ndarray, k: int = 2) -> np.ndarray:
    """Projection of the centred rows on the top ``k`` principal axes."""
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    f = f - f.mean(0)
    _, _, vt = np.linalg.svd(f, full_matrices=False)
    return f @ vt[:k].T


def _affinities(d2: np.ndarray, perplexity: float) -> np.ndarray:
    """Row-wise Gaussian conditional probabilities with entropy log(perplexity)."""
    n = len(d2)
    p = np.zeros((n, n))
    target = np.log(perplexity)
    for i in range(n):
        lo, hi, beta = 0.0, np.inf, 1.0
        di = np.delete(d2[i], i)
        for _ in range(64):
            w = np.exp(-(di - di.min()) * beta)
            pi = w / w.sum()
            h = -(pi * np.log(np.maximum(pi, 1e-300))).sum()
            if abs(h - target) < 1e-5:
                break
            lo, beta, hi = (beta, beta * 2 if hi == np.inf else (beta + hi) / 2, hi) \
                if h > target else (lo, (beta + lo) / 2, beta)
        p[i, np.arange(n) != i] = pi
    return p


def tsne(features: np.ndarray, perplexity: float = 30.0, iterations: int = 500,
         lr: float | None = None, seed: int = 0) -> tuple[np.ndarray, float]:
    """2-D t-SNE of the rows (exact, O(n^2): for a few thousand points); returns the
    embedding and the final KL(P || Q). ``lr`` None: max(n / 48, 50) (Belkina et al. 2019:
    n / early exaggeration / 4)."""
    f = pca(features, min(50, np.asarray(features).reshape(len(features), -1).shape[1]))
    n = len(f)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}")
    lr = max(n / 48, 50.0) if lr is None else lr
    perplexity = min(perplexity, (n - 1) / 3)
    sq = (f ** 2).sum(1)
    p = _affinities(np.maximum(sq[:, None] + sq[None] - 2 * f @ f.T, 0), perplexity)
    p = np.maximum((p + p.T) / (2 * n), 1e-12)
    y = np.random.default_rng(seed).normal(0, 1e-4, (n, 2))
    step = np.zeros_like(y)
    for it in range(iterations):
        exag = 12.0 if it < iterations // 4 else 1.0
        num = 1 / (1 + ((y[:, None] - y[None]) ** 2).sum(-1))
        np.fill_diagonal(num, 0)
        q = np.maximum(num / num.sum(), 1e-12)
        pq = (exag * p - q) * num
        grad = 4 * (pq.sum(1)[:, None] * y - pq @ y)
        step = (0.5 if it < iterations // 4 else 0.8) * step - lr * grad
        y = y + step
    return y, float((p * np.log(p / q)).sum())
