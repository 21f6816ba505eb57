"""The exporter's errors and its optional dependency."""

from __future__ import annotations

from typing import Any


class OnnxExportError(ValueError):
    """The model (a layer, an option, an opset) cannot be written as ONNX; the message names
    the layer and its class, or the option, and what would work."""


def require_onnx() -> Any:
    """The ``onnx`` package, or ImportError naming the extra that installs it."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the optional 'onnx' package: "
                          "pip install 'cnnkit[onnx]'") from None
    return onnx
