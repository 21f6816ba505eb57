"""Dynamic batching gives each request what predicting its input alone gives, bit for bit."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from serve_helpers import tiny_cnn

from cnnkit import zoo
from cnnkit.monitor import EmbeddingPlan
from cnnkit.runtime import compile
from cnnkit.serve import Batcher, Closed, QueueFull


def _alone(model, x):
    return np.stack([model.predict(x[i:i + 1].copy())[0] for i in range(len(x))])


@pytest.mark.parametrize("arch", ["tiny", "mnist_cnn", "resnet20"])
def test_batch_invariant_plan_equals_predicting_alone(arch):
    rng = np.random.default_rng(0)
    if arch == "tiny":
        model, shape = tiny_cnn(), (28, 28, 1)
    elif arch == "mnist_cnn":
        model, shape = zoo.builder("mnist_cnn")(), (28, 28, 1)
    else:  # narrow 8x8 maps: the convolution's algorithm changes with the batch size
        model, shape = zoo.builder("resnet20")(), (32, 32, 3)
    n = 24 if arch != "resnet20" else 12
    x = rng.integers(0, 256, (n, *shape)).astype(np.float32)
    alone = _alone(model, x)
    plan = compile(model, batch_invariant=True)
    for bs in (2, 5, 8, n):
        order = rng.permutation(n)
        got = np.empty_like(alone)
        for s in range(0, n, bs):
            got[order[s:s + bs]] = plan(x[order[s:s + bs]])
        np.testing.assert_array_equal(got, alone)
    outputs, emb = EmbeddingPlan(model)(x)
    np.testing.assert_array_equal(outputs, alone)
    assert emb.shape[0] == n


def test_batcher_concurrency_results_never_cross():
    model = tiny_cnn(seed=3)
    plan = EmbeddingPlan(model)
    sizes = []
    b = Batcher(plan, max_batch_size=8, max_wait_s=0.02, queue_length=1000,
                on_batch=lambda x, y, e, s: sizes.append(len(x)))
    rng = np.random.default_rng(2)
    xs = [rng.integers(0, 256, (int(rng.integers(1, 4)), 28, 28, 1)).astype(np.float32)
          for _ in range(60)]
    results: list = [None] * len(xs)

    def client(i):
        results[i] = b.submit(xs[i]).result(30)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    b.close()
    for x, (y, emb) in zip(xs, results, strict=True):
        np.testing.assert_array_equal(y, _alone(model, x))
        assert len(emb) == len(x)
    assert max(sizes) <= 8 and sum(sizes) == sum(len(x) for x in xs)
    assert max(sizes) > 3  # concurrent requests were stacked (more than one request)
    with pytest.raises(Closed):
        b.submit(xs[0])


def test_batcher_queue_limit_and_batch_size_one():
    gate = threading.Event()

    def slow(x):
        gate.wait(10)
        return x.reshape(len(x), -1)[:, :2], None

    sizes = []
    b = Batcher(slow, max_batch_size=1, max_wait_s=0.0, queue_length=3,
                on_batch=lambda x, y, e, s: sizes.append(len(x)))
    futures = [b.submit(np.full((1, 2), 0, np.float32))]
    for _ in range(1000):  # until the batcher thread holds the first one
        if b.depth == 0:
            break
        threading.Event().wait(0.01)
    futures += [b.submit(np.full((1, 2), i, np.float32)) for i in range(1, 4)]  # 3 waiting
    with pytest.raises(QueueFull):
        b.submit(np.zeros((1, 2), np.float32))
    gate.set()
    for i, f in enumerate(futures):
        np.testing.assert_array_equal(f.result(10)[0], [[i, i]])
    b.close()
    assert sizes == [1, 1, 1, 1]  # a configured batch size of 1 is honoured


def test_batcher_threads_limit_the_model_thread_only():
    """``threads=1``: the model call sees one kernel thread (no spinning helpers); the
    process's own setting is left alone; bad limits are refused."""
    from cnnkit.kernels import parallel

    seen = []

    def run(x):
        seen.append(parallel.get_num_threads())
        return x, None

    before = parallel.get_num_threads()
    b = Batcher(run, max_batch_size=4, threads=1)
    b.submit(np.zeros((1, 2), np.float32)).result(10)
    b.close()
    assert seen == [1] and parallel.get_num_threads() == before
    with pytest.raises(ValueError, match="int >= 1"):
        parallel.limit_this_thread(0)
    from cnnkit.serve import ServeConfig

    with pytest.raises(ValueError, match="threads must be an integer >= 0, got -1"):
        ServeConfig(threads=-1)
