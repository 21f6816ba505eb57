"""``cnnkit serve``: an HTTP model server (Starlette on Uvicorn, the ``serve`` extra).

- :mod:`.app`: the HTTP API (:class:`Server`, its ASGI ``app``);
- :mod:`.batcher`: dynamic batching of concurrent requests (:class:`Batcher`);
- :mod:`.registry`: loaded models, batch-invariant plans, hot reload, drift monitors;
- :mod:`.decode`: request bodies (image files, multipart, JSON) to input arrays;
- :mod:`.metrics`: Prometheus text metrics; :mod:`.config`: settings and limits;
- :mod:`.run`: :func:`serve`, running Uvicorn.

Importing this package needs only NumPy; Starlette and Uvicorn are imported when a server
is built or run.
"""

from .batcher import Batcher, Closed, QueueFull
from .config import ServeConfig
from .decode import BadRequest

__all__ = ["Batcher", "Closed", "QueueFull", "ServeConfig", "BadRequest", "Server", "serve"]


def __getattr__(name: str):  # noqa: ANN202 - the app and runner on first use
    if name == "Server":
        from .app import Server
        return Server
    if name == "serve":
        from .run import serve
        return serve
    raise AttributeError(f"module 'cnnkit.serve' has no attribute {name!r}")
