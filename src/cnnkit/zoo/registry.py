"""The architecture registry: ``register`` names a builder, ``get(name, **kwargs)`` builds it."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

_BUILDERS: dict[str, Callable[..., Any]] = {}


def register(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make a model builder findable as ``cnnkit.zoo.get(name)``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = (name or fn.__name__).lower()
        _BUILDERS[key] = fn
        return fn

    return deco


def list() -> builtins.list[str]:  # noqa: A001
    """Names of every registered architecture, sorted."""
    return sorted(_BUILDERS)


def get(name: str, **kwargs: Any) -> Any:
    """Build the architecture ``name`` (case-insensitive; '-' and '_' are interchangeable)."""
    key = name.lower().replace("-", "_")
    if key not in _BUILDERS:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(list())}")
    return _BUILDERS[key](**kwargs)


def builder(name: str) -> Callable[..., Any]:
    key = name.lower().replace("-", "_")
    if key not in _BUILDERS:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(list())}")
    return _BUILDERS[key]
