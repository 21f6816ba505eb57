"""Optimizers against torch.optim step by step, clipping by hand, state and config round-trips."""

import json

import numpy as np
import pytest
from helpers import rel_error, torch_or_skip

from cnnkit import Tensor
from cnnkit.train import optimizers, schedules
from cnnkit.train.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

SHAPES = [(3, 4), (5,), (2, 3, 3)]
STEPS = 20


def _init_params(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _grad_sequence(seed=1, steps=STEPS, dtype=np.float32):
    """Random gradients; parameter 1 gets no gradient on steps 3 and 7 (tests skipping)."""
    rng = np.random.default_rng(seed)
    seq = []
    for k in range(steps):
        gs = [(rng.standard_normal(s) * rng.uniform(0.1, 3.0)).astype(dtype) for s in SHAPES]
        if k in (3, 7):
            gs[1] = None
        seq.append(gs)
    return seq


# cnnkit optimizer kwargs, torch class name, torch kwargs, {cnnkit slot: torch state key}
CASES = {
    "sgd": (SGD, dict(learning_rate=0.1), "SGD", dict(lr=0.1), {}),
    "sgd_momentum": (SGD, dict(learning_rate=0.05, momentum=0.9), "SGD",
                     dict(lr=0.05, momentum=0.9), {"momentum": "momentum_buffer"}),
    "sgd_nesterov_wd": (SGD, dict(learning_rate=0.05, momentum=0.8, nesterov=True,
                                  weight_decay=0.01), "SGD",
                        dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
                        {"momentum": "momentum_buffer"}),
    "sgd_dampening": (SGD, dict(learning_rate=0.05, momentum=0.9, dampening=0.3), "SGD",
                      dict(lr=0.05, momentum=0.9, dampening=0.3),
                      {"momentum": "momentum_buffer"}),
    "adam": (Adam, dict(learning_rate=0.05), "Adam", dict(lr=0.05, eps=1e-7),
             {"m": "exp_avg", "v": "exp_avg_sq"}),
    # a large epsilon makes its placement (torch: after bias correction) matter
    "adam_big_eps": (Adam, dict(learning_rate=0.05, epsilon=0.3), "Adam", dict(lr=0.05, eps=0.3),
                     {"m": "exp_avg", "v": "exp_avg_sq"}),
    "adam_amsgrad_wd": (Adam, dict(learning_rate=0.05, beta_1=0.8, beta_2=0.95, amsgrad=True,
                                   weight_decay=0.02, epsilon=1e-8), "Adam",
                        dict(lr=0.05, betas=(0.8, 0.95), amsgrad=True, weight_decay=0.02,
                             eps=1e-8),
                        {"m": "exp_avg", "v": "exp_avg_sq", "v_hat": "max_exp_avg_sq"}),
    "adamw": (AdamW, dict(learning_rate=0.05, weight_decay=0.1), "AdamW",
              dict(lr=0.05, weight_decay=0.1, eps=1e-7), {"m": "exp_avg", "v": "exp_avg_sq"}),
    "adamw_amsgrad": (AdamW, dict(learning_rate=0.05, weight_decay=0.05, amsgrad=True), "AdamW",
                      dict(lr=0.05, weight_decay=0.05, eps=1e-7, amsgrad=True),
                      {"m": "exp_avg", "v": "exp_avg_sq", "v_hat": "max_exp_avg_sq"}),
    "rmsprop": (RMSprop, dict(learning_rate=0.01), "RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-7),
                {"velocity": "square_avg"}),
    "rmsprop_centered_momentum_wd": (
        RMSprop, dict(learning_rate=0.01, rho=0.8, momentum=0.9, centered=True,
                      weight_decay=0.01, epsilon=0.2), "RMSprop",
        dict(lr=0.01, alpha=0.8, momentum=0.9, centered=True, weight_decay=0.01, eps=0.2),
        {"velocity": "square_avg", "average_gradient": "grad_avg",
         "momentum": "momentum_buffer"}),
    "rmsprop_momentum": (RMSprop, dict(learning_rate=0.01, momentum=0.5), "RMSprop",
                         dict(lr=0.01, alpha=0.9, momentum=0.5, eps=1e-7),
                         {"velocity": "square_avg", "momentum": "momentum_buffer"}),
    "adagrad": (Adagrad, dict(learning_rate=0.1), "Adagrad",
                dict(lr=0.1, initial_accumulator_value=0.1, eps=1e-7), {"accumulator": "sum"}),
    "adagrad_big_eps": (Adagrad, dict(learning_rate=0.1, epsilon=0.3), "Adagrad",
                        dict(lr=0.1, initial_accumulator_value=0.1, eps=0.3),
                        {"accumulator": "sum"}),
    "adagrad_wd_decay": (Adagrad, dict(learning_rate=0.1, initial_accumulator_value=0.0,
                                       epsilon=1e-10, weight_decay=0.01, lr_decay=0.05),
                         "Adagrad", dict(lr=0.1, weight_decay=0.01, lr_decay=0.05),
                         {"accumulator": "sum"}),
}


def _run_torch(torch, cls_name, kwargs, inits, grads, scheduler=None):
    tps = [torch.tensor(a.copy(), requires_grad=True) for a in inits]
    topt = getattr(torch.optim, cls_name)(tps, foreach=False, **kwargs)
    sched = scheduler(topt) if scheduler else None
    history = []
    for gs in grads:
        for tp, g in zip(tps, gs, strict=True):
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        topt.step()
        if sched:
            sched.step()
        history.append([tp.detach().numpy().copy() for tp in tps])
    return tps, topt, history


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case):
    torch = torch_or_skip()
    cls, kw, tname, tkw, slots = CASES[case]
    inits, grads = _init_params(), _grad_sequence()
    ps = [Tensor(a.copy(), requires_grad=True) for a in inits]
    arrays = [p.data for p in ps]
    opt = cls(ps, **kw)
    tps, topt, history = _run_torch(torch, tname, tkw, inits, grads)
    for k, gs in enumerate(grads):
        for p, g in zip(ps, gs, strict=True):
            p.grad = None if g is None else g.copy()
        opt.step()
        for i, (p, ref) in enumerate(zip(ps, history[k], strict=True)):
            err = rel_error(p.data, ref)
            assert err < 1e-5, f"{case} step {k} param {i}: rel error {err:.2e}"
    assert opt.iterations == STEPS
    moved = [rel_error(p.data, a) for p, a in zip(ps, inits, strict=True)]
    assert min(moved) > 1e-2, "parameters barely moved; the comparison would be weak"
    for i, (p, tp, a) in enumerate(zip(ps, tps, inits, strict=True)):  # the displacement too
        err = rel_error(p.data - a, tp.detach().numpy() - a)
        assert err < 1e-5, f"{case} displacement of param {i}: rel error {err:.2e}"
    state = opt.get_state()
    for i, (p, tp) in enumerate(zip(ps, tps, strict=True)):
        assert p.data is arrays[i] and p.dtype == np.float32  # in place, no promotion
        for mine, theirs in slots.items():
            ref = topt.state[tp][theirs].numpy()
            err = rel_error(state[f"{i}/{mine}"], ref)
            assert err < 1e-5, f"{case} slot {mine} of param {i}: rel error {err:.2e}"


def test_keras_style_equals_torch_style():
    inits, grads = _init_params(), _grad_sequence()
    a = [Tensor(x.copy(), requires_grad=True) for x in inits]
    b = [Tensor(x.copy(), requires_grad=True) for x in inits]
    c = [Tensor(x.copy(), requires_grad=True) for x in inits]
    opt_a = Adam(a, lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    # built without parameters, formula "auto" is Keras's: ask for torch's to compare call styles
    opt_b = Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6, formula="torch")
    opt_c = Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6,  # Keras positional rate
                 formula="torch")
    opt_c.build(c)
    for gs in grads:
        for p, g in zip(a, gs, strict=True):
            p.grad = None if g is None else g.copy()
        opt_a.step()
        opt_b.apply_gradients(zip([None if g is None else Tensor(g) for g in gs], b,
                                  strict=True))
        for p, g in zip(c, gs, strict=True):
            p.grad = None if g is None else g.copy()
        opt_c.step(c)
    for x, y, z in zip(a, b, c, strict=True):
        assert np.array_equal(x.data, y.data) and np.array_equal(x.data, z.data)
    assert opt_a.get_config() == {**opt_b.get_config(), "name": opt_a.name}
    assert opt_a.iterations == opt_b.iterations == opt_c.iterations == STEPS


def test_formula_auto_follows_the_habit():
    p = [Tensor(np.ones(3, np.float32), requires_grad=True)]
    for cls in (Adam, AdamW, RMSprop, Adagrad):
        assert cls(p).formula == "torch"  # PyTorch's habit: parameters first
        assert cls().formula == cls(0.01).formula == "keras"  # Keras's: compile(optimizer=...)
        assert cls(p, formula="keras").formula == "keras"
        assert cls(formula="torch").get_config()["formula"] == "torch"
        assert "formula" not in cls().get_config()  # a config Keras's from_config takes
    with pytest.raises(ValueError, match="'auto', 'torch' or 'keras'"):
        Adam(formula="tf")


@pytest.mark.parametrize("which", ["exponential", "onecycle"])
def test_schedule_matches_torch_scheduler(which):
    torch = torch_or_skip()
    inits, grads = _init_params(), _grad_sequence()
    if which == "exponential":
        sched = schedules.ExponentialDecay(0.05, decay_steps=1, decay_rate=0.9)
        cls, kw, tname, tkw = Adam, {}, "Adam", dict(lr=0.05, eps=1e-7)

        def make(o):
            return torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)
    else:
        sched = schedules.OneCycle(0.2, total_steps=STEPS, pct_start=0.25)
        cls, kw, tname, tkw = SGD, dict(momentum=0.9), "SGD", dict(lr=0.2, momentum=0.9)

        def make(o):
            return torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=STEPS,
                                                       pct_start=0.25, cycle_momentum=False)
    ps = [Tensor(a.copy(), requires_grad=True) for a in inits]
    opt = cls(ps, learning_rate=sched, **kw)
    _, _, history = _run_torch(torch, tname, tkw, inits, grads, scheduler=make)
    for k, gs in enumerate(grads):
        assert opt.learning_rate == pytest.approx(sched(k))
        for p, g in zip(ps, gs, strict=True):
            p.grad = None if g is None else g.copy()
        opt.step()
        for p, ref in zip(ps, history[k], strict=True):
            assert rel_error(p.data, ref) < 1e-5


def test_exclude_from_weight_decay_matches_torch_param_groups():
    torch = torch_or_skip()
    inits, grads = _init_params(), _grad_sequence()
    ps = [Tensor(a.copy(), requires_grad=True, name=n)
          for a, n in zip(inits, ["conv/kernel", "conv/bias", "dense/kernel"], strict=True)]
    opt = AdamW(ps, learning_rate=0.05, weight_decay=0.1)
    opt.exclude_from_weight_decay(var_names=["bias"])
    tps = [torch.tensor(a.copy(), requires_grad=True) for a in inits]
    topt = torch.optim.AdamW([{"params": [tps[0], tps[2]]},
                              {"params": [tps[1]], "weight_decay": 0.0}],
                             lr=0.05, weight_decay=0.1, eps=1e-7, foreach=False)
    for gs in grads:
        for p, tp, g in zip(ps, tps, gs, strict=True):
            p.grad = None if g is None else g.copy()
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps, strict=True):
        assert rel_error(p.data, tp.detach().numpy()) < 1e-5


# ----- clipping, by hand -------------------------------------------------------------------

def _sgd_one_step(grads, **clip):
    ps = [Tensor(np.zeros(np.shape(g), dtype=np.float32), requires_grad=True) for g in grads]
    opt = SGD(ps, learning_rate=1.0, **clip)
    for p, g in zip(ps, grads, strict=True):
        p.grad = np.array(g, dtype=np.float32)
    opt.step()
    return [-p.data for p in ps]  # the applied (clipped) gradient


def test_clipvalue():
    out = _sgd_one_step([[3.0, -0.5, -2.0], [[0.1, -7.0]]], clipvalue=1.0)
    np.testing.assert_array_equal(out[0], np.array([1.0, -0.5, -1.0], np.float32))
    np.testing.assert_array_equal(out[1], np.array([[0.1, -1.0]], np.float32))


def test_clipnorm_per_parameter():
    # ||[3, 4]|| = 5 > 1 -> scaled by 1/5; ||[0.3, 0.4]|| = 0.5 <= 1 -> unchanged
    out = _sgd_one_step([[3.0, 4.0], [0.3, 0.4]], clipnorm=1.0)
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(out[1], [0.3, 0.4], rtol=1e-6)


def test_global_clipnorm():
    # global norm sqrt(3^2 + 4^2) = 5 > 2.5 -> every gradient scaled by 0.5
    out = _sgd_one_step([[3.0], [[0.0, 4.0]]], global_clipnorm=2.5)
    np.testing.assert_allclose(out[0], [1.5], rtol=1e-6)
    np.testing.assert_allclose(out[1], [[0.0, 2.0]], rtol=1e-6)
    out = _sgd_one_step([[3.0], [[0.0, 4.0]]], global_clipnorm=10.0)  # below: unchanged
    np.testing.assert_allclose(out[1], [[0.0, 4.0]], rtol=1e-6)


def test_clipping_happens_before_weight_decay_and_keeps_grad():
    p = Tensor(np.array([2.0, 0.0], np.float32), requires_grad=True)
    g = np.array([3.0, 4.0], np.float32)
    p.grad = g
    SGD([p], learning_rate=1.0, clipnorm=1.0, weight_decay=0.5).step()
    # clipped g = [0.6, 0.8]; + 0.5 * p = [1.0, 0]; p - lr * that
    np.testing.assert_allclose(p.data, [2.0 - 1.6, -0.8], rtol=1e-6)
    np.testing.assert_array_equal(g, [3.0, 4.0])  # the caller's gradient is not modified


def test_only_one_clip_option():
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        Adam(clipnorm=1.0, clipvalue=0.5)


# ----- state and config --------------------------------------------------------------------

ROUND_TRIP = [
    (SGD, dict(learning_rate=0.05, momentum=0.9, nesterov=True, clipnorm=2.0)),
    (Adam, dict(learning_rate=0.02, amsgrad=True, weight_decay=0.01)),
    (AdamW, dict(learning_rate=schedules.CosineDecay(0.02, 30, alpha=0.1, warmup_target=0.05,
                                                     warmup_steps=5))),
    (RMSprop, dict(learning_rate=0.01, momentum=0.5, centered=True, global_clipnorm=3.0)),
    (Adagrad, dict(learning_rate=0.05, clipvalue=1.0, lr_decay=0.01)),
]


@pytest.mark.parametrize("cls,kw", ROUND_TRIP, ids=[c.__name__ for c, _ in ROUND_TRIP])
def test_state_round_trip_continues_bit_identically(cls, kw):
    inits, grads = _init_params(3), _grad_sequence(4)
    a = [Tensor(x.copy(), requires_grad=True) for x in inits]
    opt_a = cls(a, **kw)
    for gs in grads[:10]:
        opt_a.apply_gradients(zip(gs, a, strict=True))
    config = json.loads(json.dumps(opt_a.get_config()))
    state = {k: np.array(v) for k, v in opt_a.get_state().items()}
    assert state["iterations"] == 10 and config["class_name"] == cls.__name__
    assert any(k.startswith("0/") for k in state)
    b = [Tensor(p.data.copy(), requires_grad=True) for p in a]
    opt_b = optimizers.get(config)
    assert type(opt_b) is cls and opt_b.get_config() == opt_a.get_config()
    opt_b.set_state(state)  # before build: kept until the parameters are known
    opt_b.build(b)
    for gs in grads[10:]:
        opt_a.apply_gradients(zip(gs, a, strict=True))
        for p, g in zip(b, gs, strict=True):
            p.grad = g
        opt_b.step()
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.data, y.data)
    assert opt_a.learning_rate == opt_b.learning_rate


def test_get_state_copies_and_set_state_validates():
    p = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    opt = Adam([p], learning_rate=0.1)
    p.grad = np.ones((2, 3), np.float32)
    opt.step()
    state = opt.get_state()
    assert set(state) == {"iterations", "learning_rate", "0/step", "0/m", "0/v"}
    state["0/m"][:] = 123.0
    assert opt.get_state()["0/m"].max() < 1.0
    with pytest.raises(ValueError, match=r"'0/m' has shape \(3,\), expected .*\(2, 3\)"):
        opt.set_state({**state, "0/m": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="'5/m' does not name one of the 1 parameters"):
        opt.set_state({**state, "5/m": np.zeros((2, 3), np.float32)})
    with pytest.raises(ValueError, match="missing key 'iterations'"):
        opt.set_state({"0/m": state["0/m"]})


def test_learning_rate_property_and_iterations():
    p = Tensor(np.zeros(3, np.float32), requires_grad=True)
    opt = SGD([p], lr=0.5)
    assert opt.learning_rate == 0.5 and opt.lr == 0.5
    opt.learning_rate = 0.25  # what ReduceLROnPlateau does
    p.grad = np.ones(3, np.float32)
    opt.step()
    np.testing.assert_allclose(p.data, -0.25)
    assert opt.iterations == 1 and opt.get_config()["learning_rate"] == 0.25
    sched = schedules.StepDecay(1.0, step_size=2, gamma=0.5)
    opt2 = SGD([p], learning_rate=sched)
    got = []
    for _ in range(5):
        got.append(opt2.learning_rate)
        p.grad = np.ones(3, np.float32)
        opt2.step()
    assert got == [1.0, 1.0, 0.5, 0.5, 0.25]
    with pytest.raises(TypeError, match="learning-rate schedule"):
        opt2.learning_rate = 0.1
    assert opt2.get_config()["learning_rate"]["class_name"] == "StepDecay"


def test_zero_grad_and_skipping_params_without_grad():
    p, q = (Tensor(np.ones(2, np.float32), requires_grad=True) for _ in range(2))
    opt = Adam([p, q], learning_rate=0.1)
    p.grad = np.ones(2, np.float32)
    opt.step()
    np.testing.assert_array_equal(q.data, [1.0, 1.0])
    assert "1/m" not in opt.get_state()
    q.grad = np.ones(2, np.float32)
    opt.zero_grad()
    assert p.grad is None and q.grad is None


def test_float64_params_stay_float64():
    p = Tensor(np.ones(4), requires_grad=True)
    for cls in (SGD, Adam, AdamW, RMSprop, Adagrad):
        p.grad = np.full(4, 0.5, dtype=np.float32)  # gradient is cast to the param's dtype
        cls([p]).step()
        assert p.dtype == np.float64
    p32 = Tensor(np.ones(4, np.float32), requires_grad=True)
    for cls in (SGD, Adam, AdamW, RMSprop, Adagrad):
        p32.grad = np.full(4, 0.5)
        opt = cls([p32], momentum=0.9) if cls in (SGD, RMSprop) else cls([p32])
        opt.step()
        assert p32.dtype == np.float32
        assert all(v.dtype == np.float32 for k, v in opt.get_state().items() if "/" in k and
                   not k.endswith("step"))


def test_closure_step_returns_loss():
    p = Tensor(np.array([2.0], np.float32), requires_grad=True)
    opt = SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.item()) == pytest.approx(4.0)
    np.testing.assert_allclose(p.data, [2.0 - 0.1 * 4.0])


def test_get_by_name_and_config():
    assert isinstance(optimizers.get("Adam"), Adam)
    opt = optimizers.get("sgd", learning_rate=0.3, momentum=0.9)
    assert isinstance(opt, SGD) and opt.learning_rate == 0.3 and opt.momentum == 0.9
    assert optimizers.get(opt) is opt
    keras_style = {"class_name": "RMSprop", "config": {"learning_rate": 0.02, "rho": 0.8}}
    rms = optimizers.get(keras_style)
    assert isinstance(rms, RMSprop) and rms.rho == 0.8 and rms.learning_rate == 0.02
    for name in ("sgd", "adam", "adamw", "rmsprop", "adagrad"):
        cfg = optimizers.get(name).get_config()
        json.dumps(cfg)
        assert optimizers.get(cfg).get_config() == cfg
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'; known: 'sgd', 'adam'"):
        optimizers.get("lamb")
    with pytest.raises(ValueError, match="unknown optimizer 'Nadam'"):
        optimizers.get({"class_name": "Nadam"})
    with pytest.raises(ValueError, match="cannot interpret"):
        optimizers.get(3)


def test_aliases_and_defaults():
    p = Tensor(np.zeros(2, np.float32), requires_grad=True)
    adam = Adam([p], lr=0.01, betas=(0.5, 0.6), eps=1e-3)
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.01, 0.5, 0.6, 1e-3)
    assert Adam().epsilon == 1e-7 and AdamW().weight_decay == 0.004
    assert RMSprop(alpha=0.99).rho == 0.99 and RMSprop().rho == 0.9
    assert Adagrad().initial_accumulator_value == 0.1 and SGD().learning_rate == 0.01


def test_bad_arguments():
    p = Tensor(np.zeros(2, np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="pass learning_rate or lr, not both"):
        Adam([p], learning_rate=0.1, lr=0.2)
    with pytest.raises(ValueError, match=r"beta_1 >= 0.0 and < 1.0, got 1.5"):
        Adam(beta_1=1.5)
    with pytest.raises(ValueError, match="learning_rate >= 0.0, got -1.0"):
        SGD(learning_rate=-1.0)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        SGD(nesterov=True)
    with pytest.raises(TypeError, match="expects parameters to be cnnkit Tensors, got ndarray"):
        SGD([np.zeros(2)])
    with pytest.raises(TypeError, match="floating-point parameters"):
        SGD([Tensor(np.zeros(2, np.int64))])
    with pytest.raises(ValueError, match="no parameters"):
        SGD().step()
    opt = SGD([p])
    with pytest.raises(ValueError, match=r"gradient for parameter 0 has shape \(3,\), expected "
                                         r"the parameter's shape \(2,\)"):
        opt.apply_gradients([(np.zeros(3, np.float32), p)])


@pytest.mark.parametrize("kw", [dict(momentum=0.9), dict(momentum=0.9, dampening=0.3),
                                dict(momentum=0.9, nesterov=True), dict(momentum=0.0),
                                dict(momentum=0.5, weight_decay=0.1)])
def test_sgd_steps_match_formula_and_keep_grad(kw):
    """SGD reads the gradients without copying them when it only reads them: the values follow
    torch's formulas (float64, by hand) and the caller's .grad arrays are never written."""
    m, d, nesterov = kw["momentum"], kw.get("dampening", 0.0), kw.get("nesterov", False)
    wd, lr = kw.get("weight_decay", 0.0), 0.1
    rng = np.random.default_rng(3)
    p = Tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    opt = SGD([p], learning_rate=lr, **kw)
    ref, buf = p.data.astype(np.float64), None
    for _ in range(3):
        g = rng.standard_normal(5).astype(np.float32)
        g_before = g.copy()
        p.grad = g
        opt.step()
        np.testing.assert_array_equal(g, g_before)
        gg = g.astype(np.float64) + wd * ref
        if m:
            buf = gg.copy() if buf is None else m * buf + (1 - d) * gg
            gg = gg + m * buf if nesterov else buf
        ref = ref - lr * gg
        np.testing.assert_allclose(p.data, ref, rtol=1e-5, atol=1e-6)
