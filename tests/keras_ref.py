"""Shared helpers for the tests that use Keras 3 (torch backend) as the reference."""

from __future__ import annotations

import inspect
from typing import Any

BASE_KWARGS = {"name", "dtype", "trainable", "input_shape", "self"}


def own_params(obj: Any) -> dict[str, Any]:
    """Named parameters of a function, or of a class's own nearest ``__init__`` (no *args,
    **kwargs, and no base-Layer kwargs both libraries take through **kwargs)."""
    if inspect.isclass(obj):
        fn = next(c.__dict__["__init__"] for c in obj.__mro__ if "__init__" in c.__dict__)
    else:
        fn = obj
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and k not in BASE_KWARGS}


def _same_default(a: Any, b: Any) -> bool:
    if a == b:
        return True
    # an int n is the same default as Keras's (n, n, ...) (both tuple-ise it)
    return isinstance(a, int) and isinstance(b, tuple) and all(v == a for v in b)


def signature_diffs(ours: Any, theirs: Any) -> dict[str, str]:
    """{parameter: what differs} between cnnkit's and Keras's signatures."""
    a, b = own_params(ours), own_params(theirs)
    out = {}
    for k in a.keys() | b.keys():
        if k not in b:
            out[k] = "cnnkit only"
        elif k not in a:
            out[k] = "keras only"
        elif not _same_default(a[k], b[k]):
            out[k] = f"default {a[k]!r} vs keras {b[k]!r}"
    return out


def check_signatures(pairs: dict[str, tuple[Any, Any]], deliberate: dict[str, dict[str, str]],
                     reviewed: Any = None) -> list[str]:
    """Every difference not listed in ``deliberate[name]`` (a param -> reason dict). For names
    outside ``reviewed`` (when given: classes added after this review), Keras arguments cnnkit
    lacks are tolerated; cnnkit-only arguments and differing defaults still count."""
    bad = []
    for name, (ours, theirs) in pairs.items():
        for param, what in sorted(signature_diffs(ours, theirs).items()):
            if reviewed is not None and name not in reviewed and what == "keras only":
                continue
            if param not in deliberate.get(name, {}):
                bad.append(f"{name}.{param}: {what}")
    return bad
