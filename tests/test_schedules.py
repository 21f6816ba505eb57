"""Learning-rate schedules against closed forms and torch.optim.lr_scheduler sequences."""

import json
import math

import numpy as np
import pytest
from helpers import torch_or_skip

from cnnkit.train import schedules
from cnnkit.train.schedules import (
    CosineDecay,
    ExponentialDecay,
    OneCycle,
    PiecewiseConstantDecay,
    StepDecay,
)


def _torch_sequence(torch, base_lr, make, steps):
    """The lr torch's optimizer uses on each of ``steps`` updates under scheduler ``make``."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make(opt)
    seq = []
    for _ in range(steps):
        seq.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(seq)


def _ours(schedule, steps):
    return np.array([schedule(k) for k in range(steps)])


def test_step_decay_closed_form_and_torch():
    s = StepDecay(0.1, step_size=3, gamma=0.5)
    assert [s(k) for k in range(8)] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]
    assert StepDecay(initial=0.1, step_size=3, gamma=0.5) == s
    torch = torch_or_skip()
    for step_size, gamma in [(1, 0.9), (4, 0.3), (7, 0.5)]:
        ref = _torch_sequence(torch, 0.2, lambda o, a=step_size, b=gamma:
                              torch.optim.lr_scheduler.StepLR(o, step_size=a, gamma=b), 30)
        np.testing.assert_allclose(_ours(StepDecay(0.2, step_size, gamma), 30), ref, rtol=1e-12)


def test_exponential_decay_closed_form_and_torch():
    s = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(0) == pytest.approx(0.1) and s(10) == pytest.approx(0.05)
    assert s(5) == pytest.approx(0.1 * 0.5 ** 0.5, rel=1e-12)
    st = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert st(9) == pytest.approx(0.1) and st(19) == pytest.approx(0.05)
    torch = torch_or_skip()
    ref = _torch_sequence(torch, 0.3, lambda o: torch.optim.lr_scheduler.ExponentialLR(
        o, gamma=0.93), 40)
    np.testing.assert_allclose(_ours(ExponentialDecay(0.3, 1, 0.93), 40), ref, rtol=1e-10)


def test_cosine_decay_closed_form():
    s = CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert s(0) == pytest.approx(1.0)
    assert s(50) == pytest.approx(0.1 + 0.9 * 0.5)  # cos(pi/2) = 0
    assert s(100) == pytest.approx(0.1) and s(500) == pytest.approx(0.1)
    assert s(25) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    w = CosineDecay(0.0, decay_steps=10, warmup_target=0.4, warmup_steps=4)
    assert [w(k) for k in range(5)] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert w(9) == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert w(14) == pytest.approx(0.0, abs=1e-15) and w(100) == pytest.approx(0.0, abs=1e-15)


def test_cosine_decay_matches_torch_cosine_annealing():
    torch = torch_or_skip()
    for base, t_max, alpha in [(0.1, 20, 0.0), (0.5, 13, 0.2)]:
        ref = _torch_sequence(torch, base, lambda o, t=t_max, e=alpha * base:
                              torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=t, eta_min=e),
                              t_max + 1)
        np.testing.assert_allclose(_ours(CosineDecay(base, t_max, alpha), t_max + 1), ref,
                                   rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("total,pct,div,final,anneal,three", [
    (20, 0.3, 25.0, 1e4, "cos", False),
    (37, 0.25, 10.0, 100.0, "cos", False),
    (50, 0.4, 25.0, 1e4, "linear", False),
    (31, 0.3, 5.0, 1e3, "cos", True),
    (24, 0.2, 25.0, 1e4, "linear", True),
])
def test_one_cycle_matches_torch(total, pct, div, final, anneal, three):
    torch = torch_or_skip()
    ref = _torch_sequence(torch, 0.01, lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.8, total_steps=total, pct_start=pct, div_factor=div,
        final_div_factor=final, anneal_strategy=anneal, three_phase=three,
        cycle_momentum=False), total)
    ours = OneCycle(0.8, total, pct_start=pct, div_factor=div, final_div_factor=final,
                    anneal=anneal, three_phase=three)
    np.testing.assert_allclose(_ours(ours, total), ref, rtol=1e-12)
    assert ours(total + 5) == ours(total - 1)  # held at the final rate


def test_one_cycle_closed_form():
    s = OneCycle(1.0, total_steps=11, pct_start=0.5, div_factor=10, final_div_factor=100)
    # phase 1: steps 0..4.5 from 0.1 to 1.0; phase 2: 4.5..10 from 1.0 to 0.001
    assert s(0) == pytest.approx(0.1)
    assert s(10) == pytest.approx(0.001)
    pct = 2 / 4.5
    assert s(2) == pytest.approx(1.0 + (0.1 - 1.0) / 2 * (1 + math.cos(math.pi * pct)))


def test_piecewise_constant():
    s = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [s(k) for k in (0, 10, 11, 20, 21, 1000)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


ALL = [
    StepDecay(0.1, 3, 0.5),
    ExponentialDecay(0.1, 100, 0.96, staircase=True),
    CosineDecay(0.01, 1000, alpha=0.05, warmup_target=0.1, warmup_steps=50),
    OneCycle(0.5, 200, pct_start=0.2, anneal="linear", three_phase=True),
    PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001]),
]


@pytest.mark.parametrize("s", ALL, ids=[type(s).__name__ for s in ALL])
def test_config_round_trip(s):
    cfg = json.loads(json.dumps(s.get_config()))
    assert cfg["class_name"] == type(s).__name__
    again = schedules.get(cfg)
    assert type(again) is type(s) and again.get_config() == s.get_config()
    keras_style = {"class_name": cfg["class_name"],
                   "config": {k: v for k, v in cfg.items() if k != "class_name"}}
    assert schedules.get(keras_style) == s
    assert [again(k) for k in range(0, 300, 7)] == [s(k) for k in range(0, 300, 7)]
    assert schedules.get(s) is s
    assert isinstance(s(np.int64(3)), float)


def test_get_errors():
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'Polynomial'; known: "
                                         "StepDecay, ExponentialDecay"):
        schedules.get({"class_name": "Polynomial"})
    with pytest.raises(ValueError, match="cannot interpret"):
        schedules.get("cosine")


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"len\(values\) == len\(boundaries\) \+ 1"):
        PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="strictly increasing boundaries"):
        PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="StepDecay expects an integer step_size >= 1, got 0"):
        StepDecay(0.1, 0)
    with pytest.raises(ValueError, match="ExponentialDecay expects decay_steps > 0"):
        ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="CosineDecay expects 0 <= alpha <= 1"):
        CosineDecay(0.1, 10, alpha=2.0)
    with pytest.raises(ValueError, match="OneCycle expects anneal 'cos' or 'linear'"):
        OneCycle(0.1, 10, anneal="exp")
    with pytest.raises(ValueError, match="step >= 0"):
        StepDecay(0.1, 2)(-1)
