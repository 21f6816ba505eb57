"""Checks of a model file's JSON metadata, field by field, before anything is built from it."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 64
MAX_LAYERS = 20_000  # building costs ~0.1 ms per layer


def _fail(source: str, what: str) -> ValueError:
    return ValueError(f"{source}: invalid metadata: {what}")


def json_shape(obj: Any) -> tuple[int, int]:
    """(nesting depth, number of objects with a "class_name") of a JSON value; iterative, so a
    deep value cannot exhaust the stack."""
    deepest, named, stack = 0, 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(value, dict):
            named += "class_name" in value
            stack += [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            stack += [(v, depth + 1) for v in value]
    return deepest, named


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_meta(meta: Any, source: str, kind: str, fmt: str, version: int) -> dict:
    """``meta`` itself when it has the fields a cnnkit file needs, with the right types."""
    if not isinstance(meta, dict):
        raise _fail(source, f"expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != fmt:
        raise ValueError(f"{source} is not a cnnkit {kind} file (format "
                         f"{str(meta.get('format'))[:80]!r})")
    v = meta.get("version", 0)
    if not _int(v) or v < 0:
        raise _fail(source, f"'version' must be a whole number, got {str(v)[:80]!r}")
    if v > version:
        raise ValueError(f"{source} was written by a newer cnnkit (file version {v}, this "
                         f"cnnkit reads up to {version})")
    depth, named = json_shape(meta)
    if depth > MAX_DEPTH:
        raise _fail(source, f"nested more than {MAX_DEPTH} levels deep")
    if named > MAX_LAYERS:
        raise _fail(source, f"{named} layer configs, more than the limit of {MAX_LAYERS}")
    if meta.get("kind") not in ("model", "weights"):
        raise _fail(source, f"'kind' must be 'model' or 'weights', got "
                            f"{str(meta.get('kind'))[:80]!r}")
    if meta["kind"] == "model" and not isinstance(meta.get("model"), dict):
        raise _fail(source, "'model' must be a layer config object")
    seed = meta.get("seed")
    if seed is not None and (not _int(seed) or not 0 <= seed < 2**63):
        raise _fail(source, f"'seed' must be a whole number >= 0, got {str(seed)[:80]!r}")
    if meta.get("compile") is not None and not isinstance(meta["compile"], dict):
        raise _fail(source, "'compile' must be an object")
    return meta


def check_compile(c: dict, source: str) -> None:
    """Types of the compile settings (their values are checked by the constructors)."""
    loss = c.get("loss")
    if not isinstance(loss, list) or not loss or not all(
            x is None or isinstance(x, (str, dict)) for x in loss):
        raise _fail(source, "compile 'loss' must be a non-empty list of loss configs")
    if not isinstance(c.get("optimizer"), (str, dict)):
        raise _fail(source, "compile 'optimizer' must be a name or a config object")
    if not isinstance(c.get("metrics"), (list, dict, type(None))):
        raise _fail(source, "compile 'metrics' must be a list, an object or null")
    lw = c.get("loss_weights")
    if not isinstance(lw, (list, dict, type(None))):
        raise _fail(source, "compile 'loss_weights' must be a list, an object or null")
