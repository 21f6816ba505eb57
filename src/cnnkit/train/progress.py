"""Progress bars for fit / evaluate / predict: :class:`Progbar` and the :class:`ProgbarLogger`
callback.

verbose=1 shows, on a terminal, a bar updated in place (30 characters wide by default)::

    Epoch 3/10
     40/125 [=========>..........] - 1s 24ms/step - loss: 0.4312 - accuracy: 0.8711 - ETA: 2s

and ends each epoch with the full bar, the epoch's time and every log value (validation
included). When the stream is not a terminal (a file, a pipe, a CI log) nothing is written
in place: only the final line of each epoch. verbose=2 writes one summary line per epoch
(``125/125 - 3s - 24ms/step - loss: ...``); verbose=0 writes nothing.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

import numpy as np

from .callback_base import Callback, Logs

__all__ = ["Progbar", "ProgbarLogger", "format_duration", "format_value"]


def format_duration(seconds: float) -> str:
    """``"7s"``, ``"2:05"`` (m:ss) or ``"1:02:05"`` (h:mm:ss)."""
    s = int(max(seconds, 0.0))
    if s >= 3600:
        return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"
    if s >= 60:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s}s"


def _format_per_unit(seconds: float, unit: str) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def format_value(value: Any) -> str:
    """A log value as Keras shows it: 4 decimals, or scientific notation below 1e-3."""
    if isinstance(value, str):
        return value
    arr = np.asarray(getattr(value, "data", value))
    if arr.size != 1:
        return np.array2string(arr, precision=4, threshold=8)
    v = float(arr.reshape(()))
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4f}" if abs(v) > 1e-3 or v == 0 else f"{v:.4e}"


def _is_terminal(stream: Any) -> bool:
    if "ipykernel" in sys.modules and stream in (sys.stdout, sys.stderr):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):  # closed stream
        return False


class Progbar:
    """A text progress bar.

    Args:
        target: total number of steps, or None when unknown.
        width: characters inside the brackets.
        verbose: 1 bar (in place on a terminal), 2 one line at the end, 0 silent.
        interval: minimum seconds between two in-place redraws.
        stream: where to write (default ``sys.stdout``, looked up at each write).
        unit_name: shown in the time per unit ("step").
        dynamic: redraw in place with ``\\r``; by default only when the stream is a terminal.
        clock: a function returning seconds (``time.monotonic``), replaceable in tests.
    """

    def __init__(self, target: int | None, width: int = 30, verbose: int = 1,
                 interval: float = 0.05, stream: TextIO | None = None, unit_name: str = "step",
                 dynamic: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self._stream = stream
        self.unit_name = unit_name
        self._dynamic = dynamic
        self._clock = clock
        self._start = clock()
        self._last_draw = -math.inf
        self._prev_len = 0
        self._values: dict[str, Any] = {}
        self.current = 0
        self.finalized = False

    @property
    def stream(self) -> TextIO:
        return sys.stdout if self._stream is None else self._stream

    @property
    def dynamic(self) -> bool:
        return _is_terminal(self.stream) if self._dynamic is None else self._dynamic

    def _bar(self, current: int) -> str:
        if self.target is None:
            return f"{current:7d}/Unknown"
        digits = len(str(self.target))
        text = f"{current:{digits}d}/{self.target} ["
        frac = min(current / self.target, 1.0) if self.target > 0 else 1.0
        filled = int(self.width * frac)
        if filled > 0:
            text += "=" * (filled - 1) + (">" if current < self.target else "=")
        return text + "." * (self.width - filled) + "]"

    def _metrics(self) -> str:
        return "".join(f" - {k}: {format_value(v)}" for k, v in self._values.items())

    def update(self, current: int, values: Mapping[str, Any] | Iterable[tuple[str, Any]]
               | None = None, finalize: bool | None = None) -> None:
        """Show ``current`` steps done and the given ``(name, value)`` log values.

        ``finalize`` (default: ``current >= target``) draws the last line of the bar.
        """
        if values is not None:
            items = values.items() if isinstance(values, Mapping) else values
            for k, v in items:
                self._values[k] = v
        self.current = current
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        if self.verbose == 0 or self.finalized:
            return
        now = self._clock()
        elapsed = now - self._start
        per_unit = elapsed / current if current > 0 else 0.0
        if self.verbose == 2:
            if finalize:
                line = (f"{current}/{self.target if self.target is not None else current}"
                        f" - {format_duration(elapsed)}"
                        f" - {_format_per_unit(per_unit, self.unit_name)}{self._metrics()}")
                self._write(line + "\n")
                self.finalized = True
            return
        dynamic = self.dynamic
        if not finalize and (not dynamic or now - self._last_draw < self.interval):
            return
        self._last_draw = now
        line = (f"{self._bar(current)} - {format_duration(elapsed)} "
                f"{_format_per_unit(per_unit, self.unit_name)}{self._metrics()}")
        if not finalize and self.target is not None:
            line += f" - ETA: {format_duration(per_unit * (self.target - current))}"
        if dynamic:
            pad = max(self._prev_len - len(line), 0)
            self._prev_len = len(line)
            self._write("\r" + line + " " * pad + ("\n" if finalize else ""))
        else:
            self._write(line + "\n")
        if finalize:
            self.finalized = True

    def add(self, n: int, values: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None
            ) -> None:
        """Advance by ``n`` steps."""
        self.update(self.current + n, values)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


class ProgbarLogger(Callback):
    """The callback that draws a :class:`Progbar` for each epoch (and for evaluate/predict).

    Reads ``verbose`` (0, 1, 2 or "auto" = 1), ``epochs`` and ``steps`` (batches per epoch,
    None if unknown) from ``params``. Batch logs are shown as given (the training loop
    passes the running means of the epoch); the epoch's last line shows the epoch-end logs,
    validation values included.

    Args:
        stream: where to write (default ``sys.stdout``).
        interval, dynamic, clock: passed to :class:`Progbar`.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 0.05,
                 dynamic: bool | None = None, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.stream = stream
        self.interval = interval
        self.dynamic = dynamic
        self.clock = clock
        self.verbose = 1
        self.epochs = 1
        self.target: int | None = None
        self.progbar: Progbar | None = None
        self.seen = 0
        self._in_fit = False

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.epochs = int(params.get("epochs", 1) or 1)
        self.target = params.get("steps")

    def _new_bar(self, target: int | None) -> None:
        self.seen = 0
        self.progbar = Progbar(target, verbose=self.verbose, interval=self.interval,
                               stream=self.stream, dynamic=self.dynamic, clock=self.clock)

    def _print(self, text: str) -> None:
        out = sys.stdout if self.stream is None else self.stream
        out.write(text + "\n")
        out.flush()

    def _step(self, batch: int, logs: Logs) -> None:
        if self.progbar is None:
            self._new_bar(self.target)
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, logs or {}, finalize=False)

    def _finish(self, logs: Logs) -> None:
        if self.progbar is None:
            self._new_bar(self.target)
        current = self.seen if self.seen > 0 or self.target is None else self.target
        if self.progbar.target is None:
            self.progbar.target = current
        self.progbar.update(current, logs or {}, finalize=True)
        self.progbar = None

    # fit
    def on_train_begin(self, logs: Logs = None) -> None:
        self._in_fit = True

    def on_train_end(self, logs: Logs = None) -> None:
        self._in_fit = False

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._new_bar(self.target)
        if self.verbose:
            self._print(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._step(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self._finish(logs)

    # evaluate (validation inside fit draws no bar of its own)
    def on_test_begin(self, logs: Logs = None) -> None:
        if not self._in_fit:
            self._new_bar(self.target)

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        if not self._in_fit:
            self._step(batch, logs)

    def on_test_end(self, logs: Logs = None) -> None:
        if not self._in_fit:
            self._finish(logs)

    # predict
    def on_predict_begin(self, logs: Logs = None) -> None:
        self._new_bar(self.target)

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._step(batch, None)

    def on_predict_end(self, logs: Logs = None) -> None:
        self._finish(None)
