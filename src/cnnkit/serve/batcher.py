"""Dynamic batching: concurrent requests stacked into one model call.

One thread per model takes the oldest waiting request, then every request already queued
(no waiting while the queue holds more: batches grow with load instead of shrinking), and
waits for more only until ``max_wait_s`` after the first one arrived, up to
``max_batch_size`` samples, and only while ``incoming()`` says other requests are on their
way (being received or decoded): a lone client is never kept waiting for company. A
request is never split, and one larger than the batch size runs alone. The outputs are
sliced back per request in queue order, so results never cross requests; with a
batch-invariant plan each equals predicting that input alone.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..kernels import parallel

log = logging.getLogger("cnnkit.serve")

RunFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
BatchHook = Callable[[np.ndarray, np.ndarray, Any, float], None]


class QueueFull(RuntimeError):
    """The model's queue holds ``queue_length`` requests (HTTP 503 with Retry-After)."""


class Closed(RuntimeError):
    """The batcher is shutting down and takes no new requests."""


@dataclass
class Job:
    x: np.ndarray
    future: Future = field(default_factory=Future)
    t: float = field(default_factory=time.monotonic)


_STOP: Any = object()


class Batcher:
    """``submit(x) -> Future[(outputs, embeddings)]`` over ``run`` (see module docstring).

    ``on_batch(x, outputs, embeddings, seconds)`` is called after each model call;
    ``threads``: the kernel threads of each model call (None: the process's setting)."""

    def __init__(self, run: RunFn, max_batch_size: int = 32, max_wait_s: float = 0.005,
                 queue_length: int = 256, on_batch: BatchHook | None = None,
                 name: str = "model", incoming: Callable[[], int] | None = None,
                 threads: int | None = None):
        self.run, self.max_batch_size, self.max_wait_s = run, max_batch_size, max_wait_s
        self.threads = threads
        self.on_batch, self.incoming = on_batch, incoming
        self._q: queue.Queue = queue.Queue(maxsize=queue_length)
        self._carry: Job | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"cnnkit-batcher-{name}",
                                        daemon=True)
        self._thread.start()

    def submit(self, x: np.ndarray) -> Future:
        """Queue ``x`` (N, ...); QueueFull when the queue is full, Closed after close()."""
        job = Job(x)
        with self._lock:
            if self._closed:
                raise Closed("the model is being replaced or the server is stopping")
            try:
                self._q.put_nowait(job)
            except queue.Full:
                raise QueueFull(f"{self._q.maxsize} requests are waiting") from None
        return job.future

    @property
    def depth(self) -> int:
        """Requests waiting (not yet in a batch)."""
        return self._q.qsize()

    def close(self, timeout: float | None = None) -> None:
        """Take no new requests, finish every queued one, stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._q.put(_STOP)  # blocks only while the queue is full; the thread is draining it
        self._thread.join(timeout)

    def _next(self, block_s: float | None) -> Any:
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        if block_s is None:
            return self._q.get()
        if block_s <= 0:
            return self._q.get_nowait()
        return self._q.get(timeout=block_s)

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        """The batch starting with ``first``; True when the stop mark was reached."""
        batch, n = [first], len(first.x)
        deadline = first.t + self.max_wait_s
        while n < self.max_batch_size:
            try:
                job = self._next(0)
            except queue.Empty:
                if self.incoming is not None and self.incoming() <= 0:
                    break  # nobody else is on the way: waiting would only add latency
                try:
                    job = self._next(min(deadline - time.monotonic(), 0.001))
                except (queue.Empty, ValueError):
                    if time.monotonic() >= deadline:
                        break
                    continue
            if job is _STOP:
                return batch, True
            if n + len(job.x) > self.max_batch_size:
                self._carry = job
                break
            batch.append(job)
            n += len(job.x)
        return batch, False

    def _loop(self) -> None:
        parallel.limit_this_thread(self.threads)
        while True:
            first = self._next(None)
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            self._execute(batch)
            if stop:
                if self._carry is not None:
                    self._execute([self._carry])
                return

    def _execute(self, batch: list[Job]) -> None:
        live = [j for j in batch if j.future.set_running_or_notify_cancel()]
        if not live:
            return
        start = time.perf_counter()
        try:
            x = live[0].x if len(live) == 1 else np.concatenate([j.x for j in live])
            y, emb = self.run(x)
        except Exception as e:  # a failing batch answers its own requests, nothing else
            log.error("model call failed for a batch of %d requests: %s: %s", len(live),
                      type(e).__name__, e)
            for j in live:
                j.future.set_exception(e)
            return
        seconds = time.perf_counter() - start
        if self.on_batch is not None:  # before answering: a client that got its answer
            try:                       # finds it counted in the metrics and drift window
                self.on_batch(x, y, emb, seconds)
            except Exception as e:  # monitoring must never stop serving
                log.error("batch hook failed: %s: %s", type(e).__name__, e)
        s = 0
        for j in live:
            e = len(j.x)
            j.future.set_result((y[s:s + e], None if emb is None else emb[s:s + e]))
            s += e
