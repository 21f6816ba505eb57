"""Before / after figures of a pruned model: parameters, multiply-adds, file size, latency."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...models.saving import save_model


@dataclass
class ModelFigures:
    """What a deployed model costs."""

    params: int
    macs: int
    file_bytes: int
    latency_ms: float
    nonzero: int


def file_size(model: Any, sparse: bool = False) -> int:
    """Bytes of the model's ``.cnnkit`` file without optimizer state (written to a temporary
    folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.cnnkit"
        save_model(model, path, sparse=sparse, include_optimizer=False)
        return os.path.getsize(path)


def latency_ms(model: Any, x: np.ndarray, repeats: int = 10) -> float:
    """Median wall time of ``model.predict(x)`` in one batch, after a warm-up call."""
    model.predict(x, batch_size=len(x))
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        model.predict(x, batch_size=len(x))
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def figures(model: Any, x: np.ndarray | None = None, repeats: int = 10,
            sparse: bool = False) -> ModelFigures:
    """Parameters, multiply-adds per sample, file bytes and (given a batch ``x``) latency."""
    macs = int(sum(row[4] for row in model.layer_table()))
    nonzero = int(sum(int(np.count_nonzero(w.data)) for w in model.weights))
    return ModelFigures(model.count_params(), macs, file_size(model, sparse),
                        latency_ms(model, x, repeats) if x is not None else float("nan"),
                        nonzero)


def _fmt(v: float, unit: str = "") -> str:
    if v != v:  # NaN: not measured
        return "-"
    return f"{v:,.2f}{unit}" if isinstance(v, float) else f"{v:,}{unit}"


def table(before: ModelFigures, after: ModelFigures,
          accuracy: tuple[float, float] | None = None,
          labels: tuple[str, str] = ("before", "after")) -> str:
    """A before / after / ratio table as text."""
    rows = [("parameters", before.params, after.params),
            ("non-zero weights", before.nonzero, after.nonzero),
            ("multiply-adds", before.macs, after.macs),
            ("file bytes", before.file_bytes, after.file_bytes),
            ("latency ms", before.latency_ms, after.latency_ms)]
    lines = [f"{'':<18}{labels[0]:>14}{labels[1]:>14}{'ratio':>9}"]
    for name, b, a in rows:
        ratio = f"{b / a:.2f}x" if a and a == a and b == b else "-"
        lines.append(f"{name:<18}{_fmt(b):>14}{_fmt(a):>14}{ratio:>9}")
    if accuracy is not None:
        lines.append(f"{'accuracy':<18}{accuracy[0]:>14.4f}{accuracy[1]:>14.4f}"
                     f"{(accuracy[1] - accuracy[0]) * 100:>+8.2f}p")
    return "\n".join(lines)
