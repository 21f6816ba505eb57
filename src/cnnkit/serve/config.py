"""The server's settings and limits, checked once when the server starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..monitor import DriftConfig


@dataclass(frozen=True)
class ServeConfig:
    """Settings of ``cnnkit serve``.

    Batching: up to ``max_batch_size`` samples per model call, waiting at most
    ``max_wait_ms`` after the first request of a batch. Limits: ``max_body_bytes`` per
    request, ``max_image_pixels`` per decoded image, ``max_instances`` images per request,
    ``queue_length`` requests waiting per model (503 with Retry-After beyond), ``timeout_s``
    per request (504 beyond; the body must arrive within it too), ``top_k`` classes
    returned by default. Drift is checked after ``drift_check_every`` new samples, at most
    once per ``drift_min_interval_s`` (an MMD permutation test costs tens of ms).
    ``reload_interval_s``: how often model files are checked for a
    replacement (0: never). ``graceful_s``: how long shutdown waits for requests in flight.
    ``threads``: kernel threads per model call (0: the process's setting, CNNKIT_NUM_THREADS);
    1 by default, since request handling needs the other cores and kernel threads that spin
    between the small convolutions of a batch-1 call take CPU from it.
    """

    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_body_bytes: int = 8 << 20
    max_image_pixels: int = 4096 * 4096
    max_instances: int = 64
    queue_length: int = 256
    timeout_s: float = 10.0
    top_k: int = 5
    reload_interval_s: float = 1.0
    graceful_s: float = 10.0
    drift: DriftConfig = field(default_factory=DriftConfig)
    drift_check_every: int = 50
    drift_min_interval_s: float = 2.0
    threads: int = 1

    def __post_init__(self) -> None:
        ints = ("max_batch_size", "max_body_bytes", "max_image_pixels", "max_instances",
                "queue_length", "top_k", "drift_check_every")
        for name in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"ServeConfig: {name} must be a positive integer, got {v!r}")
        for name in ("max_wait_ms", "reload_interval_s", "graceful_s",
                     "drift_min_interval_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ServeConfig: {name} must be >= 0, got {getattr(self, name)!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or \
                self.threads < 0:
            raise ValueError(f"ServeConfig: threads must be an integer >= 0, got "
                             f"{self.threads!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"ServeConfig: timeout_s must be > 0, got {self.timeout_s!r}")
