"""OpenAPI 3.1, generated from the route table and the pydantic models."""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from schemas.jsonschema_tools import reachable, set_additional_properties
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

    schemas = defs.get("$defs", {})
    for name in reachable([refs[(r.body, "validation")] for r in ROUTES if r.body], schemas):
        _no_nul(schemas[name])  # request bodies only: a problem may quote what was sent
        # Request bodies are validated with extra="forbid" (request.py), nested objects too.
        set_additional_properties(schemas[name], False)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Import policy service",
            "version": version,
            "description": "Automatic Import Options Policies and customers of an MSP "
            "(docs/contract.md §4). Errors are RFC 9457 problem JSON.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


_NO_NUL = "^[^\\u0000]*$"
_NO_TEXT = ("uuid", "date-time")


def _no_nul(node: Any) -> None:
    """Say what ``request.py`` enforces: no string holds U+0000 (PostgreSQL cannot store
    it; the API answers 422). UUIDs, date-times and fixed values cannot hold it anyway."""
    if isinstance(node, dict):
        free_text = not {"enum", "const"} & node.keys() and node.get("format") not in _NO_TEXT
        if node.get("type") == "string" and free_text:
            if "pattern" not in node:
                node["pattern"] = _NO_NUL
            elif "\\u0000" not in node["pattern"]:
                node.setdefault("allOf", []).append({"pattern": _NO_NUL})
        for value in node.values():
            _no_nul(value)
    elif isinstance(node, list):
        for value in node:
            _no_nul(value)


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
    # Authenticated routes read the database: 503 (with Retry-After) while it is away.
    for status in sorted({*route.errors, *((401, 403, 503) if route.authenticated else ())}):
        content = problem
        response: dict[str, Any] = {"description": _REASONS[status]}
        if status == 503 and route.response is not None and not route.authenticated:
            content = {"application/json": {"schema": refs[(route.response, "serialization")]}}
        elif status == 503:
            response["description"] = "Database unavailable; retry after Retry-After seconds"
            response["headers"] = {
                "Retry-After": {
                    "schema": {"type": "string"},
                    "description": "Seconds to wait before retrying.",
                }
            }
        op["responses"][str(status)] = {**response, "content": content}
    return op
