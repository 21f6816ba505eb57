"""Metrics (cnnkit.train.metrics) against Keras documentation examples and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import Tensor
from cnnkit.train import metrics as M

# ----- accuracies (values from the keras.metrics documentation) ----------------------------

PRED3 = np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0.0]], dtype=np.float32)


def test_sparse_categorical_accuracy():
    m = M.SparseCategoricalAccuracy()
    assert m(np.array([[2], [1]]), PRED3) == pytest.approx(0.5)
    m.reset_state()
    m.update_state(np.array([[2], [1]]), PRED3, sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)
    assert m.name == "sparse_categorical_accuracy"


def test_categorical_accuracy():
    m = M.CategoricalAccuracy()
    onehot = np.array([[0, 0, 1], [0, 1, 0]])
    assert m(onehot, PRED3) == pytest.approx(0.5)
    m.reset_state()
    assert m(onehot, PRED3, sample_weight=[0.7, 0.3]) == pytest.approx(0.3)


def test_binary_accuracy():
    yt = np.array([[1], [1], [0], [0]])
    yp = np.array([[0.98], [1], [0], [0.6]])
    assert M.BinaryAccuracy()(yt, yp) == pytest.approx(0.75)
    assert M.BinaryAccuracy()(yt, yp, sample_weight=[1, 0, 0, 1]) == pytest.approx(0.5)
    assert M.BinaryAccuracy(threshold=0.7)(yt, yp) == pytest.approx(1.0)
    # multi-label: mean over the last axis per sample, then over samples
    assert M.BinaryAccuracy()(np.array([[1, 0], [1, 1]]),
                              np.array([[0.9, 0.8], [0.7, 0.2]])) == pytest.approx(0.5)


def test_top_k_accuracies():
    yp = np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0.0]])
    m = M.TopKCategoricalAccuracy(k=1)
    assert m(np.array([[0, 0, 1], [0, 1, 0]]), yp) == pytest.approx(0.5)
    m.reset_state()
    assert m(np.array([[0, 0, 1], [0, 1, 0]]), yp, sample_weight=[0.7, 0.3]) == pytest.approx(
        0.3)
    assert M.SparseTopKCategoricalAccuracy(k=1)([2, 1], yp) == pytest.approx(0.5)
    assert M.SparseTopKCategoricalAccuracy(k=2)([2, 1], yp) == pytest.approx(1.0)
    assert M.SparseTopKCategoricalAccuracy(k=2)([0, 2], yp) == pytest.approx(0.0)
    assert M.SparseTopKCategoricalAccuracy()([0, 2], yp) == pytest.approx(1.0)  # k >= C


def test_accuracy_chooses_the_comparison():
    acc = M.Accuracy()
    assert acc.name == "accuracy"
    assert acc([2, 1], PRED3) == pytest.approx(0.5)  # sparse
    acc.reset_state()
    assert acc(np.array([[0, 0, 1], [0, 1, 0]]), PRED3) == pytest.approx(0.5)  # one-hot
    acc.reset_state()
    assert acc([1, 0, 1], np.array([0.8, 0.3, 0.4])) == pytest.approx(2 / 3)  # binary (N,)
    acc.reset_state()
    assert acc([[1], [0]], np.array([[0.2], [0.1]])) == pytest.approx(0.5)  # binary (N, 1)
    acc.reset_state()
    assert acc([1, 2, 3], np.array([1, 2, 0])) == pytest.approx(2 / 3)  # ids against ids
    acc.reset_state()
    seg = np.zeros((1, 2, 2, 3))
    seg[..., 1] = 1.0
    assert acc(np.array([[[1, 1], [0, 1]]]), seg) == pytest.approx(0.75)  # per pixel


def test_state_accumulates_over_batches_and_tensors_are_accepted():
    m = M.SparseCategoricalAccuracy()
    m.update_state(Tensor(np.array([1, 0])), Tensor(PRED3))
    m.update_state(np.array([0]), np.array([[0.9, 0.05, 0.05]]))
    assert m.result() == pytest.approx(2 / 3)
    m.reset_state()
    assert m.result() == 0.0


def test_mean_and_regression_metrics():
    mean = M.Mean(name="loss")
    mean.update_state(1.0)
    mean.update_state(Tensor(np.array(3.0)))
    mean.update_state(np.array([5.0, 7.0]), sample_weight=[1.0, 0.0])
    assert mean.result() == pytest.approx(3.0)
    assert mean.name == "loss"
    yt = np.array([[0.0, 1.0], [0.0, 0.0]])
    yp = np.array([[1.0, 1.0], [1.0, 0.0]])
    assert M.MeanSquaredError()(yt, yp) == pytest.approx(0.5)
    assert M.MeanAbsoluteError()(yt, 2 * yp, sample_weight=[1.0, 0.0]) == pytest.approx(1.5)


# ----- precision, recall, F1 -----------------------------------------------------------------

def test_binary_precision_recall_keras_examples():
    yt, yp = [0, 1, 1, 1], [1, 0, 1, 1]
    assert M.Precision()(yt, np.array(yp, dtype=float)) == pytest.approx(2 / 3)
    assert M.Recall()(yt, np.array(yp, dtype=float)) == pytest.approx(2 / 3)
    assert M.Precision()(yt, np.array(yp, dtype=float), sample_weight=[0, 0, 1, 0]) == 1.0
    assert M.Recall()(yt, np.array(yp, dtype=float), sample_weight=[0, 0, 1, 0]) == 1.0
    # probabilities of shape (N, 1), thresholded at 0.5 or at a given value
    probs = np.array([[0.9], [0.4], [0.6], [0.3]])
    truth = np.array([1, 1, 0, 0])
    assert M.Precision()(truth, probs) == pytest.approx(0.5)
    assert M.Recall()(truth, probs) == pytest.approx(0.5)
    assert M.Precision(thresholds=0.35)(truth, probs) == pytest.approx(2 / 3)
    assert M.Recall(thresholds=0.35)(truth, probs) == pytest.approx(1.0)
    assert M.F1Score()(truth, probs) == pytest.approx(0.5)
    assert M.Precision()([0, 0], np.array([0.1, 0.2])) == 0.0  # nothing predicted positive


def test_f1_keras_example_per_class():
    yt = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]], dtype=np.float32)
    yp = np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], dtype=np.float32)
    m = M.F1Score(average=None, threshold=0.5)
    np.testing.assert_allclose(m(yt, yp), [0.5, 0.8, 2 / 3], rtol=1e-6)


# Hand-worked multi-class case: true [0,0,0,1,1,2], predicted [0,0,1,1,2,2].
# class 0: tp 2 fp 0 fn 1; class 1: tp 1 fp 1 fn 1; class 2: tp 1 fp 1 fn 0.
TRUE6 = np.array([0, 0, 0, 1, 1, 2])
PRED6 = np.eye(3)[[0, 0, 1, 1, 2, 2]] * 0.6 + 0.1  # argmax gives the predicted class


@pytest.mark.parametrize("cls, per_class", [
    (M.Precision, [1.0, 0.5, 0.5]),
    (M.Recall, [2 / 3, 0.5, 1.0]),
    (M.F1Score, [0.8, 0.5, 2 / 3]),
])
def test_multiclass_averages(cls, per_class):
    per_class = np.array(per_class)
    support = np.array([3, 2, 1])
    np.testing.assert_allclose(cls(average=None)(TRUE6, PRED6), per_class)
    assert cls(average="macro")(TRUE6, PRED6) == pytest.approx(per_class.mean())
    assert cls(average="weighted")(TRUE6, PRED6) == pytest.approx(
        (per_class * support).sum() / 6)
    assert cls(average="micro")(TRUE6, PRED6) == pytest.approx(4 / 6)  # = accuracy
    assert cls(average=None)(np.eye(3)[TRUE6], PRED6) == pytest.approx(per_class)  # one-hot
    assert cls(class_id=2)(TRUE6, PRED6) == pytest.approx(per_class[2])


def test_f1_weighted_samples_and_batches():
    m = M.F1Score(average="micro")
    m.update_state(TRUE6[:3], PRED6[:3])
    m.update_state(TRUE6[3:], PRED6[3:], sample_weight=[1.0, 0.0, 1.0])
    # weighted counts: tp 2+1+1 = 4, fp 0+1+0 = 1 (sample 4 dropped), fn 1+0+0 = 1
    assert m.result() == pytest.approx(8 / 10)
    assert M.F1Score()(TRUE6, PRED6) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)  # default macro


# ----- confusion matrix ----------------------------------------------------------------------

def test_confusion_matrix():
    expected = np.array([[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(M.confusion_matrix(TRUE6, [0, 0, 1, 1, 2, 2]), expected)
    np.testing.assert_array_equal(M.confusion_matrix(TRUE6, PRED6), expected)  # scores
    np.testing.assert_array_equal(M.confusion_matrix(np.eye(3)[TRUE6], PRED6), expected)
    np.testing.assert_array_equal(M.confusion_matrix(np.eye(3)[TRUE6], [0, 0, 1, 1, 2, 2]),
                                  expected)
    big = M.confusion_matrix([0, 1], [1, 1], num_classes=4)
    assert big.shape == (4, 4) and big[0, 1] == 1 and big[1, 1] == 1 and big.sum() == 2
    w = M.confusion_matrix([0, 1, 1], [0, 1, 0], sample_weight=[0.5, 2.0, 1.0])
    np.testing.assert_allclose(w, [[0.5, 0.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"label 3 is outside \[0, 3\)"):
        M.confusion_matrix([0, 3], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="label -1"):
        M.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(ValueError, match="different numbers of samples"):
        M.confusion_matrix([0, 1, 1], [0, 1])


# ----- lookup, config, errors --------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [
    ("accuracy", M.Accuracy), ("acc", M.Accuracy),
    ("sparse_categorical_accuracy", M.SparseCategoricalAccuracy),
    ("categorical_accuracy", M.CategoricalAccuracy), ("binary_accuracy", M.BinaryAccuracy),
    ("top_k_categorical_accuracy", M.TopKCategoricalAccuracy),
    ("sparse_top_k_categorical_accuracy", M.SparseTopKCategoricalAccuracy),
    ("precision", M.Precision), ("recall", M.Recall), ("f1_score", M.F1Score),
    ("mse", M.MeanSquaredError), ("mae", M.MeanAbsoluteError)])
def test_get_by_name(name, cls):
    m = M.get(name)
    assert type(m) is cls and m.name == name


def test_get_objects_functions_and_unknown():
    m = M.Recall()
    assert M.get(m) is m

    def hits(y_true, y_pred):
        return (np.asarray(y_true) == np.asarray(y_pred)).astype(float)

    wrapped = M.get(hits)
    assert wrapped.name == "hits" and wrapped([1, 2], [1, 3]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown metric 'accuracyy'.*f1_score"):
        M.get("accuracyy")


@pytest.mark.parametrize("metric", [
    M.Accuracy(), M.BinaryAccuracy(threshold=0.3), M.SparseTopKCategoricalAccuracy(k=3),
    M.Precision(thresholds=0.4, class_id=1), M.Recall(average="macro"),
    M.F1Score(average="weighted", threshold=0.2, name="f1w"), M.Mean(name="loss")])
def test_config_round_trip(metric):
    again = M.get(M.serialize(metric))
    assert type(again) is type(metric) and again.get_config() == metric.get_config()


def test_errors():
    with pytest.raises(ValueError, match=r"label 3 is outside \[0, 3\)"):
        M.SparseCategoricalAccuracy()([0, 3], PRED3)
    with pytest.raises(ValueError, match=r"shape \(3,\).*\(2, 3\)"):
        M.SparseCategoricalAccuracy()([0, 1, 2], PRED3)
    with pytest.raises(ValueError, match=r"y_true of shape \(2, 2\) does not match"):
        M.CategoricalAccuracy()(np.zeros((2, 2)), PRED3)
    with pytest.raises(ValueError, match="average must be one of"):
        M.F1Score(average="samples")
    with pytest.raises(ValueError, match="k >= 1"):
        M.TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match="sample_weight of shape"):
        M.SparseCategoricalAccuracy()([0, 1], PRED3, sample_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="class_id 5"):
        M.Precision(class_id=5)([0, 1], PRED3)
