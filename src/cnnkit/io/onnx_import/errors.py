"""The errors ``load_onnx`` raises for a bad or unsupported file (all ``ValueError`` s)."""

from __future__ import annotations

from ..errors import CheckpointFormatError


class OnnxFormatError(CheckpointFormatError):
    """The file is not a well-formed ONNX model; the message names the file and the part."""


class UnsafeOnnxError(OnnxFormatError):
    """The file asks for something refused: an external data file outside its folder, or more
    memory than its size justifies."""


class UnsupportedOnnxError(OnnxFormatError):
    """The model is well formed but uses an operator, attribute or form cnnkit cannot build;
    the message names the node, its op type and opset, and what is supported."""
