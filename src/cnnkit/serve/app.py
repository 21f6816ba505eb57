"""The HTTP API (a Starlette application).

- ``POST /v1/models/NAME:predict``: an image file as the body (``image/png``, ...), a
  multipart form of image files, or JSON arrays; ``?top_k=K``, ``?outputs=1`` adds the raw
  model outputs. Answers ``{"model", "predictions": [{"top": [{"class", "label",
  "probability"}, ...]}]}``.
- ``GET /v1/models``, ``GET /v1/models/NAME``, ``GET /v1/models/NAME/drift``;
- ``GET /healthz`` (the process answers), ``GET /readyz`` (models loaded, not stopping);
- ``GET /metrics`` (Prometheus text); ``GET /`` (the demo page).

Errors are JSON ``{"error": "one line"}``: 400 malformed input, 404 unknown model, 408 body
not received in time, 413 over a size limit, 503 queue full (with ``Retry-After``) or
stopping, 504 no answer within the request timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from importlib import resources
from typing import Any

import numpy as np

from ..monitor import probabilities
from .batcher import Closed, QueueFull
from .config import ServeConfig
from .decode import BadRequest, instances, parse_top_k
from .metrics import CONTENT_TYPE, Metrics
from .registry import Registry, ServedModel

SMALL_BODY = 64 << 10  # bytes


def _starlette() -> Any:
    try:
        import starlette  # noqa: F401
    except ImportError as e:
        raise ImportError("cnnkit serve needs Starlette and Uvicorn: pip install "
                          "'cnnkit[serve]'") from e
    from starlette import applications, requests, responses, routing
    return applications, requests, responses, routing


def _error(status: int, message: str, headers: dict | None = None) -> Any:
    _, _, responses, _ = _starlette()
    return responses.JSONResponse({"error": message}, status, headers=headers)


async def _read_body(request: Any, limit: int, deadline: float) -> bytes:
    """The body, refused (413) past ``limit`` bytes and (408) if not in by ``deadline``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(f"Content-Length must be a number of bytes, got {declared!r}")
        if int(declared) > limit:
            raise BadRequest(f"the body is {int(declared):,} bytes, more than the limit of "
                             f"{limit:,}", 413)
    chunks, size = [], 0
    try:  # asyncio.timeout, not wait_for: no extra task per request
        async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BadRequest(f"the body exceeds the limit of {limit:,} bytes", 413)
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest("the request body did not arrive within the request timeout",
                         408) from None
    return b"".join(chunks)


async def _form_files(request: Any, body: bytes, max_files: int) -> list[tuple[str, bytes]]:
    _, requests, _, _ = _starlette()

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await requests.Request(request.scope, replay).form(max_files=max_files,
                                                                  max_fields=32)
    except Exception as e:  # python-multipart's and Starlette's parse errors
        raise BadRequest(f"the multipart form cannot be parsed: "
                         f"{getattr(e, 'detail', None) or e}") from None
    files = []
    for key, value in form.multi_items():
        if hasattr(value, "read"):
            files.append((getattr(value, "filename", None) or key, await value.read()))
    return files


class Server:
    """The application state: registry, metrics, settings; ``app`` is the ASGI app."""

    def __init__(self, paths: dict[str, Any], config: ServeConfig | None = None):
        self.config = config or ServeConfig()
        self.metrics = Metrics()
        self.paths = paths
        self.registry: Registry | None = None
        self.stopping = False
        self.app = self._build()

    def start(self) -> None:
        if self.registry is None:
            self.registry = Registry(self.paths, self.config, self.metrics)

    def stop(self) -> None:
        self.stopping = True
        if self.registry is not None:
            self.registry.close()

    def _build(self) -> Any:
        applications, _, responses, routing = _starlette()

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> Any:
            await asyncio.to_thread(self.start)
            try:
                yield
            finally:
                await asyncio.to_thread(self.stop)

        routes = [
            routing.Route("/", self.page), routing.Route("/healthz", self.healthz),
            routing.Route("/readyz", self.readyz), routing.Route("/metrics", self.scrape),
            routing.Route("/v1/models", self.list_models),
            routing.Route("/v1/models/{name}:predict", self.predict, methods=["POST"]),
            routing.Route("/v1/models/{name}/drift", self.drift),
            routing.Route("/v1/models/{name}", self.model_info),
        ]
        del responses
        return applications.Starlette(routes=routes, lifespan=lifespan)

    # ----- small endpoints -------------------------------------------------------------
    async def page(self, request: Any) -> Any:
        _, _, responses, _ = _starlette()
        html = resources.files(__package__).joinpath("static/index.html").read_text("utf-8")
        return responses.HTMLResponse(html)

    async def healthz(self, request: Any) -> Any:
        _, _, responses, _ = _starlette()
        return responses.JSONResponse({"status": "ok"})

    async def readyz(self, request: Any) -> Any:
        _, _, responses, _ = _starlette()
        if self.registry is None or self.stopping:
            return _error(503, "not ready: models loading or server stopping",
                          {"Retry-After": "1"})
        return responses.JSONResponse({"status": "ready", "models": list(self.registry.models)})

    def _entry(self, name: str) -> ServedModel | None:
        return self.registry.get(name) if self.registry is not None else None

    async def list_models(self, request: Any) -> Any:
        _, _, responses, _ = _starlette()
        models = [] if self.registry is None else [m.info() for m in
                                                   self.registry.models.values()]
        return responses.JSONResponse({"models": models})

    async def model_info(self, request: Any) -> Any:
        _, _, responses, _ = _starlette()
        entry = self._entry(request.path_params["name"])
        if entry is None:
            return _error(404, f"no model named {request.path_params['name']!r}")
        return responses.JSONResponse(entry.info())

    async def drift(self, request: Any) -> Any:
        _, _, responses, _ = _starlette()
        name = request.path_params["name"]
        entry = self._entry(name)
        if entry is None:
            return _error(404, f"no model named {name!r}")
        if entry.monitor is None:
            return _error(404, f"model {name!r} has no reference profile (cnnkit train writes "
                               f"one beside the model: <model>.profile.npz)")
        report = await asyncio.to_thread(entry.monitor.check)
        return responses.JSONResponse({"model": name, **report})

    async def scrape(self, request: Any) -> Any:
        _, _, responses, _ = _starlette()
        return responses.Response(self.metrics.render(self._gauges()), 200,
                                  media_type=CONTENT_TYPE)

    def _gauges(self) -> list[tuple[str, str, Any, float]]:
        out: list[tuple[str, str, Any, float]] = []
        models = [] if self.registry is None else list(self.registry.models.values())
        for m in models:
            lab = (("model", m.name),)
            out.append(("cnnkit_queue_depth", "Requests waiting for a batch.", lab,
                        m.batcher.depth))
            if m.monitor is None:
                continue
            last = m.monitor.last
            for key in ("psi_confidence", "psi_classes", "ks_d", "ks_p", "mmd2", "mmd_p"):
                if key in last:
                    out.append(("cnnkit_drift_score", "Latest drift statistics of the "
                                "sliding window against the reference profile.",
                                (*lab, ("statistic", key)), float(last[key])))
            out.append(("cnnkit_drift_alarm", "1 while a drift threshold is crossed.", lab,
                        float(bool(last.get("alarm")))))
            out.append(("cnnkit_drift_window_samples", "Samples in the drift window.", lab,
                        float(last.get("samples", 0))))
        return out

    # ----- prediction --------------------------------------------------------------------
    async def predict(self, request: Any) -> Any:
        start = time.monotonic()
        name = request.path_params["name"]
        entry = self._entry(name)
        if entry is None:
            return _error(404, f"no model named {name!r}")
        status, response = await self._predict(request, entry, start)
        self.metrics.request(name, status, time.monotonic() - start)
        return response

    async def _predict(self, request: Any, entry: ServedModel, start: float) -> tuple:
        cfg = self.config
        deadline = start + cfg.timeout_s
        entry.incoming += 1
        try:
            top_k = parse_top_k(request.query_params.get("top_k"), cfg.top_k, entry.classes)
            body = await _read_body(request, cfg.max_body_bytes, deadline)
            ctype = request.headers.get("content-type", "")
            files = await _form_files(request, body, cfg.max_instances) \
                if ctype.lower().startswith("multipart/form-data") else None
            args = (ctype, body, files, entry.input_shape, cfg.max_image_pixels,
                    cfg.max_instances)
            # small bodies decode faster here than through a thread hand-over
            x = instances(*args) if len(body) < SMALL_BODY else \
                await asyncio.to_thread(instances, *args)
        except BadRequest as e:
            entry.incoming -= 1
            return e.status, _error(e.status, str(e))
        except BaseException:
            entry.incoming -= 1
            raise
        return await self._answer(request, entry, x, top_k, deadline)

    async def _answer(self, request: Any, entry: ServedModel, x: np.ndarray, top_k: int,
                      deadline: float) -> tuple:
        _, _, responses, _ = _starlette()
        entry.incoming -= 1  # submitted now: the batcher need not wait for it any more
        try:
            if self.stopping:
                raise Closed("stopping")
            try:
                future = entry.batcher.submit(x)
            except Closed:  # replaced while we decoded: the new model takes it
                entry = self._entry(entry.name) or entry
                future = entry.batcher.submit(x)
        except QueueFull as e:
            return 503, _error(503, f"queue full ({e}); retry later", {"Retry-After": "1"})
        except Closed:
            return 503, _error(503, "the server is stopping", {"Retry-After": "1"})
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                y, extras = await asyncio.wrap_future(future)
        except TimeoutError:
            return 504, _error(504, f"no answer within the request timeout of "
                                    f"{self.config.timeout_s:g} s")
        except Exception as e:  # the model call failed for this batch
            return 500, _error(500, f"the model failed on this input: {type(e).__name__}: {e}")
        want_outputs = request.query_params.get("outputs") in ("1", "true", "yes")
        probs = getattr(extras, "probs", None)  # computed once per batch by the model thread
        return 200, responses.JSONResponse(self._result(entry, y, top_k, want_outputs, probs))

    @staticmethod
    def _result(entry: ServedModel, y: np.ndarray, top_k: int, outputs: bool,
                probs: np.ndarray | None = None) -> dict:
        probs = probabilities(y) if probs is None else probs
        preds = []
        for row, p in zip(y, probs, strict=True):
            top = np.argsort(-p, kind="stable")[:top_k]
            item: dict[str, Any] = {"top": [{"class": int(i), "label": entry.label(int(i)),
                                             "probability": float(p[i])} for i in top]}
            if outputs:
                item["outputs"] = [float(v) for v in row]
            preds.append(item)
        return {"model": entry.name, "predictions": preds}
