"""Hudu asset passwords (``/api/v1``), on the shared :class:`VendorHttp` client.

What the rule of ``service_layer/documentation.py`` needs: every password of a
company (to match usernames and find our note), a create, and a password
change. The base client owns pacing, retries and status mapping.

Verified against ``tests/simulators/hudu.py``, written from Hudu's public API
documentation (node-hudu's swagger and the HuduAPI PowerShell module):

- auth is the header ``x-api-key``; a missing or wrong key is **401**
  (``VendorAuthError``); the API is under ``{instance}/api/v1``;
- ``GET /asset_passwords?company_id=&page=&page_size=`` gives no total: a page
  shorter than ``page_size`` is the last; ``search`` matches names only, so
  every page is read and usernames are matched by the rule; lists do carry
  password values, which are dropped here (never in a ``PasswordEntry``);
- a create is ``POST /asset_passwords`` with ``{"asset_password": {company_id,
  name, username, password, description}}`` (``company_id``, ``name`` and
  ``password`` required), answered 201 ``{"asset_password": {...}}``; a change
  is ``PUT /asset_passwords/{id}`` with the same envelope;
- errors: 422 ``{"errors": "..."}`` (one string), 400 ``{"error": "Parameter
  missing", "details": "..."}``, 401 ``{"error": "Invalid API key"}``; a
  missing record can be **200 with the body ``null``**.

Chosen where the docs say nothing (UNVERIFIED):

- ``page_size=100``, well under the simulator's 1000 ceiling, since a server
  that clamped a larger size would make the first page look short (the last);
  entries are de-duplicated by id, and a page that brings nothing new ends it;
- ``PasswordEntry.url`` is None: the record's ``url`` is the login address the
  credential is for, not its page in Hudu, and the API gives no page URL
  (a guessed ``/passwords/{slug}`` link could be wrong);
- ``company_id`` is sent as a number when the organisation id is digits;
- a Rails-style ``{"errors": {"field": [...]}}`` map is read as well as the
  string; the 429 body (``Retry later``) is shown as text;
- a ``200 null`` answer to a PUT is ``VendorRejected`` (no such password,
  status 404); a 2xx create without a record id is ``MaybeDone`` (search
  again); a list answer without ``asset_passwords`` is ``VendorUnavailable``
  (never "no entries", which would make the rule create a duplicate);
- archived passwords are not listed (Hudu's default);
- descriptions written as HTML (a rich-text editor) are read as text too, so
  our note is found in them.

No secret leaves this module in a message: the vendor's error text is
scrubbed of the API key and of the password being written, and request bodies
are never quoted.
"""

import contextlib
import html
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import Answer, StaticAuth, VendorHttp
from services.handlers.domain.errors import (
    MaybeDone,
    VendorError,
    VendorRejected,
    VendorUnavailable,
)
from services.handlers.domain.records import NewPasswordEntry, PasswordEntry
from services.handlers.service_layer.ports import DocumentationConnector

API = "/api/v1"
PAGE_SIZE = 100
PASSWORDS = "/asset_passwords"
REDACTED = "[redacted]"
JSON = "application/json"
WRITE_HEADERS = {"Content-Type": JSON}  # the base client sends bodies as bare text


def _json(answer: Answer) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _words(value: Any) -> str:
    """A Hudu error value as text: a string, a list of them, or a field -> messages map."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return ", ".join(w for w in map(_words, value) if w)
    if isinstance(value, Mapping):
        return "; ".join(f"{key} {_words(messages)}" for key, messages in value.items())
    return ""


class HuduHttp(VendorHttp):
    """The base client, with Hudu's error bodies read into messages."""

    system = "hudu"

    def error_message(self, answer: Answer) -> str:
        body = _json(answer)
        if isinstance(body, Mapping):
            parts = (_words(body.get(k)) for k in ("error", "details", "errors"))
            text = ": ".join(p for p in parts if p)
            if text:
                return f"Hudu {answer.status}: {text}"
        return super().error_message(answer)


@contextlib.contextmanager
def _scrubbed(*secrets: str) -> Iterator[None]:
    """Re-raise a vendor error with any of ``secrets`` cut out of its message."""
    try:
        yield
    except VendorError as exc:
        clean = exc.message
        for secret in secrets:
            if secret:
                clean = clean.replace(secret, REDACTED)
        exc.message, exc.args = clean, (clean,)
        raise


def _plain(text: str) -> str:
    """A description as text: as it is, plus its lines without HTML when it holds tags."""
    if "<" not in text:
        return text
    broken = re.sub(r"(?i)<br\s*/?>|</(p|div|li)>", "\n", text)
    return text + "\n" + html.unescape(re.sub(r"<[^>]*>", "", broken))


def _entry(record: Mapping[str, Any]) -> PasswordEntry:
    return PasswordEntry(
        id=str(record["id"]),
        name=str(record.get("name") or ""),
        username=str(record.get("username") or ""),
        marker_text=_plain(str(record.get("description") or "")),
    )


def _company(organization_id: str) -> int | str:
    return int(organization_id) if organization_id.isdigit() else organization_id


def _record(answer: Answer) -> Mapping[str, Any] | None:
    """The ``asset_password`` of an answer, or None (Hudu's ``200 null``, or no id)."""
    body = _json(answer)
    record = body.get("asset_password") if isinstance(body, Mapping) else None
    return record if isinstance(record, Mapping) and record.get("id") is not None else None


class HuduConnector:
    """The :class:`DocumentationConnector` of one partner's Hudu."""

    system = "hudu"

    def __init__(self, http: HuduHttp, api_key: str, *, page_size: int = PAGE_SIZE) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.http = http
        self._api_key = api_key
        self.page_size = page_size

    async def password_entries(
        self, organization_id: str, username_hint: str
    ) -> list[PasswordEntry]:
        """Every (unarchived) password of the company: Hudu cannot filter usernames."""
        found: dict[str, PasswordEntry] = {}
        page = 1
        while True:
            records = await self._page(organization_id, page)
            fresh = [e for e in map(_entry, records) if e.id not in found]
            found.update((e.id, e) for e in fresh)
            if not fresh or len(records) < self.page_size:
                return list(found.values())
            page += 1

    async def create_entry(self, organization_id: str, new: NewPasswordEntry) -> PasswordEntry:
        fields = {
            "company_id": _company(organization_id),
            "name": new.name,
            "username": new.username,
            "password": new.password,
            "description": new.notes,
        }
        answer = await self._send(
            "POST", PASSWORDS, body={"asset_password": fields}, secret=new.password
        )
        record = _record(answer)
        if record is None:
            raise MaybeDone(f"Hudu answered a create {answer.status} without the record")
        return _entry(record)

    async def set_password(self, organization_id: str, entry_id: str, password: str) -> None:
        path = f"{PASSWORDS}/{quote(entry_id, safe='')}"
        body = {"asset_password": {"password": password}}
        answer = await self._send("PUT", path, body=body, secret=password)
        if _record(answer) is None:
            raise VendorRejected(f"Hudu has no asset password {entry_id}", 404)

    # -- helpers ------------------------------------------------------------------

    async def _page(self, organization_id: str, page: int) -> list[Mapping[str, Any]]:
        params = {
            "company_id": organization_id,
            "page": str(page),
            "page_size": str(self.page_size),
        }
        answer = await self._send("GET", PASSWORDS, params=params)
        body = _json(answer)
        records = body.get("asset_passwords") if isinstance(body, Mapping) else None
        if not isinstance(records, list):
            raise VendorUnavailable(
                f"Hudu answered a password list {answer.status} without asset_passwords",
                answer.status,
            )
        return [r for r in records if isinstance(r, Mapping) and r.get("id") is not None]

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        secret: str = "",
    ) -> Answer:
        headers = WRITE_HEADERS if body is not None else None
        with _scrubbed(self._api_key, secret):
            return await self.http.request(
                method, API + path, params=params, json_body=body, headers=headers
            )


def api_base(base_url: str) -> str:
    """The instance URL without a trailing ``/api/v1`` (the connector adds it)."""
    trimmed = base_url.rstrip("/")
    return trimmed.removesuffix(API)


def connect(
    config: IntegrationConfig, context: ConnectContext, *, page_size: int = PAGE_SIZE
) -> DocumentationConnector:
    """The connector of one Hudu integration (``page_size`` smaller only in tests)."""
    api_key = config.credentials["api_key"]
    http = HuduHttp(
        context.session,
        api_base(config.base_url),
        auth=StaticAuth({"x-api-key": api_key}),
        pacer=context.pacer,
        policy=context.policy,
        metrics=context.metrics,
        default_headers={"Accept": JSON},
        slots=context.slots,
    )
    return HuduConnector(http, api_key, page_size=page_size)
