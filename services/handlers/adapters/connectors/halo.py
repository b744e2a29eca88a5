"""Halo PSA: the end users ("Users") of a client, for ``psa.contact.link``.

``base_url`` is the instance (``https://acme.halopsa.com``): the token endpoint is
``{base}/auth/token``, the API ``{base}/api``.

From the vendor's documentation (and reproduced by the simulator):

- token: ``POST /auth/token`` (``?tenant=`` when the credentials have one), a form
  with ``grant_type=client_credentials``, ``client_id``, ``client_secret``,
  ``scope=all``, answered ``{"access_token", "token_type": "Bearer", "expires_in"}``;
  a wrong client is 401 ``{"error": "invalid_client", ...}``. Token requests are
  not rate limited: they go straight through the session, not the pacer;
- ``GET /api/Users?search=&client_id=&includeinactive=false&pageinate=true&page_size=&page_no=``
  answers ``{"record_count", "users": [...]}`` (``record_count``: every match);
- ``POST /api/Users`` takes an ARRAY of users (one with an ``id`` would update
  that user: we never send one); user fields ``firstname``, ``surname``, ``name``,
  ``emailaddress``, ``phonenumber``, ``mobilenumber``, ``activedirectory_dn``,
  ``inactive``.

UNVERIFIED, and what this module chose:

- The token is cached until a minute before ``expires_in`` runs out (half its
  life when that is under two minutes); one token request at a time. A 401 on
  the API drops it and the base client retries once with a fresh one. A token
  request refused with 400/401/403 is :class:`VendorAuthError` (bad client,
  tenant, grant or scope: the credentials do not work); 429, 5xx, timeouts and
  dropped connections are retried with the retry policy's back-off (honouring
  ``Retry-After``) until its ``give_up_after``, then :class:`VendorUnavailable`.
- The create answers the saved user, as an object (a list is accepted too:
  the element carrying our marker, else the first).
- The marker goes into ``activedirectory_dn``; ``marker_limit = 255`` (the
  simulator has no limit; a DN column of 255 is the cautious guess). A Halo
  that syncs users from Active Directory may own that field: such a partner's
  synced users are matched by email, never by our marker.
- A search sends ``search=`` the email, or the full name (Halo's ``name`` is
  ``firstname surname``); Halo's search is a substring search, the rule decides.
  Pages of 100 are read until one is empty, or one is short and
  ``record_count`` users came: a full last page costs one more (empty) request,
  and neither a server that answers smaller pages than asked nor a
  ``record_count`` that counts only the page ends the search early.
- Errors: ``{"message"}`` (400), ``{"error", "error_description"}`` (tokens and
  401s), text (429 ``Rate Limit Reached``).
- ``PsaContact.url``: ``{base}/customers?clientid={client}&siteid={site}&userid={id}``.
- A user with ``inactive: true`` is not a candidate; the phone is
  ``phonenumber``, else ``mobilenumber``; the emails are ``emailaddress`` and,
  when present, ``email2`` and ``email3``. A user with neither ``firstname`` nor
  ``surname`` has ``name`` as its first name.
"""

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import (
    Answer,
    VendorHttp,
)
from services.handlers.adapters.oauth import ClientCredentialsToken, parse_json
from services.handlers.domain.errors import (
    MaybeDone,
    VendorAuthError,
    VendorRejected,
)
from services.handlers.domain.matching import ContactQuery
from services.handlers.domain.records import NewContact, PsaContact
from services.handlers.service_layer.ports import PsaConnector

log = logging.getLogger(__name__)

SYSTEM = "halo"
TOKEN_PATH = "/auth/token"
USERS = "/api/Users"
PAGE_SIZE = 100
MAX_PAGES = 200
MARKER_MAX = 255
TOKEN_MARGIN = 60.0
MESSAGE_MAX = 500
EMAIL_FIELDS = ("emailaddress", "email2", "email3")
JSON_BODY = {"Content-Type": "application/json"}

Record = Mapping[str, Any]


class HaloToken(ClientCredentialsToken):
    """The :class:`~services.handlers.adapters.http.Auth` of Halo: a cached token."""

    margin = TOKEN_MARGIN

    def reason(self, body: Any) -> str:
        return _reason(body)


class HaloHttp(VendorHttp):
    system = SYSTEM

    def error_message(self, answer: Answer) -> str:
        body = parse_json(answer.text)
        if isinstance(body, Mapping) and (body.get("message") or body.get("error")):
            return _reason(body)[:MESSAGE_MAX]
        return super().error_message(answer)


class HaloConnector:
    """The :class:`PsaConnector` of one partner's Halo PSA."""

    system = SYSTEM
    marker_limit: int | None = MARKER_MAX

    def __init__(self, http: HaloHttp, *, page_size: int = PAGE_SIZE) -> None:
        self.http = http
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"HaloConnector(base_url={self.http.base_url!r})"

    async def search_contacts(self, company_id: str, query: ContactQuery) -> list[PsaContact]:
        search = " ".join((query.email or query.full_name or "").split())
        if not search:
            return []
        params = {
            "search": search,
            "client_id": str(_client(company_id)),
            "includeinactive": "false",
            "pageinate": "true",
            "page_size": str(self.page_size),
        }
        users = await self._all_pages(params)
        return [self._contact(u) for u in users if not u.get("inactive")]

    async def create_contact(self, company_id: str, new: NewContact) -> PsaContact:
        user = new_user(_client(company_id), new)
        answer = await self.http.request("POST", USERS, json_body=[user], headers=JSON_BODY)
        saved = _saved(parse_json(answer.text), new.marker)
        if saved is None:
            raise MaybeDone("Halo answered the create without the user it saved")
        return self._contact(saved)

    async def _all_pages(self, params: Mapping[str, str]) -> list[Record]:
        found: list[Record] = []
        for number in range(1, MAX_PAGES + 1):
            page = {**params, "page_no": str(number)}
            answer = await self.http.request("GET", USERS, params=page)
            users, total = _page(answer)
            found.extend(users)
            if not users or (len(users) < self.page_size and len(found) >= total):
                return found
        raise VendorRejected(f"more than {MAX_PAGES} pages of users; narrow the search")

    def _contact(self, user: Record) -> PsaContact:
        first, last = _text(user.get("firstname")), _text(user.get("surname"))
        if not first and not last:
            first = _text(user.get("name"))
        phones = (_text(user.get("phonenumber")), _text(user.get("mobilenumber")))
        return PsaContact(
            id=str(user["id"]),
            first_name=first,
            last_name=last,
            emails=tuple(e for e in (_text(user.get(f)) for f in EMAIL_FIELDS) if e),
            phone=next((p for p in phones if p), None),
            marker=_text(user.get("activedirectory_dn")) or None,
            url=self._url(user),
        )

    def _url(self, user: Record) -> str:
        where = {"clientid": user.get("client_id"), "siteid": user.get("site_id")}
        query = {k: str(v) for k, v in where.items() if v is not None}
        return f"{self.http.base_url}/customers?{urlencode({**query, 'userid': user['id']})}"


def new_user(client: int, new: NewContact) -> dict[str, Any]:
    first, last = " ".join(new.first_name.split()), " ".join(new.last_name.split())
    user: dict[str, Any] = {
        "firstname": first,
        "surname": last,
        "name": " ".join(p for p in (first, last) if p) or "-",
        "client_id": client,
        "activedirectory_dn": new.marker,
    }
    if new.email:
        user["emailaddress"] = new.email
    if new.phone:
        user["phonenumber"] = new.phone
    return user


# -- answers ----------------------------------------------------------------------


def _reason(body: Any) -> str:
    """The vendor's words in an error body (never ours)."""
    if not isinstance(body, Mapping):
        return "no reason given"
    parts = [body.get("error"), body.get("error_description"), body.get("message")]
    return ": ".join(str(p) for p in parts if p) or "no reason given"


def _page(answer: Answer) -> tuple[list[Record], int]:
    body = parse_json(answer.text)
    users = body.get("users") if isinstance(body, Mapping) else None
    if not isinstance(users, list):
        raise VendorRejected("Halo answered a users search without users")
    total = body.get("record_count") if isinstance(body, Mapping) else None
    records = [u for u in users if isinstance(u, Mapping) and "id" in u]
    return records, total if isinstance(total, int) else 0


def _saved(body: Any, marker: str) -> Record | None:
    """The saved user of a create's answer (an object, or a list of them)."""
    users = body if isinstance(body, list) else [body]
    saved = [u for u in users if isinstance(u, Mapping) and "id" in u]
    ours = [u for u in saved if u.get("activedirectory_dn") == marker]
    return next(iter(ours or saved), None)


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _client(company_id: str) -> int:
    if not company_id.strip().isdigit():
        raise VendorRejected(f"a Halo client id is a number, not {company_id!r}")
    return int(company_id)


# -- composition ------------------------------------------------------------------


def _credential(credentials: Mapping[str, str], name: str) -> str:
    value = credentials.get(name)
    if not value:
        raise VendorAuthError(f"the integration's credentials have no {name}")
    return value


def token_url(base_url: str, tenant: str | None) -> str:
    url = base_url.rstrip("/") + TOKEN_PATH
    return f"{url}?{urlencode({'tenant': tenant})}" if tenant else url


def connect(
    config: IntegrationConfig, context: ConnectContext, *, page_size: int = PAGE_SIZE
) -> PsaConnector:
    """The connector of one integration (no I/O until it is used: the token comes later)."""
    credentials = config.credentials
    form = {
        "grant_type": "client_credentials",
        "client_id": _credential(credentials, "client_id"),
        "client_secret": _credential(credentials, "client_secret"),
        "scope": "all",
    }
    token = HaloToken(
        context.session,
        token_url(config.base_url, credentials.get("tenant")),
        form,
        context.policy,
    )
    http = HaloHttp(
        context.session,
        config.base_url,
        auth=token,
        pacer=context.pacer,
        policy=context.policy,
        metrics=context.metrics,
        default_headers={"Accept": "application/json"},
        slots=context.slots,
    )
    return HaloConnector(http, page_size=page_size)
