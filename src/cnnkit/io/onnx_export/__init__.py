"""ONNX export: ``model.export(path, format="onnx")`` / :func:`export_onnx`.

Each layer family has one module here with the functions that write its layers
(:mod:`.conv`, :mod:`.pool`, :mod:`.norm`, :mod:`.activation`, :mod:`.reshape`,
:mod:`.merge`), registered by class in :mod:`.registry`; :mod:`.walk` goes through the
model's layer graph and :mod:`.export` makes the ``ModelProto``. The graph is built with
``onnx.helper`` (the optional extra ``onnx``); importing this package needs it only when an
export runs.
"""

from . import activation, conv, merge, norm, pool, reshape  # noqa: F401 - they register
from .errors import OnnxExportError
from .export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, export_onnx, to_onnx
from .registry import exported_classes

__all__ = ["export_onnx", "to_onnx", "OnnxExportError", "exported_classes", "MIN_OPSET",
           "MAX_OPSET", "DEFAULT_OPSET"]
