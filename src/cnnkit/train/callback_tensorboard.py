"""TensorBoard (Keras): event files readable by ``tensorboard``.

``log_dir/train`` gets ``epoch_<name>`` for each training log (loss, metrics, learning rate)
and ``log_dir/validation`` gets the ``val_`` logs under the same tags, as Keras writes them;
``update_freq`` as an int also writes ``batch_<name>`` every that many batches.
``histogram_freq=N``: every N epochs a histogram of each weight (tag: the weight's name, e.g.
``conv2d/kernel``) and of its gradient in the epoch's last batch (``conv2d/kernel/gradient``).
``write_images``: the first 2-D convolution's kernels as one image (tag
``<layer>/kernel``): one tile per filter, row-major in ceil(sqrt(filters)) columns with a
1-pixel black gap, each filter scaled to 0..255 over its own values (channels averaged unless
there are 1 or 3). ``write_graph`` (default): the layer graph (node: layer name, op: class
name, inputs: the layers feeding it).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .callback_base import Callback, Logs
from .event_file import EventFileWriter

__all__ = ["TensorBoard"]


class TensorBoard(Callback):
    """Write scalar summaries for TensorBoard.

    Args:
        log_dir: folder of the run (``train`` and ``validation`` sub-folders are made).
        update_freq: "epoch" (default), "batch" or a number of batches.
        histogram_freq: write weight and gradient histograms every this many epochs (0: none).
        write_graph: write the layer graph once.
        write_images: write the first convolution's filters as an image each epoch.
    Other Keras arguments (profile_batch, embeddings_freq, ...) are accepted and ignored.
    """

    def __init__(self, log_dir: str | os.PathLike = "logs", histogram_freq: int = 0,
                 write_graph: bool = True, write_images: bool = False,
                 update_freq: Any = "epoch", **ignored: Any):
        super().__init__()
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int) or \
                histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be an int >= 0, got "
                             f"{histogram_freq!r}")
        self.histogram_freq, self.write_graph = histogram_freq, bool(write_graph)
        self.write_images = bool(write_images)
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (not isinstance(update_freq, int) or update_freq < 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                             f"int, got {update_freq!r}")
        self.log_dir, self.update_freq = os.fspath(log_dir), update_freq
        self._writers: dict[str, EventFileWriter] = {}
        self._batches = 0

    def _writer(self, kind: str) -> EventFileWriter:
        if kind not in self._writers:
            self._writers[kind] = EventFileWriter(os.path.join(self.log_dir, kind))
        return self._writers[kind]

    def on_train_begin(self, logs: Logs = None) -> None:
        self._batches = 0
        if self.write_graph and self.model is not None:
            self._writer("train").graph(layer_graph(self.model))

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._batches += 1
        if self.update_freq == "epoch" or self._batches % self.update_freq:
            return
        for k, v in (logs or {}).items():
            if _is_number(v):
                self._writer("train").scalar(f"batch_{k}", float(v), self._batches)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        logs = dict(logs or {})
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and "learning_rate" not in logs:
            logs["learning_rate"] = float(opt.learning_rate)
        for k, v in logs.items():
            if not _is_number(v):
                continue
            kind, name = ("validation", k[4:]) if k.startswith("val_") else ("train", k)
            self._writer(kind).scalar(f"epoch_{name}", float(v), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._histograms(epoch)
        if self.write_images:
            self._images(epoch)
        for w in self._writers.values():
            w.flush()

    def _histograms(self, epoch: int) -> None:
        writer = self._writer("train")
        for w in getattr(self.model, "weights", []):
            writer.histogram(w.name, w.data, epoch)
            if getattr(w, "grad", None) is not None:
                writer.histogram(f"{w.name}/gradient", w.grad, epoch)

    def _images(self, epoch: int) -> None:
        conv = _first_conv(self.model)
        if conv is not None:
            self._writer("train").image(f"{conv.name}/kernel", filter_grid(conv.kernel.data),
                                        epoch)

    def on_train_end(self, logs: Logs = None) -> None:
        for w in self._writers.values():
            w.close()
        self._writers = {}


def _is_number(v: Any) -> bool:
    """A real number (NaN and Inf included: TensorBoard shows them), not a bool."""
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return not isinstance(v, bool)


def layer_graph(model: Any) -> list[tuple[str, str, list[str]]]:
    """(name, op, inputs) per layer: a functional model's nodes, else a chain."""
    nodes = getattr(model, "_nodes", None)
    if nodes:
        return [(n.layer.name, type(n.layer).__name__,
                 [t.node.layer.name for t in n.input_tensors if t.node is not None])
                for n in nodes]
    out, prev = [], []
    for la in getattr(model, "layers", []):
        out.append((la.name, type(la).__name__, prev))
        prev = [la.name]
    return out


def _first_conv(model: Any) -> Any:
    from ..layers.conv import Conv2D

    for la in getattr(model, "layers", []):
        if isinstance(la, Conv2D) and la.built:
            return la
    return None


def filter_grid(kernel: np.ndarray) -> np.ndarray:
    """(KH, KW, C_in, C_out) kernels as one uint8 image (see module doc)."""
    k = np.moveaxis(np.asarray(kernel, dtype=np.float64), -1, 0)
    if k.shape[-1] not in (1, 3):
        k = k.mean(-1, keepdims=True)
    n, kh, kw, c = k.shape
    lo = k.min(axis=(1, 2, 3), keepdims=True)
    span = k.max(axis=(1, 2, 3), keepdims=True) - lo
    tiles = np.where(span > 0, (k - lo) / np.where(span > 0, span, 1), 0.5)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * (kh + 1) - 1, cols * (kw + 1) - 1, c))
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * (kh + 1):r * (kh + 1) + kh, q * (kw + 1):q * (kw + 1) + kw] = tiles[i]
    return np.round(grid * 255).astype(np.uint8)
