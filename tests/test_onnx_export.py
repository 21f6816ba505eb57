"""ONNX export against ONNX Runtime: every exportable layer (the layer table of
tests/layer_cases.py plus the layers it lacks), every zoo architecture (a few by default, all
under ``-m slow``), both interface layouts, two batch sizes through one dynamic-batch file;
each file passes ``onnx.checker.check_model(full_check=True)`` and gives cnnkit's outputs to
1e-4 relative. Plus opsets 9 to 23, the refusals, and a model whose weights came from
PyTorch, checked against PyTorch itself."""

from __future__ import annotations

import re

import numpy as np
import pytest
from layer_cases import CASES, IDS, batchless, randomize
from onnx_export_helpers import ort_or_skip, randomize_norms, run_ort, to_layout

import cnnkit
from cnnkit import layers as L
from cnnkit import zoo
from cnnkit.models import Model, Sequential

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TOL = 1e-4
LAYOUTS = ("NCHW", "NHWC")


def check_model(model, inputs_for, layouts=LAYOUTS, batches=(1, 3), **options) -> float:
    """Export in each layout (full check), run ``inputs_for(batch)`` for each batch size in
    ONNX Runtime and compare with model.predict; returns the max relative error."""
    ort_or_skip()
    import onnx

    from cnnkit.io.onnx_export import to_onnx

    worst = 0.0
    for layout in layouts:
        proto = to_onnx(model, layout=layout, **options)
        onnx.checker.check_model(proto, full_check=True)
        for n in batches:
            xs = inputs_for(n)
            theirs = run_ort(proto, [to_layout(x, layout) for x in xs])
            ours = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
            ours = ours if isinstance(ours, list) else [ours]
            for a, b in zip(ours, theirs, strict=True):
                a = to_layout(np.asarray(a, np.float64), layout)
                assert a.shape == b.shape, f"{layout} batch {n}: {a.shape} != {b.shape}"
                err = float(np.abs(a - b).max()) / max(1.0, float(np.abs(a).max()))
                assert err <= TOL, f"{layout} batch {n}: relative error {err:.2e}"
                worst = max(worst, err)
    return worst


def inputs_like(model, seed=0, int_high=None):
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]

    def make(n):
        r = np.random.default_rng(seed + n)
        if int_high is not None:
            return [r.integers(0, int_high, (n, *s[1:])) for s in shapes]
        return [r.standard_normal((n, *s[1:])).astype(np.float32) for s in shapes]

    return make


def one_layer_model(layer, shape, int_input=False):
    if isinstance(shape, list):
        ins = [L.Input(s[1:]) for s in batchless(shape)]
        return Model(ins, layer(ins))
    i = L.Input(batchless(shape)[1:], dtype="int64" if int_input else "float32")
    return Model(i, layer(i))


# ----- every layer of the layer table -----------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_layer_case(case):
    layer = case.make()
    model = one_layer_model(layer, case.inputs, case.int_input)
    randomize(layer)
    check_model(model, inputs_like(model, int_high=10 if case.int_input else None))


# ----- layers and forms the table lacks ---------------------------------------------------------
ACTS = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid", "tanh",
        "silu", "swish", "hard_swish", "softplus", "softmax", "log_softmax", "linear"]

EXTRA = {
    "prelu_shared": (lambda: L.PReLU(shared_axes=[1, 2]), (2, 5, 4, 3)),
    "prelu_full": (lambda: L.PReLU(), (2, 5, 3)),
    "layer_norm": (lambda: L.LayerNormalization(), (2, 4, 5, 3)),
    "layer_norm_hw": (lambda: L.LayerNormalization(axis=[1, 2]), (2, 4, 5, 3)),
    "layer_norm_2d": (lambda: L.LayerNormalization(center=False), (2, 6)),
    "group_norm": (lambda: L.GroupNormalization(groups=2), (2, 4, 5, 6)),
    "group_norm_axis1": (lambda: L.GroupNormalization(groups=2, axis=1), (2, 4, 5, 6)),
    "group_norm_2d": (lambda: L.GroupNormalization(groups=3), (2, 6)),
    "sync_batch_norm": (lambda: L.SyncBatchNormalization(), (2, 4, 5, 3)),
    "l2_normalize": (lambda: L.L2Normalize(), (2, 4, 4, 3)),
    "adaptive_same": (lambda: L.AdaptiveAveragePooling2D(3), (2, 3, 3, 2)),
    "adaptive_divide": (lambda: L.AdaptiveAveragePooling2D((2, 3)), (2, 4, 6, 2)),
    "adaptive_bins": (lambda: L.AdaptiveAveragePooling2D((3, 2)), (2, 7, 5, 2)),
    "resizing_bilinear": (lambda: L.Resizing(7, 9), (2, 4, 5, 3)),
    "resizing_nearest": (lambda: L.Resizing(3, 8, interpolation="nearest"), (2, 5, 4, 3)),
    "center_crop": (lambda: L.CenterCrop(3, 2), (2, 6, 5, 3)),
    "random_flip": (lambda: L.RandomFlip(), (2, 4, 4, 3)),
    "random_rotation": (lambda: L.RandomRotation(0.2), (2, 4, 4, 3)),
    "random_zoom": (lambda: L.RandomZoom(0.2), (2, 4, 4, 3)),
    "random_translation": (lambda: L.RandomTranslation(0.1, 0.1), (2, 4, 4, 3)),
    "random_contrast": (lambda: L.RandomContrast(0.2), (2, 4, 4, 3)),
    "random_brightness": (lambda: L.RandomBrightness(0.2), (2, 4, 4, 3)),
    "relu_threshold": (lambda: L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.3),
                       (2, 7)),
    "relu_slope": (lambda: L.ReLU(negative_slope=0.2), (2, 3, 4)),
    "softmax_axis1": (lambda: L.Softmax(axis=1), (2, 3, 4, 5)),
    "normalization_invert": (lambda: L.Normalization(mean=[1, 2, 3], variance=[4, 0.5, 2],
                                                     invert=True), (2, 4, 3)),
    "bn_4d_axis1": (lambda: L.BatchNormalization(axis=1), (2, 3, 4, 5)),
    "permute_3": (lambda: L.Permute((3, 1, 2)), (2, 3, 4, 5)),
    "reshape_to_image": (lambda: L.Reshape((1, 1, 6)), (2, 6)),
    "reshape_from_image": (lambda: L.Reshape((-1,)), (2, 3, 4, 2)),
    "dense_on_image": (lambda: L.Dense(4, activation="relu"), (2, 3, 5, 6)),
    **{f"activation_{a}": ((lambda a=a: L.Activation(a)), (2, 3, 4, 5)) for a in ACTS},
}


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_extra_layer(name):
    make, shape = EXTRA[name]
    layer = make()
    model = one_layer_model(layer, shape)
    randomize(layer)
    check_model(model, inputs_like(model))


def _folding_model(kind):
    """A layer that absorbs a following batch norm (and, for the convolutions, a preceding
    zero padding), with an activation after: the inference export folds both."""
    i = L.Input((9, 8, 4))
    x = L.ZeroPadding2D(((1, 2), (0, 1)))(i)
    make = {"conv": lambda: L.Conv2D(6, 3, padding="same"),
            "depthwise": lambda: L.DepthwiseConv2D(3, depth_multiplier=2),
            "separable": lambda: L.SeparableConv2D(5, 3, strides=2),
            "transpose": lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same"),
            "dense": lambda: L.Dense(5)}[kind]
    bn = L.SyncBatchNormalization if kind == "depthwise" else L.BatchNormalization
    x = make()(x if kind != "dense" else L.Flatten()(i))
    x = bn()(x)
    return Model(i, L.Activation("relu")(x))


@pytest.mark.parametrize("kind", ["conv", "depthwise", "separable", "transpose", "dense"])
def test_batch_norm_folding(kind):
    ort_or_skip()
    from cnnkit.io.onnx_export import to_onnx

    model = _folding_model(kind)
    for la in model.layers:
        if la.weights:
            randomize(la)
    check_model(model, inputs_like(model))
    ops = [nd.op_type for nd in to_onnx(model).graph.node]
    assert "BatchNormalization" not in ops, ops
    assert ("Pad" in ops) == (kind == "transpose"), ops  # a transposed conv takes no pads
    kept = [nd.op_type for nd in to_onnx(model, training=True).graph.node]
    assert kept.count("BatchNormalization") == 1, kept
    check_model(model, inputs_like(model), training=True)


def test_flatten_order_goes_into_the_dense_kernel():
    """Flatten (channels-first order) -> Dropout -> Dense: the permutation is taken into the
    kernel's rows, so the NCHW graph has no Transpose and no Gather."""
    ort_or_skip()
    from cnnkit.io.onnx_export import to_onnx

    model = Sequential([L.Input((5, 4, 3)), L.Conv2D(4, 3), L.Flatten(), L.Dropout(0.5),
                        L.Dense(6, activation="softmax")])
    check_model(model, inputs_like(model))
    ops = {nd.op_type for nd in to_onnx(model).graph.node}
    assert not ops & {"Transpose", "Gather"}, ops
    # a Flatten output read by something else gets cnnkit's order back
    i = L.Input((3, 2, 4))
    f = L.Flatten()(L.Conv2D(3, 1)(i))
    check_model(Model(i, [f, L.Dense(2)(f)]), inputs_like(Model(i, f)))


def test_every_exporter_is_tested():
    """Each layer class with a writer appears in one of the tests above."""
    pytest.importorskip("onnx")
    from cnnkit.io.onnx_export import exported_classes

    built = [c.make() for c in CASES] + [m() for m, _ in EXTRA.values()]
    built += [L.InputLayer(shape=(2,))]
    tested = {type(la) for la in built}
    missing = sorted(c.__name__ for c in exported_classes() if c not in tested)
    assert not missing, f"exporters without a test: {missing}"


# ----- zoo ---------------------------------------------------------------------------------------
def small_kwargs(name):
    """Reduced width and input size (each architecture's smallest convenient input)."""
    family = re.match(r"[a-z]+", name).group()
    table = {
        "alexnet": dict(input_shape=(63, 63, 3), classes=10, width_mult=0.25),
        "vgg": dict(input_shape=(32, 32, 3), classes=10, width_mult=0.125),
        "googlenet": dict(input_shape=(64, 64, 3), classes=10, width_mult=0.25),
        "inception": dict(input_shape=(75, 75, 3), classes=10, width_mult=0.25),
        "resnet": dict(input_shape=(32, 32, 3), classes=10, width_mult=0.25),
        "densenet": dict(input_shape=(32, 32, 3), classes=10, growth_rate=4,
                         num_init_features=8),
        "mobilenet": dict(input_shape=(32, 32, 3), classes=10),
        "efficientnet": dict(input_shape=(32, 32, 3), classes=10),
        "squeezenet": dict(input_shape=(64, 64, 3), classes=10, width_mult=0.25),
        "siamese": dict(embedding_dim=8),
        "textcnn": dict(vocab_size=50, sequence_length=20, embedding_dim=16, filters=8),
        "unet": dict(input_shape=(32, 32, 1), depth=2, base_filters=8, batch_norm=True),
        "mnist": dict(width=4),
    }
    kw = dict(table.get(family, {}))
    if name == "mobilenet":
        kw["alpha"] = 0.25
    elif family == "mobilenet":
        kw["width_mult"] = 0.25
    if name in ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110"):
        kw = dict(input_shape=(16, 16, 3))
    return kw


FEW = ["resnet20", "vgg11_bn", "mobilenet", "mobilenet_v3_small", "densenet121",
       "squeezenet1_1", "lenet5", "siamese", "textcnn", "unet"]
ALL = zoo.list()


def _listed(shape):
    return shape if isinstance(shape, list) else [shape]


def zoo_error(name):
    """Max error of the architecture; its NCHW graph has no Transpose (textcnn: one, from the
    embedding's (N, L, E) to (N, E, L)), its NHWC graph one per image input and output."""
    from cnnkit.io.onnx_export import to_onnx

    model = zoo.get(name, **small_kwargs(name))
    randomize_norms(model, seed=len(name))
    err = check_model(model, inputs_like(model, int_high=50 if name == "textcnn" else None))
    nchw = [nd.op_type for nd in to_onnx(model).graph.node].count("Transpose")
    assert nchw == (1 if name == "textcnn" else 0)
    shapes = [*_listed(model.input_shape), *_listed(model.output_shape)]
    edges = sum(len(s) >= 3 for s in shapes)
    nhwc = [nd.op_type for nd in to_onnx(model, layout="NHWC").graph.node].count("Transpose")
    assert nhwc == edges + nchw
    return err


@pytest.mark.parametrize("name", FEW)
def test_zoo_few(name):
    err = zoo_error(name)
    print(f"{name}: max relative error {err:.2e}")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ALL if n not in FEW])
def test_zoo_all(name):
    err = zoo_error(name)
    print(f"{name}: max relative error {err:.2e}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "inception_v3"])
def test_zoo_reference_size(name):
    model = zoo.get(name)
    randomize_norms(model)
    err = check_model(model, inputs_like(model), layouts=("NCHW",), batches=(1, 2))
    print(f"{name} at its reference size: max relative error {err:.2e}")


# ----- opsets, options and refusals --------------------------------------------------------------
def _mixed_model():
    i = L.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same")(i)
    x = L.BatchNormalization()(x)
    x = L.Activation("hard_swish")(x)
    x = L.UpSampling2D()(x)
    x = L.MaxPooling2D(padding="same")(x)
    x = L.Cropping2D(1)(L.ZeroPadding2D(1)(x))
    x = L.LayerNormalization()(x)
    x = L.Activation("gelu")(x)
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Reshape((4,))(x)
    return Model(i, L.Dense(3, activation="softmax")(L.ReLU(max_value=6.0)(x)))


@pytest.mark.parametrize("opset", [10, 11, 12, 13, 14, 17, 18, 20, 21, 23])
def test_opsets(opset):
    model = _mixed_model()
    for la in model.layers:
        if la.weights:
            randomize(la)
    randomize_norms(model)
    check_model(model, inputs_like(model), layouts=("NCHW",), opset=opset)


def test_opset_9_and_refusals():
    ort_or_skip()
    from cnnkit.io.onnx_export import OnnxExportError, to_onnx

    seq = Sequential([L.Input((6, 6, 2)), L.Conv2D(3, 3), L.Activation("hard_swish"),
                      L.GlobalAveragePooling2D(), L.Softmax()])
    check_model(seq, inputs_like(seq), layouts=("NCHW",), opset=9)
    up = Sequential([L.Input((4, 4, 2)), L.UpSampling2D(interpolation="bilinear")])
    with pytest.raises(OnnxExportError, match=r"UpSampling2D 'up_sampling2d.*opset >= 11"):
        to_onnx(up, opset=10)
    for bad in (8, 24, "17", True):
        with pytest.raises(OnnxExportError, match="opset must be an integer from 9 to 23"):
            to_onnx(seq, opset=bad)
    with pytest.raises(OnnxExportError, match="layout must be 'NCHW'"):
        to_onnx(seq, layout="NWHC")


def test_unsupported_layers_are_named():
    pytest.importorskip("onnx")
    from cnnkit.io.onnx_export import OnnxExportError, to_onnx

    lam = Sequential([L.Input((3,)), L.Lambda(lambda t: t * 2, name="double")])
    with pytest.raises(OnnxExportError, match=r"layer 'double' of class "
                                              r"cnnkit\.layers\.lambda_layer\.Lambda"):
        to_onnx(lam)
    custom = Sequential([L.Input((3,)), L.Dense(2, activation=lambda t: t * t, name="sq")])
    with pytest.raises(OnnxExportError, match=r"Dense 'sq': activation '<lambda>'"):
        to_onnx(custom)

    class Doubler(Model):
        def call(self, x, training=False):
            return x * 2

    with pytest.raises(OnnxExportError, match="subclassed model"):
        to_onnx(Doubler(name="doubler"))

    class MyConv(L.Conv2D):  # overrides call: computes something else
        def call(self, inputs, training=False):
            return super().call(inputs) * 2

    mine = Sequential([L.Input((4, 4, 1)), MyConv(2, 3, name="mine")])
    with pytest.raises(OnnxExportError, match="layer 'mine' of class .*MyConv"):
        to_onnx(mine)


def test_model_export_file_interface(tmp_path):
    """model.export writes the file atomically; NCHW input (N, C, H, W) with a symbolic
    batch; NHWC keeps cnnkit's shapes; a fixed batch when asked."""
    onnx = pytest.importorskip("onnx")
    model = zoo.get("lenet5")
    path = tmp_path / "lenet5.onnx"
    model.export(path)
    proto = onnx.load(path)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 1, 28, 28]
    assert proto.opset_import[0].version == 17
    out = [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert out == ["N", 10]
    proto = model.export(tmp_path / "b.onnx", layout="nhwc", dynamic_batch=False, opset=13)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 28, 28, 1] and proto.opset_import[0].version == 13
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.onnx", "lenet5.onnx"]
    with pytest.raises(ValueError, match="unknown export format 'tflite'; known: onnx"):
        model.export(tmp_path / "x.tflite", format="tflite")


def test_import_cnnkit_needs_no_onnx():
    import subprocess
    import sys

    code = ("import sys; sys.modules['onnx'] = None; import cnnkit; from cnnkit import zoo; "
            "m = zoo.get('lenet5')\ntry:\n    m.export('x.onnx')\nexcept ImportError as e:\n"
            "    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(cnnkit.__path__[0] + "/..")})
    assert "pip install 'cnnkit[onnx]'" in out.stdout


# ----- against PyTorch ---------------------------------------------------------------------------
def test_torch_weights_export_matches_torch():
    """A PyTorch module's weights loaded into the same cnnkit architecture: the exported
    file gives PyTorch's own outputs (an independent third party for the whole chain)."""
    torch = pytest.importorskip("torch")
    ort_or_skip()
    from cnnkit.io import load_sequential_state_dict
    from cnnkit.io.onnx_export import to_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 8, 3, groups=8, padding=1, bias=False),
        torch.nn.BatchNorm2d(8), torch.nn.Hardswish(), torch.nn.Flatten(),
        torch.nn.Linear(8 * 4 * 4, 5))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    net.eval()
    model = Sequential([L.Input((8, 8, 3)), L.Conv2D(8, 3, padding="same"),
                        L.BatchNormalization(epsilon=1e-5), L.ReLU(), L.MaxPooling2D(),
                        L.DepthwiseConv2D(3, padding="same", use_bias=False),
                        L.BatchNormalization(epsilon=1e-5), L.Activation("hard_swish"),
                        L.Flatten(), L.Dense(5)])
    load_sequential_state_dict(model, net.state_dict())
    x = np.random.default_rng(3).standard_normal((4, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    got = run_ort(to_onnx(model), [x])[0]
    err = float(np.abs(got - expected).max()) / max(1.0, float(np.abs(expected).max()))
    assert err <= TOL, err


def test_any_image_size():
    """Height and width unknown (symbolic in the file): "same" pads become SAME_UPPER, which
    puts the odd cell at the end as Keras does; run at two sizes, odd and even."""
    i = L.Input((None, None, 3))
    x = L.ZeroPadding2D(1)(i)
    x = L.Conv2D(4, 3, strides=2, padding="same", activation="relu")(x)
    x = L.ZeroPadding2D(((0, 1), (1, 0)))(x)
    x = L.Conv2D(4, 2)(x)
    x = L.MaxPooling2D(3, 2, padding="same")(x)
    x = L.UpSampling2D()(x)
    model = Model(i, [x, L.GlobalAveragePooling2D()(x), L.Flatten()(x)])
    for size in (9, 12):
        def make(n, size=size):
            r = np.random.default_rng(n)
            return [r.standard_normal((n, size, size + 1, 3)).astype(np.float32)]

        check_model(model, make)


_OPSET_MODELS = {
    "resize_bilinear": (lambda: L.Resizing(5, 7), (2, 3, 4, 2), 11),
    "resize_nearest": (lambda: L.Resizing(6, 3, interpolation="nearest"), (2, 3, 4, 2), 11),
    "softmax_channels": (lambda: L.Activation("softmax"), (2, 3, 4, 5), 9),
    "group_norm": (lambda: L.GroupNormalization(groups=2), (2, 3, 4, 4), 9),
    "l2_normalize": (lambda: L.L2Normalize(), (2, 3, 4), 9),
    "relu6": (lambda: L.ReLU(max_value=6.0), (2, 3, 4, 2), 9),
    "pad_crop": (lambda: L.Cropping2D(((1, 0), (2, 1))), (2, 5, 6, 2), 9),
    "zero_pad": (lambda: L.ZeroPadding2D(((1, 0), (2, 1))), (2, 5, 6, 2), 9),
    "gelu_tanh": (lambda: L.Activation(cnnkit.ops.gelu), (2, 5), 9),
}


@pytest.mark.parametrize("opset", [9, 10, 11, 13, 17, 18, 21])
def test_opset_dependent_forms(opset):
    """The layers whose ONNX form changes with the opset (Resize inputs, Softmax axis
    semantics, Reduce*/Squeeze axes as inputs, Clip and Pad bounds as inputs, Slice, Gelu),
    at each opset that changes them."""
    for make, shape, since in _OPSET_MODELS.values():
        if opset < since:
            continue
        layer = make()
        model = one_layer_model(layer, shape)
        randomize(layer)
        check_model(model, inputs_like(model), layouts=("NCHW",), batches=(2,), opset=opset)
    add = one_layer_model(L.Add(), [(2, 4, 4, 3), (2, 3)])  # Unsqueeze of the (N, C) input
    check_model(add, inputs_like(add), layouts=("NCHW",), batches=(2,), opset=opset)
    drop = Sequential([L.Input((6,)), L.Dropout(0.3), L.Dense(2)])
    check_model(drop, inputs_like(drop), layouts=("NCHW",), batches=(2,), opset=opset,
                training=True)


def test_shared_layer_and_sequence_dense():
    """A layer called twice writes its weights once; a Dense on a channels-last sequence
    (after an Embedding) is a MatMul."""
    ort_or_skip()
    from cnnkit.io.onnx_export import to_onnx

    ids = L.Input((6,), dtype="int64")
    seq = L.Dense(3, activation="relu")(L.Embedding(10, 4)(ids))
    img = L.Input((5, 5, 2))
    conv = L.Conv2D(2, 3, padding="same")
    x = conv(conv(img))
    model = Model([ids, img], [seq, x])
    for la in model.layers:
        if la.weights:
            randomize(la)

    def make(n):
        r = np.random.default_rng(n)
        return [r.integers(0, 10, (n, 6)), r.standard_normal((n, 5, 5, 2)).astype(np.float32)]

    check_model(model, make)
    proto = to_onnx(model)
    assert "MatMul" in [nd.op_type for nd in proto.graph.node]
    kernels = [i for i in proto.graph.initializer if tuple(i.dims) == (2, 2, 3, 3)]
    assert len(kernels) == 1
