"""Model exporters found by format name, for ``Model.export(path, format=...)``.

The writers of other frameworks' formats live in ``cnnkit.io``, a layer above ``models``, so
``models`` cannot import them; instead each format is registered here (a module below both)
as a loader: a function that imports the writer when it is first needed and returns it. The
root package registers the formats cnnkit ships (``onnx``) on ``import cnnkit`` without
importing them, so ``import cnnkit`` needs no optional package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Exporter = Callable[..., Any]
_LOADERS: dict[str, Callable[[], Exporter]] = {}


def register(format: str, loader: Callable[[], Exporter]) -> None:  # noqa: A002 - Keras' name
    """Make ``Model.export(path, format=format)`` call ``loader()(model, path, **options)``."""
    _LOADERS[format.lower()] = loader


def formats() -> list[str]:
    """The registered format names, sorted."""
    return sorted(_LOADERS)


def get(format: str) -> Exporter:  # noqa: A002
    """The exporter of ``format`` (case-insensitive); ValueError naming the known formats."""
    key = str(format).lower()
    if key not in _LOADERS:
        raise ValueError(f"unknown export format {format!r}; known: {', '.join(formats())}")
    return _LOADERS[key]()
