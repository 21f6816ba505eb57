"""Why did the model say that? Class activation maps and input attributions, driven by
cnnkit's own backward pass (:mod:`cnnkit.analysis.graph_run`): any layer of a Sequential or
functional model, chosen by name, no hooks, in batches.

With A the chosen layer's output (N, h, w, K), G = d y_c / d A (y_c: the model's output for
class c, logits or probabilities as the model gives them) and ``relu`` = max(0, .):

- ``gradcam`` (Selvaraju et al. 2017): ``relu(sum_k mean_ij(G_k) A_k)``
- ``gradcampp`` (Chattopadhay et al. 2018): ``a_kij = G^2 / (2 G^2 + sum_ab(A_kab) G^3)``
  (0 where the denominator is 0), ``w_k = sum_ij a_kij relu(G_kij)``, ``relu(sum_k w_k A_k)``
- ``hirescam`` (Draelos & Carin 2020): ``relu(sum_k G_k * A_k)`` (element-wise)
- ``layercam`` (Jiang et al. 2021): ``relu(sum_k relu(G_k) * A_k)``
- ``scorecam`` (Wang et al. 2020): each A_k resized (bilinear) to the input and scaled to
  [0, 1] masks the input; ``s_k = softmax(model(x * M_k))_c``; ``relu(sum_k s_k A_k)``

and on the input x (N, H, W, C):

- ``saliency`` (Simonyan et al. 2014): ``max_channels |d y_c / d x|``
- ``smoothgrad`` (Smilkov et al. 2017): the gradient averaged over ``samples`` copies of x
  plus Gaussian noise of std ``noise * (max(x) - min(x))`` (drawn as
  ``default_rng(seed).normal(0, std, (samples, *x.shape))``), then ``max_channels |.|``
- ``guided`` (Springenberg et al. 2015): the gradient with every ReLU passing back only
  positive gradients where its input was positive; ``max_channels |.|``
- ``integrated`` (Sundararajan et al. 2017): ``(x - x') * mean_{s=1..m} d y_c/d x
  (x' + s/m (x - x'))``, baseline x' (zeros by default), ``m = steps``; the map is the sum
  over channels (the attributions add up to about y_c(x) - y_c(x')).

CAMs are resized (bilinear, half-pixel centres as torch's ``align_corners=False``) to the
input and, by default, scaled to [0, 1] per image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ops
from ..autograd import Tensor, no_grad
from ..ops.activation import guided_relu
from .graph_run import check_layer, class_scores_backward, forward_cut, frozen_weights

CAM_METHODS = ("gradcam", "gradcampp", "hirescam", "layercam", "scorecam")
INPUT_METHODS = ("saliency", "smoothgrad", "guided", "integrated")
METHODS = CAM_METHODS + INPUT_METHODS


@dataclass
class Explanation:
    """``maps`` (N, H, W) heat maps; ``classes`` and ``scores`` the explained class and its
    output per image; ``attributions`` the per-channel input attributions (input methods)."""

    maps: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    attributions: np.ndarray | None = None


def _relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0)


def gradcam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """relu(sum_k mean_ij(G_k) A_k) for (N, h, w, K) arrays."""
    return _relu((a * g.mean(axis=(1, 2), keepdims=True)).sum(-1))


def gradcampp(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Grad-CAM++ weights (see module doc)."""
    g2, g3 = g * g, g * g * g
    denom = 2 * g2 + a.sum(axis=(1, 2), keepdims=True) * g3
    alpha = np.divide(g2, denom, out=np.zeros_like(g2), where=denom != 0)
    w = (alpha * _relu(g)).sum(axis=(1, 2), keepdims=True)
    return _relu((w * a).sum(-1))


def hirescam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    return _relu((g * a).sum(-1))


def layercam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    return _relu((_relu(g) * a).sum(-1))


_GRADIENT_CAMS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "gradcam": gradcam, "gradcampp": gradcampp, "hirescam": hirescam, "layercam": layercam}


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) -> (N, H, W), bilinear with half-pixel centres."""
    if maps.shape[1:] == tuple(size):
        return maps
    with no_grad():
        t = ops.resize(Tensor(maps[..., None].astype(np.float32)), size=size, method="linear")
    return t.data[..., 0]


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Each map scaled to [0, 1] (a constant map becomes 0)."""
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    return np.divide(maps - lo, span, out=np.zeros_like(maps), where=span > 0)


def _activations_and_grads(model: Any, x: np.ndarray, layer: str, class_index: Any
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    leaf, out = forward_cut(model, x, layer)
    if leaf.ndim != 4:
        raise ValueError(f"a CAM needs a layer with a (batch, height, width, channels) output; "
                         f"'{layer}' gives shape {leaf.shape}")
    classes, scores = class_scores_backward(out, class_index)
    grad = leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
    return leaf.data, grad, classes, scores


def _input_grads(model: Any, x: np.ndarray, class_index: Any
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    leaf, out = forward_cut(model, x, None)
    classes, scores = class_scores_backward(out, class_index)
    return (leaf.grad if leaf.grad is not None else np.zeros_like(x)), classes, scores


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def scorecam(model: Any, x: np.ndarray, a: np.ndarray, classes: np.ndarray,
             batch_size: int) -> np.ndarray:
    """Score-CAM weights from one masked forward pass per channel (see module doc)."""
    n, h, w, k = a.shape
    flat = a.transpose(0, 3, 1, 2).reshape(n * k, h, w)  # one map per (image, channel)
    masks = normalize_maps(resize_maps(flat, x.shape[1:3])).reshape(n, k, *x.shape[1:3])
    weights = np.empty((a.shape[0], a.shape[3]), dtype=np.float32)
    for n in range(x.shape[0]):
        for k0 in range(0, a.shape[3], batch_size):
            m = masks[n, k0:k0 + batch_size, :, :, None]
            with no_grad():
                z = np.asarray(model(Tensor((x[n] * m).astype(x.dtype)), training=False).data)
            weights[n, k0:k0 + len(m)] = _softmax(z)[:, classes[n]]
    return _relu((a * weights[:, None, None, :]).sum(-1))


def _cam(model: Any, x: np.ndarray, method: str, layer: str, class_index: Any,
         batch_size: int) -> Explanation:
    a, g, classes, scores = _activations_and_grads(model, x, layer, class_index)
    if method == "scorecam":
        maps = scorecam(model, x, a, classes, batch_size)
    else:
        maps = _GRADIENT_CAMS[method](a, g)
    return Explanation(maps.astype(np.float32), classes, scores)


def _inputs(model: Any, x: np.ndarray, method: str, class_index: Any, options: dict
            ) -> Explanation:
    if method == "saliency":
        g, classes, scores = _input_grads(model, x, class_index)
        return Explanation(np.abs(g).max(-1), classes, scores, g)
    if method == "guided":
        with guided_relu():
            g, classes, scores = _input_grads(model, x, class_index)
        return Explanation(np.abs(g).max(-1), classes, scores, g)
    if method == "smoothgrad":
        n, noise, seed = options.get("samples", 25), options.get("noise", 0.15), \
            options.get("seed", 0)
        std = noise * float(x.max() - x.min())
        draws = np.random.default_rng(seed).normal(0, std, (n, *x.shape)).astype(x.dtype)
        _, classes, scores = _input_grads(model, x, class_index)
        total = np.zeros_like(x)
        for d in draws:
            total += _input_grads(model, x + d, classes)[0]
        g = total / n
        return Explanation(np.abs(g).max(-1), classes, scores, g)
    steps = options.get("steps", 32)
    base = np.broadcast_to(np.asarray(options.get("baseline", 0.0), x.dtype), x.shape)
    _, classes, scores = _input_grads(model, x, class_index)
    total = np.zeros_like(x)
    for s in range(1, steps + 1):
        total += _input_grads(model, base + (s / steps) * (x - base), classes)[0]
    attr = (x - base) * total / steps
    return Explanation(attr.sum(-1), classes, scores, attr)


def default_layer(model: Any) -> str:
    """The last layer whose output is a feature map (batch, height, width, channels)."""
    from ..models.complexity import complexity_rows

    rows = [r for r in complexity_rows(model) if r.kind != "InputLayer"
            and "Pool" not in r.kind and "Padding" not in r.kind
            and isinstance(r.output_shape, tuple) and len(r.output_shape) == 4]
    if not rows:
        raise ValueError(f"model '{model.name}' has no layer with a feature-map output")
    return rows[-1].name


def explain(model: Any, images: Any, method: str = "gradcam", layer: str | None = None,
            class_index: Any = None, batch_size: int = 32, upsample: bool = True,
            normalize: bool = True, **options: Any) -> Explanation:
    """Heat maps of ``method`` (one of :data:`METHODS`) for ``images`` (N, H, W, C).

    ``layer``: the layer whose output a CAM reads (required for CAMs). ``class_index``: None
    (each image's top class), an int, or one per image. Runs ``batch_size`` images at a time;
    nothing is kept between batches. ``options``: ``samples``, ``noise``, ``seed``
    (smoothgrad), ``steps``, ``baseline`` (integrated).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    x = np.asarray(images.data if isinstance(images, Tensor) else images)
    if x.ndim < 3 or x.dtype.kind != "f":
        raise ValueError(f"images must be a float array (batch, height, width, channels), got "
                         f"shape {x.shape} dtype {x.dtype}")
    if method in CAM_METHODS and layer is None:
        raise ValueError(f"{method} needs layer= (the name of a convolutional layer)")
    check_layer(model, layer)
    cls = None if class_index is None else np.broadcast_to(
        np.asarray(class_index), (x.shape[0],))
    parts = []
    with frozen_weights(model):
        for i in range(0, x.shape[0], batch_size):
            xb, cb = x[i:i + batch_size], None if cls is None else cls[i:i + batch_size]
            if method in CAM_METHODS:
                parts.append(_cam(model, xb, method, layer, cb, batch_size))
            else:
                parts.append(_inputs(model, xb, method, cb, options))
    maps = np.concatenate([p.maps for p in parts])
    if upsample and method in CAM_METHODS:
        maps = resize_maps(maps, x.shape[1:3])
    if normalize:
        maps = normalize_maps(np.abs(maps) if method == "integrated" else maps)
    attr = None if method in CAM_METHODS else np.concatenate([p.attributions for p in parts])
    return Explanation(maps, np.concatenate([p.classes for p in parts]),
                       np.concatenate([p.scores for p in parts]), attr)
