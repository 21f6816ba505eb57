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

    def summary(self, print_fn: Any = None, line_length: int = 98, flops: bool = False,
                receptive_field: bool = False) -> str:
        """Print (and return) the layer table with parameters and multiply-adds; ``flops``
        adds FLOPs and activation memory, ``receptive_field`` each output's receptive
        field (size, jump, start)."""
        from .summary import summary_text

        text = summary_text(self, line_length, flops, receptive_field)
        (print_fn or print)(text)
        return text
