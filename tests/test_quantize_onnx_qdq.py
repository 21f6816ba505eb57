"""QDQ export of int8 models (``int8_format="qdq"``): ONNX Runtime fuses the
DequantizeLinear / QuantizeLinear pairs into its own integer operators (checked in the graph
it optimized: QLinearConv, QGemm, QLinearAdd, QLinearConcat) and runs them; the codes it
computes at every integer layer are compared with cnnkit's int8 plan, and the model outputs
in units of their integer step (half a step: a different code). Expected: 0 differing codes
with 7-bit weights (quantize's default) and uint8 activations. With 8-bit weights ONNX
Runtime's u8 x s8 kernels on AVX2 CPUs without VNNI saturate pair sums in int16: the export
warns, and the test counts the differences."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import shared_path
from onnx_export_helpers import ort_or_skip

from cnnkit import layers
from cnnkit.deploy import load_quantized, prepare_qat, quantize
from cnnkit.models import Model, Sequential
from cnnkit.runtime import quantized_steps as QS


def _has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_vnni", "avx_vnni", "avxvnni"))


def _plan_values(q, x):
    """Every slot of cnnkit's int8 plan run on x."""
    vals = {0: x}
    for s in q.plan.steps:
        r = s.fn([vals[i] for i in s.args] if s.multi_in else vals[s.args])
        outs = s.outs if isinstance(s.outs, list) else [s.outs]
        for slot, v in zip(outs, r if s.multi_out else [r], strict=True):
            vals[slot] = np.asarray(v)
    return vals


def _code_layers(q):
    """(layer name, output slot) of each integer layer that writes codes."""
    return [(s.step.layer.name, s.outs[0] if isinstance(s.outs, list) else s.outs)
            for s in q.plan.steps if isinstance(s.step, QS.QuantizedConv)
            and np.dtype(s.step.out_dtype) != np.float32]


def _run_ort(proto, x, names, tmp_path):
    """(model output, {name: codes}, op counts of the graph ONNX Runtime optimized)."""
    import onnx

    ort = ort_or_skip()
    proto = onnx.shape_inference.infer_shapes(proto)
    info = {v.name: v for v in proto.graph.value_info}
    for n in names:
        proto.graph.output.append(info[n])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    sess = ort.InferenceSession(proto.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    ops = Counter(nd.op_type for nd in onnx.load(tmp_path / "optimized.onnx").graph.node)
    return outs[0], dict(zip(names, outs[1:], strict=True)), ops


def _output_unit(q):
    """The value of one integer step of the model output (per channel), or None."""
    last = q.plan.steps[-1].step
    if isinstance(last, QS.QuantizedConv):
        return last.params.mult.astype(np.float64)
    if isinstance(last, QS.Dequantize):
        return np.float64(last.scale)
    return None


def compare_qdq(q, x, tmp_path, name):
    """(differing codes over every integer layer and the output, codes compared, worst output
    difference in steps, fused op counts)."""
    from cnnkit.io.onnx_export import to_onnx

    proto = to_onnx(q, int8_format="qdq")
    assert "ConvInteger" not in {nd.op_type for nd in proto.graph.node}
    vals = _plan_values(q, x)
    layers_ = _code_layers(q)
    got, codes, ops = _run_ort(proto, np.moveaxis(x, -1, 1).copy(), [n for n, _ in layers_],
                               tmp_path)
    differ = total = 0
    for n, slot in layers_:
        want = vals[slot] if vals[slot].ndim < 4 else np.moveaxis(vals[slot], -1, 1)
        assert codes[n].dtype == want.dtype and codes[n].shape == want.shape
        differ += int(np.sum(codes[n] != want))
        total += want.size
    want = q.predict(x)
    unit = _output_unit(q)
    diff = np.abs(got.astype(np.float64) - want) / (1.0 if unit is None else unit)
    if unit is not None:
        differ += int(np.sum(diff > 0.5))
        total += diff.size
    print(f"{name}: {differ} of {total} codes differ (ONNX Runtime QDQ vs cnnkit int8), "
          f"output off by at most {diff.max():.3g} {'steps' if unit is not None else ''}; "
          f"top-1 agreement {np.mean(got.argmax(-1) == want.argmax(-1)):.2%}; fused: "
          f"{', '.join(f'{k} x{v}' for k, v in sorted(ops.items()) if k.startswith('Q'))}")
    return differ, total, float(diff.max()), ops


def _branches():
    """conv, residual add (ReLU fused), concatenation, depthwise with ReLU6, max pooling,
    dense layers."""
    inp = layers.Input((12, 12, 3))
    a = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    b = layers.Conv2D(8, 3, padding="same")(a)
    s = layers.ReLU()(layers.Add()([a, b]))
    c = layers.Conv2D(4, 1, activation="relu")(inp)
    j = layers.Concatenate()([s, c])
    d = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6")(j)
    p = layers.MaxPooling2D(2)(layers.Conv2D(8, 1, activation="relu")(d))
    h = layers.Dense(16, activation="relu")(layers.Flatten()(p))
    return Model(inp, layers.Dense(5)(h))


def _plain():
    m = Sequential([
        layers.Input((12, 12, 3)), layers.Conv2D(8, 3, strides=2, use_bias=False),
        layers.BatchNormalization(), layers.ReLU(), layers.MaxPooling2D(2, padding="same"),
        layers.Conv2D(16, 3, padding="same", dilation_rate=2, activation="relu6", name="c2"),
        layers.Conv2D(8, 1, activation="relu"), layers.AveragePooling2D(3),
        layers.Flatten(), layers.Dense(4, activation="softmax")])
    m.build((None, 12, 12, 3))
    for w in m.weights:
        if "moving_variance" in w.name:
            w.data[...] = np.linspace(0.5, 2.0, w.size).reshape(w.shape)
    return m


def _data(m, n=48, seed=0):
    return np.random.default_rng(seed).random((n, *m.input_shape[1:])).astype(np.float32)


def test_graph_fuses_into_qlinear_ops_with_cnnkits_codes(tmp_path):
    m = _branches()
    x = _data(m)
    q = quantize(m, x[:32])
    differ, total, worst, ops = compare_qdq(q, x, tmp_path, "branches")
    assert differ == 0 and worst == 0 and total > 10_000
    n_conv = sum(1 for s in q.plan.steps if isinstance(s.step, QS.QuantizedConv)
                 and s.step.kind != "dense")
    assert ops.get("QLinearConv") == n_conv and ops.get("QGemm") == 2
    assert ops.get("QLinearAdd") == 1 and ops.get("QLinearConcat") == 1
    assert "Conv" not in ops and "Gemm" not in ops  # no float layer is left


@pytest.mark.parametrize("options", [{"per_channel": False}, {"keep_float": ["c2"]}],
                         ids=["per_tensor", "keep_float"])
def test_float_tail_per_tensor_and_kept_float_layers(tmp_path, options):
    m = _plain()
    x = _data(m, seed=1)
    q = quantize(m, x[:32], **options)
    differ, total, worst, ops = compare_qdq(q, x, tmp_path, str(options))
    assert differ == 0 and worst < 1e-5  # average pooling and softmax in float after codes
    assert ops.get("QLinearConv", 0) == len(_code_layers(q))


def test_qat_converted_model(tmp_path):
    from cnnkit import losses, optimizers
    from cnnkit import random as cnnkit_random

    cnnkit_random.seed(0)
    m = _branches()
    x = _data(m, 96, seed=2)
    y = (x.mean(axis=(1, 2, 3)) * 50).astype(np.int64) % 5
    qat = prepare_qat(m, x[:32])
    m.compile(optimizer=optimizers.Adam(1e-3),
              loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    q = qat.convert()
    differ, total, worst, ops = compare_qdq(q, x, tmp_path, "QAT-converted")
    assert differ == 0 and worst == 0 and ops.get("QLinearAdd") == 1


def test_int8_activations_match_to_the_step(tmp_path):
    """With int8 activations ONNX Runtime (x86) fuses the dense layers only and runs the
    convolutions in float32 on dequantized values: codes can differ at rounding ties."""
    m = _branches()
    x = _data(m, seed=3)
    q = quantize(m, x[:32], activations="int8")
    differ, total, worst, _ = compare_qdq(q, x, tmp_path, "int8 activations")
    assert differ <= total // 1000 and worst < 1.0


def test_8bit_weights_warn_and_saturate_without_vnni(tmp_path, recwarn):
    from cnnkit.io.onnx_export import to_onnx

    m = _branches()
    x = _data(m, seed=4)
    to_onnx(quantize(m, x[:32]), int8_format="qdq")
    assert not [w for w in recwarn if "VNNI" in str(w.message)]  # 7-bit: no warning
    q = quantize(m, x[:32], weight_bits=8)
    with pytest.warns(UserWarning, match="without VNNI"):
        differ, total, worst, _ = compare_qdq(q, x, tmp_path, "8-bit weights")
    print(f"this CPU {'has' if _has_vnni() else 'lacks'} VNNI: {differ} codes differ")
    if _has_vnni():
        assert differ == 0


def test_digit_checkpoint_on_5000_digits(tmp_path):
    """The real digit-recognizer checkpoint (PyTorch importer), quantized on 512 digits,
    saved, loaded, exported as QDQ: ONNX Runtime's top-1 on the 5,000 mnist5k digits."""
    import gzip

    from cnnkit.io.torch_checkpoint import load_state_dict
    from cnnkit.io.torch_weights import load_sequential_state_dict

    state = load_state_dict(shared_path("weights", "digit_recognizer_handwriting_model.pth"))
    with gzip.open(shared_path("datasets", "mnist5k", "mnist_5k.csv.gz"), "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    x, y = data[:, :784].reshape(-1, 28, 28, 1).astype(np.float32), data[:, 784]
    model = Sequential([
        layers.Input((28, 28, 1)), layers.Rescaling(1 / (255 * 0.3081), -0.1307 / 0.3081),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dense(10)])
    load_sequential_state_dict(model, state)
    quantize(model, x[:512]).save(tmp_path / "q.cnnkit")
    q = load_quantized(tmp_path / "q.cnnkit")
    differ, total, worst, ops = compare_qdq(q, x[:500], tmp_path, "digit checkpoint")
    assert differ == 0 and worst == 0
    assert ops.get("QLinearConv") == 3 and ops.get("QGemm") == 2
    from cnnkit.io.onnx_export import to_onnx

    ort = ort_or_skip()
    sess = ort.InferenceSession(to_onnx(q, int8_format="qdq").SerializeToString(),
                                providers=["CPUExecutionProvider"])
    top_ort = sess.run(None, {sess.get_inputs()[0].name: np.moveaxis(x, -1, 1).copy()})[0]
    top_ort, top_q = top_ort.argmax(-1), q.predict(x).argmax(-1)
    print(f"digit checkpoint, {len(y)} digits: top-1 differs on {np.sum(top_ort != top_q)}; "
          f"accuracy cnnkit int8 {np.mean(top_q == y):.2%}, ONNX Runtime QDQ "
          f"{np.mean(top_ort == y):.2%}")
    assert np.array_equal(top_ort, top_q) and np.mean(top_q == y) > 0.99


def _unit_of(q, slot):
    """One integer step of the value in ``slot`` (a model output)."""
    s = next(s for s in q.plan.steps if slot in (s.outs if isinstance(s.outs, list)
                                                 else [s.outs]))
    if isinstance(s.step, QS.QuantizedConv):
        return s.step.params.mult.astype(np.float64)
    return np.float64(s.step.scale)  # a Dequantize


@pytest.mark.parametrize("opset", [13, 21])
def test_nhwc_dense_on_feature_maps_and_two_outputs(opset, tmp_path):
    """A dense layer on (N, H, W, C) codes, a concatenation that is a model output, the NHWC
    interface; the fused graph at opsets 13 and 21."""
    import onnx

    from cnnkit.io.onnx_export import to_onnx

    inp = layers.Input((6, 6, 3))
    h = layers.Dense(5, activation="relu")(layers.Conv2D(8, 3, padding="same",
                                                         activation="relu")(inp))
    m = Model(inp, [layers.Dense(3)(h), layers.Concatenate()([h, layers.Conv2D(5, 1)(h)])])
    x = _data(m, 32, seed=6)
    q = quantize(m, x)
    ort = ort_or_skip()
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    sess = ort.InferenceSession(to_onnx(q, opset=opset, layout="NHWC", int8_format="qdq")
                                .SerializeToString(), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    ops = Counter(nd.op_type for nd in onnx.load(tmp_path / "optimized.onnx").graph.node)
    assert ops["QLinearConv"] == 2 and ops["QGemm"] == 2 and ops["QLinearConcat"] == 1
    for g, w, slot in zip(got, q.predict(x), q.float_plan.graph.outputs, strict=True):
        assert g.shape == w.shape
        assert np.max(np.abs(g.astype(np.float64) - w) / _unit_of(q, slot)) < 0.5


def test_cli_int8_format(tmp_path, capsys):
    ort = ort_or_skip()
    import onnx

    from cnnkit.cli import main
    from cnnkit.io.onnx_export import OnnxExportError, to_onnx

    m = _branches()
    x = _data(m, seed=5)
    q = quantize(m, x[:32])
    q.save(tmp_path / "q.cnnkit")
    m.save(tmp_path / "f.cnnkit")
    for cmd in ("export", "convert"):
        out = tmp_path / f"{cmd}.onnx"
        assert main([cmd, str(tmp_path / "q.cnnkit"), str(out), "--int8-format", "qdq"]) == 0
        capsys.readouterr()
        ops = {nd.op_type for nd in onnx.load(out).graph.node}
        assert "ConvInteger" not in ops and "DequantizeLinear" in ops
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: np.moveaxis(x, -1, 1).copy()})[0]
        np.testing.assert_array_equal(got, q.predict(x))
    rc = main(["export", str(tmp_path / "f.cnnkit"), str(tmp_path / "f.onnx"),
               "--int8-format", "qdq"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "int8" in err[0]
    with pytest.raises(OnnxExportError, match="int8_format"):
        to_onnx(q, int8_format="qlinear")
