"""NaN / Inf in training: fit refuses the step before any weight changes, says where and which
samples, can skip such batches instead, and TerminateOnNaN keeps working.

The expected weights come from an independent path: the same seeded model trained on the
data without the bad batch (or with train_on_batch on the good batches only).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import cnnkit
from cnnkit import layers, ops
from cnnkit.models import NonFiniteError, Sequential
from cnnkit.models.nonfinite import check_finite_data
from cnnkit.train import callbacks, losses, optimizers


def _classifier(bn: bool = True) -> Sequential:
    cnnkit.random.seed(0)
    body = [layers.Input((6,)), layers.Dense(5, activation="relu")]
    body += [layers.BatchNormalization()] if bn else []
    m = Sequential(body + [layers.Dense(3)])
    m.compile(optimizers.Adam(0.01), losses.SparseCategoricalCrossentropy(from_logits=True),
              seed=0)
    return m


def _regressor() -> Sequential:
    cnnkit.random.seed(1)
    m = Sequential([layers.Input((6,)), layers.Dense(4, activation="tanh"), layers.Dense(2)])
    m.compile(optimizers.SGD(0.05), "mse", seed=1)
    return m


def _data(n: int = 16):
    r = np.random.default_rng(3)
    return r.standard_normal((n, 6)).astype(np.float32), r.integers(0, 3, n)


def _weights(m) -> list[np.ndarray]:
    return [w.data.copy() for w in m.weights]


def _assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


class _Batches:
    """A re-iterable batch source (a new pass each epoch)."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __iter__(self):
        return iter(self.pairs)


def test_nan_sample_in_arrays_stops_fit_before_any_weight_changes():
    m = _classifier()
    x, y = _data()
    x[11, 2] = np.nan
    before = _weights(m)
    with pytest.raises(NonFiniteError, match=r"x holds NaN or Inf in 1 sample\(s\) \(index 11\)"
                       ) as info:
        m.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert info.value.samples == [11]
    assert isinstance(info.value, ValueError) and isinstance(info.value, FloatingPointError)
    _assert_same(_weights(m), before)


def test_nan_batch_from_iterator_names_epoch_batch_and_sample():
    x, y = _data()
    x[9, 0] = np.nan  # batch 2 (rows 8..11), position 1
    pairs = [(x[i:i + 4], y[i:i + 4]) for i in range(0, 16, 4)]
    m = _classifier()
    with pytest.raises(NonFiniteError) as info:
        m.fit(_Batches(pairs), epochs=2, verbose=0)
    msg = str(info.value)
    assert "epoch index 0, batch index 2" in msg and "the loss is nan" in msg
    assert "sample(s) 1 (positions in the batch)" in msg
    assert (info.value.epoch, info.value.batch, info.value.samples) == (0, 2, [1])
    ref = _classifier()  # the same model stepped on the two good batches only
    for bx, by in pairs[:2]:
        ref.train_on_batch(bx, by)
    _assert_same(_weights(m), _weights(ref))  # BatchNorm's moving statistics included


def test_skip_mode_drops_bad_batches_and_counts_them():
    x, y = _data()
    x[5, 3] = np.inf  # batch 1 (rows 4..7) with shuffle off
    m = _classifier(bn=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = m.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0,
                  on_nonfinite="skip")
    ours = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(ours) == 2
    for epoch, msg in enumerate(ours):
        assert msg.startswith(f"fit() at epoch index {epoch}, batch index 1: the loss is nan")
        assert "sample(s) 5 (indices in the training data)" in msg
    assert h.history["skipped_batches"] == [1, 1]
    keep = np.r_[0:4, 8:16]
    ref = _classifier(bn=False)
    h_ref = ref.fit(x[keep], y[keep], epochs=2, batch_size=4, shuffle=False, verbose=0)
    _assert_same(_weights(m), _weights(ref))
    assert all(np.isfinite(w).all() for w in _weights(m))
    np.testing.assert_array_equal(h.history["loss"], h_ref.history["loss"])


def test_inf_regression_target_is_caught_up_front_and_per_step():
    m = _regressor()
    r = np.random.default_rng(4)
    x, t = r.standard_normal((10, 6)).astype(np.float32), r.standard_normal((10, 2))
    t[7, 1] = np.inf
    before = _weights(m)
    with pytest.raises(NonFiniteError, match=r"y holds NaN or Inf in 1 sample\(s\) \(index 7\)"):
        m.fit(x, t, epochs=1, batch_size=5, verbose=0)
    with pytest.raises(NonFiniteError, match=r"batch index 1: the loss is inf.*sample\(s\) 2 "):
        m.fit(_Batches([(x[:5], t[:5]), (x[5:], t[5:])]), epochs=1, verbose=0)
    ref = _regressor()
    ref.train_on_batch(x[:5], t[:5])
    _assert_same(_weights(m), _weights(ref))
    assert not np.array_equal(_weights(m)[0], before[0])


def test_terminate_on_nan_stops_with_finite_weights():
    x, y = _data()
    x[6, 1] = np.nan
    m = _classifier()
    out = io.StringIO()
    with pytest.warns(RuntimeWarning, match="training stops"):
        h = m.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0,
                  callbacks=[callbacks.TerminateOnNaN(stream=out)])
    assert out.getvalue() == "Batch 1: invalid loss nan, terminating training\n"
    assert len(h.history["loss"]) == 1 and np.isnan(h.history["loss"][0])
    ref = _classifier()
    ref.train_on_batch(x[:4], y[:4])
    _assert_same(_weights(m), _weights(ref))


def test_explicit_raise_wins_over_terminate_on_nan_and_bad_mode_is_rejected():
    x, y = _data()
    x[0, 0] = np.nan
    m = _classifier()
    with pytest.raises(NonFiniteError):
        m.fit(x, y, verbose=0, on_nonfinite="raise", callbacks=[callbacks.TerminateOnNaN()])
    with pytest.raises(ValueError, match="on_nonfinite must be one of 'raise', 'skip', 'stop'"):
        m.fit(x, y, verbose=0, on_nonfinite="ignore")


def test_infinite_gradient_with_finite_loss_is_refused():
    """sqrt(p) at p = 0: the loss is 0 but d sqrt/dp = inf."""
    m = Sequential([layers.Input((3,)), layers.Dense(1, kernel_initializer="zeros")])
    m.compile(optimizers.SGD(0.1), lambda y, p: ops.mean(ops.sqrt(p)))
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32)
    before = _weights(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's divide by zero in sqrt'
        with pytest.raises(NonFiniteError, match=r"train_on_batch\(\): the gradient of "
                                                 r"\S*kernel holds NaN or Inf \(the loss is 0\)"
                                                 r".*the model diverged"):
            m.train_on_batch(x, y)
    _assert_same(_weights(m), before)


def test_finite_data_check_is_exact():
    big = np.full((4, 5), 3e38, np.float32)  # finite, but its sum overflows
    check_finite_data({"x": big, "y": np.arange(4)})
    big[2, 4] = -np.inf
    with pytest.raises(NonFiniteError, match=r"x holds NaN or Inf in 1 sample\(s\) \(index 2\)"):
        check_finite_data({"x": big})
