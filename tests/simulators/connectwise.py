"""ConnectWise Manage (PSA) REST 3.0: companies and contacts.

Base URL: ``https://api-<region>.myconnectwise.net/<codebase>/apis/3.0``; this
app serves the paths below it (``/company/contacts`` ...).

Auth: ``Authorization: Basic b64("<companyId>+<publicKey>:<privateKey>")`` and
a required ``clientId`` header. The clientId is checked first: without it the
answer is 401 ``{"code": "Unauthorized", "message": "clientId ... is required ..."}``.
When the simulator is given a ``client_id`` the header must equal it.

UNVERIFIED points, and what this simulator does:

- Rate limit: none is published; 60 requests per 60 s is assumed. The 429 body
  is ``{"code": "TooManyRequests", "message": ...}`` with ``Retry-After``.
- 401 bodies: ``{"code": "Unauthorized", "message": ...}``.
- Error bodies: ``{"code": "InvalidObject", "message": ..., "errors": [{"code",
  "message", "resource", "field"}]}`` for validation and for an unparsable
  condition (``field`` = the query parameter); 404: ``{"code": "NotFound", ...}``.
- Null fields are left out of responses (ConnectWise does not serialise nulls),
  so a custom field without a value has no ``value`` key.
- Strings compare case-insensitively in conditions; field names are
  case-sensitive (see :mod:`.cw_conditions`).
- ``childConditions``: one child item must satisfy the whole condition.
- ``pageSize`` above 1000 is clamped to 1000.
- ``firstName`` and ``lastName`` are at most 30 characters (400 beyond).
- PATCH of ``customFields`` merges by custom field id; ``communicationItems`` is
  replaced whole.
- Duplicate contacts (same name or email) are allowed.
"""

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from . import cw_conditions as cond
from .base import VendorSim
from .http import JSONDict, SimHTTPError, json_response, paginate, project, query_int
from .limits import RateLimit

COMMUNICATION_TYPES: dict[int, tuple[str, str]] = {
    1: ("Email", "Email"),
    2: ("Direct", "Phone"),
    3: ("Cell", "Phone"),
    4: ("Fax", "Fax"),
    5: ("Home", "Phone"),
}
"""type id -> (type name, communicationType)."""

DEFAULT_CUSTOM_FIELDS: tuple[JSONDict, ...] = (
    {
        "id": 7,
        "caption": "AccountKey",
        "type": "Text",
        "entryMethod": "EntryField",
        "numberOfDecimals": 0,
    },
)
NAME_MAX = 30
VALUE_MAX = 250

_REF = {"id": None, "identifier": None, "name": None}
CONTACT_SCHEMA: cond.Schema = {
    "id": None,
    "firstName": None,
    "lastName": None,
    "title": None,
    "inactiveFlag": None,
    "company": _REF,
    "communicationItems": [
        {
            "id": None,
            "type": {"id": None, "name": None},
            "value": None,
            "defaultFlag": None,
            "communicationType": None,
        }
    ],
    "customFields": [
        {
            "id": None,
            "caption": None,
            "type": None,
            "entryMethod": None,
            "numberOfDecimals": None,
            "value": None,
        }
    ],
    "_info": {"lastUpdated": None, "dateEntered": None, "updatedBy": None, "enteredBy": None},
}
CUSTOM_FIELD_SCHEMA: cond.Schema = CONTACT_SCHEMA["customFields"][0]
COMPANY_SCHEMA: cond.Schema = {
    "id": None,
    "identifier": None,
    "name": None,
    "status": {"id": None, "name": None},
    "deletedFlag": None,
}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def cw_error(
    status: int, code: str, message: str, errors: list[JSONDict] | None = None
) -> web.Response:
    body: JSONDict = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status)


def _invalid(field: str, code: str, message: str) -> SimHTTPError:
    return SimHTTPError(
        cw_error(
            400,
            "InvalidObject",
            "contact object is invalid",
            [{"code": code, "message": message, "resource": "contact", "field": field}],
        )
    )


class ConnectWiseSim(VendorSim):
    name = "connectwise"
    DEFAULT_RATE_LIMIT = RateLimit(60, 60.0)

    def __init__(
        self,
        *,
        company_id: str,
        public_key: str,
        private_key: str,
        client_id: str | None = None,
        **options: Any,
    ) -> None:
        self.company_id = company_id
        self.public_key = public_key
        self.private_key = private_key
        self.client_id = client_id
        self.companies: dict[int, JSONDict] = {}
        self.contacts: dict[int, JSONDict] = {}
        self.custom_field_definitions: list[JSONDict] = [dict(f) for f in DEFAULT_CUSTOM_FIELDS]
        self._next_contact = 1
        self._next_item = 1
        super().__init__(**options)

    # ------------------------------------------------------------------ routes

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/company/contacts", self._list_contacts)
        router.add_get("/company/contacts/count", self._count_contacts)
        router.add_post("/company/contacts", self._create_contact)
        router.add_get("/company/contacts/{id}", self._get_contact)
        router.add_patch("/company/contacts/{id}", self._patch_contact)
        router.add_get("/company/companies", self._list_companies)
        router.add_get("/company/companies/{id}", self._get_company)

    def check_auth(self, request: web.Request) -> web.Response | None:
        client_id = request.headers.get("clientId", "").strip()
        if not client_id or (self.client_id is not None and client_id != self.client_id):
            return cw_error(
                401,
                "Unauthorized",
                "A valid clientId header is required to access the API. "
                "See https://developer.connectwise.com/ClientID",
            )
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user, _, private = decoded.partition(":")
        company, _, public = user.partition("+")
        if (
            scheme.lower() != "basic"
            or company.lower() != self.company_id.lower()
            or public != self.public_key
            or private != self.private_key
        ):
            return cw_error(401, "Unauthorized", "The credentials provided are not valid.")
        return None

    def error_response(self, status: int, message: str) -> web.Response:
        codes = {400: "InvalidObject", 404: "NotFound", 429: "TooManyRequests"}
        return cw_error(status, codes.get(status, "UnexpectedError"), message)

    def rate_limited_response(self) -> web.Response:
        return cw_error(429, "TooManyRequests", "Too many requests. Please retry later.")

    # ------------------------------------------------------------- python API

    def add_company(self, id: int, name: str, identifier: str | None = None) -> JSONDict:
        company = {
            "id": id,
            "identifier": identifier or "".join(name.split())[:25],
            "name": name,
            "status": {"id": 1, "name": "Active"},
            "deletedFlag": False,
            "_info": {"lastUpdated": _now(), "updatedBy": "simulator"},
        }
        self.companies[id] = company
        return company

    def add_contact(
        self,
        first_name: str,
        last_name: str | None = None,
        *,
        company_id: int | None = None,
        email: str | None = None,
        phone: str | None = None,
        custom_fields: Mapping[str, str] | None = None,
    ) -> JSONDict:
        """A contact as if POSTed (same validation); custom fields by caption."""
        body: JSONDict = {"firstName": first_name, "lastName": last_name}
        if company_id is not None:
            body["company"] = {"id": company_id}
        items: list[JSONDict] = []
        if email:
            items.append({"type": {"id": 1}, "value": email, "defaultFlag": True})
        if phone:
            items.append({"type": {"id": 2}, "value": phone, "defaultFlag": True})
        body["communicationItems"] = items
        if custom_fields:
            by_caption = {f["caption"]: f["id"] for f in self.custom_field_definitions}
            body["customFields"] = [
                {"id": by_caption[caption], "value": value}
                for caption, value in custom_fields.items()
            ]
        return self.create_contact(body)

    def create_contact(self, body: Mapping[str, Any]) -> JSONDict:
        """Validate and store a contact given as the POST body; raises SimHTTPError."""
        contact: JSONDict = {"id": self._next_contact}
        self._apply(contact, body, creating=True)
        self._next_contact += 1
        stamp = _now()
        contact["_info"] = {
            "lastUpdated": stamp,
            "updatedBy": self.public_key,
            "dateEntered": stamp,
            "enteredBy": self.public_key,
        }
        self.contacts[contact["id"]] = contact
        return contact

    def find_contacts(self, predicate: Callable[[JSONDict], bool]) -> list[JSONDict]:
        return [c for c in self.contacts.values() if predicate(c)]

    def state(self) -> JSONDict:
        return {
            "companies": list(self.companies.values()),
            "contacts": [_drop_nulls(c) for c in self.contacts.values()],
            "custom_field_definitions": self.custom_field_definitions,
        }

    def seed(self, data: Mapping[str, Any]) -> JSONDict:
        """``{"companies": [{id, name, identifier?}], "contacts": [<POST body>...]}``."""
        if "custom_field_definitions" in data:
            self.custom_field_definitions = [dict(f) for f in data["custom_field_definitions"]]
        companies = [self.add_company(**c) for c in data.get("companies", ())]
        contacts = []
        for body in data.get("contacts", ()):
            try:
                contacts.append(self.create_contact(body))
            except SimHTTPError as exc:
                raise ValueError(f"invalid contact {body}: {exc.response.text}") from None
        return {"companies": companies, "contacts": [_drop_nulls(c) for c in contacts]}

    def reset_state(self) -> None:
        self.companies.clear()
        self.contacts.clear()
        self.custom_field_definitions = [dict(f) for f in DEFAULT_CUSTOM_FIELDS]
        self._next_contact = self._next_item = 1

    # -------------------------------------------------------------- validation

    def _company_ref(self, value: Any) -> JSONDict | None:
        if value is None:
            return None
        company_id = value.get("id") if isinstance(value, Mapping) else None
        if not isinstance(company_id, int) or isinstance(company_id, bool):
            raise _invalid("company", "InvalidField", "company must be an object with an id")
        company = self.companies.get(company_id)
        if company is None:
            raise _invalid("company/id", "InvalidField", f"Company id {company_id} is not valid.")
        return {
            "id": company["id"],
            "identifier": company["identifier"],
            "name": company["name"],
            "_info": {"company_href": f"/company/companies/{company['id']}"},
        }

    def _communication_item(self, raw: Any) -> JSONDict:
        if not isinstance(raw, Mapping):
            raise _invalid("communicationItems", "InvalidField", "an item must be an object")
        kind = raw.get("type")
        type_id = None
        if isinstance(kind, Mapping):
            type_id = kind.get("id")
            if type_id is None and kind.get("name"):
                type_id = next(
                    (i for i, (n, _) in COMMUNICATION_TYPES.items() if n == kind["name"]), None
                )
        if type_id not in COMMUNICATION_TYPES:
            raise _invalid(
                "communicationItems/type", "NullOrEmpty", "A valid communication type is required."
            )
        value = raw.get("value")
        if not isinstance(value, str) or not value.strip():
            raise _invalid("communicationItems/value", "NullOrEmpty", "value may not be empty.")
        if len(value) > VALUE_MAX:
            raise _invalid(
                "communicationItems/value", "InvalidField", f"value exceeds {VALUE_MAX} characters."
            )
        type_name, communication_type = COMMUNICATION_TYPES[type_id]
        if communication_type == "Email" and "@" not in value:
            raise _invalid("communicationItems/value", "InvalidField", "Invalid email address.")
        item_id = raw.get("id")
        if not isinstance(item_id, int):
            item_id = self._next_item
            self._next_item += 1
        return {
            "id": item_id,
            "type": {"id": type_id, "name": type_name},
            "value": value,
            "extension": raw.get("extension"),
            "defaultFlag": bool(raw.get("defaultFlag", False)),
            "communicationType": communication_type,
        }

    def _custom_fields(self, raw: Any, current: list[JSONDict]) -> list[JSONDict]:
        if not isinstance(raw, list):
            raise _invalid("customFields", "InvalidField", "customFields must be a list")
        values = {f["id"]: f.get("value") for f in current}
        known = {f["id"] for f in self.custom_field_definitions}
        for item in raw:
            field_id = item.get("id") if isinstance(item, Mapping) else None
            if field_id not in known:
                raise _invalid(
                    "customFields/id", "InvalidField", f"Unknown custom field {field_id}"
                )
            values[field_id] = item.get("value")
        return [{**d, "value": values.get(d["id"])} for d in self.custom_field_definitions]

    def _apply(self, contact: JSONDict, body: Mapping[str, Any], *, creating: bool) -> None:
        if not isinstance(body, Mapping):
            raise SimHTTPError(cw_error(400, "InvalidObject", "The body must be a contact object"))
        merged = {**contact, **body}
        for name in ("firstName", "lastName", "title"):
            value = merged.get(name)
            if value is not None and not isinstance(value, str):
                raise _invalid(name, "InvalidField", f"{name} must be a string")
            if value is not None and len(value) > NAME_MAX and name != "title":
                raise _invalid(name, "InvalidField", f"{name} exceeds {NAME_MAX} characters.")
        if not (merged.get("firstName") or "").strip():
            raise _invalid("firstName", "NullOrEmpty", "firstName may not be empty.")
        contact["firstName"] = merged["firstName"]
        contact["lastName"] = merged.get("lastName")
        contact["title"] = merged.get("title")
        contact["inactiveFlag"] = bool(merged.get("inactiveFlag", False))
        if "company" in body or creating:
            contact["company"] = self._company_ref(body.get("company"))
        if "communicationItems" in body or creating:
            items = body.get("communicationItems") or []
            if not isinstance(items, list):
                raise _invalid("communicationItems", "InvalidField", "must be a list")
            contact["communicationItems"] = [self._communication_item(i) for i in items]
        current = contact.get("customFields") or self._custom_fields([], [])
        contact["customFields"] = (
            self._custom_fields(body["customFields"], current)
            if "customFields" in body
            else current
        )

    # ----------------------------------------------------------------- queries

    def _condition(
        self, request: web.Request, name: str, schema: cond.Schema, *, child: bool
    ) -> cond.Node | None:
        text = request.query.get(name)
        if text is None or not text.strip():
            return None
        try:
            node = cond.parse(text)
            cond.check_paths(node, schema, through_list=child)
        except cond.ConditionError as exc:
            raise SimHTTPError(
                cw_error(
                    400,
                    "InvalidObject",
                    f"{name} is invalid: {exc}",
                    [
                        {
                            "code": "InvalidCondition",
                            "message": str(exc),
                            "resource": "contact" if schema is CONTACT_SCHEMA else "company",
                            "field": name,
                        }
                    ],
                )
            ) from None
        return node

    def _bad_param(self, message: str) -> web.Response:
        return cw_error(400, "InvalidObject", message)

    def _filter_contacts(self, request: web.Request) -> list[JSONDict]:
        conditions = self._condition(request, "conditions", CONTACT_SCHEMA, child=False)
        children = self._condition(request, "childConditions", CONTACT_SCHEMA, child=True)
        custom = self._condition(request, "customFieldConditions", CUSTOM_FIELD_SCHEMA, child=False)
        found = []
        for contact in self.contacts.values():
            if conditions is not None and not cond.evaluate(conditions, contact):
                continue
            if children is not None and not cond.evaluate_child(children, contact):
                continue
            if custom is not None and not any(
                cond.evaluate(custom, f) for f in contact.get("customFields", [])
            ):
                continue
            found.append(contact)
        return found

    def _ordered(
        self, request: web.Request, records: list[JSONDict], schema: cond.Schema
    ) -> list[JSONDict]:
        order = request.query.get("orderBy", "").strip()
        ordered = sorted(records, key=lambda r: r["id"])
        if not order:
            return ordered
        for clause in reversed([c.strip() for c in order.split(",") if c.strip()]):
            field, _, direction = clause.partition(" ")
            direction = direction.strip().lower() or "asc"
            path = tuple(field.split("/"))
            try:
                cond.check_paths(cond.Compare(path, "=", None), schema, through_list=False)
            except cond.ConditionError as exc:
                raise SimHTTPError(self._bad_param(f"orderBy is invalid: {exc}")) from None
            if direction not in ("asc", "desc"):
                raise SimHTTPError(self._bad_param(f"orderBy direction {direction!r} is invalid"))
            ordered.sort(key=cond.sort_key(path), reverse=direction == "desc")
        return ordered

    def _page(
        self, request: web.Request, records: list[JSONDict], schema: cond.Schema
    ) -> web.Response:
        size = query_int(request, "pageSize", 25, error=self._bad_param, maximum=1000)
        ordered = self._ordered(request, records, schema)
        links: list[str] = []
        if request.headers.get("pagination-type", "").lower() == "forward-only":
            after = query_int(request, "pageId", 0, error=self._bad_param, minimum=0)
            rest = [r for r in sorted(records, key=lambda r: r["id"]) if r["id"] > after]
            items = rest[:size]
            if len(rest) > size:
                links.append(f'<{request.url.update_query(pageId=items[-1]["id"])}>; rel="next"')
        else:
            number = query_int(request, "page", 1, error=self._bad_param)
            page = paginate(ordered, number, size)
            items = page.items
            last = max(page.total_pages, 1)
            if page.has_prev:
                links.append(f'<{request.url.update_query(page=1)}>; rel="first"')
                links.append(f'<{request.url.update_query(page=number - 1)}>; rel="prev"')
            if page.has_next:
                links.append(f'<{request.url.update_query(page=number + 1)}>; rel="next"')
                links.append(f'<{request.url.update_query(page=last)}>; rel="last"')
        fields = [f for f in request.query.get("fields", "").split(",") if f.strip()]
        body = [project(_drop_nulls(r), fields) if fields else _drop_nulls(r) for r in items]
        headers = {"Link": ", ".join(links)} if links else {}
        return json_response(body, headers=headers)

    async def _list_contacts(self, request: web.Request) -> web.StreamResponse:
        return self._page(request, self._filter_contacts(request), CONTACT_SCHEMA)

    async def _count_contacts(self, request: web.Request) -> web.StreamResponse:
        return json_response({"count": len(self._filter_contacts(request))})

    def _record_id(self, request: web.Request, kind: str) -> int:
        raw = request.match_info["id"]
        if not raw.isdigit():
            raise SimHTTPError(cw_error(400, "InvalidObject", f"{kind} id {raw!r} is not valid"))
        return int(raw)

    async def _get_contact(self, request: web.Request) -> web.StreamResponse:
        contact = self.contacts.get(self._record_id(request, "contact"))
        if contact is None:
            return cw_error(
                404, "NotFound", f"Contact with id {request.match_info['id']} not found."
            )
        return json_response(_drop_nulls(contact))

    async def _create_contact(self, request: web.Request) -> web.StreamResponse:
        body = await self._json(request)
        if not isinstance(body, Mapping):
            return cw_error(400, "InvalidObject", "The body must be a contact object")
        if "id" in body and body["id"] not in (None, 0):
            raise _invalid("id", "InvalidField", "id is read-only")
        return json_response(_drop_nulls(self.create_contact(body)), 201)

    async def _patch_contact(self, request: web.Request) -> web.StreamResponse:
        contact = self.contacts.get(self._record_id(request, "contact"))
        if contact is None:
            return cw_error(
                404, "NotFound", f"Contact with id {request.match_info['id']} not found."
            )
        operations = await self._json(request)
        if not isinstance(operations, list) or not operations:
            return cw_error(400, "InvalidObject", "PATCH takes a non-empty JSON Patch array")
        changes = self._patched(contact, operations)
        updated = {**contact}
        self._apply(updated, changes, creating=False)
        updated["_info"] = {**contact["_info"], "lastUpdated": _now(), "updatedBy": self.public_key}
        self.contacts[contact["id"]] = updated
        return json_response(_drop_nulls(updated))

    def _patched(self, contact: JSONDict, operations: list[Any]) -> JSONDict:
        """The top-level fields JSON Patch operations set (nested paths rebuilt)."""
        changes: JSONDict = {}
        allowed = {"firstName", "lastName", "title", "inactiveFlag", "company"}
        allowed |= {"communicationItems", "customFields"}
        for op in operations:
            if not isinstance(op, Mapping) or op.get("op") not in ("add", "replace", "remove"):
                raise SimHTTPError(
                    cw_error(400, "InvalidObject", f"invalid JSON Patch operation: {op!r}")
                )
            parts = [p for p in str(op.get("path", "")).split("/") if p]
            if not parts or parts[0] not in allowed:
                raise _invalid(
                    str(op.get("path")), "InvalidField", "path is not an updatable field"
                )
            value = None if op["op"] == "remove" else op.get("value")
            if len(parts) == 1:
                changes[parts[0]] = value
            elif parts[0] == "company" and parts[1:] == ["id"]:
                changes["company"] = None if value is None else {"id": value}
            else:
                raise _invalid(str(op["path"]), "InvalidField", "path is not an updatable field")
        return changes

    async def _list_companies(self, request: web.Request) -> web.StreamResponse:
        node = self._condition(request, "conditions", COMPANY_SCHEMA, child=False)
        found = [c for c in self.companies.values() if node is None or cond.evaluate(node, c)]
        return self._page(request, found, COMPANY_SCHEMA)

    async def _get_company(self, request: web.Request) -> web.StreamResponse:
        company = self.companies.get(self._record_id(request, "company"))
        if company is None:
            return cw_error(
                404, "NotFound", f"Company with id {request.match_info['id']} not found."
            )
        return json_response(company)

    async def _json(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise SimHTTPError(
                cw_error(400, "InvalidObject", "The body is not valid JSON")
            ) from None
