"""Interchange: PyTorch checkpoints (read without PyTorch, never running code from the file),
safetensors (read and write), PyTorch-to-cnnkit weight layouts and back, ONNX export
(:mod:`cnnkit.io.onnx_export`), and :func:`load_any` / :func:`save_any` choosing the format
by the file's suffix.

The readers raise one kind of error for a bad file: :class:`CheckpointFormatError`, a
``ValueError``, or its subclass :class:`UnsafeCheckpointError` for refused content (see
:mod:`cnnkit.io.errors`); ``OSError`` comes only from the file system."""

from .errors import CheckpointFormatError, UnsafeCheckpointError
from .formats import load_any, save_any
from .safetensors import load_safetensors, save_safetensors
from .torch_checkpoint import load_state_dict, load_torch_checkpoint
from .torch_weights import convert_module, load_sequential_state_dict
from .torchvision_names import load_torchvision_weights

__all__ = ["load_torch_checkpoint", "load_state_dict", "UnsafeCheckpointError",
           "CheckpointFormatError", "load_safetensors", "save_safetensors",
           "load_sequential_state_dict", "convert_module", "load_torchvision_weights",
           "load_any", "save_any"]
