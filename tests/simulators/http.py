"""Small HTTP helpers the simulators share: JSON responses, errors as exceptions, paging.

Vendors disagree on almost everything, so these helpers take the vendor's body
and status as arguments and only remove the boilerplate: a handler raises
:class:`SimHTTPError` with the vendor's exact response from any depth of a
parser, and the base middleware turns it into the answer.
"""

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web

JSONDict = dict[str, Any]
T = TypeVar("T")


class SimHTTPError(Exception):
    """Raised anywhere inside a request to answer with ``response`` (a vendor's error)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


def json_response(
    body: Any,
    status: int = 200,
    *,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    """``body`` serialised as JSON (``None`` becomes the literal ``null``, as Hudu sends it)."""
    return web.Response(
        text=json.dumps(body),
        status=status,
        content_type=content_type,
        charset="utf-8",
        headers=dict(headers or {}),
    )


def text_response(
    text: str, status: int, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A plain-text answer (Halo's and Hudu's throttling bodies are text)."""
    return web.Response(text=text, status=status, content_type="text/plain", headers=headers)


def parse_bool(value: str | None) -> bool | None:
    """``true``/``false`` (and 1/0, yes/no) as query strings spell them; None when absent."""
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def query_int(
    request: web.Request,
    name: str,
    default: int,
    *,
    error: Callable[[str], web.Response],
    minimum: int = 1,
    maximum: int | None = None,
) -> int:
    """An integer query parameter; garbage or below ``minimum`` is the vendor's ``error``.

    Values above ``maximum`` are clamped, as the vendors that document a maximum
    page size do (they answer the maximum rather than refusing).
    """
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SimHTTPError(error(f"{name} must be an integer, got {raw!r}")) from None
    if value < minimum:
        raise SimHTTPError(error(f"{name} must be at least {minimum}, got {value}"))
    return min(value, maximum) if maximum is not None else value


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a sorted result: 1-based ``number``, ``size`` per page, ``total`` items."""

    items: list[T]
    number: int
    size: int
    total: int

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total / self.size) if self.size else 0

    @property
    def has_next(self) -> bool:
        return self.number * self.size < self.total

    @property
    def has_prev(self) -> bool:
        return self.number > 1


def paginate(items: Sequence[T], number: int, size: int) -> Page[T]:
    """Page ``number`` (1-based) of ``items`` with ``size`` per page."""
    start = (number - 1) * size
    return Page(list(items[start : start + size]), number, size, len(items))


def project(record: Mapping[str, Any], paths: Sequence[str], sep: str = "/") -> JSONDict:
    """Only the given (possibly nested, ``sep``-separated) fields of ``record``."""
    out: JSONDict = {}
    for path in paths:
        parts = [p for p in path.strip().split(sep) if p]
        source: Any = record
        for part in parts:
            source = source.get(part) if isinstance(source, Mapping) else None
        if source is None or not parts:
            continue
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = source
    return out
