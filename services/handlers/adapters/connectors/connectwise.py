"""ConnectWise Manage (PSA) REST 3.0: the contacts of a company, for ``psa.contact.link``.

``base_url`` ends in ``/apis/3.0`` (``https://api-na.myconnectwise.net/v4_6_release/apis/3.0``).

From the vendor's documentation (and reproduced by the simulator):

- auth: ``Authorization: Basic b64("{company_id}+{public_key}:{private_key}")`` and
  the required ``clientId`` header; a refusal is 401;
- ``GET /company/contacts`` with ``conditions`` (the contact's own fields) and
  ``childConditions`` (``communicationItems/...``); strings double-quoted with
  ``\\"`` and ``\\\\`` escaped; ``page``/``pageSize`` (at most 1000) and a
  ``Link: <...>; rel="next"`` header while more pages follow;
- ``POST /company/contacts`` with ``firstName`` (the one required field),
  ``lastName``, ``company: {id}``, ``communicationItems`` (``type: {id}``, ``value``);
- errors ``{"code", "message", "errors": [{"code", "message", "resource", "field"}]}``.

UNVERIFIED, and what this module chose:

- Names longer than 30 characters are refused (the simulator's rule): both are
  cut to 30 (whitespace collapsed, trailing space dropped), and a search by name
  looks for the cut names too, so a redo finds what a create cut. A blank
  first name is sent as ``-``; a blank last name is left out.
- Communication type ids 1 (Email) and 2 (Direct, a phone) are the defaults of
  a ConnectWise site; a site that renumbered them needs another setting.
- The marker goes into the contact custom field ``marker_custom_field_id``
  (a Text field, 250 characters: ``marker_limit = 250``); without that setting
  nothing is written and ``marker_limit`` is None (no field, so no limit; the
  rule then recognises a redo by email or name only, as a match).
- A search by name asks for every split of the words into first and last name
  (``Mary Ann Smith``: ``Mary`` + ``Ann Smith``, ``Mary Ann`` + ``Smith``, the
  whole as first name), at most 9 of them, ORed: the rule compares full names,
  so any split is a candidate. A one-word name is looked for as a first name.
- A ``Link`` to the next page is followed on ``base_url``'s own origin (its path
  and query kept), so the credentials never go to another host.
- ``PsaContact.url`` opens the contact in the web UI: the API host without its
  ``api-`` prefix (``api-na.myconnectwise.net`` -> ``na.myconnectwise.net``), the
  codebase of ``base_url``, then
  ``/services/system_io/router/openrecord.rails?recordType=ContactFV&recid={id}``
  (the ``companyName`` parameter is left out: it is a credential field).
- A contact with ``inactiveFlag: true`` is not a candidate; the first phone
  item (Direct, Cell, Home: ``communicationType`` Phone) is the contact's phone.
- ``Accept: application/json``, without the optional versioned media type (the
  API's default version answers); bodies go with ``Content-Type: application/json``.
- The settings are read with :class:`ConnectWiseSettings`, leniently (``"7"`` is 7).
"""

import base64
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from schemas.providers import ConnectWiseSettings
from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import Answer, StaticAuth, VendorHttp
from services.handlers.domain.errors import MaybeDone, VendorAuthError, VendorRejected
from services.handlers.domain.matching import ContactQuery
from services.handlers.domain.records import NewContact, PsaContact
from services.handlers.service_layer.ports import PsaConnector

SYSTEM = "connectwise"
CONTACTS = "/company/contacts"
PAGE_SIZE = 1000
MAX_PAGES = 200
NAME_MAX = 30
MARKER_MAX = 250
EMAIL_TYPE_ID = 1
PHONE_TYPE_ID = 2
LAST_NAME_WORDS = 8  # most words a searched last name may take (bounds the OR)
MESSAGE_MAX = 500
JSON_BODY = {"Content-Type": "application/json"}
OPEN_RECORD = "/services/system_io/router/openrecord.rails?recordType=ContactFV&recid="

_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL_NEXT = re.compile(r'\brel\s*=\s*"?next\b')

Record = Mapping[str, Any]


class ConnectWiseHttp(VendorHttp):
    system = SYSTEM

    def error_message(self, answer: Answer) -> str:
        """``message``, then each error's ``field: message``."""
        body = _json(answer)
        if not isinstance(body, Mapping) or not body.get("message"):
            return super().error_message(answer)
        details = [
            ": ".join(str(e[k]) for k in ("field", "message") if e.get(k))
            for e in body.get("errors") or ()
            if isinstance(e, Mapping)
        ]
        text = str(body["message"])
        if any(details):
            text += " (" + "; ".join(d for d in details if d) + ")"
        return text[:MESSAGE_MAX]


class ConnectWiseConnector:
    """The :class:`PsaConnector` of one partner's ConnectWise Manage."""

    system = SYSTEM

    def __init__(
        self, http: ConnectWiseHttp, *, marker_field_id: int | None, page_size: int = PAGE_SIZE
    ) -> None:
        self.http = http
        self.marker_field_id = marker_field_id
        self.marker_limit: int | None = MARKER_MAX if marker_field_id is not None else None
        self.page_size = page_size
        self._ui = ui_base(http.base_url)

    def __repr__(self) -> str:
        return f"ConnectWiseConnector(base_url={self.http.base_url!r})"

    async def search_contacts(self, company_id: str, query: ContactQuery) -> list[PsaContact]:
        params = search_params(_company(company_id), query)
        if params is None:
            return []
        params["pageSize"] = str(self.page_size)
        records = await self._all_pages(params)
        return [self._contact(r) for r in records if not r.get("inactiveFlag")]

    async def create_contact(self, company_id: str, new: NewContact) -> PsaContact:
        body = self._new_contact(_company(company_id), new)
        answer = await self.http.request("POST", CONTACTS, json_body=body, headers=JSON_BODY)
        created = _json(answer)
        if not isinstance(created, Mapping) or "id" not in created:
            raise MaybeDone("ConnectWise answered the create without the contact it made")
        return self._contact(created)

    # -- internals --------------------------------------------------------------

    async def _all_pages(self, params: dict[str, str]) -> list[Record]:
        answer = await self.http.request("GET", CONTACTS, params={**params, "page": "1"})
        found: list[Record] = []
        for _ in range(MAX_PAGES):
            found.extend(_records(answer))
            link = next_link(answer.headers.get("Link", ""))
            if link is None:
                return found
            answer = await self.http.request("GET", on_origin(link, self.http.base_url))
        raise VendorRejected(f"more than {MAX_PAGES} pages of contacts; narrow the search")

    def _new_contact(self, company: int, new: NewContact) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        if new.email:
            items.append(_item(EMAIL_TYPE_ID, new.email, "Email"))
        if new.phone:
            items.append(_item(PHONE_TYPE_ID, new.phone, "Phone"))
        body: dict[str, Any] = {
            "firstName": short_name(new.first_name) or "-",
            "company": {"id": company},
            "communicationItems": items,
        }
        if short_name(new.last_name):
            body["lastName"] = short_name(new.last_name)
        if self.marker_field_id is not None:
            body["customFields"] = [{"id": self.marker_field_id, "value": new.marker}]
        return body

    def _contact(self, record: Record) -> PsaContact:
        items = [i for i in record.get("communicationItems") or () if isinstance(i, Mapping)]
        values = [(_kind(i), str(i.get("value") or "").strip()) for i in items]
        contact_id = str(record["id"])
        return PsaContact(
            id=contact_id,
            first_name=str(record.get("firstName") or ""),
            last_name=str(record.get("lastName") or ""),
            emails=tuple(v for kind, v in values if kind == "Email" and v),
            phone=next((v for kind, v in values if kind == "Phone" and v), None),
            marker=self._marker(record),
            url=f"{self._ui}{OPEN_RECORD}{contact_id}",
        )

    def _marker(self, record: Record) -> str | None:
        if self.marker_field_id is None:
            return None
        for field in record.get("customFields") or ():
            if isinstance(field, Mapping) and field.get("id") == self.marker_field_id:
                value = field.get("value")
                return str(value) if value not in (None, "") else None
        return None


# -- conditions -------------------------------------------------------------------


def quoted(text: str) -> str:
    """A string literal of the conditions language."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def short_name(text: str) -> str:
    """A first or last name as ConnectWise holds it: single-spaced, at most 30 characters."""
    return " ".join(text.split())[:NAME_MAX].rstrip()


def name_condition(full_name: str) -> str | None:
    """Every split of the words into first and last name, ORed (None: no words)."""
    words = full_name.split()
    if not words:
        return None
    clauses: list[str] = []
    for cut in range(max(1, len(words) - LAST_NAME_WORDS), len(words) + 1):
        first = short_name(" ".join(words[:cut]))
        last = short_name(" ".join(words[cut:]))
        clause = f"firstName={quoted(first)}"
        if last:
            clause += f" AND lastName={quoted(last)}"
        if clause not in clauses:
            clauses.append(clause)
    return " OR ".join(f"({c})" for c in clauses)


def search_params(company: int, query: ContactQuery) -> dict[str, str] | None:
    """The query string of a contacts search (None: nothing to search by)."""
    in_company = f"company/id={company}"
    if query.email:
        email = quoted(query.email.strip())
        return {
            "conditions": in_company,
            "childConditions": f"communicationItems/value={email}"
            ' AND communicationItems/communicationType="Email"',
        }
    names = name_condition(query.full_name or "")
    if names is None:
        return None
    return {"conditions": f"{in_company} AND ({names})"}


# -- answers and URLs -------------------------------------------------------------


def next_link(header: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header."""
    for target, params in _LINK.findall(header):
        if _REL_NEXT.search(params):
            return str(target)
    return None


def on_origin(link: str, base_url: str) -> str:
    """``link`` with ``base_url``'s scheme and host (its path and query kept)."""
    base, target = urlsplit(base_url), urlsplit(link)
    return urlunsplit((base.scheme, base.netloc, target.path, target.query, ""))


def ui_base(base_url: str) -> str:
    """The web UI of the API's site: ``api-`` dropped from the host, the codebase kept."""
    parts = urlsplit(base_url)
    host = parts.netloc
    if host.lower().startswith("api-"):
        host = host[len("api-") :]
    codebase = parts.path.rstrip("/").removesuffix("/apis/3.0")
    return urlunsplit((parts.scheme, host, codebase, "", ""))


def _json(answer: Answer) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _records(answer: Answer) -> list[Record]:
    body = _json(answer)
    if not isinstance(body, list):
        raise VendorRejected("ConnectWise answered a contacts search with something not a list")
    return [r for r in body if isinstance(r, Mapping) and "id" in r]


def _item(type_id: int, value: str, kind: str) -> dict[str, Any]:
    return {"type": {"id": type_id}, "value": value, "defaultFlag": True, "communicationType": kind}


def _kind(item: Record) -> str:
    """``Email``, ``Phone``, ``Fax`` ... of a communication item."""
    kind = item.get("communicationType")
    if isinstance(kind, str) and kind:
        return kind
    type_ = item.get("type")
    return "Email" if isinstance(type_, Mapping) and type_.get("id") == EMAIL_TYPE_ID else ""


def _company(company_id: str) -> int:
    if not company_id.strip().isdigit():
        raise VendorRejected(f"a ConnectWise company id is a number, not {company_id!r}")
    return int(company_id)


# -- composition ------------------------------------------------------------------


def _credential(credentials: Mapping[str, str], name: str) -> str:
    value = credentials.get(name)
    if not value:
        raise VendorAuthError(f"the integration's credentials have no {name}")
    return value


def auth_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    company, public, private, client_id = (
        _credential(credentials, name)
        for name in ("company_id", "public_key", "private_key", "client_id")
    )
    token = base64.b64encode(f"{company}+{public}:{private}".encode()).decode()
    return {"Authorization": f"Basic {token}", "clientId": client_id}


def connect(
    config: IntegrationConfig, context: ConnectContext, *, page_size: int = PAGE_SIZE
) -> PsaConnector:
    """The connector of one integration (no I/O until it is used)."""
    settings = ConnectWiseSettings.model_validate(dict(config.settings), strict=False)
    http = ConnectWiseHttp(
        context.session,
        config.base_url,
        auth=StaticAuth(auth_headers(config.credentials)),
        pacer=context.pacer,
        policy=context.policy,
        metrics=context.metrics,
        default_headers={"Accept": "application/json"},
        slots=context.slots,
    )
    return ConnectWiseConnector(
        http, marker_field_id=settings.marker_custom_field_id, page_size=page_size
    )
