"""A small persistent thread pool that runs independent blocks of a kernel's work (slices of
the batch or of a flat array) on every core.

NumPy releases the GIL inside its loops, copies and BLAS calls, so Python threads that each
work on their own slice of an array run in parallel. This matters for the work NumPy does on
one core only (copies such as im2col, elementwise maths, reductions), and for GEMMs done block
by block: there each thread runs its blocks' GEMMs with BLAS limited to one thread, so the two
levels of threading never multiply (no oversubscription), and only one hand-over happens per
kernel call instead of one per GEMM.

Blocks are handed out dynamically (a shared counter), so a thread slowed down by other
processes on the machine simply takes fewer blocks. Results never depend on which thread ran
a block: every block writes its own slice of the output, and partial sums are combined in
block order.

The thread count defaults to min(2, number of CPUs), or the environment variable
``CNNKIT_NUM_THREADS``; :func:`set_num_threads` changes it (1 = everything on the calling
thread). BLAS's own thread count is held at 1 while the kernels' GEMMs run (then restored), when
it can be set (the OpenBLAS that NumPy's wheels ship); with another BLAS, blocks that call BLAS
run one after another and BLAS threads each GEMM itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import itertools
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["get_num_threads", "set_num_threads", "limit_this_thread", "run_blocks", "split",
           "pieces_for", "row_pieces", "for_rows", "column_sum", "matmul"]

# Below this many bytes of data an elementwise job is not worth a hand-over (~20-50 us).
MIN_PARALLEL_BYTES = 1 << 20


def tune_allocator() -> bool:
    """Opt-in (``cnnkit.tune_malloc()`` or ``CNNKIT_MALLOC_TUNE=1`` before import): keep freed
    array memory in the process for reuse (glibc only). It changes malloc for the whole
    process, so cnnkit never does it unasked. By default glibc returns large freed blocks to
    the system and every new array of the next step faults its pages in again: ~50,000 page
    faults and ~0.15 s of system time per ResNet-20 training step at batch 128 on the
    project's machine. With blocks up to 64 MB served from the heap and up to 256 MB of free
    heap kept, that drops to a few faults. Returns whether the setting was applied."""
    if not hasattr(os, "sched_getaffinity"):  # not Linux: no glibc mallopt to call
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    m_trim_threshold, m_mmap_threshold = -1, -3
    done = bool(mallopt(m_trim_threshold, 256 << 20) and mallopt(m_mmap_threshold, 64 << 20))
    _state["malloc_tuned"] = _state["malloc_tuned"] or done
    return done


def _env_threads() -> int:
    value = os.environ.get("CNNKIT_NUM_THREADS", "")
    try:
        n = int(value)
    except ValueError:
        n = 0
    return n if n >= 1 else min(2, os.cpu_count() or 1)


_state: dict[str, Any] = {"threads": _env_threads(), "workers": [], "blas": None,
                          "blas_probed": False, "blas_sections": 0, "blas_saved": 1,
                          "malloc_tuned": False}
_lock = threading.Lock()
_local = threading.local()
if os.environ.get("CNNKIT_MALLOC_TUNE") == "1":
    tune_allocator()


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's threads: start a fresh pool when needed."""
    _state["workers"] = []
    _state["blas_sections"] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def get_num_threads() -> int:
    """Threads the kernels split their work over (1 = no pool), at most the calling thread's
    own limit (:func:`limit_this_thread`)."""
    n = int(_state["threads"])
    limit = getattr(_local, "limit", None)
    return n if limit is None else min(n, limit)


def limit_this_thread(n: int | None) -> None:
    """Kernels called from the calling thread use at most ``n`` >= 1 threads (None: no
    limit of its own). A server's model thread shares the cores with request handling: with
    1, no kernel thread spins or waits for it."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"limit_this_thread expects an int >= 1 or None, got {n!r}")
    _local.limit = n


def set_num_threads(n: int) -> None:
    """Use ``n`` >= 1 threads for the kernels' blocks from now on."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads expects an int >= 1, got {n!r}")
    _state["threads"] = n


def _blas_controls() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    """(set, get) of the thread count of the OpenBLAS that NumPy loaded, or None (another
    BLAS, or symbols not found). OpenBLAS's count is process-wide (its
    ``openblas_set_num_threads_local`` too, in pthreads builds), so :func:`run_blocks` lowers
    it to 1 for the length of a parallel section and then restores it."""
    if _state["blas_probed"]:
        return _state["blas"]
    found = None
    paths = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                   "*openblas*"))
    try:
        with open("/proc/self/maps") as f:
            paths += sorted({line.split()[-1] for line in f if "openblas" in line.lower()
                             and line.split()[-1].startswith("/")})
    except OSError:
        pass
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in itertools.product(("scipy_openblas_", "openblas_"),
                                                ("64_", "", "_64")):
            setter = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
            getter = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            if setter is not None and getter is not None:
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                getter.argtypes = []
                getter.restype = ctypes.c_int
                found = (setter, getter)
                break
        if found is not None:
            break
    _state["blas"] = found
    _state["blas_probed"] = True
    return found


def _blas_enter() -> bool:
    """Hold BLAS to one thread (nested and concurrent sections counted); False if BLAS's
    threads cannot be set."""
    controls = _blas_controls()
    if controls is None:
        return False
    with _lock:
        if _state["blas_sections"] == 0:
            _state["blas_saved"] = controls[1]()
            controls[0](1)
        _state["blas_sections"] += 1
    return True


def _blas_exit() -> None:
    controls = _blas_controls()
    assert controls is not None
    with _lock:
        _state["blas_sections"] -= 1
        if _state["blas_sections"] == 0:
            controls[0](_state["blas_saved"])


class _Worker:
    """One persistent daemon thread running the jobs put in its queue (a job is the block
    loop of one :func:`run_blocks` call; it returns at once when the blocks are all taken)."""

    def __init__(self, index: int):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"cnnkit-kernel_{index}",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        _local.is_worker = True
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job()


def _workers(count: int) -> list[_Worker]:
    """At least ``count`` started workers (the pool grows, never shrinks)."""
    workers: list[_Worker] = _state["workers"]
    if len(workers) < count:
        with _lock:
            workers = _state["workers"]
            if len(workers) < count:
                workers = workers + [_Worker(i) for i in range(len(workers), count)]
                _state["workers"] = workers
    return workers


def run_blocks(n_blocks: int, body: Callable[[int, Any], None],
               workspace: Callable[[], Any] | None = None, blas: bool = False) -> None:
    """Call ``body(i, ws)`` for i in range(n_blocks), spread over the pool's threads.

    ``workspace()`` (optional) makes one thread's scratch object ``ws`` (buffers reused by
    the blocks that thread runs). ``blas``: the body calls BLAS; then BLAS is held to one
    thread while the blocks run, and when that cannot be done the blocks run one after
    another on the calling thread. The calling thread takes blocks too and returns once every
    block is done; it never waits for a worker that has not started (on a busy machine a
    worker may get no time slice for milliseconds: the caller then runs all the blocks).
    The first exception raised by a block is re-raised.
    """
    threads = min(get_num_threads(), n_blocks)
    worker = getattr(_local, "is_worker", False)
    if worker:
        threads = 1  # already inside a block: no nested hand-over (BLAS is held already)
    # BLAS is held to one thread for every block, also with one kernel thread: OpenBLAS's
    # own threads wait for each other by spinning, and on this 2-core VM one small GEMM then
    # sometimes took 100-2500x its time (measured: a (9, 100352) @ (100352, 32) product,
    # 1.4 ms alone, took 0.2-2.5 s with two BLAS threads while other processes ran; LeNet-5's
    # forward pass took 82 ms instead of 5 ms).
    held = blas and not worker and _blas_enter()
    try:
        if threads <= 1 or (blas and not held):
            _run_serial(n_blocks, body, workspace)
        else:
            _run_pooled(n_blocks, body, workspace, threads)
    finally:
        if held:
            _blas_exit()


def _run_serial(n_blocks: int, body: Callable[[int, Any], None],
                workspace: Callable[[], Any] | None) -> None:
    """All blocks in order on the calling thread, with one workspace."""
    ws = workspace() if workspace is not None else None
    for i in range(n_blocks):
        body(i, ws)


def _run_pooled(n_blocks: int, body: Callable[[int, Any], None],
                workspace: Callable[[], Any] | None, threads: int) -> None:
    """The blocks handed out one at a time to ``threads - 1`` workers and the calling thread;
    returns when every block taken has finished, re-raising the first block's exception."""
    counter = itertools.count()
    finished = itertools.count(1)
    all_done = threading.Lock()
    all_done.acquire()
    errors: list[BaseException] = []

    def loop() -> None:
        ws = None
        while True:
            i = next(counter)  # atomic under the GIL: each block is taken once
            if i >= n_blocks:
                return
            try:
                if ws is None and workspace is not None:
                    ws = workspace()
                body(i, ws)
            except BaseException as e:  # noqa: BLE001  (re-raised by the caller)
                errors.append(e)
            finally:
                if next(finished) == n_blocks:  # whoever finishes the last block signals
                    all_done.release()

    for w in _workers(threads - 1)[:threads - 1]:
        w.jobs.put(loop)
    _local.is_worker = True
    try:
        loop()
    finally:
        _local.is_worker = False
        all_done.acquire()  # only blocks already taken by a worker are waited for
    if errors:
        raise errors[0]


def split(n: int, pieces: int) -> list[tuple[int, int]]:
    """range(n) cut into ``pieces`` contiguous, about equal (start, stop) ranges (fewer when
    n < pieces; at least one)."""
    pieces = max(1, min(pieces, n))
    bounds = [n * i // pieces for i in range(pieces + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(pieces)]


def pieces_for(nbytes: int, per_thread: int = 2) -> int:
    """How many pieces to cut a GEMM-sized job of ``nbytes`` into: 1 when small or when the
    pool has one thread, else ``per_thread`` per thread (dynamic hand-out evens out a slow
    thread)."""
    threads = get_num_threads()
    if threads <= 1 or nbytes < MIN_PARALLEL_BYTES or getattr(_local, "is_worker", False):
        return 1
    return threads * per_thread


# An elementwise job over a large array is cut into pieces of about this many bytes (of the
# widest array it touches): small enough that a piece's temporaries stay in the core's
# cache between the few NumPy calls that make up one piece, large enough that the Python
# overhead per call (~1-5 us) stays small.
PIECE_BYTES = 1 << 20


def row_pieces(rows: int, row_bytes: int) -> list[tuple[int, int]]:
    """Row ranges of about PIECE_BYTES each (one range when the whole job is small). The cut
    depends on the sizes only, never on the thread count, so results that combine partial
    sums per piece are the same with any number of threads."""
    total = rows * max(int(row_bytes), 1)
    if total < MIN_PARALLEL_BYTES:
        return [(0, rows)]
    return split(rows, -(-total // PIECE_BYTES))


def for_rows(rows: int, row_bytes: int, body: Callable[[int, int], None],
             blas: bool = False) -> int:
    """Call ``body(r0, r1)`` over row ranges covering range(rows) (see :func:`row_pieces`),
    spread over the threads; returns the number of pieces. Each piece must write only its own
    rows (or its own slot of a list of partial results, indexed by piece)."""
    ranges = row_pieces(rows, row_bytes)
    if len(ranges) == 1:
        body(0, rows)
        return 1
    run_blocks(len(ranges), lambda i, _: body(*ranges[i]), blas=blas)
    return len(ranges)


# column_sum's regrouped path for arrays narrower than this (GEMV measured as fast from 16
# columns on: 12800 x 16 21 vs 25 us).
NARROW_COLUMNS = 8


def column_sum(a: np.ndarray) -> np.ndarray:
    """sum over the rows of a 2-D array, shape (C,): per piece a GEMV with a ones vector
    (faster than NumPy's axis-0 reduction for few columns), partial sums added in order.
    Fewer than NARROW_COLUMNS columns (C-contiguous): the rows regrouped k at a time into rows
    of k*C values (~384), summed over those (a vectorised row-by-row reduction), then over the
    k groups (measured one thread, 100352 x 6 float32: 210 -> 75 us)."""
    m, c = a.shape
    if 0 < c < NARROW_COLUMNS and a.flags.c_contiguous and m >= 2 * (384 // c):
        k = 384 // c
        q = m // k
        total = a[:q * k].reshape(q, k * c).sum(axis=0).reshape(k, c).sum(axis=0)
        if q * k < m:
            total += a[q * k:].sum(axis=0)
        return total
    ranges = row_pieces(a.shape[0], a.shape[1] * a.itemsize)
    ones = np.ones(max(r1 - r0 for r0, r1 in ranges), dtype=a.dtype)
    parts: list[Any] = [None] * len(ranges)

    def body(i: int, _: Any) -> None:
        r0, r1 = ranges[i]
        parts[i] = ones[:r1 - r0] @ a[r0:r1]

    run_blocks(len(ranges), body, blas=True)
    total = parts[0]
    for p in parts[1:]:
        total += p
    return total


# GEMMs of fewer multiply-adds than this run on one thread (a hand-over and a second pass
# over the shared operand cost more than they save).
MIN_PARALLEL_MACS = 1 << 23


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b for 2-D a (M, K) and b (K, N) (any strides, e.g. transposed views), with BLAS
    held to one thread: large products are cut along the longer of M and N into one piece per
    thread (no partial sums, so the result does not depend on the cut)."""
    m, k = a.shape
    n = b.shape[1]
    if out is None:
        out = np.empty((m, n), dtype=np.result_type(a, b))
    threads = get_num_threads()
    pieces = threads if m * n * k >= MIN_PARALLEL_MACS and max(m, n) >= 2 * threads else 1
    if pieces > 1 and getattr(_local, "is_worker", False):
        pieces = 1
    rows = m >= n
    ranges = split(m if rows else n, pieces)

    def body(i: int, _: Any) -> None:
        r0, r1 = ranges[i]
        if rows:
            np.matmul(a[r0:r1], b, out=out[r0:r1])
        else:
            np.matmul(a, b[:, r0:r1], out=out[:, r0:r1])

    run_blocks(len(ranges), body, blas=True)
    return out
