"""RFC 9457 problem responses, and the request-parsing errors that produce them."""

import json
from collections.abc import Sequence

from aiohttp import web
from pydantic import ValidationError

from services.policy_service.api.models import FieldError, Problem
from services.policy_service.service_layer.errors import FieldProblem

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://errors.msp-account-import.dev/"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> web.Response:
    body = Problem(
        type=f"{TYPE_BASE}{slug}" if slug else "about:blank",
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        errors=[_field_error(e) for e in errors] if errors else None,
    )
    return web.Response(
        status=status,
        body=body.model_dump_json(exclude_none=True).encode(),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_error(problem: FieldProblem) -> FieldError:
    parts = [str(p) for p in problem.loc]
    return FieldError(
        pointer="#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts),
        field=".".join(parts),
        detail=problem.message,
    )


def validation_problems(exc: ValidationError) -> list[FieldProblem]:
    """pydantic's errors as field problems (the model-level ones point at the body)."""
    return [
        FieldProblem(tuple(e["loc"]), e["msg"].removeprefix("Value error, "))
        for e in exc.errors(include_url=False)
    ]


class RequestProblem(Exception):
    """A request the service cannot even start on: 400, 413, 415, or 422 from parsing."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        slug: str,
        errors: Sequence[FieldProblem] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.slug, self.errors = (
            status,
            title,
            detail,
            slug,
            errors,
        )

    def response(self, instance: str | None = None) -> web.Response:
        return problem_response(
            self.status,
            self.title,
            self.detail,
            slug=self.slug,
            errors=self.errors,
            instance=instance,
        )


def malformed_json(exc: ValueError | RecursionError) -> RequestProblem:
    if isinstance(exc, json.JSONDecodeError):
        detail = f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    elif isinstance(exc, RecursionError):
        detail = "the body is nested too deeply"
    else:
        detail = f"the body is not valid JSON: {exc}"
    return RequestProblem(400, "Bad Request", detail, "malformed-json")
