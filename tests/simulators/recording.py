"""What a simulator remembers of each request, so tests can assert on what a client sent."""

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict


@dataclass
class RecordedRequest:
    """One vendor request (never an admin one), as it arrived and how it was answered.

    ``monotonic`` is read from the simulator's clock (``time.monotonic`` unless a
    test injected one), ``wall`` from ``time.time``. ``path`` is relative to the
    vendor's base URL (the mount prefix removed), so assertions do not depend on
    where the simulator is mounted. ``outcome`` says which part of the simulator
    answered: ``ok`` (the vendor logic, whatever its status), ``fault``, ``hang``,
    ``rate_limited``, ``concurrency_limited``, ``auth_failed``, ``error`` (a bug
    of the simulator: aiohttp's 500).
    """

    seq: int
    monotonic: float
    wall: float
    method: str
    path: str
    query: dict[str, str]
    query_string: str
    headers: CIMultiDict[str]
    body: Any
    limited: bool
    """Subject to the rate limit (token and discovery endpoints are not)."""
    status: int | None = None
    outcome: str = "pending"
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "monotonic": self.monotonic,
            "wall": self.wall,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "query_string": self.query_string,
            "headers": dict(self.headers),
            "body": self.body,
            "limited": self.limited,
            "status": self.status,
            "outcome": self.outcome,
        }


async def parse_body(request: web.Request) -> Any:
    """The body as the handler will see it: JSON, a form as a dict, text, or None.

    A body that claims to be JSON but is not is kept as text, so a test can see
    exactly what a broken client sent (the handler answers the vendor's 400).
    """
    if not request.body_exists:
        return None
    raw = await request.read()
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if request.content_type == "application/x-www-form-urlencoded":
        return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    try:
        return json.loads(text)
    except ValueError:
        return text
