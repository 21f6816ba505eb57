"""One place that knows which file suffix is which model format, for ``cnnkit convert`` and
``cnnkit export``: :func:`load_any` and :func:`save_any`.

=================  ===================================  ====================================
suffix             read                                 write
=================  ===================================  ====================================
``.cnnkit``        :func:`cnnkit.models.load_model`     ``model.save``
``.onnx``          :func:`cnnkit.io.load_onnx`          :func:`~cnnkit.io.onnx_export.export_onnx`
``.keras``/``.h5`` :func:`cnnkit.models.load_model`     ``model.save``
``.pth``/``.pt``   a torchvision-named state dict,      refused: a pickle (use .safetensors)
                   read without PyTorch, into
                   ``architecture``
``.safetensors``   the same, from safetensors           the torchvision-named state dict
                                                        (:mod:`cnnkit.io.torch_state`)
=================  ===================================  ====================================

A PyTorch file holds weights only, so reading one needs the model they go into, built
(``architecture=cnnkit.zoo.get("resnet18")``; ``cnnkit convert --architecture NAME`` builds
it by name: ``io`` sits beside ``zoo`` and does not import it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FORMATS = {".cnnkit": "cnnkit", ".onnx": "onnx", ".keras": "keras", ".h5": "h5",
           ".pth": "torch", ".pt": "torch", ".safetensors": "safetensors"}


def format_of(path: Any) -> str:
    """The format name of ``path`` by its suffix; ValueError listing the known suffixes."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown model file type {suffix or '(no suffix)'!r}; "
                         f"known: {', '.join(FORMATS)}")
    return FORMATS[suffix]


def load_any(path: Any, architecture: Any = None) -> Any:
    """The model in ``path``, whatever its format (see the module docstring).

    ``architecture``: the model (a zoo architecture, built) that ``.pth``/``.pt``/
    ``.safetensors`` weights go into, in place; refused for the other formats. Raises
    ValueError for a wrong file or argument, ImportError when the format's reader is
    missing (an optional package, or a reader this version does not have), OSError from
    the file system."""
    kind = format_of(path)
    weights_only = kind in ("torch", "safetensors")
    if weights_only and architecture is None:
        raise ValueError(f"{path}: a {Path(path).suffix} file holds weights only; give the "
                         f"model they belong to (architecture=cnnkit.zoo.get('resnet18'))")
    if not weights_only and architecture is not None:
        raise ValueError(f"{path}: a {Path(path).suffix} file holds its own architecture; "
                         f"architecture is only for .pth and .safetensors weights")
    if weights_only and not hasattr(architecture, "layers"):
        raise ValueError(f"{path}: architecture must be a built cnnkit model (e.g. "
                         f"cnnkit.zoo.get('resnet18')), got {type(architecture).__name__}")
    if kind == "onnx":
        return _reader("load_onnx", "ONNX import")(path)
    if kind in ("cnnkit", "keras", "h5"):
        from ..models import load_model

        return load_model(path, compile=False)
    return _load_weights_into(kind, path, architecture)


def _reader(name: str, what: str) -> Any:
    from .. import io

    fn = getattr(io, name, None)
    if fn is None:
        raise ImportError(f"{what} (cnnkit.io.{name}) is not part of this cnnkit version")
    return fn


def _load_weights_into(kind: str, path: Any, model: Any) -> Any:
    from .safetensors import load_safetensors
    from .torch_checkpoint import load_state_dict
    from .torchvision_names import load_torchvision_weights

    state = load_state_dict(path) if kind == "torch" else load_safetensors(path)
    load_torchvision_weights(model, state)
    return model


def save_any(model: Any, path: Any, **options: Any) -> None:
    """Write ``model`` in the format of ``path``'s suffix, atomically. ``options`` go to the
    ONNX writer (``opset``, ``layout``, ``training``, ``dynamic_batch``) and are refused for
    the other formats. A ``.pth`` is refused: cnnkit writes no pickle."""
    kind = format_of(path)
    if options and kind != "onnx":
        raise ValueError(f"{path}: {sorted(options)} apply to .onnx output only")
    if kind == "onnx":
        from .onnx_export import export_onnx

        export_onnx(model, path, **options)
    elif kind in ("cnnkit", "keras", "h5"):
        model.save(path)
    elif kind == "torch":
        raise ValueError(f"{path}: cnnkit does not write .pth files (a .pth is a pickle, which "
                         f"can run code when loaded); write .safetensors instead")
    else:
        from .safetensors import save_safetensors
        from .torch_state import to_torch_state_dict

        save_safetensors(to_torch_state_dict(model), path,
                         metadata={"format": "pt", "producer": "cnnkit"})
