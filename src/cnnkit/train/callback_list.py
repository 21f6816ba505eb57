"""Composing callbacks: :class:`CallbackList` (calls each hook on every callback) and
:class:`LambdaCallback` (a callback made of functions)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .callback_base import HOOKS, Callback, Logs
from .callback_logging import History
from .progress import ProgbarLogger

__all__ = ["CallbackList", "LambdaCallback"]


class CallbackList(Callback):
    """Calls each hook on every callback in order.

    Args:
        callbacks: the user's callbacks (a Callback, a list of them, or None).
        add_history: append a :class:`History` unless one is already there.
        add_progbar: append a :class:`~cnnkit.train.progress.ProgbarLogger` unless one is
            already there (pass ``verbose`` in ``params`` to choose its style).
        model: passed to ``set_model`` of every callback.
        **params: passed to ``set_params`` of every callback (``epochs``, ``steps``,
            ``verbose``, ...).
    """

    def __init__(self, callbacks: Callback | Iterable[Callback] | None = None,
                 add_history: bool = False, add_progbar: bool = False, model: Any = None,
                 **params: Any):
        super().__init__()
        if callbacks is None:
            cbs: list[Callback] = []
        elif isinstance(callbacks, Callback):
            cbs = [callbacks]
        else:
            cbs = list(callbacks)
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"CallbackList expects Callback objects, got {type(cb).__name__}"
                                f" ({cb!r})")
        self.callbacks: list[Callback] = cbs
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in cbs):
            self.callbacks.append(ProgbarLogger())
        if add_history and not any(isinstance(c, History) for c in cbs):
            self.callbacks.append(History())
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        for cb in self.callbacks:
            cb.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs: Logs = None) -> None:
        self._call("on_train_begin", logs)

    def on_train_end(self, logs: Logs = None) -> None:
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs: Logs = None) -> None:
        self._call("on_test_begin", logs)

    def on_test_end(self, logs: Logs = None) -> None:
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call("on_test_batch_end", batch, logs)

    def on_predict_begin(self, logs: Logs = None) -> None:
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs: Logs = None) -> None:
        self._call("on_predict_end", logs)

    def on_predict_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call("on_predict_batch_end", batch, logs)


class LambdaCallback(Callback):
    """A callback made of functions given by hook name.

    ``LambdaCallback(on_epoch_end=lambda epoch, logs: ..., on_train_begin=lambda logs: ...)``;
    any hook of :class:`Callback` may be given (``on_batch_begin``/``on_batch_end`` mean the
    training-batch hooks).
    """

    def __init__(self, **hooks: Callable[..., Any]):
        super().__init__()
        aliases = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}
        for name, fn in hooks.items():
            target = aliases.get(name, name)
            if target not in HOOKS:
                raise ValueError(f"LambdaCallback: unknown hook {name!r}; known hooks: "
                                 f"{', '.join(HOOKS)}")
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}")
            setattr(self, target, fn)
