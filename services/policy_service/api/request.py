"""Parsing what a request carries: JSON bodies, ids, pagination, If-Match."""

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from schemas.enums import AccountType
from schemas.integrations import Provider
from services.policy_service.adapters.accounts import AccountCursor, AccountFilter
from services.policy_service.adapters.repository import Cursor
from services.policy_service.api.problems import (
    RequestProblem,
    malformed_json,
    validation_problems,
)
from services.policy_service.service_layer.errors import FieldProblem, NotFound

ModelT = TypeVar("ModelT", bound=BaseModel)

DEFAULT_LIMIT, MAX_LIMIT = 50, 500


async def json_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """The body as ``model``: 415 unless JSON, 400 if malformed, 422 if invalid."""
    ctype = request.content_type
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise RequestProblem(
            415,
            "Unsupported Media Type",
            f"send the body as application/json, not {ctype or 'nothing'}",
            "unsupported-media-type",
        )
    raw = await request.read()  # larger than client_max_size: aiohttp raises 413
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise malformed_json(exc) from exc
    if not isinstance(data, dict):
        raise RequestProblem(
            422,
            "Unprocessable Content",
            "the body must be a JSON object",
            "validation",
            [FieldProblem((), "expected an object")],
        )
    nul = _nul_characters(data)
    if nul:
        raise RequestProblem(
            422, "Unprocessable Content", f"{len(nul)} invalid field(s)", "validation", nul
        )
    try:
        return model.model_validate(data, extra="forbid")
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise RequestProblem(
            422,
            "Unprocessable Content",
            f"{len(problems)} invalid field(s)",
            "validation",
            problems,
        ) from exc
    except RecursionError as exc:
        raise malformed_json(exc) from exc


def _nul_characters(data: Any) -> list[FieldProblem]:
    """Strings holding U+0000, which PostgreSQL cannot store in text or jsonb."""
    found: list[FieldProblem] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            found.append(FieldProblem(loc, "must not contain the NUL character (U+0000)"))
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    found.append(FieldProblem((*loc, key), "names must not contain U+0000"))
                stack.append(((*loc, key), item))
        elif isinstance(value, list):
            stack.extend(((*loc, i), item) for i, item in enumerate(value))
    return found


def path_uuid(request: web.Request, name: str = "id") -> uuid.UUID:
    """A UUID path segment; anything else cannot name a resource, hence 404."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError as exc:
        raise NotFound(f"no resource {request.match_info[name]!r}") from exc


def provider_param(request: web.Request) -> Provider:
    """The ``{provider}`` path segment; an unknown provider names no resource (404)."""
    raw = request.match_info["provider"]
    try:
        return Provider(raw)
    except ValueError as exc:
        known = ", ".join(p.value for p in Provider)
        raise NotFound(f"no provider {raw!r} (known: {known})") from exc


def _bad_query(name: str, message: str) -> RequestProblem:
    return RequestProblem(
        400,
        "Bad Request",
        f"invalid query parameter {name}: {message}",
        "invalid-query",
        [FieldProblem((name,), message)],
    )


def page_params(request: web.Request) -> tuple[Cursor | None, int]:
    """``cursor`` and ``limit`` (default 50, at most 500)."""
    limit = _limit(request)
    raw_cursor = request.query.get("cursor")  # present but empty is no cursor of ours: 400
    return (decode_cursor(raw_cursor) if raw_cursor is not None else None), limit


def _limit(request: web.Request) -> int:
    raw_limit = request.query.get("limit")
    if raw_limit is None:
        return DEFAULT_LIMIT
    if not _is_number(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise _bad_query("limit", f"an integer from 1 to {MAX_LIMIT}")
    return int(raw_limit)


def account_type_param(request: web.Request) -> AccountType | None:
    raw = request.query.get("account_type")
    if raw is None:
        return None
    try:
        return AccountType(raw)
    except ValueError as exc:
        raise _bad_query("account_type", "one of end_user, administrator") from exc


def encode_cursor(created_at: datetime, item_id: uuid.UUID | str) -> str:
    raw = json.dumps([created_at.isoformat(), str(item_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    stamp, item = _cursor_pair(value)
    try:
        return stamp, uuid.UUID(item)
    except ValueError as exc:
        raise _bad_query("cursor", "not a cursor this service gave out") from exc


def _cursor_pair(value: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        stamp, item = json.loads(raw)
        parsed = datetime.fromisoformat(stamp)
        if parsed.tzinfo is None or not isinstance(item, str) or "\x00" in item:
            raise ValueError("not ours")
        return parsed, item
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise _bad_query("cursor", "not a cursor this service gave out") from exc


ACCOUNT_STATUSES = ("done", "pending", "attention", "no_policy")
MAX_QUERY_TEXT = 200


def account_filter(request: web.Request, partner_id: str) -> AccountFilter:
    """``customer_id``, ``account_type``, ``status`` and ``q`` of ``GET /v1/accounts``."""
    customer_id = None
    raw = request.query.get("customer_id")
    if raw is not None:
        try:
            customer_id = uuid.UUID(raw)
        except ValueError as exc:
            raise _bad_query("customer_id", "a customer id (UUID)") from exc
    status = request.query.get("status")
    if status is not None and status not in ACCOUNT_STATUSES:
        raise _bad_query("status", "one of " + ", ".join(ACCOUNT_STATUSES))
    q = request.query.get("q")
    if q is not None:
        if len(q) > MAX_QUERY_TEXT or "\x00" in q:
            raise _bad_query("q", f"at most {MAX_QUERY_TEXT} characters, no U+0000")
        q = q.strip() or None
    account_type = account_type_param(request)
    return AccountFilter(
        partner_id=partner_id,
        customer_id=customer_id,
        account_type=account_type.value if account_type else None,
        status=status,
        q=q,
    )


def account_page_params(request: web.Request) -> tuple[AccountCursor | None, int]:
    """Like :func:`page_params`, with the accounts' cursor (decided_at, key)."""
    limit = _limit(request)
    raw_cursor = request.query.get("cursor")
    return (_cursor_pair(raw_cursor) if raw_cursor is not None else None), limit


def if_match(request: web.Request) -> int | None:
    """The version an ``If-Match`` header asks for (None: unconditional).

    ``*`` matches any version. A value that is no version of ours can never
    match, so it is reported as version -1 (a 412).
    """
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    tag = raw.strip().removeprefix("W/").strip('"')
    return int(tag) if _is_number(tag) else -1


def _is_number(text: str) -> bool:
    """A few ASCII digits: ``str.isdigit`` also accepts "²", and ``int`` refuses
    more than 4300 digits; no limit or version of ours has more than 18."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def etag(version: int) -> str:
    return f'"{version}"'
