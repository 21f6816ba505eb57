"""Starting the server: ``serve(models, ...)`` runs Uvicorn until SIGINT or SIGTERM.

With ``workers`` > 1 Uvicorn starts that many processes sharing the port; each loads the
models and batches its own requests. The settings reach them through the environment
variable ``CNNKIT_SERVE_SPEC`` (JSON), read by :func:`app_from_env`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..monitor import DriftConfig
from .app import Server
from .config import ServeConfig

ENV = "CNNKIT_SERVE_SPEC"


def _spec(models: dict[str, Any], config: ServeConfig, log_level: str) -> str:
    cfg = dataclasses.asdict(config)
    return json.dumps({"models": {k: str(v) for k, v in models.items()}, "config": cfg,
                       "log_level": log_level})


def _logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="cnnkit serve: %(levelname)s %(name)s: %(message)s")


def app_from_env() -> Any:
    """The ASGI app for the settings in ``CNNKIT_SERVE_SPEC`` (Uvicorn's factory)."""
    spec = json.loads(os.environ[ENV])
    _logging(spec.get("log_level", "info"))  # worker processes start with no logging set up
    cfg = dict(spec["config"])
    cfg["drift"] = DriftConfig(**cfg["drift"])
    server = Server({k: Path(v) for k, v in spec["models"].items()}, ServeConfig(**cfg))
    return server.app


def serve(models: dict[str, Any], host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          config: ServeConfig | None = None, log_level: str = "info") -> None:
    """Serve ``models`` (name -> .cnnkit file) over HTTP until interrupted."""
    try:
        import uvicorn
    except ImportError as e:
        raise ImportError("cnnkit serve needs Starlette and Uvicorn: pip install "
                          "'cnnkit[serve]'") from e
    config = config or ServeConfig()
    _logging(log_level)
    os.environ[ENV] = _spec(models, config, log_level)
    uvicorn.run("cnnkit.serve.run:app_from_env", factory=True, host=host, port=port,
                workers=workers, timeout_graceful_shutdown=int(config.graceful_s) or None,
                log_level=log_level, access_log=False, timeout_keep_alive=5)
