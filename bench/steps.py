"""The timed steps of the workload benchmark, one closure per framework and mode, and PyTorch
with the benchmark's thread count."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from . import workloads as W


def load_torch() -> Any:
    """torch, with ``os.cpu_count()`` threads (or ``--torch-threads``, passed on to the
    memory-probe subprocesses as BENCH_TORCH_THREADS)."""
    import torch

    n = int(os.environ.get("BENCH_TORCH_THREADS") or os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch


def cnnkit_train_step(case: W.Case) -> Callable[[], None]:
    """forward (training mode), cross-entropy, backward, SGD(lr 0.01, momentum 0.9) update."""
    from cnnkit.train.losses import CrossEntropyLoss
    from cnnkit.train.optimizers import SGD

    model, x, y = case.ck, case.x, case.y
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = CrossEntropyLoss()

    def step() -> None:
        loss = criterion(model(x, training=True), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    return step


def cnnkit_infer_call(case: W.Case) -> Callable[[], Any]:
    import cnnkit

    model, x = case.ck, case.x

    def infer() -> Any:
        with cnnkit.no_grad():
            return model(x, training=False)

    return infer


def cnnkit_infer_predict(case: W.Case) -> Callable[[], Any]:
    model, x, n = case.ck, case.x, case.batch
    return lambda: model.predict(x, batch_size=n)


def torch_train_step(case: W.Case) -> Callable[[], None]:
    torch = load_torch()
    import torch.nn.functional as F  # noqa: N812

    model, x, y = case.pt, case.xt, case.yt
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    return step


def torch_infer(case: W.Case) -> Callable[[], Any]:
    torch = load_torch()
    model, x = case.pt, case.xt

    def infer() -> Any:
        with torch.inference_mode():
            return model(x)

    return infer


def randomize_bn(pt: Any, seed: int = 1) -> None:
    """Give every BatchNorm2d non-trivial statistics and affine weights, so that the logits
    compared in inference mode exercise them (fresh ones are 0/1, nearly the identity)."""
    torch = load_torch()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in pt.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
