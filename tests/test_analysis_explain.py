"""cnnkit.analysis.explain: every method against its formula computed independently with
PyTorch on the same weights (a residual CNN, two layers: one inside the residual join, one
after pooling); batching and class choice; no memory growth over thousands of images; the
sanity check of Adebayo et al. (random weights change the map); on the real digit
checkpoint, Grad-CAM's mass for a digit on a blank canvas falls mostly on the digit."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import shared_path, torch_or_skip, traced_peak

from cnnkit import layers
from cnnkit.analysis import explain as ex
from cnnkit.models import Model, Sequential


def _cnnkit_model(seed=0):
    rng = np.random.default_rng(seed)
    inp = layers.Input((12, 12, 3))
    c1 = layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    c2 = layers.Conv2D(6, 3, padding="same", name="c2")(c1)
    r = layers.ReLU(name="r")(layers.Add(name="add")([c1, c2]))
    p = layers.MaxPooling2D(2, name="pool")(r)
    c3 = layers.Conv2D(5, 3, padding="same", activation="relu", name="c3")(p)
    g = layers.GlobalAveragePooling2D(name="gap")(c3)
    out = layers.Dense(4, name="fc")(g)
    model = Model(inp, out)
    for w in model.weights:
        w.data[...] = rng.normal(0, 0.25, w.shape).astype(np.float32)  # logits of a few units
    return model


def _torch_twin(torch, model):
    """The same network in PyTorch with the same weights (NCHW); ``guided`` swaps every ReLU
    for guided backpropagation's rule, written here as an autograd Function."""
    F = torch.nn.functional

    class Guided(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x > 0) * (g > 0)

    def w(name):
        la = model.get_layer(name)
        k = torch.from_numpy(la.kernel.data)
        k = k.permute(3, 2, 0, 1) if k.ndim == 4 else k.T
        return k, torch.from_numpy(la.bias.data)

    def run(x, cut=None, guided=False):
        relu = Guided.apply if guided else torch.relu
        got = {}

        def keep(name, t):
            if name == cut:
                t.retain_grad()
                got["a"] = t
            return t

        c1 = keep("c1", relu(F.conv2d(x, *w("c1"), padding=1)))
        c2 = F.conv2d(c1, *w("c2"), padding=1)
        r = keep("r", relu(c1 + c2))
        c3 = keep("c3", relu(F.conv2d(F.max_pool2d(r, 2), *w("c3"), padding=1)))
        return F.linear(c3.mean((2, 3)), *w("fc")), got.get("a")

    return run


def _images(n=5, seed=1):
    return np.random.default_rng(seed).normal(0, 1, (n, 12, 12, 3)).astype(np.float32)


def _torch_cam(torch, run, x, cut, classes, method):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    out, a = run(xt.clone().requires_grad_(True), cut)  # a graph through the cut layer
    out[torch.arange(len(x)), torch.from_numpy(classes)].sum().backward()
    g, a = a.grad, a.detach()
    relu = torch.relu
    if method == "gradcam":
        cam = (g.mean((2, 3), keepdim=True) * a).sum(1)
    elif method == "hirescam":
        cam = (g * a).sum(1)
    elif method == "layercam":
        cam = (relu(g) * a).sum(1)
    elif method == "gradcampp":
        num = g ** 2
        den = 2 * g ** 2 + a.sum((2, 3), keepdim=True) * g ** 3
        alpha = torch.where(den != 0, num / torch.where(den != 0, den, torch.ones_like(den)),
                            torch.zeros_like(den))
        cam = ((alpha * relu(g)).sum((2, 3), keepdim=True) * a).sum(1)
    else:  # scorecam
        up = torch.nn.functional.interpolate(a, size=x.shape[1:3], mode="bilinear",
                                             align_corners=False)
        lo = up.amin((2, 3), keepdim=True)
        span = up.amax((2, 3), keepdim=True) - lo
        m = torch.where(span > 0, (up - lo) / torch.where(span > 0, span, 1), 0)
        ws = []
        with torch.no_grad():
            for n in range(len(x)):
                masked = xt[n:n + 1] * m[n][:, None]  # (K, C, H, W)
                ws.append(torch.softmax(run(masked)[0], 1)[:, classes[n]])
        cam = (torch.stack(ws)[:, :, None, None] * a).sum(1)
    return relu(cam).numpy()


@pytest.mark.parametrize("layer", ["r", "c3"])
@pytest.mark.parametrize("method", ex.CAM_METHODS)
def test_cams_match_torch_formula(method, layer):
    torch = torch_or_skip()
    model = _cnnkit_model()
    x = _images()
    got = ex.explain(model, x, method, layer=layer, upsample=False, normalize=False,
                     batch_size=2)
    ref = _torch_cam(torch, _torch_twin(torch, model), x, layer, got.classes, method)
    np.testing.assert_allclose(got.maps, ref, rtol=1e-4, atol=1e-5 * max(1, ref.max()))
    assert ref.max() > 0  # not all clipped by the relu


def _torch_input_grad(torch, run, x, classes, guided=False):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    out, _ = run(xt, guided=guided)
    out[torch.arange(len(x)), torch.from_numpy(np.asarray(classes))].sum().backward()
    return xt.grad.numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("method", ex.INPUT_METHODS)
def test_input_methods_match_torch_formula(method):
    torch = torch_or_skip()
    model = _cnnkit_model()
    run = _torch_twin(torch, model)
    x = _images(4)
    got = ex.explain(model, x, method, class_index=[0, 1, 2, 3], normalize=False,
                     samples=6, noise=0.2, seed=3, steps=8, batch_size=3)
    cls = np.arange(4)
    if method in ("saliency", "guided"):
        g = _torch_input_grad(torch, run, x, cls, guided=method == "guided")
        ref = np.abs(g).max(-1)
    elif method == "smoothgrad":
        std = 0.2 * (x.max() - x.min())
        # the documented draws: default_rng(seed).normal(0, std, (samples, *x.shape)) per batch
        parts = []
        for i in (0, 3):
            xb = x[i:i + 3]
            noise = np.random.default_rng(3).normal(0, 0.2 * float(xb.max() - xb.min()),
                                                    (6, *xb.shape)).astype(np.float32)
            parts.append(np.mean([_torch_input_grad(torch, run, xb + d, cls[i:i + 3])
                                  for d in noise], axis=0))
        assert std > 0
        g = np.concatenate(parts)
        ref = np.abs(g).max(-1)
    else:
        total = sum(_torch_input_grad(torch, run, (s / 8) * x, cls) for s in range(1, 9))
        g = x * total / 8
        ref = g.sum(-1)
        # completeness: attributions add up to about f(x) - f(0)
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        with torch.no_grad():
            diff = (run(xt)[0] - run(torch.zeros_like(xt))[0]).numpy()[np.arange(4), cls]
        np.testing.assert_allclose(got.attributions.sum((1, 2, 3)), diff, rtol=0.25, atol=0.05)
    np.testing.assert_allclose(got.maps, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    assert np.abs(ref).max() > 0


def test_guided_backprop_differs_from_plain_gradient_and_is_restored():
    model = _cnnkit_model()
    x = _images(2)
    guided = ex.explain(model, x, "guided", normalize=False).attributions
    plain = ex.explain(model, x, "saliency", normalize=False).attributions
    assert not np.allclose(guided, plain)
    again = ex.explain(model, x, "saliency", normalize=False).attributions
    np.testing.assert_array_equal(plain, again)  # the guided rule did not leak out
    assert all(w.grad is None for w in model.weights)  # nothing accumulated in the weights


def test_batching_classes_upsampling_and_errors():
    torch = torch_or_skip()
    model = _cnnkit_model()
    x = _images(7)
    one = ex.explain(model, x, "gradcam", layer="c3", batch_size=7)
    many = ex.explain(model, x, "gradcam", layer="c3", batch_size=2)
    np.testing.assert_allclose(one.maps, many.maps, rtol=1e-5, atol=1e-6)
    assert one.maps.shape == (7, 12, 12)
    assert one.maps.min() >= 0 and np.allclose(one.maps.max((1, 2)), 1)
    raw = ex.explain(model, x, "gradcam", layer="c3", upsample=False, normalize=False)
    up = torch.nn.functional.interpolate(torch.from_numpy(raw.maps[:, None]), size=(12, 12),
                                         mode="bilinear", align_corners=False)[:, 0].numpy()
    ref = up - up.min((1, 2), keepdims=True)
    ref = ref / ref.max((1, 2), keepdims=True)
    np.testing.assert_allclose(one.maps, ref, atol=1e-5)
    np.testing.assert_array_equal(one.classes, model.predict(x).argmax(1))
    forced = ex.explain(model, x, "gradcam", layer="c3", class_index=2)
    assert (forced.classes == 2).all()
    with pytest.raises(ValueError, match="no layer named 'nope'.*layers: \\['c1'"):
        ex.explain(model, x, "gradcam", layer="nope")
    with pytest.raises(ValueError, match="gradcam needs layer="):
        ex.explain(model, x, "gradcam")
    with pytest.raises(ValueError, match="unknown method 'cam'"):
        ex.explain(model, x, "cam", layer="c3")
    with pytest.raises(ValueError, match=r"class_index must be in \[0, 4\)"):
        ex.explain(model, x, "gradcam", layer="c3", class_index=9)
    with pytest.raises(ValueError, match="'fc' gives shape"):
        ex.explain(model, x, "gradcam", layer="fc")


def test_no_memory_growth_over_thousands_of_images():
    model = _cnnkit_model()
    small = _images(200, seed=4)
    big = np.concatenate([small] * 10)  # 2,000 images

    def run(x):
        return ex.explain(model, x, "gradcam", layer="c3", batch_size=50).maps.shape

    run(small)  # warm caches
    shape_small, peak_small = traced_peak(lambda: run(small))
    shape_big, peak_big = traced_peak(lambda: run(big))
    assert shape_big == (2000, 12, 12)
    # the output grows by 1,800 * 12 * 12 * 4 bytes (x2 while concatenating); nothing else may
    output_growth = 2 * 1800 * 12 * 12 * 4
    assert peak_big - peak_small < output_growth + 512 * 1024, (peak_small, peak_big)


def _spearman(a, b):
    ra = np.argsort(np.argsort(a.ravel())).astype(float)
    rb = np.argsort(np.argsort(b.ravel())).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def _digit_model():
    torch_or_skip()
    from cnnkit.io import load_sequential_state_dict, load_state_dict

    path = shared_path("weights", "digit_recognizer_handwriting_model.pth")
    state = load_state_dict(path)
    model = Sequential([
        layers.Input((28, 28, 1)), layers.Rescaling(1 / (255 * 0.3081), -0.1307 / 0.3081),
        layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2"),
        layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, padding="same", activation="relu", name="conv3"),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(256, activation="relu"),
        layers.Dense(10)])
    load_sequential_state_dict(model, state)
    return model


def _digits():
    import gzip

    with gzip.open(shared_path("datasets", "mnist5k", "mnist_5k.csv.gz"), "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.uint8, max_rows=200)
    return data[:, :784].reshape(-1, 28, 28, 1).astype(np.float32), data[:, 784]


def _on_canvas(digit, top, left):
    """The digit shrunk to 14x14 (2x2 means) on a blank 28x28 canvas at (top, left)."""
    small = digit.reshape(14, 2, 14, 2).mean((1, 3))
    canvas = np.zeros((28, 28, 1), np.float32)
    canvas[top:top + 14, left:left + 14, 0] = small
    return canvas


def test_digit_gradcam_mass_falls_on_the_digit():
    model = _digit_model()
    x, y = _digits()
    corners = [(0, 0), (0, 14), (14, 0), (14, 14)]
    canvases, boxes = [], []
    for i in range(40):
        top, left = corners[i % 4]
        canvases.append(_on_canvas(x[i, :, :, 0], top, left))
        boxes.append((top, left))
    canvases = np.stack(canvases)
    res = ex.explain(model, canvases, "gradcam", layer="conv3", class_index=y[:40])
    inside = []
    for m, (top, left) in zip(res.maps, boxes, strict=True):
        inside.append(m[top:top + 14, left:left + 14].sum() / m.sum())
    inside = np.array(inside)
    print(f"Grad-CAM mass on the digit's quarter: median {np.median(inside):.2f}, "
          f"mean {inside.mean():.2f} (the quarter is 25% of the canvas)")
    assert np.median(inside) > 0.6
    assert (inside > 0.5).mean() > 0.75


def test_adebayo_randomised_weights_change_the_map():
    """Model-parameter randomisation (Adebayo et al. 2018): Grad-CAM of the trained digit
    model against the same architecture with re-drawn weights; a method that only
    reflects the input (an edge detector) would give the same map."""
    model = _digit_model()
    x, _ = _digits()
    x = x[:12]
    trained = ex.explain(model, x, "gradcam", layer="conv3").maps
    again = ex.explain(model, x, "gradcam", layer="conv3").maps
    assert min(_spearman(a, b) for a, b in zip(trained, again, strict=True)) > 0.999
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.data[...] = rng.normal(0, np.sqrt(2 / max(1, np.prod(w.shape[:-1]))), w.shape)
    random = ex.explain(model, x, "gradcam", layer="conv3").maps
    rho = [_spearman(a, b) for a, b in zip(trained, random, strict=True)]
    print(f"Spearman rank correlation trained vs random weights: median {np.median(rho):.2f}")
    assert np.median(rho) < 0.5
