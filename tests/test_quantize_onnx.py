"""ONNX export of int8 models (cnnkit.deploy.quantize, and QAT-converted ones): ONNX Runtime
runs the file and its outputs are compared with cnnkit's int8 predict, in units of the
output's integer step (the final layer's multiplier sx * sw, or the output's scale), with
top-1 agreement on real digits. The integer forms make ONNX Runtime compute cnnkit's
integers, so the expected difference is 0 steps; a float tail (average pooling, softmax)
adds float32 rounding only. The file passes onnx.checker's full check and uses standard
operators only."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import shared_path
from onnx_export_helpers import ort_or_skip

from cnnkit import layers
from cnnkit import random as cnnkit_random
from cnnkit.deploy import load_quantized, prepare_qat, quantize
from cnnkit.models import Model, Sequential
from cnnkit.runtime import quantized_steps as QS


def _ort(proto, x, optimize=True):
    ort = ort_or_skip()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(proto.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _step_unit(q):
    """The value of one integer step of the model output, per output channel."""
    last = q.plan.steps[-1].step
    if isinstance(last, QS.QuantizedConv):
        return last.params.mult.astype(np.float64)
    if isinstance(last, QS.Dequantize):
        return np.float64(last.scale)
    return None  # a float step ends the model


def _export_and_compare(q, x, layout="NCHW", both=True):
    """(max |ORT - cnnkit| in output steps (or absolute for a float tail), top-1 agreement)
    with ONNX Runtime optimizing the graph and not."""
    import onnx

    from cnnkit.io.onnx_export import to_onnx

    proto = to_onnx(q, layout=layout)
    onnx.checker.check_model(proto, full_check=True)
    assert {op.domain for op in proto.opset_import} == {""}  # standard operators only
    assert all(nd.domain in ("", "ai.onnx") for nd in proto.graph.node)
    feed = np.moveaxis(x, -1, 1).copy() if layout == "NCHW" else x
    want = q.predict(x)
    unit = _step_unit(q)
    worst, agree = 0.0, 1.0
    for optimize in (True, False) if both else (True,):
        got = _ort(proto, feed, optimize)
        assert got.shape == want.shape and got.dtype == np.float32
        diff = np.abs(got.astype(np.float64) - want)
        worst = max(worst, float((diff / unit).max() if unit is not None else diff.max()))
        agree = min(agree, float(np.mean(got.argmax(-1) == want.argmax(-1))))
    return worst, agree, proto


def _ops(proto):
    return {nd.op_type for nd in proto.graph.node}


def _bn_stats(m, rng):
    for w in m.weights:
        if "moving_variance" in w.name:
            w.data[...] = rng.uniform(0.5, 2.0, w.shape)
        elif "moving_mean" in w.name or "beta" in w.name:
            w.data[...] = rng.uniform(-0.3, 0.3, w.shape)


def _plain_cnn(rng):
    m = Sequential([
        layers.Input((12, 12, 3)), layers.ZeroPadding2D(1),
        layers.Conv2D(8, 3, strides=2, use_bias=False), layers.BatchNormalization(),
        layers.ReLU(), layers.MaxPooling2D(2, padding="same"),
        layers.Conv2D(16, 3, padding="same", dilation_rate=2, activation="relu6", name="c2"),
        layers.Flatten(), layers.Dense(20, activation="relu", name="d1"),
        layers.Dropout(0.3), layers.Dense(5, name="logits")])
    m.build((None, 12, 12, 3))
    _bn_stats(m, rng)
    return m


def _branches(rng):
    inp = layers.Input((10, 10, 3))
    a = layers.Conv2D(6, 3, padding="same", activation="relu")(inp)
    b = layers.Conv2D(6, 3, padding="same")(a)
    s = layers.ReLU()(layers.Add()([a, b]))  # residual add on codes, ReLU fused
    c = layers.Conv2D(4, 1, activation="relu")(inp)
    j = layers.Concatenate()([s, c])  # concatenation of codes with one range
    d = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(j)
    p = layers.Conv2D(8, 1)(d)
    out = layers.Dense(4)(layers.Flatten()(layers.MaxPooling2D(2)(p)))
    return Model(inp, out)


def _float_tail(rng):
    m = Sequential([
        layers.Input((10, 10, 3)), layers.Conv2D(8, 3, activation="relu"),
        layers.DepthwiseConv2D(3, padding="same", use_bias=False),
        layers.BatchNormalization(), layers.ReLU(6.0), layers.Conv2D(8, 1),
        layers.AveragePooling2D(2), layers.GlobalAveragePooling2D(),
        layers.Dense(4, activation="softmax")])
    m.build((None, 10, 10, 3))
    _bn_stats(m, rng)
    return m


CASES = {"plain": (_plain_cnn, {}), "int8_activations": (_plain_cnn, {"activations": "int8"}),
         "per_tensor_keep_float": (_plain_cnn, {"per_channel": False, "keep_float": ["c2"]}),
         "branches": (_branches, {}), "branches_int8": (_branches, {"activations": "int8"}),
         "float_tail": (_float_tail, {"method": "entropy"})}


@pytest.mark.parametrize("case", list(CASES))
def test_every_int8_layer_kind_runs_in_onnx_runtime_with_cnnkits_integers(case):
    rng = np.random.default_rng(len(case))
    make, options = CASES[case]
    m = make(rng)
    shape = m.input_shape[1:]
    x = rng.random((48, *shape)).astype(np.float32)
    q = quantize(m, x[:32], **options)
    nchw = _export_and_compare(q, x)[0]
    worst, agree, proto = _export_and_compare(q, x, layout="NHWC")
    if case == "float_tail":  # float32 average pooling and softmax after the integers
        assert worst < 1e-5 and nchw < 1e-5
    else:
        assert worst == 0 and nchw == 0 and agree == 1.0
    assert "ConvInteger" in _ops(proto)
    kinds = {type(s.step).__name__ for s in q.plan.steps}
    if case.startswith("branches"):
        assert {"QuantizedAdd", "Concat", "QuantizedMaxPool"} <= kinds
        assert len([s for s in q.plan.steps if getattr(s.step, "kind", "") == "depthwise"]) == 1


def _digits():
    from cnnkit.datasets import mnist5k

    (x_train, y_train), (x_test, y_test) = mnist5k.load_data()
    def images(x):
        return x.reshape(-1, 28, 28, 1).astype(np.float32)

    return (images(x_train), y_train), (images(x_test), y_test)


def _fit(m, x, y, epochs=1):
    from cnnkit import losses, optimizers

    m.compile(optimizer=optimizers.Adam(3e-3),
              loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return m


def _report(name, q, x, y, worst, agree, float_model=None):
    acc = float(np.mean(q.predict(x).argmax(-1) == y))
    acc_f = float(np.mean((float_model or q.model).predict(x).argmax(-1) == y))
    print(f"{name}: float32 accuracy {acc_f:.2%}")
    print(f"{name}: int8 accuracy {acc:.2%}, ONNX Runtime vs cnnkit: max {worst:g} output "
          f"steps, top-1 agreement {agree:.2%} on {len(x)} test digits")
    return acc


def _small_resnet():
    inp = layers.Input((28, 28, 1))
    h = layers.Rescaling(1 / 255.0)(inp)
    h = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(h)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    r = layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    r = layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same", use_bias=False)(r))
    h = layers.ReLU()(layers.Add()([h, r]))
    h = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2D(16, 1, activation="relu")(h)
    h = layers.MaxPooling2D(2)(h)
    return Model(inp, layers.Dense(10)(layers.Flatten()(h)))


def test_trained_digit_models_export_with_identical_int8_outputs():
    """mnist_cnn (width 4) and a residual net with a depthwise block, each trained one
    epoch on 2,000 mnist5k digits (a short fit: accuracy is not the point here),
    quantized on 256 training digits; the residual net fine-tuned with QAT and converted
    too."""
    from cnnkit import zoo

    (xt, yt), (xv, yv) = _digits()
    cnnkit_random.seed(3)
    mnist = _fit(zoo.get("mnist_cnn", width=4), xt[:2000], yt[:2000])
    q = quantize(mnist, xt[:256])
    worst, agree, _ = _export_and_compare(q, xv, both=False)
    acc = _report("mnist_cnn", q, xv, yv, worst, agree)
    assert acc > 0.8 and worst == 0 and agree == 1.0

    res = _fit(_small_resnet(), xt[:2000], yt[:2000])
    q = quantize(res, xt[:256], method="minmax")
    assert any(isinstance(s.step, QS.QuantizedAdd) for s in q.plan.steps)
    worst, agree, _ = _export_and_compare(q, xv, both=False)
    acc = _report("residual + depthwise", q, xv, yv, worst, agree)
    assert acc > 0.5 and worst == 0 and agree == 1.0

    qat = prepare_qat(res, xt[:256], method="minmax")
    _fit(res, xt[:1000], yt[:1000])
    q = qat.convert()
    worst, agree, _ = _export_and_compare(q, xv, both=False)
    acc = _report("residual + depthwise, QAT-converted", q, xv, yv, worst, agree)
    assert acc > 0.5 and worst == 0 and agree == 1.0


def test_digit_checkpoint_from_pytorch_exports_with_identical_int8_outputs(tmp_path):
    """The real digit-recognizer checkpoint read by the PyTorch importer, quantized on 500
    digits, saved, loaded and exported: ONNX Runtime gives cnnkit's outputs on 1,000 real
    digits (mnist5k's test set: the checkpoint never saw them in this form)."""
    from cnnkit.io.torch_checkpoint import load_state_dict
    from cnnkit.io.torch_weights import load_sequential_state_dict

    state = load_state_dict(shared_path("weights", "digit_recognizer_handwriting_model.pth"))
    model = Sequential([
        layers.Input((28, 28, 1)), layers.Rescaling(1 / (255 * 0.3081), -0.1307 / 0.3081),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dense(10)])
    load_sequential_state_dict(model, state)
    (xt, _), (xv, yv) = _digits()
    quantize(model, xt[:500]).save(tmp_path / "q.cnnkit")
    q = load_quantized(tmp_path / "q.cnnkit")
    q.export(tmp_path / "q.onnx")
    import onnx

    proto = onnx.load(tmp_path / "q.onnx")
    onnx.checker.check_model(proto, full_check=True)
    got = _ort(proto, np.moveaxis(xv, -1, 1).copy())
    want = q.predict(xv)
    worst = float((np.abs(got.astype(np.float64) - want) / _step_unit(q)).max())
    agree = float(np.mean(got.argmax(-1) == want.argmax(-1)))
    acc = _report("digit checkpoint", q, xv, yv, worst, agree, model)
    assert acc > 0.98 and worst == 0 and agree == 1.0
    assert float(np.mean(got.argmax(-1) == yv)) == acc


def test_cli_exports_an_int8_file_and_refuses_what_it_cannot(tmp_path, capsys):
    ort_or_skip()
    from cnnkit.cli import main

    m = Sequential([layers.Input((28, 28, 1)), layers.Rescaling(1 / 255),
                    layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(2),
                    layers.Flatten(), layers.Dense(10)])
    m.build((None, 28, 28, 1))
    (xt, _), (xv, _) = _digits()
    q = quantize(m, xt[:64])
    q.save(tmp_path / "q.cnnkit")
    out = tmp_path / "q.onnx"
    assert main(["export", str(tmp_path / "q.cnnkit"), str(out)]) == 0
    assert "int8" in capsys.readouterr().out
    import onnx

    got = _ort(onnx.load(out), np.moveaxis(xv[:64], -1, 1).copy())
    np.testing.assert_array_equal(got, q.predict(xv[:64]))
    for bad in (["--opset", "11"], ["--training"]):
        rc = main(["export", str(tmp_path / "q.cnnkit"), str(out), *bad])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("cnnkit"), err
    rc = main(["convert", str(tmp_path / "q.cnnkit"), str(tmp_path / "q.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "int8" in err[0]


def test_variable_input_size_and_training_form_are_refused():
    ort_or_skip()
    from cnnkit.io.onnx_export import OnnxExportError, to_onnx

    inp = layers.Input((None, None, 3))
    m = Model(inp, layers.Conv2D(4, 3, activation="relu")(inp))
    x = np.random.default_rng(0).random((8, 9, 9, 3)).astype(np.float32)
    q = quantize(m, x)
    with pytest.raises(OnnxExportError, match="fixed input size"):
        to_onnx(q)
    q = quantize(_plain_cnn(np.random.default_rng(0)),
                 np.random.default_rng(1).random((8, 12, 12, 3)).astype(np.float32))
    with pytest.raises(OnnxExportError, match="training=False"):
        to_onnx(q, training=True)
    with pytest.raises(OnnxExportError, match="opset >= 13"):
        to_onnx(q, opset=12)
