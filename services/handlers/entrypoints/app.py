"""Composition root of the handlers: settings in, an aiohttp application out.

The application serves ``/healthz``, ``/readyz`` and ``/metrics``; the
:class:`HandlersRuntime` (pool, producer, vendor HTTP session, consumers) is
opened and closed by its ``cleanup_ctx``. Nothing connects at import time.
"""

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.topics import TopicNames
from services.handlers.entrypoints.runtime import HandlersRuntime
from services.handlers.metrics import HandlerMetrics
from services.handlers.settings import HandlersSettings

RUNTIME = web.AppKey("runtime", HandlersRuntime)


def build_app(settings: HandlersSettings, topics: TopicNames | None = None) -> web.Application:
    topics = topics or TopicNames()
    metrics = HandlerMetrics()
    runtime = HandlersRuntime(settings, topics, metrics)
    app = web.Application()
    app[RUNTIME] = runtime

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        checks, reason = await runtime.readiness()
        body: dict[str, Any] = {"status": "unavailable" if reason else "ok", "checks": checks}
        if reason:
            body["reason"] = reason
        return web.json_response(body, status=503 if reason else 200)

    async def metrics_page(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(metrics.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)

    async def lifetime(_: web.Application) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app.cleanup_ctx.append(lifetime)
    return app
