"""IT Glue password entries (JSON:API), on the shared :class:`VendorHttp` client.

What the rule of ``service_layer/documentation.py`` needs: every password entry
of an organisation (to match usernames and find our note), a create, and a
password change. The base client owns pacing, retries and status mapping.

Verified against ``tests/simulators/itglue.py``, written from IT Glue's public
developer documentation (api.itglue.com/developer):

- auth is the header ``x-api-key``; a missing or wrong key is **403**
  (``VendorAuthError``); bodies must say ``Content-Type:
  application/vnd.api+json`` (else 415), and we ``Accept`` the same;
- ``GET /organizations/{org}/relationships/passwords`` pages with
  ``page[number]`` / ``page[size]`` (at most 1000) and says ``meta.next-page``
  and ``meta.total-pages``; there is **no** username filter, so every page is
  read and usernames are matched by the rule; lists never hold password
  values, and we never ask for one (no ``GET /passwords/{id}``);
- a create is ``POST`` of ``{"data": {"type": "passwords", "attributes":
  {...}}}`` (``name`` and ``password`` required) answered 201 with the record;
  a change is ``PATCH .../passwords/{id}`` with a partial ``attributes``;
- errors are ``{"errors": [{"status", "title", "detail", "source":
  {"pointer"}}]}``; a PATCH of a password synced from a PSA is 422;
- each record's attributes hold ``resource-url``, the entry's page in IT Glue
  (also what public IT Glue scripts read): that is ``PasswordEntry.url``.

Chosen where the docs say nothing (UNVERIFIED):

- the listing asks ``sort=id`` so that pages stay stable while entries are
  added (a new one lands on the last page); entries are de-duplicated by id,
  and paging stops when ``next-page`` is null (else ``total-pages`` is
  reached, else a page is short) or a page brings nothing new;
- attribute names are sent in kebab-case (the docs' examples);
- ``password-category-id`` comes from the ``password_category_id`` setting
  when set; settings are read leniently (the dev stack's demo gives ``"15"``);
- a password change also sets ``password-updated-at`` (now, UTC), as the docs'
  PATCH example does; a PATCH sets a value, so it is retried like a PUT (never
  ``MaybeDone``);
- archived passwords are not listed (IT Glue's default): an archived entry is
  not linked, and a create after archiving makes a new one;
- notes written as HTML are read as text too, so our note is found in them;
- a 2xx create whose body has no record id is ``MaybeDone`` (search again); a
  list page without a ``data`` list is ``VendorUnavailable`` (never "no
  entries", which would make the rule create a duplicate).

No secret leaves this module in a message: the vendor's error text is
scrubbed of the API key and of the password being written, and request bodies
are never quoted.
"""

import contextlib
import datetime as dt
import html
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from schemas.providers import ITGlueSettings
from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import Answer, StaticAuth, VendorHttp
from services.handlers.domain.errors import MaybeDone, VendorError, VendorUnavailable
from services.handlers.domain.records import NewPasswordEntry, PasswordEntry
from services.handlers.service_layer.ports import DocumentationConnector

JSONAPI = "application/vnd.api+json"
PAGE_SIZE = 1000  # IT Glue's maximum
WRITE_HEADERS = {"Content-Type": JSONAPI}
REDACTED = "[redacted]"


def _json(answer: Answer) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


class ITGlueHttp(VendorHttp):
    """The base client, with IT Glue's error envelope read into messages."""

    system = "itglue"

    def error_message(self, answer: Answer) -> str:
        errors = _errors(answer)
        if not errors:
            return super().error_message(answer)
        return f"IT Glue {answer.status}: " + "; ".join(_describe(e) for e in errors)


def _errors(answer: Answer) -> list[Mapping[str, Any]]:
    body = _json(answer)
    errors = body.get("errors") if isinstance(body, Mapping) else None
    return [e for e in errors if isinstance(e, Mapping)] if isinstance(errors, list) else []


def _describe(error: Mapping[str, Any]) -> str:
    """``/data/attributes/name: can't be blank`` (the pointer names the attribute)."""
    source = error.get("source")
    pointer = source.get("pointer") if isinstance(source, Mapping) else None
    detail = str(error.get("detail") or error.get("title") or "error")
    if pointer:
        return f"{pointer}: {detail}"
    title = error.get("title")
    return f"{title}: {detail}" if title and title != detail else detail


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
    """Notes as text: as they are, plus their lines without HTML when they hold tags."""
    if "<" not in text:
        return text
    broken = re.sub(r"(?i)<br\s*/?>|</(p|div|li)>", "\n", text)
    return text + "\n" + html.unescape(re.sub(r"<[^>]*>", "", broken))


def _entry(item: Mapping[str, Any]) -> PasswordEntry:
    attributes = item.get("attributes")
    values: Mapping[str, Any] = attributes if isinstance(attributes, Mapping) else {}
    url = values.get("resource-url")
    return PasswordEntry(
        id=str(item["id"]),
        name=str(values.get("name") or ""),
        username=str(values.get("username") or ""),
        marker_text=_plain(str(values.get("notes") or "")),
        url=url if isinstance(url, str) and url else None,
    )


def _items(answer: Answer, body: Any) -> list[Mapping[str, Any]]:
    """The records of a list page; an answer without a ``data`` list is not "none"."""
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, list):
        raise VendorUnavailable(
            f"IT Glue answered a password list {answer.status} without a data list",
            answer.status,
        )
    return [i for i in data if isinstance(i, Mapping) and i.get("id") is not None]


def _has_next(body: Any, number: int, count: int, size: int) -> bool:
    meta = body.get("meta") if isinstance(body, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    if "next-page" in meta:
        return meta["next-page"] is not None
    total = meta.get("total-pages")
    if isinstance(total, int):
        return number < total
    return count >= size


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ITGlueConnector:
    """The :class:`DocumentationConnector` of one partner's IT Glue."""

    system = "itglue"

    def __init__(
        self,
        http: ITGlueHttp,
        api_key: str,
        *,
        password_category_id: int | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{PAGE_SIZE}")
        self.http = http
        self._api_key = api_key
        self.password_category_id = password_category_id
        self.page_size = page_size

    async def password_entries(
        self, organization_id: str, username_hint: str
    ) -> list[PasswordEntry]:
        """Every (unarchived) password of the organisation: IT Glue cannot filter usernames."""
        found: dict[str, PasswordEntry] = {}
        number = 1
        while True:
            answer = await self._page(organization_id, number)
            body = _json(answer)
            items = _items(answer, body)
            fresh = [e for e in map(_entry, items) if e.id not in found]
            found.update((e.id, e) for e in fresh)
            if not fresh or not _has_next(body, number, len(items), self.page_size):
                return list(found.values())
            number += 1

    async def create_entry(self, organization_id: str, new: NewPasswordEntry) -> PasswordEntry:
        attributes: dict[str, Any] = {
            "name": new.name,
            "username": new.username,
            "password": new.password,
            "notes": new.notes,
        }
        if self.password_category_id is not None:
            attributes["password-category-id"] = self.password_category_id
        document = {"data": {"type": "passwords", "attributes": attributes}}
        answer = await self._send(
            "POST", self._passwords(organization_id), body=document, secret=new.password
        )
        return self._created(answer)

    async def set_password(self, organization_id: str, entry_id: str, password: str) -> None:
        attributes = {"password": password, "password-updated-at": _now()}
        document = {"data": {"type": "passwords", "id": entry_id, "attributes": attributes}}
        path = f"{self._passwords(organization_id)}/{quote(entry_id, safe='')}"
        await self._send("PATCH", path, body=document, secret=password, idempotent=True)

    # -- helpers ------------------------------------------------------------------

    @staticmethod
    def _passwords(organization_id: str) -> str:
        return f"/organizations/{quote(organization_id, safe='')}/relationships/passwords"

    async def _page(self, organization_id: str, number: int) -> Answer:
        params = {"page[size]": str(self.page_size), "page[number]": str(number), "sort": "id"}
        return await self._send("GET", self._passwords(organization_id), params=params)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        secret: str = "",
        idempotent: bool | None = None,
    ) -> Answer:
        headers = WRITE_HEADERS if body is not None else None
        with _scrubbed(self._api_key, secret):
            return await self.http.request(
                method, path, params=params, json_body=body, headers=headers, idempotent=idempotent
            )

    @staticmethod
    def _created(answer: Answer) -> PasswordEntry:
        body = _json(answer)
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, Mapping) or data.get("id") is None:
            raise MaybeDone(f"IT Glue answered a create {answer.status} without the record")
        return _entry(data)


def connect(
    config: IntegrationConfig, context: ConnectContext, *, page_size: int = PAGE_SIZE
) -> DocumentationConnector:
    """The connector of one IT Glue integration (``page_size`` smaller only in tests)."""
    settings = ITGlueSettings.model_validate(dict(config.settings), strict=False)
    api_key = config.credentials["api_key"]
    http = ITGlueHttp(
        context.session,
        config.base_url,
        auth=StaticAuth({"x-api-key": api_key}),
        pacer=context.pacer,
        policy=context.policy,
        metrics=context.metrics,
        default_headers={"Accept": JSONAPI},
        slots=context.slots,
    )
    return ITGlueConnector(
        http, api_key, password_category_id=settings.password_category_id, page_size=page_size
    )
