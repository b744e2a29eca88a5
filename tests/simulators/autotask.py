"""Autotask PSA REST API: zone discovery, companies and contacts.

Base URL: the zone's ``url`` (``https://webservicesN.autotask.net/atservicesrest``);
this app serves the paths below it (``/V1.0/...``). ``GET
/V1.0/zoneInformation?user=`` answers this simulator's own base URL, so a
client that discovers its zone ends up here.

Auth: headers ``ApiIntegrationCode``, ``UserName``, ``Secret``; any missing or
wrong: 401. Limits: 10,000 requests per rolling hour and at most 3 requests in
flight (both 429). zoneInformation needs no credentials and is not counted
(it is served by a different host in production).

UNVERIFIED points, and what this simulator does:

- The status past either threshold is **429**, body ``{"errors": ["..."]}``,
  with ``Retry-After`` (configurable).
- The in-flight limit is counted over all endpoints together (stricter than
  "3 threads per endpoint").
- 401 body: ``{"errors": ["..."]}``.
- Create answers ``{"itemId": N}``; validation problems (missing or too long
  fields, unknown company or field) answer **HTTP 500** ``{"errors": ["..."]}``,
  as the real API often does. Unknown body fields are refused (stricter than
  the real API, which ignores them), so typos surface.
- Required on create: ``companyID`` (from the URL), ``firstName``, ``lastName``,
  ``isActive`` (as ``entityInformation/fields`` reports). Lengths: names and
  ``externalID`` 50, ``phone``/``mobilePhone`` 25, emails 254 — a 64-character
  SHA-256 hex digest does NOT fit ``externalID``.
- ``GET /V1.0/Contacts/{id}`` for a missing id answers 200 ``{"item": null}``.
- A query needs at least one filter item; ``MaxRecords`` is 1..500 (default 500).
- Results are sorted by id; ``nextPageUrl``/``prevPageUrl`` are full URLs of
  ``GET .../query/next`` and ``.../query/prev`` carrying a ``paging`` cursor and
  the original ``search``, usable as is (GET, no body).
- Paths are case-sensitive here (documented spelling ``V1.0``, ``Contacts``).
- Duplicate contacts are allowed.
"""

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from yarl import URL

from .autotask_query import QueryError, compile_filter, lower_keys
from .base import VendorSim
from .http import JSONDict, SimHTTPError, json_response, project
from .limits import RateLimit

CONTACT_FIELDS: dict[str, type] = {
    "id": int,
    "companyID": int,
    "firstName": str,
    "lastName": str,
    "title": str,
    "emailAddress": str,
    "emailAddress2": str,
    "emailAddress3": str,
    "phone": str,
    "mobilePhone": str,
    "externalID": str,
    "isActive": int,
    "createDate": str,
    "lastModifiedDate": str,
}
MAX_LENGTHS = {
    "firstName": 50,
    "lastName": 50,
    "title": 50,
    "emailAddress": 254,
    "emailAddress2": 254,
    "emailAddress3": 254,
    "phone": 25,
    "mobilePhone": 25,
    "externalID": 50,
}
REQUIRED = ("companyID", "firstName", "lastName", "isActive")
READ_ONLY = ("id", "createDate", "lastModifiedDate")
MAX_RECORDS = 500
QUERY = "/V1.0/Contacts/query"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def at_errors(status: int, *messages: str) -> web.Response:
    return json_response({"errors": list(messages)}, status)


def _fail(*messages: str) -> SimHTTPError:
    """Autotask's answer to a request it refuses: HTTP 500 with the reasons."""
    return SimHTTPError(at_errors(500, *messages))


class AutotaskSim(VendorSim):
    name = "autotask"
    DEFAULT_RATE_LIMIT = RateLimit(10_000, 3600.0)
    DEFAULT_CONCURRENCY_LIMIT = 3

    def __init__(
        self, *, username: str, secret: str, integration_code: str, **options: Any
    ) -> None:
        self.username = username
        self.secret = secret
        self.integration_code = integration_code
        self.companies: dict[int, JSONDict] = {}
        self.contacts: dict[int, JSONDict] = {}
        self._next_contact = 30_000_001
        super().__init__(**options)

    # ------------------------------------------------------------------ routes

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/V1.0/zoneInformation", self._zone)
        router.add_get("/V1.0/ThresholdInformation", self._threshold)
        router.add_post(QUERY, self._query_post)
        router.add_get(QUERY, self._query_get)
        router.add_post(QUERY + "/count", self._count)
        router.add_get(QUERY + "/next", self._query_next)
        router.add_get(QUERY + "/prev", self._query_prev)
        router.add_get("/V1.0/Contacts/entityInformation/fields", self._fields)
        router.add_get("/V1.0/Contacts/{id}", self._get_contact)
        router.add_post("/V1.0/Companies/{company}/Contacts", self._create_contact)
        router.add_patch("/V1.0/Companies/{company}/Contacts", self._update_contact)
        router.add_get("/V1.0/Companies/{id}", self._get_company)

    def is_exempt(self, request: web.Request, path: str) -> bool:
        return path == "/V1.0/zoneInformation"

    def is_auth_exempt(self, request: web.Request, path: str) -> bool:
        return path == "/V1.0/zoneInformation"

    def check_auth(self, request: web.Request) -> web.Response | None:
        headers = request.headers
        if (
            headers.get("ApiIntegrationCode") != self.integration_code
            or headers.get("UserName", "").lower() != self.username.lower()
            or headers.get("Secret") != self.secret
        ):
            return at_errors(401, "The user name, secret or integration code is invalid.")
        return None

    def error_response(self, status: int, message: str) -> web.Response:
        return at_errors(status, message)

    def rate_limited_response(self) -> web.Response:
        return at_errors(429, "The request threshold of this database has been exceeded.")

    def concurrency_limited_response(self) -> web.Response:
        return at_errors(429, "The thread threshold has been exceeded: at most 3 at a time.")

    # ------------------------------------------------------------- python API

    def add_company(self, id: int, name: str, *, company_type: int = 1) -> JSONDict:
        company = {"id": id, "companyName": name, "companyType": company_type, "isActive": True}
        self.companies[id] = company
        return company

    def add_contact(self, company_id: int, **fields: Any) -> JSONDict:
        """A contact as if POSTed to ``Companies/{company_id}/Contacts`` (same checks)."""
        return self.create_contact(company_id, {"isActive": 1, **fields})

    def create_contact(self, company_id: int, body: Mapping[str, Any]) -> JSONDict:
        fields = self._fields_of(body)
        if fields.get("id") not in (None, 0):
            raise _fail("id is read-only on create.")
        if fields.setdefault("companyID", company_id) != company_id:
            raise _fail("companyID does not match the parent company of the URL.")
        contact: JSONDict = dict.fromkeys(CONTACT_FIELDS)
        contact.update(fields)
        contact["userDefinedFields"] = []
        self._validate(contact)
        contact["id"] = self._next_contact
        contact["createDate"] = contact["lastModifiedDate"] = _now()
        self._next_contact += 1
        self.contacts[contact["id"]] = contact
        return contact

    def state(self) -> JSONDict:
        return {
            "companies": list(self.companies.values()),
            "contacts": list(self.contacts.values()),
        }

    def seed(self, data: Mapping[str, Any]) -> JSONDict:
        """``{"companies": [{id, name}], "contacts": [{companyID, firstName, ...}]}``."""
        companies = [self.add_company(**c) for c in data.get("companies", ())]
        contacts = []
        for body in data.get("contacts", ()):
            fields = lower_keys(body)
            try:
                contacts.append(self.add_contact(int(fields["companyid"]), **body))
            except SimHTTPError as exc:
                raise ValueError(f"invalid contact {body}: {exc.response.text}") from None
        return {"companies": companies, "contacts": contacts}

    def reset_state(self) -> None:
        self.companies.clear()
        self.contacts.clear()
        self._next_contact = 30_000_001

    # -------------------------------------------------------------- validation

    @staticmethod
    def _fields_of(body: Any) -> JSONDict:
        """Body keys mapped to their canonical spelling (case-insensitive), or 500."""
        if not isinstance(body, Mapping):
            raise _fail("The request body must be a JSON object.")
        canonical = {name.lower(): name for name in CONTACT_FIELDS}
        fields: JSONDict = {}
        for key, value in body.items():
            name = canonical.get(str(key).lower())
            if name is None:
                raise _fail(f"{key} is not a valid field of the Contact entity.")
            fields[name] = value
        return fields

    def _validate(self, contact: JSONDict) -> None:
        problems = [f"{name} is required." for name in REQUIRED if contact.get(name) in (None, "")]
        for name, kind in CONTACT_FIELDS.items():
            value = contact.get(name)
            if value is None:
                continue
            if kind is int:
                if isinstance(value, bool):
                    contact[name] = value = int(value)
                if not isinstance(value, int):
                    problems.append(f"{name} must be an integer.")
            elif not isinstance(value, str):
                problems.append(f"{name} must be a string.")
            elif len(value) > MAX_LENGTHS.get(name, 10_000):
                problems.append(f"{name} exceeds the maximum length of {MAX_LENGTHS[name]}.")
            elif name.startswith("emailAddress") and value and "@" not in value:
                problems.append(f"{name} is not a valid email address.")
        if isinstance(contact.get("companyID"), int) and contact["companyID"] not in self.companies:
            problems.append(f"Company {contact['companyID']} does not exist.")
        if problems:
            raise _fail(*problems)

    # ----------------------------------------------------------------- queries

    def _search(self, body: Any) -> tuple[JSONDict, list[JSONDict]]:
        """The normalised search (filter, MaxRecords, IncludeFields) and its matches by id."""
        if not isinstance(body, Mapping):
            raise _fail("The search must be a JSON object with a filter.")
        spec = lower_keys(body)
        max_records = spec.get("maxrecords", MAX_RECORDS)
        if not isinstance(max_records, int) or not 1 <= max_records <= MAX_RECORDS:
            raise _fail(f"MaxRecords must be between 1 and {MAX_RECORDS}.")
        include = spec.get("includefields") or []
        if not isinstance(include, list):
            raise _fail("IncludeFields must be a list.")
        try:
            predicate = compile_filter(spec.get("filter"), CONTACT_FIELDS)
        except QueryError as exc:
            raise _fail(str(exc)) from None
        search = {"filter": spec.get("filter"), "MaxRecords": max_records, "IncludeFields": include}
        matches = sorted((c for c in self.contacts.values() if predicate(c)), key=lambda c: c["id"])
        return search, matches

    def _page(
        self,
        request: web.Request,
        search: JSONDict,
        page: list[JSONDict],
        more_after: bool,
        more_before: bool,
    ) -> web.Response:
        size = search["MaxRecords"]
        base = URL(self.base_url(request) + QUERY)
        encoded = json.dumps(search, separators=(",", ":"))

        def cursor(kind: str, key: str, value: int) -> str:
            paging = json.dumps({"pageSize": size, key: value}, separators=(",", ":"))
            return str(base / kind % {"paging": paging, "search": encoded})

        include = search["IncludeFields"]
        items = [project(c, ["id", *include]) if include else c for c in page]
        return json_response(
            {
                "items": items,
                "pageDetails": {
                    "count": len(items),
                    "requestCount": size,
                    "prevPageUrl": cursor("prev", "firstId", page[0]["id"])
                    if more_before and page
                    else None,
                    "nextPageUrl": cursor("next", "lastId", page[-1]["id"])
                    if more_after and page
                    else None,
                },
            }
        )

    def _first_page(self, request: web.Request, body: Any) -> web.Response:
        search, matches = self._search(body)
        size = search["MaxRecords"]
        return self._page(request, search, matches[:size], len(matches) > size, False)

    @staticmethod
    def _json_param(request: web.Request, name: str) -> Any:
        raw = request.query.get(name)
        if raw is None:
            raise _fail(f"The {name} parameter is required.")
        try:
            return json.loads(raw)
        except ValueError:
            raise _fail(f"The {name} parameter is not valid JSON.") from None

    async def _query_post(self, request: web.Request) -> web.StreamResponse:
        return self._first_page(request, await self._json(request))

    async def _query_get(self, request: web.Request) -> web.StreamResponse:
        return self._first_page(request, self._json_param(request, "search"))

    async def _query_next(self, request: web.Request) -> web.StreamResponse:
        paging = self._json_param(request, "paging")
        search, matches = self._search(self._json_param(request, "search"))
        size = search["MaxRecords"]
        rest = [c for c in matches if c["id"] > int(paging.get("lastId", 0))]
        return self._page(request, search, rest[:size], len(rest) > size, True)

    async def _query_prev(self, request: web.Request) -> web.StreamResponse:
        paging = self._json_param(request, "paging")
        search, matches = self._search(self._json_param(request, "search"))
        size = search["MaxRecords"]
        before = [c for c in matches if c["id"] < int(paging.get("firstId", 0))]
        return self._page(request, search, before[-size:], True, len(before) > size)

    async def _count(self, request: web.Request) -> web.StreamResponse:
        body = await self._json(request)
        if isinstance(body, Mapping):
            body = {**body, "MaxRecords": MAX_RECORDS}
        _, matches = self._search(body)
        return json_response({"queryCount": len(matches)})

    # ---------------------------------------------------------------- records

    async def _zone(self, request: web.Request) -> web.StreamResponse:
        user = request.query.get("user", "")
        if user.lower() != self.username.lower():
            return at_errors(500, "Zone information could not be determined for this user.")
        base = self.base_url(request)
        return json_response(
            {"zoneName": "Simulator Zone", "url": base + "/", "webUrl": base + "/web/", "ci": 0}
        )

    async def _threshold(self, request: web.Request) -> web.StreamResponse:
        rate = self.rate_limit
        return json_response(
            {
                "externalRequestThreshold": rate.limit if rate else None,
                "requestThresholdTimeframe": rate.window / 60 if rate else None,
                "currentTimeframeRequestCount": self._window.in_window() if self._window else 0,
            }
        )

    async def _fields(self, request: web.Request) -> web.StreamResponse:
        fields = [
            {
                "name": name,
                "dataType": "integer" if kind is int else "string",
                "length": MAX_LENGTHS.get(name, 0),
                "isRequired": name in REQUIRED,
                "isReadOnly": name in READ_ONLY,
                "isQueryable": True,
                "isReference": name == "companyID",
                "referenceEntityType": "Company" if name == "companyID" else "",
                "isPickList": False,
            }
            for name, kind in CONTACT_FIELDS.items()
        ]
        return json_response({"fields": fields})

    @staticmethod
    def _int(raw: str, what: str) -> int:
        if not raw.isdigit():
            raise _fail(f"{what} {raw!r} is not a valid id.")
        return int(raw)

    async def _get_contact(self, request: web.Request) -> web.StreamResponse:
        contact_id = self._int(request.match_info["id"], "Contact id")
        return json_response({"item": self.contacts.get(contact_id)})

    async def _get_company(self, request: web.Request) -> web.StreamResponse:
        company_id = self._int(request.match_info["id"], "Company id")
        return json_response({"item": self.companies.get(company_id)})

    async def _create_contact(self, request: web.Request) -> web.StreamResponse:
        company_id = self._int(request.match_info["company"], "Company id")
        contact = self.create_contact(company_id, await self._json(request))
        return json_response({"itemId": contact["id"]})

    async def _update_contact(self, request: web.Request) -> web.StreamResponse:
        company_id = self._int(request.match_info["company"], "Company id")
        fields = self._fields_of(await self._json(request))
        contact = self.contacts.get(fields.get("id"))  # type: ignore[arg-type]
        if contact is None or contact["companyID"] != company_id:
            raise _fail(f"Contact {fields.get('id')} does not exist under company {company_id}.")
        if fields.get("companyID", company_id) != company_id:
            raise _fail("companyID cannot be changed through another company's URL.")
        for name in READ_ONLY:
            fields.pop(name, None)
        updated = {**contact, **fields}
        self._validate(updated)
        updated["lastModifiedDate"] = _now()
        self.contacts[contact["id"]] = updated
        return json_response({"itemId": contact["id"]})

    async def _json(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise _fail("The request body is not valid JSON.") from None
