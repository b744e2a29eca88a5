"""OpenAPI 3.1, generated from the route table and the pydantic models."""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from services.policy_service.api.models import Problem
from services.policy_service.api.routes import ROUTES, Route

_REASONS = {
    400: "Malformed request",
    401: "Missing or invalid token",
    403: "Role may not do this",
    404: "Not found (or another partner's)",
    409: "Conflict",
    412: "Stale If-Match",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid fields",
    503: "Not ready",
}


def build_openapi(version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {Problem}
    for route in ROUTES:
        models.update(x for x in (route.body, route.response) if x is not None)
    ordered = sorted(models, key=lambda cls: cls.__name__)
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (cls, mode) for cls in ordered for mode in ("validation", "serialization")
    ]
    refs, defs = models_json_schema(keys, ref_template="#/components/schemas/{model}")

    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Import policy service",
            "version": version,
            "description": "Automatic Import Options Policies and customers of an MSP "
            "(CONTRACT.md section 4). Errors are RFC 9457 problem JSON.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.view,
        "summary": route.summary,
        "tags": list(route.tags),
        "parameters": [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "schema": p.schema,
                "description": p.description,
            }
            for p in route.params
        ],
        "responses": {},
    }
    if route.authenticated:
        op["security"] = [{"bearer": []}]
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    ok: dict[str, Any] = {"description": "OK" if route.status < 300 else "Done"}
    if route.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(route.response, "serialization")]}}
        if route.path.endswith("{id}") and route.method in ("GET", "PATCH"):
            ok["headers"] = {
                "ETag": {"schema": {"type": "string"}, "description": "The resource's version."}
            }
    elif route.view == "metrics":
        ok["content"] = {"text/plain": {"schema": {"type": "string"}}}
    elif route.view == "docs":
        ok["content"] = {"text/html": {"schema": {"type": "string"}}}
    elif route.view == "openapi":
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    op["responses"][str(route.status)] = ok
    problem = {"application/problem+json": {"schema": refs[(Problem, "serialization")]}}
    for status in sorted({*route.errors, *((401, 403) if route.authenticated else ())}):
        content = problem
        if status == 503 and route.response is not None:
            content = {"application/json": {"schema": refs[(route.response, "serialization")]}}
        op["responses"][str(status)] = {"description": _REASONS[status], "content": content}
    return op
