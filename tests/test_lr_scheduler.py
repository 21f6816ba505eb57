"""cnnkit.train.lr_scheduler against torch.optim.lr_scheduler, step by step."""

import numpy as np
import pytest

from cnnkit import Tensor
from cnnkit.train import lr_scheduler as ck
from cnnkit.train.optimizers import SGD, Adam

torch = pytest.importorskip("torch")
tsched = torch.optim.lr_scheduler

STEPS = 100
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of .lr_scheduler.step")


def _pair(kind="sgd", lr=0.1, **kw):
    """A torch optimizer and a cnnkit optimizer with the same settings, one parameter each."""
    tp = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    cp = Tensor(np.zeros(3), requires_grad=True)
    if kind == "sgd":
        return torch.optim.SGD([tp], lr=lr, **kw), SGD([cp], lr=lr, **kw)
    return torch.optim.Adam([tp], lr=lr), Adam([cp], lr=lr)


def _close(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert abs(float(x) - float(y)) <= 1e-12 * max(abs(float(x)), 1e-300), (a, b)


def _run(make, kind="sgd", steps=STEPS, momentum_key=None, **opt_kw):
    """Build the same scheduler on both sides; compare lrs after construction and each step."""
    topt, copt = _pair(kind, **opt_kw)
    ts = make(tsched, topt)
    cs = make(ck, copt)
    for i in range(steps + 1):
        _close(ts.get_last_lr(), cs.get_last_lr())
        _close([topt.param_groups[0]["lr"]], [copt.learning_rate])
        if momentum_key:
            tm = topt.param_groups[0][momentum_key]
            cm = copt.param_groups[0][momentum_key]
            _close(np.atleast_1d(tm), np.atleast_1d(cm))
        if i < steps:
            topt.step()
            copt.step()
            ts.step()
            cs.step()
    return ts, cs


CASES = {
    "step": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[10, 30, 30, 75], gamma=0.3),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.95),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=20, eta_min=0.001),
    "cosine_no_min": lambda m, o: m.CosineAnnealingLR(o, T_max=33),
    "constant": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=12),
    "linear": lambda m, o: m.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=17),
    "linear_down": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=40),
    "lambda": lambda m, o: m.LambdaLR(o, lambda e: 1.0 / (1 + 0.1 * e)),
    "multiplicative": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9 if e % 3 else 1.05),
    "polynomial": lambda m, o: m.PolynomialLR(o, total_iters=60, power=2.0),
    "warm_restarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=2,
                                                                eta_min=1e-3),
    "warm_restarts_1": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=9),
    "onecycle_cos": lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=STEPS),
    "onecycle_linear": lambda m, o: m.OneCycleLR(o, max_lr=0.5, epochs=17, steps_per_epoch=6,
                                                 anneal_strategy="linear", pct_start=0.25),
    "onecycle_3phase": lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS,
                                                 three_phase=True, div_factor=10.0,
                                                 final_div_factor=100.0),
    "warmup_cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=10),
            m.CosineAnnealingLR(o, T_max=60, eta_min=1e-4)], milestones=[10]),
    "three_sequential": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=5), m.ExponentialLR(o, gamma=0.9),
            m.StepLR(o, step_size=10, gamma=0.5)], milestones=[8, 40]),
    "chained": lambda m, o: m.ChainedScheduler(
        [m.LinearLR(o, start_factor=0.2, total_iters=8), m.ExponentialLR(o, gamma=0.97)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch_every_step(name):
    _run(CASES[name], momentum_key="momentum" if name.startswith("onecycle") else None,
         momentum=0.9)


def test_onecycle_cycles_adam_beta1_like_torch():
    _run(lambda m, o: m.OneCycleLR(o, max_lr=0.01, total_steps=60), kind="adam", steps=60,
         momentum_key="betas")


def test_onecycle_beyond_total_steps_raises_like_torch():
    topt, copt = _pair()
    ts = tsched.OneCycleLR(topt, max_lr=0.1, total_steps=3)
    cs = ck.OneCycleLR(copt, max_lr=0.1, total_steps=3)
    for s in (ts, cs):
        for _ in range(3):
            s.step()
        with pytest.raises(ValueError, match="total"):
            s.step()


@pytest.mark.parametrize("kw", [
    {},
    {"mode": "max", "factor": 0.5, "patience": 2, "threshold": 0.05, "cooldown": 3},
    {"factor": 0.2, "patience": 1, "threshold_mode": "abs", "threshold": 0.01, "min_lr": 1e-3},
    {"factor": 0.5, "patience": 0, "eps": 0.02},
])
def test_reduce_on_plateau_matches_torch(kw):
    rng = np.random.default_rng(0)
    # a noisy curve that improves, stalls, and improves again
    metric = np.concatenate([np.linspace(2.0, 1.0, 20), np.full(30, 1.0),
                             np.linspace(1.0, 0.5, 20), np.full(30, 0.5)])
    metric = metric + 0.02 * rng.standard_normal(metric.size)
    if kw.get("mode") == "max":
        metric = -metric
    topt, copt = _pair()
    ts, cs = tsched.ReduceLROnPlateau(topt, **kw), ck.ReduceLROnPlateau(copt, **kw)
    lrs = set()
    for v in metric:
        topt.step()
        copt.step()
        ts.step(float(v))
        cs.step(float(v))
        _close(ts.get_last_lr(), cs.get_last_lr())
        assert (ts.num_bad_epochs, ts.cooldown_counter) == (cs.num_bad_epochs,
                                                             cs.cooldown_counter)
        lrs.add(cs.get_last_lr()[0])
    if not kw.get("eps"):
        assert len(lrs) > 1  # the sequence did trigger reductions


def test_step_with_epoch_uses_closed_form_like_torch():
    for make in (CASES["step"], CASES["cosine"], CASES["linear"], CASES["multistep"]):
        topt, copt = _pair()
        ts, cs = make(tsched, topt), make(ck, copt)
        for epoch in (5, 31, 12, 77):
            with pytest.warns(UserWarning):
                ts.step(epoch)
            cs.step(epoch)
            _close(ts.get_last_lr(), cs.get_last_lr())


def test_warm_restarts_fractional_epochs_like_torch():
    topt, copt = _pair()
    ts = tsched.CosineAnnealingWarmRestarts(topt, T_0=5, T_mult=2, eta_min=0.01)
    cs = ck.CosineAnnealingWarmRestarts(copt, T_0=5, T_mult=2, eta_min=0.01)
    for epoch in range(40):
        for i in range(4):  # the documented per-batch use: step(epoch + i / iters)
            ts.step(epoch + i / 4)
            cs.step(epoch + i / 4)
            _close(ts.get_last_lr(), cs.get_last_lr())


def test_sgd_update_uses_the_scheduled_lr():
    p = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    opt = SGD([p], lr=0.1)
    sched = ck.StepLR(opt, step_size=1, gamma=0.5)
    g = np.array([0.5, 1.0, -4.0])
    expected = p.data.copy()
    for lr in (0.1, 0.05, 0.025):
        assert opt.learning_rate == pytest.approx(lr, rel=1e-15)
        p.grad = g.copy()
        opt.step()
        expected = expected - lr * g  # plain SGD: p <- p - lr * g
        np.testing.assert_allclose(p.data, expected, rtol=1e-15)
        sched.step()


def test_param_groups_view_is_live():
    opt = SGD([Tensor(np.zeros(2), requires_grad=True)], lr=0.1, momentum=0.9)
    group = opt.param_groups[0]
    group["lr"] = 0.02
    group["momentum"] = 0.5
    assert (opt.learning_rate, opt.momentum) == (0.02, 0.5)
    adam = Adam(lr=1e-3)
    adam.param_groups[0]["betas"] = (0.8, 0.99)
    assert (adam.beta_1, adam.beta_2) == (0.8, 0.99)


@pytest.mark.parametrize("name", ["step", "cosine", "onecycle_cos", "warmup_cosine", "chained"])
def test_state_dict_round_trip_continues_like_torch(name):
    make = CASES[name]
    topt, copt = _pair()
    ts, cs = make(tsched, topt), make(ck, copt)
    for _ in range(23):
        ts.step()
        cs.step()
    state = cs.state_dict()
    # a fresh cnnkit scheduler on a fresh optimizer resumes where the first one was
    copt2 = _pair()[1]
    cs2 = make(ck, copt2)
    cs2.load_state_dict(state)
    copt2.learning_rate = copt.learning_rate
    for _ in range(40):
        for s in (ts, cs2):
            s.step()
        _close(ts.get_last_lr(), cs2.get_last_lr())


def test_seed_snippet_runs_unchanged(capsys):
    """The scheduler lines of seed 004 with a cnnkit Adam (verbose= is gone from torch 2.13)."""
    p = Tensor(np.zeros(2), requires_grad=True)
    optimizer = Adam([p], lr=0.001, weight_decay=1e-4)
    scheduler = ck.ReduceLROnPlateau(optimizer, mode='min', factor=0.5,
                                     patience=5, verbose=True)
    for val_loss in [1.0, 0.8] + [0.9] * 6:
        scheduler.step(val_loss)  # best 0.8, then 6 bad epochs > patience 5: halve once
    assert optimizer.learning_rate == 0.0005
    assert "Epoch 8: reducing learning rate of group 0 to 5.0000e-04." in capsys.readouterr().out
    cosine = ck.CosineAnnealingLR(optimizer, T_max=50, eta_min=1e-6)
    for _ in range(50):
        cosine.step()
    assert cosine.get_last_lr()[0] == pytest.approx(1e-6, rel=1e-9)


def test_plateau_state_dict_round_trip():
    copt = _pair()[1]
    cs = ck.ReduceLROnPlateau(copt, patience=1)
    for v in (1.0, 0.9, 0.95, 0.97):
        cs.step(v)
    cs2 = ck.ReduceLROnPlateau(_pair()[1], patience=1)
    cs2.load_state_dict(cs.state_dict())
    assert (cs2.best, cs2.num_bad_epochs, cs2.last_epoch) == (0.9, 0, 4)


def test_errors_are_clear():
    copt = SGD([Tensor(np.zeros(2), requires_grad=True)],
               learning_rate=ck_schedule())
    with pytest.raises(TypeError, match="constant learning rate"):
        ck.StepLR(copt, step_size=2)
    with pytest.raises(ValueError, match="step_size"):
        ck.StepLR(_pair()[1], step_size=0)
    with pytest.raises(ValueError, match="cycle_momentum"):
        ck.OneCycleLR(Adam_without_beta(), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        ck.OneCycleLR(_pair()[1], max_lr=0.1)
    with pytest.raises(ValueError, match="milestone"):
        o = _pair()[1]
        ck.SequentialLR(o, [ck.ConstantLR(o), ck.ExponentialLR(o, 0.9)], milestones=[])
    with pytest.raises(TypeError, match="param_groups"):
        ck.StepLR(object(), step_size=2)


def ck_schedule():
    from cnnkit.train import schedules
    return schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)


def Adam_without_beta():  # noqa: N802
    from cnnkit.train.optimizers import Adagrad
    return Adagrad([Tensor(np.zeros(2), requires_grad=True)], lr=0.1)
