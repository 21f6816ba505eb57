"""Server metrics in the Prometheus text exposition format (version 0.0.4), written here.

Counters and histograms are kept under one lock; gauges (queue depth, drift scores) are
read from the models when ``/metrics`` is scraped.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(str(v))}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class Histogram:
    """Cumulative bucket counts, sum and count per label set."""

    def __init__(self, buckets: Sequence[float]):
        self.buckets = tuple(buckets)
        self.counts: dict[Labels, list[int]] = defaultdict(lambda: [0] * len(self.buckets))
        self.sums: dict[Labels, float] = defaultdict(float)
        self.totals: dict[Labels, int] = defaultdict(int)

    def observe(self, labels: Labels, value: float) -> None:
        row = self.counts[labels]
        for i, b in enumerate(self.buckets):
            if value <= b:
                row[i] += 1
        self.sums[labels] += value
        self.totals[labels] += 1

    def lines(self, name: str) -> Iterable[str]:
        for labels, row in sorted(self.counts.items()):
            for b, c in zip(self.buckets, row, strict=True):
                le = 'le="' + _num(b) + '"'
                yield f"{name}_bucket{_labels(labels, le)} {c}"
            inf = 'le="+Inf"'
            yield f"{name}_bucket{_labels(labels, inf)} {self.totals[labels]}"
            yield f"{name}_sum{_labels(labels)} {_num(self.sums[labels])}"
            yield f"{name}_count{_labels(labels)} {self.totals[labels]}"


class Metrics:
    """The server's counters and histograms (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[Labels, int] = defaultdict(int)
        self.reloads: dict[Labels, int] = defaultdict(int)
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.batch_seconds = Histogram(LATENCY_BUCKETS)

    def request(self, model: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(("model", model), ("status", str(status)))] += 1
            self.latency.observe((("model", model),), seconds)

    def batch(self, model: str, size: int, seconds: float) -> None:
        with self._lock:
            self.batch_size.observe((("model", model),), size)
            self.batch_seconds.observe((("model", model),), seconds)

    def reload(self, model: str, ok: bool) -> None:
        with self._lock:
            self.reloads[(("model", model), ("result", "ok" if ok else "failed"))] += 1

    def render(self, gauges: Sequence[tuple[str, str, Labels, float]] = ()) -> str:
        """The exposition text; ``gauges``: (name, help, labels, value) read at scrape time."""
        out: list[str] = []
        with self._lock:
            _family(out, "cnnkit_requests_total", "counter",
                    "Prediction requests answered, by model and HTTP status.",
                    [f"cnnkit_requests_total{_labels(k)} {v}"
                     for k, v in sorted(self.requests.items())])
            _family(out, "cnnkit_request_seconds", "histogram",
                    "Time from receiving a prediction request to answering it.",
                    self.latency.lines("cnnkit_request_seconds"))
            _family(out, "cnnkit_batch_size", "histogram",
                    "Samples per model call (dynamic batching).",
                    self.batch_size.lines("cnnkit_batch_size"))
            _family(out, "cnnkit_batch_seconds", "histogram", "Seconds per model call.",
                    self.batch_seconds.lines("cnnkit_batch_seconds"))
            _family(out, "cnnkit_model_reloads_total", "counter",
                    "Model files reloaded after a change on disk, by result.",
                    [f"cnnkit_model_reloads_total{_labels(k)} {v}"
                     for k, v in sorted(self.reloads.items())])
        by_name: dict[str, tuple[str, list[str]]] = {}
        for name, text, labels, value in gauges:
            by_name.setdefault(name, (text, []))[1].append(
                f"{name}{_labels(labels)} {_num(value)}")
        for name, (text, lines) in by_name.items():
            _family(out, name, "gauge", text, lines)
        return "\n".join(out) + "\n"


def _family(out: list[str], name: str, kind: str, text: str, lines: Iterable[str]) -> None:
    out.append(f"# HELP {name} {text}")
    out.append(f"# TYPE {name} {kind}")
    out.extend(lines)
