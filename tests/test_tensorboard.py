"""TensorBoard event files (CRC-32C vs known check values and the tensorboard package's own
reader) and BackupAndRestore (a resumed fit ends with the weights of an uninterrupted one)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from cnnkit import layers
from cnnkit.models import Sequential
from cnnkit.train.callbacks import BackupAndRestore, Callback, TensorBoard
from cnnkit.train.event_file import crc32c, masked_crc32c, record

rng = np.random.default_rng(7)
X = rng.standard_normal((40, 6)).astype(np.float32)
Y = (X[:, :2] > 0).astype(np.float32)


def _model(seed=0):
    import cnnkit.random as cr
    cr.seed(seed)
    m = Sequential([layers.Dense(8, activation="relu", input_shape=(6,)), layers.Dropout(0.2),
                    layers.Dense(2, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return m


def test_crc32c_check_values():
    # RFC 3720 B.4 / the standard "123456789" check value of CRC-32C
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    frame = record(b"abc")
    (n,) = struct.unpack("<Q", frame[:8])
    assert n == 3 and frame[12:15] == b"abc"
    assert struct.unpack("<I", frame[8:12])[0] == masked_crc32c(frame[:8])


def test_event_files_read_by_tensorboard(tmp_path):
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    m = _model()
    hist = m.fit(X, Y, epochs=3, batch_size=10, validation_split=0.25, verbose=0,
                 callbacks=[TensorBoard(tmp_path / "run")])
    train = ea_mod.EventAccumulator(str(tmp_path / "run" / "train"))
    train.Reload()
    loss = train.Scalars("epoch_loss")
    assert [e.step for e in loss] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in loss], hist.history["loss"], rtol=1e-6)
    assert "epoch_accuracy" in train.Tags()["scalars"]
    val = ea_mod.EventAccumulator(str(tmp_path / "run" / "validation"))
    val.Reload()
    np.testing.assert_allclose([e.value for e in val.Scalars("epoch_loss")],
                               hist.history["val_loss"], rtol=1e-6)


def test_batch_update_freq(tmp_path):
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    _model().fit(X, Y, epochs=2, batch_size=10, verbose=0,
                 callbacks=[TensorBoard(tmp_path, update_freq=2)])
    acc = ea_mod.EventAccumulator(str(tmp_path / "train"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("batch_loss")] == [2, 4, 6, 8]


class _Interrupt(Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt


def test_backup_and_restore_resumes_to_the_same_weights(tmp_path):
    full = _model()
    full.fit(X, Y, epochs=4, batch_size=8, verbose=0)

    m = _model()
    backup = BackupAndRestore(tmp_path / "bk")
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, Y, epochs=4, batch_size=8, verbose=0, callbacks=[backup, _Interrupt(1)])
    assert (tmp_path / "bk" / "backup.json").exists()

    resumed = _model(seed=123)  # fresh weights: everything must come from the backup
    resumed.seed = m.seed
    hist = resumed.fit(X, Y, epochs=4, batch_size=8, verbose=0,
                       callbacks=[BackupAndRestore(tmp_path / "bk")])
    assert hist.epoch == [2, 3]
    for a, b in zip(resumed.get_weights(), full.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert resumed.optimizer.iterations == full.optimizer.iterations
    assert not (tmp_path / "bk" / "backup.json").exists()  # deleted after a finished fit


def test_backup_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore(tmp_path, save_freq=10)
    with pytest.raises(ValueError, match="update_freq"):
        TensorBoard(tmp_path, update_freq=0)
