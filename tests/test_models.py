"""Models: Sequential and functional graphs, compile/fit, the PyTorch-style loop, summary
totals against the published Keras figures, model files, resuming, transfer learning, errors."""

import gzip
import json
import zipfile

import numpy as np
import pytest
from helpers import assert_close_scaled, shared_path, torch_or_skip

import cnnkit
from cnnkit import layers, ops
from cnnkit.models import Model, Sequential, load_model
from cnnkit.train import callbacks, losses, optimizers

rng = np.random.default_rng(0)


def seed001_model():
    """Seed 001's Keras example, with cnnkit imports."""
    return Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(64, 64, 3)),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])


def build_advanced_cnn(input_shape=(224, 224, 3), num_classes=10):
    """Seed 000's build_advanced_cnn, line for line with cnnkit imports."""
    model = Sequential()
    model.add(layers.Conv2D(32, (3, 3), padding="same", input_shape=input_shape))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation("relu"))
    model.add(layers.Conv2D(32, (3, 3), padding="same"))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation("relu"))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Dropout(0.25))
    model.add(layers.Conv2D(64, (3, 3), padding="same"))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation("relu"))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Dropout(0.25))
    model.add(layers.Flatten())
    model.add(layers.Dense(512))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation("relu"))
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(num_classes, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _totals(model):
    total = sum(w.size for w in model.weights)
    trainable = sum(w.size for w in model.trainable_weights)
    return total, trainable, total - trainable


def test_seed001_summary_total_and_training():
    model = seed001_model()
    text = model.summary(print_fn=lambda s: None)
    assert "Total params: 1,626,442" in text  # the figure Keras prints for this model
    assert _totals(model) == (1_626_442, 1_626_442, 0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = rng.random((8, 64, 64, 3), dtype=np.float32)
    y = np.arange(8) % 10
    h = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert len(h.history["loss"]) == 2 and np.isfinite(h.history["loss"]).all()


def test_seed000_summary_totals_and_one_step():
    model = build_advanced_cnn()
    text = model.summary(print_fn=lambda s: None)
    for line in ("Total params: 102,797,290", "Trainable params: 102,796,010",
                 "Non-trainable params: 1,280"):
        assert line in text
    small = build_advanced_cnn(input_shape=(32, 32, 3))
    x = rng.random((4, 32, 32, 3), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]
    logs = small.train_on_batch(x, y)
    assert np.isfinite(logs["loss"]) and "accuracy" in logs


def test_summary_macs_closed_form():
    model = Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same"),
                        layers.Flatten(), layers.Dense(5)])
    rows = model.layer_table()
    assert rows[0][4] == 8 * 8 * 3 * 3 * 3 * 4  # output pixels * K*K*C_in * C_out
    assert rows[2][4] == 8 * 8 * 4 * 5


# ----- functional graphs ---------------------------------------------------------------
def test_functional_residual_branches_multi_io_and_config_roundtrip(tmp_path):
    a = layers.Input((8, 8, 3), name="img")
    b = layers.Input((4,), name="meta")
    h = layers.Conv2D(6, 3, padding="same", activation="relu")(a)
    r = layers.Conv2D(6, 3, padding="same")(h)
    h = layers.Add()([h, r])  # residual
    br1 = layers.Conv2D(2, 1)(h)
    br2 = layers.MaxPooling2D(3, strides=1, padding="same")(h)
    h = layers.Concatenate()([br1, br2])  # inception-style branches
    g = layers.GlobalAveragePooling2D()(h)
    g = layers.Concatenate()([g, layers.Dense(3)(b)])
    out1 = layers.Dense(5, name="cls")(g)
    out2 = layers.Dense(1, name="reg")(g)
    model = Model([a, b], [out1, out2])
    assert model.output_shape == [(None, 5), (None, 1)]
    x = [rng.random((2, 8, 8, 3), dtype=np.float32), rng.random((2, 4), dtype=np.float32)]
    o1, o2 = model(x)
    assert o1.shape == (2, 5) and o2.shape == (2, 1)
    model.compile("adam", loss=["sparse_categorical_crossentropy", "mse"],
                  loss_weights=[1.0, 0.5])
    model.fit(x, [np.array([0, 3]), rng.random((2, 1), dtype=np.float32)], epochs=1,
              verbose=0)
    path = tmp_path / "m.cnnkit"
    model.save(path)
    again = load_model(path)
    for p, q in zip(model.predict(x), again.predict(x), strict=True):
        np.testing.assert_array_equal(p, q)


def test_shared_layers_siamese_and_nested_model():
    backbone = Sequential([layers.Input((6, 6, 1)), layers.Conv2D(3, 3), layers.Flatten(),
                           layers.Dense(4)], name="backbone")
    a, b = layers.Input((6, 6, 1)), layers.Input((6, 6, 1))
    ea, eb = backbone(a), backbone(b)  # one backbone, used twice
    dist = layers.Subtract()([ea, eb])
    model = Model([a, b], dist)
    assert len(model.weights) == len(backbone.weights) == 4
    xa, xb = rng.random((3, 6, 6, 1)), rng.random((3, 6, 6, 1))
    xa, xb = xa.astype(np.float32), xb.astype(np.float32)
    out = model([xa, xb]).data
    np.testing.assert_allclose(out, backbone(xa).data - backbone(xb).data, rtol=1e-6)
    # gradients from both branches reach the shared weights (sum of both paths)
    loss = ops.sum(model([xa, xb]))
    loss.backward()
    k = backbone.weights[-1]  # dense bias: d/db (ea - eb) summed = 3 - 3 = 0
    np.testing.assert_allclose(k.grad, 0.0, atol=1e-6)


def test_sequential_forward_matches_torch():
    torch = torch_or_skip()
    model = Sequential([layers.Input((9, 9, 2)), layers.Conv2D(4, 3, padding="same"),
                        layers.BatchNormalization(momentum=0.9, epsilon=1e-5), layers.ReLU(),
                        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3)])
    tm = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                             torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                             torch.nn.Linear(64, 3))
    from cnnkit.io import load_sequential_state_dict

    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    sd["1.running_mean"] = rng.standard_normal(4).astype(np.float32)
    sd["1.running_var"] = rng.uniform(0.5, 2, 4).astype(np.float32)
    tm.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
    load_sequential_state_dict(model, sd)
    x = rng.standard_normal((5, 9, 9, 2)).astype(np.float32)
    tm.eval()
    ref = tm(torch.tensor(x.transpose(0, 3, 1, 2))).detach().numpy()
    assert_close_scaled(model(x).data, ref, 1e-4)


# ----- the PyTorch-style loop and real data ------------------------------------------------
def _mnist_subset():
    """../shared mnist5k: stratified 400 train / 100 test per class (fixed seed)."""
    path = shared_path("datasets", "mnist5k", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    x = rows[:, :784].astype(np.float32).reshape(-1, 28, 28, 1)
    x = (x / 255.0 - 0.1307) / 0.3081
    y = rows[:, 784]
    r = np.random.default_rng(1)
    tr, te = [], []
    for c in range(10):
        idx = r.permutation(np.flatnonzero(y == c))
        tr.append(idx[:400])
        te.append(idx[400:])
    tr, te = np.concatenate(tr), np.concatenate(te)
    return (x[tr], y[tr]), (x[te], y[te])


def train_cnn(model, train_loader, criterion, optimizer, num_epochs=10):
    """Seed 004's train_cnn, ported line for line to cnnkit."""
    for epoch in range(num_epochs):
        running_loss = 0.0
        correct = 0
        total = 0
        for batch_idx, (inputs, targets) in enumerate(train_loader):  # noqa: B007
            optimizer.zero_grad()
            outputs = model(inputs, training=True)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            predicted = outputs.argmax(1)
            total += targets.shape[0]
            correct += (predicted == targets).sum().item()
        yield epoch, running_loss, 100.0 * correct / total


def _loader(x, y, batch_size, seed):
    r = np.random.default_rng(seed)
    order = r.permutation(len(x))
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]


@pytest.mark.parametrize("arch,target", [("simple_cnn", 0.97), ("lenet5", 0.95)])
def test_pytorch_style_loop_reaches_accuracy(arch, target):
    (xt, yt), (xv, yv) = _mnist_subset()
    cnnkit.random.seed(0)
    model = cnnkit.zoo.get(arch)
    criterion = losses.CrossEntropyLoss()
    optimizer = optimizers.Adam(model.parameters(), lr=0.001)
    best = 0.0
    for epoch in range(15):
        loader = _loader(xt, yt, 64, epoch)
        for _ in train_cnn(model, loader, criterion, optimizer, num_epochs=1):
            pass
        pred = model.predict(xv, batch_size=250).argmax(1)
        best = max(best, float((pred == yv).mean()))
        if best >= target:
            break
    print(f"{arch}: test accuracy {best:.4f} after {epoch + 1} epochs")
    assert best >= target


# ----- files and resuming -------------------------------------------------------------
def _small_model(seed=0):
    cnnkit.random.seed(seed)
    m = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                    layers.BatchNormalization(), layers.Flatten(), layers.Dropout(0.2),
                    layers.Dense(3)])
    m.compile(optimizers.Adam(learning_rate=0.01),
              losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"], seed=seed)
    return m


def _data(n=40):
    r = np.random.default_rng(5)
    return r.random((n, 8, 8, 1), dtype=np.float32), r.integers(0, 3, n)


def test_save_load_predict_identical(tmp_path):
    x, y = _data()
    m = _small_model()
    m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    m.save(tmp_path / "a.cnnkit")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    m2 = load_model(tmp_path / "a.cnnkit")
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))
    m.save_weights(tmp_path / "w.cnnkit")
    m3 = _small_model(seed=9)
    m3.load_weights(tmp_path / "w.cnnkit")
    np.testing.assert_array_equal(m.predict(x), m3.predict(x))


def test_resume_from_checkpoint_matches_uninterrupted(tmp_path):
    x, y = _data()
    full = _small_model()
    full.fit(x, y, epochs=4, batch_size=8, verbose=0)
    part = _small_model()
    ckpt = tmp_path / "ckpt.cnnkit"
    part.fit(x, y, epochs=2, batch_size=8, verbose=0,
             callbacks=[callbacks.ModelCheckpoint(str(ckpt), monitor="loss")])
    resumed = load_model(ckpt)
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, verbose=0)
    for a, b in zip(full.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_model_files_give_clear_errors(tmp_path):
    x, _ = _data()
    m = _small_model()
    path = tmp_path / "m.cnnkit"
    m.save(path)
    data = path.read_bytes()
    (tmp_path / "trunc.cnnkit").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable cnnkit model file"):
        load_model(tmp_path / "trunc.cnnkit")
    (tmp_path / "text.cnnkit").write_text("hello")
    with pytest.raises(ValueError, match="not a readable cnnkit model file"):
        load_model(tmp_path / "text.cnnkit")
    np.savez(tmp_path / "foreign.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not a cnnkit model file"):
        load_model(tmp_path / "foreign.npz")
    # an object array would need pickle: refused, never unpickled
    with zipfile.ZipFile(tmp_path / "pickled.cnnkit", "w") as z:
        import io as _io

        buf = _io.BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        z.writestr("__meta__.npy", buf.getvalue())
    with pytest.raises(ValueError, match="not a readable"):
        load_model(tmp_path / "pickled.cnnkit")
    meta_bad = tmp_path / "badjson.cnnkit"
    with open(meta_bad, "wb") as f:
        np.savez(f, __meta__=np.frombuffer(b'{"format": "cnnkit-model", "kind": "model", '
                                           b'"model": {"class_name": "os.system"}}',
                                           dtype=np.uint8))
    with pytest.raises(ValueError, match="unknown layer class"):
        load_model(meta_bad)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.cnnkit")


# ----- transfer learning ----------------------------------------------------------------
def test_frozen_layers_and_batchnorm_statistics_do_not_move():
    cnnkit.random.seed(3)
    base = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3),
                       layers.BatchNormalization(), layers.ReLU(),
                       layers.GlobalAveragePooling2D()], name="base")
    inp = layers.Input((8, 8, 1))
    out = layers.Dense(3)(base(inp))
    model = Model(inp, out)
    base.trainable = False
    before = [w.copy() for w in base.get_weights()]
    head_before = model.layers[-1].get_weights()[0].copy()
    model.compile(optimizers.Adam(learning_rate=0.05),
                  losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for a, b in zip(before, base.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # kernels and moving stats frozen
    assert not np.array_equal(head_before, model.layers[-1].get_weights()[0])
    # stage two: unfreeze, fine-tune with a lower learning rate
    base.trainable = True
    model.compile(optimizers.Adam(learning_rate=1e-4),
                  losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(before[0], base.get_weights()[0])
    assert sum(w.size for w in model.trainable_weights) == sum(w.size for w in model.weights) - 8


# ----- bad input --------------------------------------------------------------------------
def test_bad_inputs_are_named():
    m = _small_model()
    x, y = _data()
    with pytest.raises(ValueError, match="different lengths"):
        m.fit(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 8, 8, 1\)"):
        m.predict(np.zeros((2, 9, 9, 1), np.float32))
    with pytest.raises(ValueError, match="label"):
        m.fit(x, y + 3, verbose=0, epochs=1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        m.compile("adamm", "mse")
    with pytest.raises(ValueError, match="unknown loss"):
        m.compile("adam", "msee")
    with pytest.raises(RuntimeError, match="compile"):
        Sequential([layers.Input((2,)), layers.Dense(1)]).fit(np.zeros((2, 2)), np.zeros(2))
    conv = layers.Conv2D(4, 3)
    conv(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        conv(np.zeros((1, 8, 8, 1), np.float32))


def test_terminate_on_nan_stops_training():
    m = _small_model()
    x, y = _data()
    x[0, 0, 0, 0] = np.nan
    h = m.fit(x, y, epochs=5, batch_size=40, shuffle=False, verbose=0,
              callbacks=[callbacks.TerminateOnNaN()])
    assert len(h.history["loss"]) == 1 and not np.isfinite(h.history["loss"][0])


def test_history_csv_and_early_stopping(tmp_path):
    m = _small_model()
    x, y = _data()
    es = callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    log = tmp_path / "log.csv"
    h = m.fit(x, y, epochs=10, batch_size=8, verbose=0,
              callbacks=[es, callbacks.CSVLogger(str(log))])
    assert len(h.history["loss"]) == 2  # no epoch improves by 10: stops after patience
    lines = log.read_text().strip().splitlines()
    assert lines[0].split(",")[0] == "epoch" and len(lines) == 3
    assert json.loads(json.dumps(h.history))


def test_sample_and_class_weights_scale_the_loss():
    """Keras weighting: loss = sum_i w_i * l_i / N; class_weight maps labels to w_i."""
    cnnkit.random.seed(4)
    m = Sequential([layers.Input((3,)), layers.Dense(2)])
    m.compile(optimizers.SGD(learning_rate=0.0),
              losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.standard_normal((6, 3)).astype(np.float32)
    y = np.array([0, 1, 1, 0, 1, 0])
    logits = m.predict(x).astype(np.float64)
    per = np.log(np.exp(logits).sum(1)) - logits[np.arange(6), y]  # closed-form CE per sample
    w = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 0.5])
    got = m.train_on_batch(x, y, sample_weight=w)["loss"]
    np.testing.assert_allclose(got, (w * per).sum() / 6, rtol=1e-5)
    got = m.train_on_batch(x, y, class_weight={0: 1.0, 1: 4.0})["loss"]
    np.testing.assert_allclose(got, (np.where(y == 1, 4.0, 1.0) * per).sum() / 6, rtol=1e-5)
    h = m.fit(x, y, sample_weight=w, epochs=1, batch_size=6, verbose=0)
    np.testing.assert_allclose(h.history["loss"][0], (w * per).sum() / 6, rtol=1e-5)
