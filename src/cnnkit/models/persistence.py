"""Model files and the summary table, as Model methods (Keras names)."""

from __future__ import annotations

from typing import Any


class PersistenceMixin:
    """save / save_weights / load_weights / summary for :class:`~cnnkit.models.Model`."""

    def save(self, path: Any) -> None:
        """One file: architecture (JSON), weights and optimizer state. No pickle."""
        from .saving import save_model

        save_model(self, path)

    def save_weights(self, path: Any) -> None:
        from .saving import save_weights

        save_weights(self, path)

    def load_weights(self, path: Any) -> None:
        from .saving import load_weights

        load_weights(self, path)

    def export(self, path: Any, format: str = "onnx", **options: Any) -> Any:  # noqa: A002
        """Write the model for another runtime (Keras 3's name). ``format="onnx"`` takes
        ``opset=17``, ``layout="NCHW"`` or ``"NHWC"``, ``training=False`` (True keeps the
        batch-norm and dropout nodes) and ``dynamic_batch=True``; see
        :func:`cnnkit.io.onnx_export.export_onnx`. Returns what the exporter returns (the
        ONNX ``ModelProto``)."""
        from .. import exporters

        return exporters.get(format)(self, path, **options)

    def summary(self, print_fn: Any = None, line_length: int = 98, flops: bool = False,
                receptive_field: bool = False) -> str:
        """Print (and return) the layer table with parameters and multiply-adds; ``flops``
        adds FLOPs and activation memory, ``receptive_field`` each output's receptive
        field (size, jump, start)."""
        from .summary import summary_text

        text = summary_text(self, line_length, flops, receptive_field)
        (print_fn or print)(text)
        return text
