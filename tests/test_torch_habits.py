"""PyTorch habits on cnnkit objects, checked against torch: Model train()/eval(),
named_parameters/named_buffers, state_dict/load_state_dict, print(model); Tensor view, size,
max(dim) and argmax(dim)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import layers, models
from cnnkit.autograd import Tensor

torch = pytest.importorskip("torch")


def _conv_bn_dense():
    return models.Sequential([
        layers.Input((6, 6, 3)), layers.Conv2D(4, 3, name="conv"),
        layers.BatchNormalization(name="bn"), layers.Flatten(name="flat"),
        layers.Dense(5, name="fc")])


def _torch_twin():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                               torch.nn.Flatten(), torch.nn.Linear(64, 5))


class Block(models.Model):
    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(4)
        self.drop = layers.Dropout(0.5)
        self.heads = [layers.Dense(2), layers.Dense(3)]

    def call(self, x, training=False):
        h = self.drop(self.dense(x))
        return self.heads[0](h) + self.heads[1](h)[:, :2]


# ----- train() / eval() ----------------------------------------------------------------------
def test_train_and_eval_switch_dropout_like_torch():
    x = np.ones((50, 40), np.float32)
    m = models.Sequential([layers.Input((40,)), layers.Dropout(0.5)])
    t = torch.nn.Dropout(0.5)
    assert m.train() is m and m.training
    out = m(x).numpy()
    t.train()
    ref = t(torch.ones(50, 40)).numpy()
    # both: inverted dropout, each value 0 or x / (1 - p)
    assert set(np.unique(out)) == set(np.unique(ref)) == {0.0, 2.0}
    assert m.eval() is m and not m.training
    np.testing.assert_array_equal(m(x).numpy(), x)
    m.train()
    np.testing.assert_array_equal(m(x, training=False).numpy(), x)  # explicit wins


def test_train_mode_batchnorm_uses_batch_statistics_like_torch():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(8, 5)).astype(np.float32)
    m = models.Sequential([layers.Input((5,)), layers.BatchNormalization(epsilon=1e-3)])
    t = torch.nn.BatchNorm1d(5, eps=1e-3)
    m.train()
    t.train()
    np.testing.assert_allclose(m(x).numpy(), t(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    m2 = models.Sequential([layers.Input((5,)), layers.BatchNormalization(epsilon=1e-3)])
    t2 = torch.nn.BatchNorm1d(5, eps=1e-3)
    m2.eval()
    t2.eval()  # fresh moving statistics: mean 0, variance 1
    np.testing.assert_allclose(m2(x).numpy(), t2(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_train_reaches_layers_inside_a_subclassed_model():
    m = Block()
    m.build((None, 3))
    m.train()
    assert m.drop.training and m.dense.training and m.heads[1].training
    m.eval()
    assert not m.drop.training


# ----- named_parameters / state_dict -------------------------------------------------------
def test_named_parameters_and_buffers_match_torch_structure():
    m = _conv_bn_dense()
    t = _torch_twin()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["conv.kernel", "conv.bias", "bn.gamma", "bn.beta", "fc.kernel", "fc.bias"]
    assert [w.size for _, w in m.named_parameters()] == [p.numel() for p in t.parameters()]
    buffers = dict(m.named_buffers())
    assert list(buffers) == ["bn.moving_mean", "bn.moving_variance"]
    t_buffers = [b for n, b in t.named_buffers() if not n.endswith("num_batches_tracked")]
    assert [b.size for b in buffers.values()] == [b.numel() for b in t_buffers]


def test_subclassed_names_are_attribute_paths_like_torch():
    m = Block()
    m.build((None, 3))

    class TBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = torch.nn.Linear(3, 4)
            self.drop = torch.nn.Dropout(0.5)
            self.heads = torch.nn.ModuleList([torch.nn.Linear(4, 2), torch.nn.Linear(4, 3)])

    ours = [n.rsplit(".", 1)[0] for n, _ in m.named_parameters()]
    theirs = [n.rsplit(".", 1)[0] for n, _ in TBlock().named_parameters()]
    assert ours == theirs == ["dense", "dense", "heads.0", "heads.0", "heads.1", "heads.1"]


def test_state_dict_round_trip_between_two_instances():
    a, b = Block(), Block()
    a.build((None, 3))
    b.build((None, 3))
    sd = a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    sd["dense.kernel"][...] = 0  # a copy: the model is unchanged
    assert np.any(a.dense.get_weights()[0] != 0)


def test_state_dict_includes_batchnorm_buffers_and_loads_them():
    m = _conv_bn_dense()
    sd = m.state_dict()
    sd["bn.moving_mean"] = np.full(4, 0.5, np.float32)
    m2 = _conv_bn_dense()
    m2.load_state_dict(sd)
    np.testing.assert_array_equal(dict(m2.named_buffers())["bn.moving_mean"].numpy(),
                                  np.full(4, 0.5, np.float32))


def test_load_state_dict_strict_reports_keys_like_torch():
    m = _conv_bn_dense()
    sd = m.state_dict()
    del sd["fc.bias"]
    sd["extra.weight"] = np.zeros(3, np.float32)
    t = _torch_twin()
    tsd = t.state_dict()
    del tsd["3.bias"]
    tsd["extra.weight"] = torch.zeros(3)
    with pytest.raises(RuntimeError) as ours:
        m.load_state_dict(sd)
    with pytest.raises(RuntimeError) as theirs:
        t.load_state_dict(tsd)
    for text in (str(ours.value), str(theirs.value)):
        assert "Missing key(s) in state_dict:" in text
        assert 'Unexpected key(s) in state_dict: "extra.weight"' in text
    assert '"fc.bias"' in str(ours.value)
    before = m.get_weights()
    result = m.load_state_dict(sd, strict=False)
    t_result = t.load_state_dict(tsd, strict=False)
    assert result.missing_keys == ["fc.bias"] and t_result.missing_keys == ["3.bias"]
    assert result.unexpected_keys == t_result.unexpected_keys == ["extra.weight"]
    for w, v in zip(m.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, v)


def test_load_state_dict_shape_mismatch_raises_and_writes_nothing():
    m = _conv_bn_dense()
    sd = {k: np.ones_like(v) for k, v in m.state_dict().items()}
    sd["fc.kernel"] = np.ones((3, 3), np.float32)
    before = m.get_weights()
    with pytest.raises(RuntimeError, match="size mismatch for fc.kernel"):
        m.load_state_dict(sd)
    t = _torch_twin()
    tsd = dict(t.state_dict())
    tsd["3.weight"] = torch.ones(3, 3)
    with pytest.raises(RuntimeError, match="size mismatch for 3.weight"):
        t.load_state_dict(tsd)
    for w, v in zip(m.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, v)


def test_print_model_shows_the_layer_tree():
    seq = models.Sequential([layers.Input((3,)), Block(), layers.Dense(2, name="out")])
    text = repr(seq)
    lines = text.splitlines()
    assert lines[0] == "Sequential("
    assert lines[-1] == ")"
    assert lines[1].startswith("  (block") and lines[1].endswith(": Block(")
    assert "    (dense): Dense(units=4" in text
    assert "    (heads.1): Dense(units=3" in text
    assert "  (out): Dense(units=2" in text


# ----- Tensor view / size / max / argmax ----------------------------------------------------
def test_tensor_view_and_size_like_torch():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x, t = Tensor(a), torch.from_numpy(a)
    for shape in [(-1, 4), (6, -1), (24,), (2, 12)]:
        np.testing.assert_array_equal(x.view(*shape).numpy(), t.view(*shape).numpy())
        np.testing.assert_array_equal(x.view(shape).numpy(), t.view(shape).numpy())
    assert x.size() == tuple(t.size())
    assert [x.size(d) for d in (0, 1, 2, -1)] == [t.size(d) for d in (0, 1, 2, -1)]
    assert x.size == a.size == 24  # NumPy's meaning still holds
    with pytest.raises(IndexError):
        x.size(3)


def test_tensor_max_and_argmax_with_dim_like_torch():
    a = np.random.default_rng(2).normal(size=(4, 5)).astype(np.float32)
    x, t = Tensor(a), torch.from_numpy(a)
    for dim in (0, 1, -1):
        values, indices = x.max(dim=dim)
        tv, ti = t.max(dim=dim)
        np.testing.assert_array_equal(values.numpy(), tv.numpy())
        np.testing.assert_array_equal(indices, ti.numpy())
        np.testing.assert_array_equal(x.argmax(dim=dim), t.argmax(dim=dim).numpy())
        kv, ki = x.max(dim, keepdim=True)
        assert kv.shape == tuple(t.max(dim, keepdim=True).values.shape)
    assert x.max().item() == t.max().item()
    assert int(x.argmax()) == int(t.argmax())
    np.testing.assert_array_equal(x.max(axis=1).numpy(), a.max(axis=1))  # NumPy style


def test_tensor_max_dim_gradient_goes_to_the_maxima_like_torch():
    a = np.array([[1.0, 3.0, 2.0], [5.0, 4.0, 0.0]], np.float32)
    x = Tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    x.max(dim=1).values.sum().backward()
    t.max(dim=1).values.sum().backward()
    np.testing.assert_array_equal(x.grad, t.grad.numpy())
