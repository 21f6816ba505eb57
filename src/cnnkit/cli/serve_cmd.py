"""``cnnkit serve MODEL [MODEL ...]``: the HTTP model server (needs the ``serve`` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import checks
from .errors import UsageError, about


def model_names(specs: list[str]) -> dict[str, Path]:
    """NAME=FILE or FILE arguments as {name: path}; one-line errors for bad ones."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        path = Path(file if sep else spec)
        if not sep:
            name = path.parent.name if path.stem == "model" and path.parent.name else path.stem
        if not name or any(c in name for c in "/:?#% "):
            raise UsageError(f"serve {spec}: a model name must be non-empty without '/', ':', "
                             f"'?', '#', '%' or spaces, got {name!r}")
        if name in out:
            raise UsageError(f"serve: two models are named {name!r}; name them NAME=FILE")
        out[name] = path
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    from ..monitor import DriftConfig
    from ..serve.config import ServeConfig
    from ..serve.run import serve

    models = model_names(args.models)
    for path in models.values():  # every file loads before the port opens
        checks.class_count(checks.load_trained(str(path)), str(path))
    with about("serve"):
        config = ServeConfig(max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                             queue_length=args.queue_length, timeout_s=args.timeout,
                             max_body_bytes=max(1, int(args.max_body_mb * (1 << 20))),
                             max_image_pixels=args.max_image_pixels,
                             reload_interval_s=args.reload_interval, threads=args.threads,
                             drift=DriftConfig(window=args.drift_window,
                                               min_samples=min(100, args.drift_window)))
        serve(models, args.host, args.port, args.workers, config, args.log_level)
    return 0
