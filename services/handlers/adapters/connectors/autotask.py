"""Autotask PSA REST: the contacts of a company, for ``psa.contact.link``.

``base_url`` is the zone's URL (``https://webservicesN.autotask.net/atservicesrest``);
the paths below it are ``/V1.0/...``. Zone discovery is not done here: the
integration's ``base_url`` already names the zone.

From the vendor's documentation (and reproduced by the simulator):

- auth: headers ``ApiIntegrationCode``, ``UserName``, ``Secret``; a refusal is 401;
- ``POST /V1.0/Contacts/query`` with ``{"filter": [...], "MaxRecords": 500}``
  (items ANDed, ``{"op": "or", "items": [...]}`` groups), answered
  ``{"items", "pageDetails": {"nextPageUrl", ...}}``; ``nextPageUrl`` is a cursor
  URL fetched with GET. The query changes nothing: it is sent ``idempotent``;
- ``POST /V1.0/Companies/{id}/Contacts`` creates; ``GET /V1.0/Contacts/{id}``
  answers ``{"item": ...}``; contacts have ``emailAddress``, ``emailAddress2``,
  ``emailAddress3``, ``phone``, ``mobilePhone``, ``externalID``, ``isActive``;
- validation errors come as HTTP **500** ``{"errors": ["..."]}``: a 500 with a
  non-empty ``errors`` list is a refusal (:class:`VendorRejected`, even for a
  create: it was refused, not lost); a 500 without one, and 502/503/504, are
  retried like any 5xx;
- 3 requests in flight at most: ``context.slots`` holds them.

UNVERIFIED, and what this module chose:

- The create answers ``{"itemId": N}`` (as the simulator does); the contact is
  then read back with ``GET /V1.0/Contacts/{N}``, so the result carries what
  Autotask stored; when that answers ``{"item": null}`` the contact is built
  from what was sent. A read-back that fails raises: the contact exists with
  our marker, and the redo finds it.
- ``lastName`` is required: a name without one is created with the last name
  ``-``, and a lone ``-`` is read back as no last name (so the contact's full
  name is the account's). A blank first name is ``-`` too.
- Lengths (the simulator's): names cut to 50 characters (whitespace collapsed),
  a phone longer than 25 characters is left out rather than cut (a cut number
  is a wrong number). ``externalID`` holds 50: ``marker_limit = 50``.
- A search by name asks for every split of the words into first and last name
  (at most 9, ORed), as the ConnectWise connector does; a one-word name is
  looked for as a first name.
- ``nextPageUrl`` is followed on ``base_url``'s own origin (its path and query
  kept), so the credentials never go to another host.
- ``PsaContact.url``: Autotask's ``ExecuteCommand`` page on the zone's web host
  (``webservicesN.autotask.net`` -> ``wwN.autotask.net``, any other host kept):
  ``/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenContact&ContactID={id}``.
- ``isActive`` 0 (or false) is not a candidate; the phone is ``phone``, else
  ``mobilePhone``.
"""

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import Answer, StaticAuth, VendorHttp
from services.handlers.domain.errors import MaybeDone, VendorAuthError, VendorRejected
from services.handlers.domain.matching import ContactQuery
from services.handlers.domain.records import NewContact, PsaContact
from services.handlers.service_layer.ports import PsaConnector

SYSTEM = "autotask"
QUERY = "/V1.0/Contacts/query"
PAGE_SIZE = 500
MAX_PAGES = 200
NAME_MAX = 50
PHONE_MAX = 25
MARKER_MAX = 50
NO_NAME = "-"
EMAIL_FIELDS = ("emailAddress", "emailAddress2", "emailAddress3")
LAST_NAME_WORDS = 8
MESSAGE_MAX = 500
JSON_BODY = {"Content-Type": "application/json"}
OPEN_CONTACT = "/Autotask/AutotaskExtend/ExecuteCommand.aspx?Code=OpenContact&ContactID="

_ZONE_HOST = re.compile(r"^webservices(\d*)\.", re.IGNORECASE)

Record = Mapping[str, Any]
Filter = dict[str, Any]


class AutotaskHttp(VendorHttp):
    system = SYSTEM

    def error_message(self, answer: Answer) -> str:
        errors = _errors(answer)
        if not errors:
            return super().error_message(answer)
        return "; ".join(errors)[:MESSAGE_MAX]

    def is_rejection(self, answer: Answer) -> bool:
        """Autotask's validation errors: HTTP 500 with ``{"errors": [...]}``."""
        return answer.status == 500 and bool(_errors(answer))


class AutotaskConnector:
    """The :class:`PsaConnector` of one partner's Autotask."""

    system = SYSTEM
    marker_limit: int | None = MARKER_MAX

    def __init__(self, http: AutotaskHttp, *, page_size: int = PAGE_SIZE) -> None:
        self.http = http
        self.page_size = page_size
        self._ui = ui_base(http.base_url)

    def __repr__(self) -> str:
        return f"AutotaskConnector(base_url={self.http.base_url!r})"

    async def search_contacts(self, company_id: str, query: ContactQuery) -> list[PsaContact]:
        narrowing = contact_filter(query)
        if narrowing is None:
            return []
        in_company: Filter = {"op": "eq", "field": "companyID", "value": _company(company_id)}
        search = {"filter": [in_company, narrowing], "MaxRecords": self.page_size}
        records = await self._all_pages(search)
        return [self._contact(r) for r in records if r.get("isActive") not in (0, False)]

    async def create_contact(self, company_id: str, new: NewContact) -> PsaContact:
        company = _company(company_id)
        body = new_contact(company, new)
        path = f"/V1.0/Companies/{company}/Contacts"
        answer = await self.http.request("POST", path, json_body=body, headers=JSON_BODY)
        created = _json(answer)
        item_id = created.get("itemId") if isinstance(created, Mapping) else None
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            raise MaybeDone("Autotask answered the create without the new contact's id")
        stored = await self._contact_by_id(item_id)
        return self._contact(stored if stored is not None else {**body, "id": item_id})

    # -- internals --------------------------------------------------------------

    async def _all_pages(self, search: Mapping[str, Any]) -> list[Record]:
        answer = await self.http.request(
            "POST", QUERY, json_body=search, headers=JSON_BODY, idempotent=True
        )
        found: list[Record] = []
        for _ in range(MAX_PAGES):
            items, next_url = _page(answer)
            found.extend(items)
            if not next_url:
                return found
            answer = await self.http.request("GET", on_origin(next_url, self.http.base_url))
        raise VendorRejected(f"more than {MAX_PAGES} pages of contacts; narrow the search")

    async def _contact_by_id(self, contact_id: int) -> Record | None:
        answer = await self.http.request("GET", f"/V1.0/Contacts/{contact_id}")
        body = _json(answer)
        item = body.get("item") if isinstance(body, Mapping) else None
        return item if isinstance(item, Mapping) and "id" in item else None

    def _contact(self, record: Record) -> PsaContact:
        contact_id = str(record["id"])
        last = _text(record.get("lastName"))
        phones = (_text(record.get("phone")), _text(record.get("mobilePhone")))
        return PsaContact(
            id=contact_id,
            first_name=_text(record.get("firstName")),
            last_name="" if last == NO_NAME else last,
            emails=tuple(e for e in (_text(record.get(f)) for f in EMAIL_FIELDS) if e),
            phone=next((p for p in phones if p), None),
            marker=_text(record.get("externalID")) or None,
            url=f"{self._ui}{OPEN_CONTACT}{contact_id}",
        )


# -- filters and bodies -----------------------------------------------------------


def short_name(text: str) -> str:
    return " ".join(text.split())[:NAME_MAX].rstrip()


def _eq(field: str, value: Any) -> Filter:
    return {"op": "eq", "field": field, "value": value}


def name_filter(full_name: str) -> Filter | None:
    """Every split of the words into first and last name, ORed (None: no words)."""
    words = full_name.split()
    if not words:
        return None
    choices: list[Filter] = []
    for cut in range(max(1, len(words) - LAST_NAME_WORDS), len(words) + 1):
        first = _eq("firstName", short_name(" ".join(words[:cut])))
        last = short_name(" ".join(words[cut:]))
        choice = {"op": "and", "items": [first, _eq("lastName", last)]} if last else first
        if choice not in choices:
            choices.append(choice)
    return choices[0] if len(choices) == 1 else {"op": "or", "items": choices}


def contact_filter(query: ContactQuery) -> Filter | None:
    """What narrows a company's contacts to the query's (None: nothing to search by)."""
    if query.email:
        email = query.email.strip()
        return {"op": "or", "items": [_eq(field, email) for field in EMAIL_FIELDS]}
    return name_filter(query.full_name or "")


def new_contact(company: int, new: NewContact) -> dict[str, Any]:
    body: dict[str, Any] = {
        "companyID": company,
        "firstName": short_name(new.first_name) or NO_NAME,
        "lastName": short_name(new.last_name) or NO_NAME,
        "isActive": 1,
        "externalID": new.marker,
    }
    if new.email:
        body["emailAddress"] = new.email
    phone = (new.phone or "").strip()
    if phone and len(phone) <= PHONE_MAX:
        body["phone"] = phone
    return body


# -- answers and URLs -------------------------------------------------------------


def _json(answer: Answer) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _errors(answer: Answer) -> list[str]:
    body = _json(answer)
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if not isinstance(errors, list):
        return []
    return [str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errors if e]


def _page(answer: Answer) -> tuple[list[Record], str | None]:
    body = _json(answer)
    items = body.get("items") if isinstance(body, Mapping) else None
    if not isinstance(items, list):
        raise VendorRejected("Autotask answered a contacts query without items")
    details = body.get("pageDetails") if isinstance(body, Mapping) else None
    next_url = details.get("nextPageUrl") if isinstance(details, Mapping) else None
    records = [r for r in items if isinstance(r, Mapping) and "id" in r]
    return records, next_url if isinstance(next_url, str) and next_url else None


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def on_origin(link: str, base_url: str) -> str:
    """``link`` with ``base_url``'s scheme and host (its path and query kept)."""
    base, target = urlsplit(base_url), urlsplit(link)
    return urlunsplit((base.scheme, base.netloc, target.path, target.query, ""))


def ui_base(base_url: str) -> str:
    """The zone's web host: ``webservicesN.autotask.net`` -> ``wwN.autotask.net``."""
    parts = urlsplit(base_url)
    host = _ZONE_HOST.sub(lambda m: f"ww{m.group(1)}.", parts.netloc, count=1)
    return urlunsplit((parts.scheme, host, "", "", ""))


def _company(company_id: str) -> int:
    if not company_id.strip().isdigit():
        raise VendorRejected(f"an Autotask company id is a number, not {company_id!r}")
    return int(company_id)


# -- composition ------------------------------------------------------------------


def _credential(credentials: Mapping[str, str], name: str) -> str:
    value = credentials.get(name)
    if not value:
        raise VendorAuthError(f"the integration's credentials have no {name}")
    return value


def auth_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    return {
        "ApiIntegrationCode": _credential(credentials, "integration_code"),
        "UserName": _credential(credentials, "username"),
        "Secret": _credential(credentials, "secret"),
    }


def connect(
    config: IntegrationConfig, context: ConnectContext, *, page_size: int = PAGE_SIZE
) -> PsaConnector:
    """The connector of one integration (no I/O until it is used)."""
    http = AutotaskHttp(
        context.session,
        config.base_url,
        auth=StaticAuth(auth_headers(config.credentials)),
        pacer=context.pacer,
        policy=context.policy,
        metrics=context.metrics,
        default_headers={"Accept": "application/json"},
        slots=context.slots,
    )
    return AutotaskConnector(http, page_size=page_size)
