"""Callbacks (cnnkit.train.callbacks) and the progress bar (cnnkit.train.progress), driven
through their hooks with a small fake model."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pytest

from cnnkit.train import callbacks as C
from cnnkit.train.progress import Progbar, ProgbarLogger, format_duration, format_value


class FakeOptimizer:
    def __init__(self, lr: float = 0.1):
        self.learning_rate = lr


class FakeModel:
    """What callbacks may rely on: stop_training, weights, save, optimizer.learning_rate."""

    def __init__(self, lr: float = 0.1):
        self.stop_training = False
        self.weights = [np.zeros(2), np.zeros(())]
        self.optimizer = FakeOptimizer(lr)
        self.saves: list[tuple[str, str]] = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def save(self, path):
        Path(path).write_text("model")
        self.saves.append(("model", str(path)))

    def save_weights(self, path):
        Path(path).write_text("weights")
        self.saves.append(("weights", str(path)))


def fit(callbacks, values, key="val_loss", model=None, epochs=None):
    """Drive the epoch hooks like a fit loop; epoch e sets every weight to e. Returns model
    and the list of epochs run."""
    model = model or FakeModel()
    cbs = C.CallbackList(callbacks, model=model, epochs=epochs or len(values), steps=None,
                         verbose=0)
    cbs.on_train_begin()
    ran = []
    for epoch, v in enumerate(values):
        cbs.on_epoch_begin(epoch)
        model.weights = [np.full_like(w, epoch) for w in model.weights]
        ran.append(epoch)
        cbs.on_epoch_end(epoch, {"loss": 1.0, key: v})
        if model.stop_training:
            break
    cbs.on_train_end()
    return model, ran


# ----- EarlyStopping --------------------------------------------------------------------------

def test_early_stopping_patience():
    es = C.EarlyStopping(patience=2)
    _, ran = fit(es, [1.0, 0.9, 0.95, 0.93, 0.8, 0.7])
    assert ran == [0, 1, 2, 3] and es.stopped_epoch == 3
    assert es.best == pytest.approx(0.9) and es.best_epoch == 1
    es = C.EarlyStopping(patience=0)
    _, ran = fit(es, [1.0, 1.1, 0.5])
    assert ran == [0, 1]


def test_early_stopping_min_delta():
    # improvements of 0.03 do not count with min_delta=0.05
    _, ran = fit(C.EarlyStopping(patience=1, min_delta=0.05), [1.0, 0.97, 0.94, 0.5])
    assert ran == [0, 1]
    _, ran = fit(C.EarlyStopping(patience=1, min_delta=0.02), [1.0, 0.97, 0.94, 0.93])
    assert ran == [0, 1, 2, 3]


def test_early_stopping_mode_auto_max_for_accuracy():
    es = C.EarlyStopping(monitor="val_accuracy", patience=1)
    _, ran = fit(es, [0.5, 0.6, 0.7, 0.65, 0.8], key="val_accuracy")
    assert ran == [0, 1, 2, 3] and es.best == pytest.approx(0.7)
    _, ran = fit(C.EarlyStopping(monitor="val_accuracy", patience=1, mode="min"),
                 [0.5, 0.6, 0.7], key="val_accuracy")
    assert ran == [0, 1]


def test_early_stopping_restores_best_weights():
    es = C.EarlyStopping(patience=2, restore_best_weights=True)
    model, ran = fit(es, [1.0, 0.5, 0.7, 0.8, 0.1])
    assert ran == [0, 1, 2, 3]
    assert all(np.all(w == 1) for w in model.weights)  # weights of epoch 1
    # also without an early stop (Keras 3)
    model, ran = fit(C.EarlyStopping(patience=5, restore_best_weights=True), [1.0, 0.2, 0.3])
    assert ran == [0, 1, 2] and all(np.all(w == 1) for w in model.weights)
    model, _ = fit(C.EarlyStopping(patience=2), [1.0, 0.5, 0.7, 0.8])
    assert all(np.all(w == 3) for w in model.weights)  # not restored by default


def test_early_stopping_baseline_and_start_from_epoch():
    _, ran = fit(C.EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.96, 0.97])
    assert ran == [0, 1, 2, 3]
    # values never beat the baseline: the patience counter never restarts
    _, ran = fit(C.EarlyStopping(patience=2, baseline=0.5), [1.0, 0.9, 0.95, 0.96, 0.97])
    assert ran == [0, 1, 2]
    _, ran = fit(C.EarlyStopping(patience=0), [1.0, 2.0, 3.0, 4.0])
    assert ran == [0, 1]
    _, ran = fit(C.EarlyStopping(patience=0, start_from_epoch=2), [1.0, 2.0, 3.0, 4.0])
    assert ran == [0, 1, 2, 3]


def test_early_stopping_missing_monitor_warns_and_verbose_says_so(capsys):
    with pytest.warns(UserWarning, match="'val_loss' is not in the logs.*available: loss"):
        _, ran = fit(C.EarlyStopping(patience=0), [1.0, 2.0], key="other_loss")
    assert ran == [0, 1]
    fit(C.EarlyStopping(patience=0, verbose=1, restore_best_weights=True), [1.0, 2.0])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out and "best epoch: 1" in out


# ----- ModelCheckpoint ---------------------------------------------------------------------

def test_checkpoint_save_best_only(tmp_path):
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.cnnkit")
    ck = C.ModelCheckpoint(pattern, save_best_only=True)
    model, _ = fit(ck, [0.5, 0.6, 0.4, 0.45])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-01-0.50.cnnkit",
                                                          "ckpt-03-0.40.cnnkit"]
    assert [kind for kind, _ in model.saves] == ["model", "model"]
    assert ck.best == pytest.approx(0.4)


def test_checkpoint_every_epoch_weights_only_and_max_mode(tmp_path):
    model, _ = fit(C.ModelCheckpoint(tmp_path / "sub" / "w{epoch}.bin", save_weights_only=True),
                   [0.5, 0.6, 0.4])
    assert [Path(p).name for _, p in model.saves] == ["w1.bin", "w2.bin", "w3.bin"]
    assert {kind for kind, _ in model.saves} == {"weights"}
    assert (tmp_path / "sub" / "w3.bin").read_text() == "weights"
    ck = C.ModelCheckpoint(tmp_path / "best.bin", monitor="val_acc", save_best_only=True)
    model, _ = fit(ck, [0.5, 0.7, 0.6, 0.8], key="val_acc")
    assert len(model.saves) == 3 and ck.best == pytest.approx(0.8)


def test_checkpoint_by_batch_and_format_errors(tmp_path):
    model = FakeModel()
    ck = C.ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.bin"), save_freq=2)
    ck.set_model(model)
    ck.on_train_begin()
    for epoch in range(2):
        ck.on_epoch_begin(epoch)
        for batch in range(3):
            ck.on_train_batch_end(batch, {"loss": 0.1})
        ck.on_epoch_end(epoch, {"loss": 0.1})
    assert [Path(p).name for _, p in model.saves] == ["e1-b2.bin", "e2-b1.bin", "e2-b3.bin"]
    with pytest.raises(ValueError, match="could not format filepath.*val_acc"):
        fit(C.ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.bin")), [0.3])
    with pytest.raises(ValueError, match="save_freq"):
        C.ModelCheckpoint("x", save_freq=0)
    with pytest.raises(ValueError, match="mode must be"):
        C.ModelCheckpoint("x", mode="lowest")


# ----- ReduceLROnPlateau / LearningRateScheduler -------------------------------------------

def _lr_trace(cb, values, lr=0.1):
    model = FakeModel(lr)
    cb.set_model(model)
    cb.on_train_begin()
    trace, logged = [], []
    for epoch, v in enumerate(values):
        logs = {"val_loss": v}
        cb.on_epoch_end(epoch, logs)
        trace.append(model.optimizer.learning_rate)
        logged.append(logs["learning_rate"])
    return trace, logged


def test_reduce_lr_factor_patience_min_lr():
    cb = C.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.02)
    trace, logged = _lr_trace(cb, [1.0] * 9)
    np.testing.assert_allclose(trace, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02])
    np.testing.assert_allclose(logged, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02])


def test_reduce_lr_cooldown_and_min_delta():
    trace, _ = _lr_trace(C.ReduceLROnPlateau(factor=0.5, patience=1), [1.0] * 4, lr=1.0)
    np.testing.assert_allclose(trace, [1.0, 0.5, 0.25, 0.125])
    trace, _ = _lr_trace(C.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2), [1.0] * 6,
                         lr=1.0)
    np.testing.assert_allclose(trace, [1.0, 0.5, 0.5, 0.25, 0.25, 0.125])
    # decreases smaller than min_delta are not improvements
    trace, _ = _lr_trace(C.ReduceLROnPlateau(factor=0.1, patience=2, min_delta=1e-3),
                         [1.0, 0.9995, 0.999], lr=1.0)
    np.testing.assert_allclose(trace, [1.0, 1.0, 0.1])
    trace, _ = _lr_trace(C.ReduceLROnPlateau(factor=0.1, patience=2, min_delta=1e-3),
                         [1.0, 0.99, 0.98], lr=1.0)
    np.testing.assert_allclose(trace, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="0 < factor < 1"):
        C.ReduceLROnPlateau(factor=1.0)


def test_learning_rate_scheduler():
    model = FakeModel(0.8)
    seen = []

    def halve_after_first(epoch, lr):
        seen.append((epoch, lr))
        return lr if epoch == 0 else lr * 0.5

    cb = C.LearningRateScheduler(halve_after_first)
    cb.set_model(model)
    for epoch in range(3):
        cb.on_epoch_begin(epoch)
        logs = {}
        cb.on_epoch_end(epoch, logs)
        assert logs["learning_rate"] == model.optimizer.learning_rate
    assert seen == [(0, 0.8), (1, 0.8), (2, 0.4)] and model.optimizer.learning_rate == 0.2
    cb = C.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))  # epoch-only schedule
    cb.set_model(model)
    cb.on_epoch_begin(4)
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    cb = C.LearningRateScheduler(lambda epoch, lr: "fast")
    cb.set_model(model)
    with pytest.raises(ValueError, match="must return a number, got 'fast'"):
        cb.on_epoch_begin(0)


# ----- CSVLogger, TerminateOnNaN, History, LambdaCallback, CallbackList ----------------------

def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    logs = [{"loss": 0.5, "accuracy": 0.75, "val_loss": 0.625},
            {"loss": 0.25, "accuracy": 0.875, "val_loss": np.float32(0.5)}]

    def run(cb, rows, first=0):
        cb.on_train_begin()
        for i, row in enumerate(rows):
            cb.on_epoch_end(first + i, dict(row))
        cb.on_train_end()

    run(C.CSVLogger(path), logs)
    assert path.read_text() == ("epoch,accuracy,loss,val_loss\n"
                                "0,0.75,0.5,0.625\n1,0.875,0.25,0.5\n")
    run(C.CSVLogger(path, append=True), [{"loss": 0.125, "accuracy": 1.0}], first=2)
    assert path.read_text().splitlines()[-1] == "2,1.0,0.125"
    assert path.read_text().count("epoch") == 1
    run(C.CSVLogger(path, separator=";"), [{"loss": 0.5, "val_loss": 0.25}, {"loss": 0.4}])
    assert path.read_text() == "epoch;loss;val_loss\n0;0.5;0.25\n1;0.4;NA\n"


def test_terminate_on_nan():
    model, out = FakeModel(), io.StringIO()
    cb = C.TerminateOnNaN(stream=out)
    cb.set_model(model)
    for batch, loss in enumerate([0.5, 0.4, 0.3]):
        cb.on_train_batch_end(batch, {"loss": loss})
    assert not model.stop_training and out.getvalue() == ""
    cb.on_train_batch_end(3, {"loss": np.float32("nan")})
    assert model.stop_training and cb.terminated_batch == 3
    assert out.getvalue() == "Batch 3: invalid loss nan, terminating training\n"
    model = FakeModel()
    cb.set_model(model)
    cb.on_train_batch_end(0, {"loss": math.inf})
    assert model.stop_training and "invalid loss inf" in out.getvalue()


def test_history_and_callback_list():
    calls = []
    lam = C.LambdaCallback(on_train_begin=lambda logs: calls.append("begin"),
                           on_epoch_end=lambda epoch, logs: calls.append(("end", epoch)),
                           on_batch_end=lambda batch, logs: calls.append(("batch", batch)))
    model = FakeModel()
    cbs = C.CallbackList([lam], add_history=True, add_progbar=True, model=model, epochs=2,
                         steps=1, verbose=0)
    assert [type(c).__name__ for c in cbs] == ["LambdaCallback", "ProgbarLogger", "History"]
    assert all(c.model is model and c.params["epochs"] == 2 for c in cbs)
    cbs.on_train_begin()
    for epoch in range(2):
        cbs.on_epoch_begin(epoch)
        cbs.on_train_batch_begin(0)
        cbs.on_train_batch_end(0, {"loss": 1.0})
        cbs.on_epoch_end(epoch, {"loss": 1.0 - epoch / 2, "val_loss": 2.0})
    cbs.on_train_end()
    assert calls == ["begin", ("batch", 0), ("end", 0), ("batch", 0), ("end", 1)]
    history = model.history
    assert isinstance(history, C.History)
    assert history.epoch == [0, 1]
    assert history.history == {"loss": [1.0, 0.5], "val_loss": [2.0, 2.0]}
    with pytest.raises(ValueError, match="unknown hook 'on_epoch_finish'"):
        C.LambdaCallback(on_epoch_finish=print)
    with pytest.raises(TypeError, match="expects Callback objects"):
        C.CallbackList([print])


def test_keras2_batch_hook_names_are_called():
    seen = []

    class Old(C.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(batch)

    C.CallbackList([Old()]).on_train_batch_end(7, {})
    assert seen == [7]


# ----- progress bar --------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class TTY(io.StringIO):
    def isatty(self):
        return True


def _drive_progbar(stream, verbose, steps=4, epochs=2, clock=None):
    clock = clock or Clock()
    cb = ProgbarLogger(stream=stream, interval=0.0, clock=clock)
    cbs = C.CallbackList([cb], epochs=epochs, steps=steps, verbose=verbose)
    cbs.on_train_begin()
    for epoch in range(epochs):
        cbs.on_epoch_begin(epoch)
        for batch in range(4):
            clock.t += 0.5
            cbs.on_train_batch_end(batch, {"loss": 0.5 - 0.1 * batch, "accuracy": 0.75})
        cbs.on_test_begin()  # validation inside fit: no bar of its own
        cbs.on_test_batch_end(0, {"loss": 9.0})
        cbs.on_test_end({"loss": 9.0})
        cbs.on_epoch_end(epoch, {"loss": 0.2, "accuracy": 0.75, "val_loss": 0.3125,
                                 "val_accuracy": 0.5})
    cbs.on_train_end()
    return stream.getvalue()


FINAL = ("4/4 [==============================] - 2s 500ms/step - loss: 0.2000 - "
         "accuracy: 0.7500 - val_loss: 0.3125 - val_accuracy: 0.5000")


def test_progress_not_a_terminal_prints_only_epoch_ends():
    out = _drive_progbar(io.StringIO(), verbose=1)
    assert "\r" not in out
    assert out == f"Epoch 1/2\n{FINAL}\nEpoch 2/2\n{FINAL}\n"


def test_progress_on_a_terminal_updates_in_place():
    out = _drive_progbar(TTY(), verbose=1)
    first_epoch = out.split("Epoch 2/2")[0]
    assert first_epoch.startswith("Epoch 1/2\n\r1/4 [======>.......................] - 0s "
                                  "500ms/step - loss: 0.5000 - accuracy: 0.7500 - ETA: 1s")
    assert ("\r2/4 [==============>...............] - 1s 500ms/step - loss: 0.4000 - "
            "accuracy: 0.7500 - ETA: 1s") in first_epoch
    assert first_epoch.endswith(f"\r{FINAL}\n")
    assert first_epoch.count("\r") == 5 and first_epoch.count("\n") == 2
    assert "9.0000" not in out  # validation batches drew nothing


def test_progress_verbose_2_and_0():
    out = _drive_progbar(TTY(), verbose=2)
    line = ("4/4 - 2s - 500ms/step - loss: 0.2000 - accuracy: 0.7500 - val_loss: 0.3125 - "
            "val_accuracy: 0.5000")
    assert out == f"Epoch 1/2\n{line}\nEpoch 2/2\n{line}\n"
    assert _drive_progbar(TTY(), verbose=0) == ""
    assert _drive_progbar(io.StringIO(), verbose=0) == ""


def test_progress_unknown_steps_and_evaluate():
    out = _drive_progbar(io.StringIO(), verbose=1, steps=None, epochs=1)
    assert out.splitlines()[-1].startswith("4/4 [=====")
    stream, clock = io.StringIO(), Clock()
    cb = ProgbarLogger(stream=stream, clock=clock)
    cb.set_params({"verbose": 1, "epochs": 1, "steps": 3})
    cb.on_test_begin()  # evaluate() outside fit draws its own bar
    for batch in range(3):
        clock.t += 1.0
        cb.on_test_batch_end(batch, {"loss": 0.25})
    cb.on_test_end({"loss": 0.25, "accuracy": 1.0})
    assert stream.getvalue() == ("3/3 [==============================] - 3s 1s/step - "
                                 "loss: 0.2500 - accuracy: 1.0000\n")


def test_progbar_pieces():
    stream, clock = TTY(), Clock()
    bar = Progbar(None, stream=stream, interval=0.0, clock=clock)
    clock.t += 0.004
    bar.update(2, {"loss": 0.5})
    assert stream.getvalue() == "\r      2/Unknown - 0s 2ms/step - loss: 0.5000"
    assert format_value(1e-5) == "1.0000e-05" and format_value(0.0) == "0.0000"
    assert format_value(float("nan")) == "nan" and format_value(np.float32(2.5)) == "2.5000"
    assert format_duration(5.9) == "5s" and format_duration(125) == "2:05"
    assert format_duration(3725) == "1:02:05"
    quiet = io.StringIO()
    bar = Progbar(10, stream=quiet, clock=clock)  # not a terminal: nothing until the end
    for i in range(1, 10):
        bar.update(i, {"loss": 1.0})
    assert quiet.getvalue() == ""
    bar.update(10)
    assert re.fullmatch(r"10/10 \[=+\] - 0s \d+us/step - loss: 1\.0000\n", quiet.getvalue())
