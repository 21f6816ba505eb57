"""Knowledge distillation: the loss against PyTorch's kl_div(batchmean) and cross_entropy
written here, its gradient against finite differences, and the Distiller's training."""

import numpy as np
import pytest
from helpers import gradcheck, torch_or_skip

from cnnkit import Tensor, layers, ops
from cnnkit.deploy import Distiller
from cnnkit.models import Sequential
from cnnkit.train import callbacks
from cnnkit.train.losses import DistillationLoss, SparseCategoricalCrossentropy


def _logits(seed, n=6, c=5, scale=3.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, c)) * scale).astype(dtype)


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.0), (4.0, 0.1), (10.0, 0.5), (2.5, 1.0)])
def test_distillation_loss_matches_torch_batchmean(temperature, alpha):
    torch = torch_or_skip()
    F = torch.nn.functional
    s, t = _logits(0), _logits(1)
    y = np.array([0, 4, 2, 1, 3, 3])
    st = torch.tensor(s, requires_grad=True)
    tt = torch.tensor(t)
    kl = F.kl_div(F.log_softmax(st / temperature, dim=1), F.softmax(tt / temperature, dim=1),
                  reduction="batchmean")
    ref = alpha * F.cross_entropy(st, torch.tensor(y)) + (1 - alpha) * temperature ** 2 * kl
    ref.backward()
    s_ck = Tensor(s, requires_grad=True)
    got = DistillationLoss(temperature, alpha)(y, s_ck, t)
    got.backward()
    np.testing.assert_allclose(got.data, ref.item(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s_ck.grad, st.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_distillation_kl_is_summed_over_classes_and_averaged_over_the_batch():
    """Written out by hand: T^2 / N * sum_n sum_c p log(p / q)."""
    s, t, temp = _logits(2, 4, 7, dtype=np.float64), _logits(3, 4, 7, dtype=np.float64), 3.0

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p, q = softmax(t / temp), softmax(s / temp)
    want = temp ** 2 * (p * np.log(p / q)).sum() / len(s)
    assert abs(float(ops.distillation_kl(s, t, temp).data) - want) < 1e-12


@pytest.mark.parametrize("temperature", [1.0, 5.0])
def test_distillation_kl_gradient_vs_finite_differences(temperature):
    t = _logits(4, 3, 4, dtype=np.float64)
    gradcheck(lambda s: ops.distillation_kl(s, t, temperature, reduction="none"),
              _logits(5, 3, 4, dtype=np.float64))
    loss = DistillationLoss(temperature, 0.3)
    gradcheck(lambda s: loss(np.array([1, 0, 3]), s, t), _logits(6, 3, 4, dtype=np.float64))


def test_distillation_loss_checks_its_arguments():
    with pytest.raises(ValueError, match="temperature"):
        DistillationLoss(0.0)
    with pytest.raises(ValueError, match="alpha"):
        DistillationLoss(2.0, 1.5)
    with pytest.raises(ValueError, match="teacher_logits of shape"):
        ops.distillation_kl(_logits(0), _logits(1, c=4))


def _tiny(width, seed):
    from cnnkit import random as crandom

    crandom.seed(seed)
    return Sequential([layers.Input((6, 6, 1)), layers.Conv2D(width, 3, activation="relu"),
                       layers.BatchNormalization(), layers.Flatten(), layers.Dense(3)])


def test_distiller_trains_the_student_and_leaves_the_teacher_alone():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6, 6, 1)).astype(np.float32)
    y = (x[:, :3, :, 0].sum((1, 2)) > 0).astype(np.int64) + (x[:, 3:, :, 0].sum((1, 2)) > 0)
    teacher, student = _tiny(8, 1), _tiny(2, 2)
    frozen = [w.data.copy() for w in teacher.weights]
    before = [w.data.copy() for w in student.weights]
    seen = []
    d = Distiller(student, teacher)
    d.compile(optimizer="adam", metrics=["accuracy"], alpha=0.2, temperature=3.0)
    hist = d.fit(x, y, batch_size=16, epochs=3, verbose=0,
                 callbacks=[callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))])
    assert seen == [0, 1, 2] and len(hist.history["loss"]) == 3
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert all(np.array_equal(a, w.data) for a, w in zip(frozen, teacher.weights, strict=True))
    assert any(not np.array_equal(a, w.data) for a, w in zip(before, student.weights,
                                                             strict=True))
    logs = d.evaluate(x, y, verbose=0, return_dict=True)
    ref = ops.softmax_cross_entropy(student.predict(x), y)
    assert abs(logs["loss"] - float(ref.data)) < 1e-4  # evaluate reports the student's own CE
    np.testing.assert_allclose(d.predict(x), student.predict(x), rtol=1e-6)


def test_distiller_step_minimises_the_distillation_loss():
    """One SGD step moves the student by -lr * d(DistillationLoss)/dw, computed here."""
    x = np.random.default_rng(3).standard_normal((8, 6, 6, 1)).astype(np.float32)
    y = np.arange(8) % 3
    teacher, student = _tiny(4, 5), _tiny(2, 6)
    ref = _tiny(2, 6)
    loss = DistillationLoss(2.0, 0.25)
    out = ref(Tensor(x), training=True)
    loss(y, out, teacher.predict(x)).backward()
    want = [w.data - 0.1 * w.grad for w in ref.trainable_weights]
    d = Distiller(student, teacher)
    d.compile(optimizer="sgd", distillation_loss_fn=loss)
    d.optimizer.learning_rate = 0.1
    d.train_on_batch(x, y)
    for w, e in zip(student.trainable_weights, want, strict=True):
        np.testing.assert_allclose(w.data, e, rtol=1e-5, atol=1e-6)


def test_distiller_rejects_non_models():
    with pytest.raises(TypeError, match="student and a teacher Model"):
        Distiller(layers.Dense(2), _tiny(2, 0))


def test_distiller_with_alpha_1_trains_exactly_like_the_student_alone():
    """alpha = 1 leaves only the hard-label term: same seeds, same batches, same weights."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((48, 6, 6, 1)).astype(np.float32)
    y = np.arange(48) % 3
    alone, student, teacher = _tiny(2, 9), _tiny(2, 9), _tiny(4, 10)
    alone.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=True),
                  seed=5)
    alone.fit(x, y, batch_size=16, epochs=2, verbose=0)
    d = Distiller(student, teacher)
    d.compile(optimizer="adam", alpha=1.0, seed=5)
    d.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for a, b in zip(alone.weights, student.weights, strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-7)
