"""Middlewares: request id and access log, metrics, problem JSON, authentication."""

import logging
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Histogram

from services.infra.failures import database_unavailable
from services.policy_service.api.auth import Unauthenticated, authenticate
from services.policy_service.api.problems import RequestProblem, problem_response
from services.policy_service.domain.auth import Principal
from services.policy_service.service_layer.errors import ServiceError

log = logging.getLogger("policy_service.http")

REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
# What a 503 asks clients to wait: the pool reconnects on the next request, and
# a restarted PostgreSQL accepts connections again within seconds.
RETRY_AFTER_SECONDS = 2


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def observability(registry: CollectorRegistry) -> Middleware:
    """Request id (``X-Request-ID``), a JSON access-log line, latency by route and status."""
    latency = Histogram(
        "http_request_duration_seconds",
        "HTTP request latency",
        ["method", "route", "status"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        registry=registry,
    )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-ID") or str(uuid.uuid4())
        request[REQUEST_ID] = request_id
        start = time.perf_counter()
        response = await handler(request)
        elapsed = time.perf_counter() - start
        response.headers["X-Request-ID"] = request_id
        route = _route_name(request)
        latency.labels(request.method, route, str(response.status)).observe(elapsed)
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return response

    return middleware


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as RFC 9457 problem JSON; bad input is never a 500.

    An unreachable database is a 503 with ``Retry-After``: the request was
    fine, and the same request will succeed once PostgreSQL is back.
    """
    instance = request.path
    try:
        return await handler(request)
    except RequestProblem as exc:
        return exc.response(instance)
    except Unauthenticated as exc:
        return problem_response(
            401,
            "Unauthorized",
            str(exc),
            slug="unauthenticated",
            instance=instance,
            headers={"WWW-Authenticate": 'Bearer realm="policy-service"'},
        )
    except ServiceError as exc:
        errors = getattr(exc, "problems", None)
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            slug=exc.title.lower().replace(" ", "-"),
            errors=errors,
            instance=instance,
        )
    except web.HTTPRequestEntityTooLarge as exc:
        return problem_response(
            413,
            "Content Too Large",
            exc.text or "the body is too large",
            slug="too-large",
            instance=instance,
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return problem_response(
            exc.status, exc.reason, exc.text or exc.reason, instance=instance, headers=headers
        )
    except Exception as exc:
        if database_unavailable(exc):
            log.warning(
                "database unavailable: %s", exc, extra={"request_id": request.get(REQUEST_ID)}
            )
            return problem_response(
                503,
                "Service Unavailable",
                "the database cannot be reached just now; retry shortly",
                slug="database-unavailable",
                instance=instance,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        log.exception("unhandled error", extra={"request_id": request.get(REQUEST_ID)})
        return problem_response(
            500,
            "Internal Server Error",
            "an unexpected error occurred; it has been logged",
            instance=instance,
        )


def authentication(secret: str) -> Middleware:
    """Every ``/v1`` route needs a valid bearer token; the principal goes on the request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/") or request.path == "/v1":
            request[PRINCIPAL] = authenticate(request.headers.get("Authorization"), secret)
        return await handler(request)

    return middleware
