"""Loss classes (cnnkit.train.losses): Keras documentation examples, closed forms, PyTorch
references, gradient checks, lookup and errors."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close_scaled, gradcheck, torch_or_skip

from cnnkit import Tensor
from cnnkit.train import losses as L

# ----- Keras documentation examples (values published with keras.losses) -------------------

Y2 = np.array([[0.0, 1.0], [0.0, 0.0]])
P2 = np.array([[0.6, 0.4], [0.4, 0.6]], dtype=np.float32)


def _val(t: Tensor) -> np.ndarray:
    return np.asarray(t.data, dtype=np.float64)


@pytest.mark.parametrize("cls, mean, weighted, weights, total, per", [
    (L.BinaryCrossentropy, 0.815, 0.458, [1.0, 0.0], 1.630, [0.916, 0.714]),
    (L.Huber, 0.155, 0.09, [1.0, 0.0], 0.31, [0.18, 0.13]),
    (L.KLDivergence, 0.458, 0.366, [0.8, 0.2], 0.916, [0.916, -3.08e-06]),
])
def test_keras_doc_examples(cls, mean, weighted, weights, total, per):
    assert _val(cls()(Y2, P2)) == pytest.approx(mean, abs=1e-3)
    assert _val(cls()(Y2, P2, sample_weight=weights)) == pytest.approx(weighted, abs=1e-3)
    assert _val(cls(reduction="sum")(Y2, P2)) == pytest.approx(total, abs=1e-3)
    assert _val(cls(reduction="none")(Y2, P2)) == pytest.approx(per, abs=1e-3)


@pytest.mark.parametrize("cls", [L.MeanSquaredError, L.MeanAbsoluteError])
def test_keras_doc_regression(cls):
    yt = np.array([[0.0, 1.0], [0.0, 0.0]])
    yp = np.array([[1.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    assert _val(cls()(yt, yp)) == pytest.approx(0.5)
    assert _val(cls()(yt, yp, sample_weight=[0.7, 0.3])) == pytest.approx(0.25)
    assert _val(cls(reduction="sum")(yt, yp)) == pytest.approx(1.0)
    np.testing.assert_allclose(_val(cls(reduction=None)(yt, yp)), [0.5, 0.5])


def test_keras_doc_crossentropy():
    yp = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], dtype=np.float32)
    onehot = np.array([[0, 1, 0], [0, 0, 1]])
    cce = L.CategoricalCrossentropy()
    assert _val(cce(onehot, yp)) == pytest.approx(1.177, abs=1e-3)
    assert _val(cce(onehot, yp, sample_weight=np.array([0.3, 0.7]))) == pytest.approx(
        0.814, abs=1e-3)
    assert _val(L.CategoricalCrossentropy(reduction="sum")(onehot, yp)) == pytest.approx(
        2.354, abs=1e-3)
    np.testing.assert_allclose(_val(L.CategoricalCrossentropy(reduction="none")(onehot, yp)),
                               [0.0513, 2.303], atol=1e-3)
    assert _val(L.SparseCategoricalCrossentropy()([1, 2], yp)) == pytest.approx(1.177,
                                                                                   abs=1e-3)
    bce = L.BinaryCrossentropy(from_logits=True)
    logits = np.array([-18.6, 0.51, 2.94, -12.8], dtype=np.float32)
    assert _val(bce(np.array([0, 1, 0, 0]), logits)) == pytest.approx(0.865, abs=1e-3)


# ----- closed forms ---------------------------------------------------------------------------

def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_probability_losses_clip_like_keras():
    p = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float64)  # hard 0 / 1 probabilities
    out = _val(L.SparseCategoricalCrossentropy()([1, 1], Tensor(p)))
    assert out == pytest.approx(-np.log(1e-7) / 2)
    out = _val(L.BinaryCrossentropy(reduction="none")(np.array([[1.0], [0.0]]),
                                                      Tensor(np.array([[0.0], [1.0]]))))
    np.testing.assert_allclose(out, [-np.log(1e-7)] * 2, rtol=1e-6)


def test_categorical_normalises_probabilities_and_smooths():
    p = np.array([[2.0, 1.0, 1.0]])  # not normalised: Keras divides by the sum first
    t = np.array([[1.0, 0.0, 0.0]])
    assert _val(L.CategoricalCrossentropy()(t, Tensor(p))) == pytest.approx(-np.log(0.5))
    z = np.array([[1.0, -2.0, 0.5], [0.0, 0.3, 3.0]])
    smooth = 0.2
    ts = np.eye(3)[[2, 0]] * (1 - smooth) + smooth / 3
    expected = -(ts * np.log(_softmax(z))).sum(-1).mean()
    got = L.CategoricalCrossentropy(from_logits=True, label_smoothing=smooth)(np.eye(3)[[2, 0]],
                                                                           Tensor(z))
    assert _val(got) == pytest.approx(expected)
    got = L.CategoricalCrossentropy(label_smoothing=smooth)(np.eye(3)[[2, 0]],
                                                            Tensor(_softmax(z)))
    assert _val(got) == pytest.approx(expected)


def test_binary_label_smoothing_and_last_axis_mean():
    x = np.array([[0.3, -1.0, 2.0], [1.5, 0.0, -0.5]])
    y = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.float64)
    ys = y * 0.9 + 0.05
    s = 1 / (1 + np.exp(-x))
    per = -(ys * np.log(s) + (1 - ys) * np.log(1 - s)).mean(-1)
    got = L.BinaryCrossentropy(from_logits=True, label_smoothing=0.1, reduction="none")(
        y, Tensor(x))
    np.testing.assert_allclose(_val(got), per, rtol=1e-10)
    got = L.BinaryCrossentropy(label_smoothing=0.1, reduction="none")(y, Tensor(s))
    np.testing.assert_allclose(_val(got), per, rtol=1e-6)


def test_dense_predictions_keep_positions():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 3, 4, 5))
    labels = rng.integers(0, 5, (2, 3, 4))
    per = -np.log(np.take_along_axis(_softmax(z), labels[..., None], -1))[..., 0]
    got = L.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(labels, Tensor(z))
    np.testing.assert_allclose(_val(got), per, rtol=1e-10)
    w = np.array([0.25, 2.0])  # one weight per image, spread over its pixels
    got = L.SparseCategoricalCrossentropy(from_logits=True)(labels, Tensor(z), sample_weight=w)
    assert _val(got) == pytest.approx((per * w[:, None, None]).sum() / per.size)
    # regression losses average over the last axis only (Keras), reduce over the rest
    t = rng.standard_normal((2, 3, 4, 5))
    got = L.MeanSquaredError(reduction="none")(t, Tensor(z))
    np.testing.assert_allclose(_val(got), ((z - t) ** 2).mean(-1), rtol=1e-10)
    d = np.abs(z - t)
    hub = np.where(d <= 0.5, 0.5 * d**2, 0.5 * (d - 0.25)).mean(-1)
    np.testing.assert_allclose(_val(L.Huber(0.5, reduction="none")(t, Tensor(z))), hub,
                               rtol=1e-10)


def test_sparse_labels_with_trailing_one_and_float_ids():
    z = np.array([[1.0, 2.0, 0.5], [0.1, -0.3, 0.2]])
    a = _val(L.SparseCategoricalCrossentropy(from_logits=True)(np.array([[1], [2]]), Tensor(z)))
    b = _val(L.SparseCategoricalCrossentropy(from_logits=True)(np.array([1.0, 2.0]), Tensor(z)))
    expected = -np.log(_softmax(z)[[0, 1], [1, 2]]).mean()
    assert a == pytest.approx(expected) and b == pytest.approx(expected)


def test_ignore_class_excluded_from_mean():
    z = np.array([[1.0, 2.0, 0.5], [0.1, -0.3, 0.2], [2.0, 0.0, 0.0]])
    labels = np.array([1, 255, 0])
    per = -np.log(_softmax(z)[[0, 2], [1, 0]])
    for logits in (True, False):
        pred = Tensor(z) if logits else Tensor(_softmax(z))
        loss = L.SparseCategoricalCrossentropy(from_logits=logits, ignore_class=255)
        assert _val(loss(labels, pred)) == pytest.approx(per.mean(), rel=1e-6)
        none = L.SparseCategoricalCrossentropy(from_logits=logits, ignore_class=255,
                                               reduction="none")(labels, pred)
        np.testing.assert_allclose(_val(none), [per[0], 0.0, per[1]], rtol=1e-6)
    p = Tensor(z, requires_grad=True)
    L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)(labels, p).backward()
    np.testing.assert_allclose(p.grad[1], 0.0)


def test_reductions_and_weights():
    yt = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    yp = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
    per = ((yp - yt) ** 2).mean(-1)  # [0.5, 0.5, 2.5]
    w = np.array([1.0, 0.0, 2.0])
    mse = L.MeanSquaredError
    assert _val(mse(reduction="mean")(yt, Tensor(yp), w)) == pytest.approx((per * w).sum() / 3)
    assert _val(mse(reduction="mean_with_sample_weight")(yt, Tensor(yp), w)) == pytest.approx(
        (per * w).sum() / w.sum())
    np.testing.assert_allclose(_val(mse(reduction="none")(yt, Tensor(yp), w[:, None])), per * w)
    assert _val(mse()(yt, Tensor(yp), np.zeros(3))) == 0.0
    assert _val(mse(reduction="mean_with_sample_weight")(yt, Tensor(yp), np.zeros(3))) == 0.0


def test_dtype_follows_prediction_and_targets_are_cast():
    yp = Tensor(np.array([[0.2, 0.8]], dtype=np.float32))
    out = L.CategoricalCrossentropy()(np.array([[0.0, 1.0]]), yp)  # float64 one-hot
    assert out.dtype == np.float32 and out.shape == ()
    out = L.MeanSquaredError()(np.array([[0, 1]]), Tensor(np.zeros((1, 2))))
    assert out.dtype == np.float64


# ----- against PyTorch (float32, forward and backward) -------------------------------------

def _torch_pair(x):
    torch = torch_or_skip()
    return torch, torch.tensor(x, requires_grad=True)


def _backward(loss_fn, x, *args):
    t = Tensor(x.copy(), requires_grad=True)
    out = loss_fn(*args, t) if args else loss_fn(t)
    out.backward(np.ones(out.shape, dtype=out.dtype))
    return out.data, t.grad


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 3, 4)])
@pytest.mark.parametrize("smooth", [0.0, 0.15])
def test_cross_entropy_loss_matches_torch(shape, smooth):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    c = shape[-1]
    target = rng.integers(0, c, shape[:-1])
    target.flat[1] = -100
    weight = rng.uniform(0.5, 2.0, c).astype(np.float32)
    torch, xt = _torch_pair(np.moveaxis(x, -1, 1).copy())
    for kw in ({}, {"weight": weight}, {"reduction": "sum"}, {"reduction": "none"}):
        tk = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        crit = torch.nn.CrossEntropyLoss(label_smoothing=smooth, **tk)
        xt.grad = None
        ref = crit(xt, torch.tensor(target))
        ref.backward(torch.ones_like(ref))
        out, grad = _backward(lambda p, kw=kw: L.CrossEntropyLoss(label_smoothing=smooth,
                                                                  **kw)(p, target), x)
        assert_close_scaled(out, ref.detach().numpy(), what=f"CE {kw}")
        assert_close_scaled(grad, np.moveaxis(xt.grad.numpy(), 1, -1), what=f"CE grad {kw}")


def test_cross_entropy_loss_probability_targets_match_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    t = _softmax(rng.standard_normal((4, 6))).astype(np.float32)
    torch, xt = _torch_pair(x)
    ref = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(xt, torch.tensor(t))
    ref.backward()
    out, grad = _backward(lambda p: L.CrossEntropyLoss(label_smoothing=0.1)(p, t), x)
    assert_close_scaled(out, ref.detach().numpy())
    assert_close_scaled(grad, xt.grad.numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_bce_with_logits_match_torch(reduction):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 5)) * 4).astype(np.float32)
    y = rng.integers(0, 2, (3, 5)).astype(np.float32)
    torch, xt = _torch_pair(x)
    ref = torch.nn.MSELoss(reduction=reduction)(xt, torch.tensor(y))
    ref.backward(torch.ones_like(ref))
    out, grad = _backward(lambda p: L.MSELoss(reduction)(p, y), x)
    assert_close_scaled(out, ref.detach().numpy())
    assert_close_scaled(grad, xt.grad.numpy())
    pos = np.array([0.5, 1.0, 2.0, 3.0, 1.5], dtype=np.float32)
    w = rng.uniform(0.1, 1.0, (3, 5)).astype(np.float32)
    for kw in ({}, {"pos_weight": pos}, {"weight": w, "pos_weight": pos}):
        tk = {k: torch.tensor(v) for k, v in kw.items()}
        xt.grad = None
        ref = torch.nn.BCEWithLogitsLoss(reduction=reduction, **tk)(xt, torch.tensor(y))
        ref.backward(torch.ones_like(ref))
        out, grad = _backward(lambda p, kw=kw: L.BCEWithLogitsLoss(reduction=reduction, **kw)(
            p, y), x)
        assert_close_scaled(out, ref.detach().numpy(), what=f"BCE {kw}")
        assert_close_scaled(grad, xt.grad.numpy(), what=f"BCE grad {kw}")


def test_keras_losses_match_torch_functional():
    torch = torch_or_skip()
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    z = (rng.standard_normal((6, 4)) * 2).astype(np.float32)
    labels = rng.integers(0, 4, 6)
    y = rng.integers(0, 2, (6, 4)).astype(np.float32)
    t = rng.standard_normal((6, 4)).astype(np.float32)
    cases = [
        (lambda p: L.SparseCategoricalCrossentropy(from_logits=True)(labels, p),
         lambda p: F.cross_entropy(p, torch.tensor(labels))),
        (lambda p: L.SparseCategoricalCrossentropy()(labels, p),  # p: probabilities
         lambda p: F.nll_loss(torch.log(p / p.sum(-1, keepdim=True)), torch.tensor(labels))),
        (lambda p: L.BinaryCrossentropy(from_logits=True)(y, p),
         lambda p: F.binary_cross_entropy_with_logits(p, torch.tensor(y))),
        (lambda p: L.BinaryCrossentropy()(y, p),
         lambda p: F.binary_cross_entropy(p, torch.tensor(y))),
        (lambda p: L.Huber(delta=0.7)(t, p),
         lambda p: F.huber_loss(p, torch.tensor(t), delta=0.7)),
        (lambda p: L.MeanAbsoluteError()(t, p), lambda p: F.l1_loss(p, torch.tensor(t))),
        (lambda p: L.KLDivergence()(_softmax(t), p),
         lambda p: F.kl_div(torch.log(p), torch.tensor(_softmax(t)), reduction="sum") / 6),
    ]
    probs = _softmax(z).astype(np.float32)
    sig = (1 / (1 + np.exp(-z))).astype(np.float32)
    inputs = [z, probs, z, sig, z, z, probs]
    for i, ((ours, ref), x) in enumerate(zip(cases, inputs, strict=True)):
        xt = torch.tensor(x, requires_grad=True)
        r = ref(xt)
        r.backward()
        out, grad = _backward(ours, x)
        assert_close_scaled(out, r.detach().numpy(), what=f"case {i}")
        assert_close_scaled(grad, xt.grad.numpy(), what=f"case {i} grad")


# ----- gradients (float64 central differences) -------------------------------------------

def test_gradients_against_finite_differences():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((3, 4))
    p = _softmax(rng.standard_normal((3, 4)))
    s = rng.uniform(0.1, 0.9, (3, 2))
    labels = np.array([2, 0, 3])
    onehot = np.eye(4)[labels]
    yb = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    t = rng.standard_normal((3, 2))
    w = np.array([0.5, 1.0, 2.0])
    checks = [
        (lambda q: L.SparseCategoricalCrossentropy(from_logits=True)(labels, q, w), z),
        (lambda q: L.SparseCategoricalCrossentropy()(labels, q, w), p),
        (lambda q: L.CategoricalCrossentropy(label_smoothing=0.1)(onehot, q), p),
        (lambda q: L.CategoricalCrossentropy(from_logits=True, reduction="none")(onehot, q), z),
        (lambda q: L.BinaryCrossentropy()(yb, q), s),
        (lambda q: L.BinaryCrossentropy(from_logits=True, label_smoothing=0.2)(yb, q), t),
        (lambda q: L.MeanSquaredError(reduction="sum")(t, q), s),
        (lambda q: L.MeanAbsoluteError()(t, q), s),
        (lambda q: L.Huber(delta=0.5, reduction="none")(t, q), s),
        (lambda q: L.KLDivergence()(_softmax(z), q), p),
        (lambda q: L.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5, 1.5]),
                                      label_smoothing=0.1)(q, labels), z),
        (lambda q: L.BCEWithLogitsLoss(pos_weight=np.array([2.0, 0.5]))(q, yb), t),
        (lambda q: L.MSELoss()(q, t), s),
    ]
    for fn, x in checks:
        gradcheck(fn, x)


# ----- lookup, config, errors --------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [
    ("sparse_categorical_crossentropy", L.SparseCategoricalCrossentropy),
    ("categorical_crossentropy", L.CategoricalCrossentropy),
    ("binary_crossentropy", L.BinaryCrossentropy), ("mse", L.MeanSquaredError),
    ("mean_squared_error", L.MeanSquaredError), ("mae", L.MeanAbsoluteError),
    ("huber", L.Huber), ("kld", L.KLDivergence)])
def test_get_by_name(name, cls):
    assert type(L.get(name)) is cls


def test_get_passes_objects_and_callables_and_rejects_unknown():
    loss = L.Huber(2.0)
    assert L.get(loss) is loss

    def fn(y_true, y_pred):
        return y_pred

    assert L.get(fn) is fn
    assert isinstance(L.get(L.MeanSquaredError), L.MeanSquaredError)
    with pytest.raises(ValueError, match="unknown loss 'crossentropy'.*sparse_categorical"):
        L.get("crossentropy")
    with pytest.raises(ValueError, match="cannot interpret 3"):
        L.get(3)


@pytest.mark.parametrize("loss", [
    L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255, reduction="sum"),
    L.CategoricalCrossentropy(label_smoothing=0.1, name="cce"),
    L.BinaryCrossentropy(from_logits=True), L.Huber(delta=0.3), L.MeanSquaredError(),
    L.KLDivergence(reduction="none"), L.CrossEntropyLoss(weight=[1.0, 2.0], ignore_index=3),
    L.BCEWithLogitsLoss(pos_weight=[2.0]), L.MSELoss("sum")])
def test_config_round_trip(loss):
    config = L.serialize(loss)
    again = L.get(config)
    assert type(again) is type(loss)
    assert again.get_config() == loss.get_config()


def test_errors_name_what_was_wrong():
    z = Tensor(np.zeros((2, 3)))
    for logits in (True, False):
        with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
            L.SparseCategoricalCrossentropy(from_logits=logits)([0, 3], z)
        with pytest.raises(ValueError, match="label -1 is out of range"):
            L.SparseCategoricalCrossentropy(from_logits=logits)([-1, 0], z)
    with pytest.raises(ValueError, match="label 7 is out of range for 3 classes"):
        L.CrossEntropyLoss()(z, [7, 0])
    with pytest.raises(ValueError, match=r"labels of shape \(2,\).*got shape \(3,\)"):
        L.SparseCategoricalCrossentropy()([0, 1, 2], z)
    with pytest.raises(ValueError, match="whole numbers, got 0.5"):
        L.SparseCategoricalCrossentropy()([0.5, 1], z)
    with pytest.raises(ValueError, match="reduction must be one of"):
        L.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        L.MSELoss(reduction="sum_over_batch_size")
    with pytest.raises(ValueError, match=r"y_true of shape \(2, 3\).*got shape \(3, 2\)"):
        L.MeanSquaredError()(np.zeros((3, 2)), z)
    with pytest.raises(ValueError, match="sample_weight of shape"):
        L.MeanSquaredError()(np.zeros((2, 3)), z, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing must lie in"):
        L.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="delta > 0"):
        L.Huber(delta=0)
    with pytest.raises(ValueError, match=r"target of shape \(2, 3\)"):
        L.MSELoss()(z, np.zeros((2, 1)))
