"""ONNX import: ``load_onnx(path_or_bytes)`` builds a functional cnnkit Model out of cnnkit's
own layers (Conv2D, BatchNormalization, Dense, ...), so the imported model can be inspected,
fine-tuned, saved as ``.cnnkit`` and exported again.

Modules, in the order an import runs: ``reader`` (the protobuf and external data, read
safely), ``builder`` (decoding, the unsupported-node check, the model), ``fold`` (constants
and shape arithmetic), ``context`` (values, layers and the layout pass), and one ``ops_*``
module per operator family. Needs the optional ``onnx`` package (``pip install
'cnnkit[onnx]'``).
"""

from .builder import load_onnx, supported_ops
from .errors import OnnxFormatError, UnsafeOnnxError, UnsupportedOnnxError

__all__ = ["load_onnx", "supported_ops", "OnnxFormatError", "UnsafeOnnxError",
           "UnsupportedOnnxError"]
