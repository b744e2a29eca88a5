"""IT Glue (JSON:API): organisations and passwords.

Base URL: ``https://api.itglue.com`` (or the EU/AU hosts); this app serves the
paths below it. Auth: header ``x-api-key``; a missing or wrong key: **403**.
Requests with a body must say ``Content-Type: application/vnd.api+json``
(otherwise 415); responses are ``application/vnd.api+json``. Limit: 3000
requests per rolling 5 minutes.

UNVERIFIED points, and what this simulator does:

- 429 body ``{"errors": [{"status": "429", "title": "Too Many Requests", ...}]}``
  with ``Retry-After`` (configurable: ``retry_after_header=False`` drops it).
- A missing key is also 403 (not 401).
- Attribute names are accepted in kebab-case and snake_case; responses are
  kebab-case; error pointers use snake_case (``/data/attributes/password_category_id``)
  as IT Glue's do.
- Unknown attributes are refused with 422 (IT Glue silently drops them); unknown
  ``filter[...]`` keys are refused with 400 — in particular there is **no**
  ``filter[username]``: match usernames client-side.
- ``filter[name]`` is an exact, case-insensitive match; ``filter[archived]``
  defaults to false (archived passwords are left out unless asked for).
- ``page[size]`` above 1000 is clamped to 1000.
- Password values are never in list responses; ``GET /passwords/{id}`` (and the
  nested form) include it unless ``show_password=false``; POST and PATCH answers
  include it only with ``show_password=true``. A simulator built with
  ``password_access=False`` never returns values (a key without Password Access).
- Duplicate passwords (same name/username) are allowed.
- PATCH of a password synced from a PSA (seeded with ``psa_synced``) is 422.
"""

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from .base import VendorSim
from .http import JSONDict, SimHTTPError, json_response, paginate, parse_bool, query_int
from .limits import RateLimit

JSONAPI = "application/vnd.api+json"
WRITABLE = (
    "name",
    "username",
    "password",
    "url",
    "notes",
    "password-category-id",
    "password-folder-id",
    "password-updated-at",
    "resource-id",
    "resource-type",
    "restricted",
    "otp-secret",
    "archived",
    "organization-id",
)
FILTERS = (
    "id",
    "name",
    "organization_id",
    "password_category_id",
    "url",
    "cached_resource_name",
    "archived",
)
SORTS = ("name", "username", "id", "created_at", "updated_at")
DEFAULT_CATEGORIES = {15: "Active Directory", 16: "Microsoft 365", 17: "Local account"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def itg_error(status: int, title: str, detail: str, pointer: str | None = None) -> web.Response:
    error: JSONDict = {"status": str(status), "title": title, "detail": detail}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return json_response({"errors": [error]}, status, content_type=JSONAPI)


def _unprocessable(attribute: str, detail: str) -> SimHTTPError:
    pointer = "/data/attributes/" + attribute.replace("-", "_")
    return SimHTTPError(itg_error(422, "Unprocessable Entity", detail, pointer))


def _bad_request(detail: str) -> web.Response:
    return itg_error(400, "Bad Request", detail)


class ITGlueSim(VendorSim):
    name = "itglue"
    DEFAULT_RATE_LIMIT = RateLimit(3000, 300.0)

    def __init__(self, *, api_key: str, password_access: bool = True, **options: Any) -> None:
        self.api_key = api_key
        self.password_access = password_access
        self.organizations: dict[int, JSONDict] = {}
        self.passwords: dict[int, JSONDict] = {}
        self.categories: dict[int, str] = dict(DEFAULT_CATEGORIES)
        self._next_password = 1
        super().__init__(**options)

    # ------------------------------------------------------------------ routes

    def add_routes(self, router: web.UrlDispatcher) -> None:
        nested = "/organizations/{org}/relationships/passwords"
        router.add_get("/organizations/{org}", self._get_organization)
        router.add_get(nested, self._list_nested)
        router.add_post(nested, self._create)
        router.add_get(nested + "/{id}", self._show_nested)
        router.add_patch(nested + "/{id}", self._update_nested)
        router.add_get("/passwords", self._list_root)
        router.add_get("/passwords/{id}", self._show_root)
        router.add_patch("/passwords/{id}", self._update_root)
        router.add_get("/password_categories", self._list_categories)

    def check_auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return itg_error(403, "Forbidden", "The API key is missing, invalid or revoked.")
        return None

    def error_response(self, status: int, message: str) -> web.Response:
        titles = {404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}
        return itg_error(status, titles.get(status, "Error"), message)

    def rate_limited_response(self) -> web.Response:
        return itg_error(429, "Too Many Requests", "Rate limit exceeded: retry later.")

    # ------------------------------------------------------------- python API

    def add_organization(self, id: int, name: str, *, short_name: str | None = None) -> JSONDict:
        org = {
            "name": name,
            "short-name": short_name or name.split()[0].lower(),
            "description": None,
            "organization-type-name": "Customer",
            "organization-status-name": "Active",
            "primary": False,
            "created-at": _now(),
            "updated-at": _now(),
        }
        self.organizations[id] = org
        return {"id": str(id), "type": "organizations", "attributes": org}

    def add_password(
        self, organization_id: int, *, psa_synced: bool = False, **attributes: Any
    ) -> JSONDict:
        """A password as if POSTed (same validation); attributes in either case."""
        record = self.create_password(organization_id, attributes)
        record["_psa_synced"] = psa_synced
        return self.render(record, show_password=True)

    def create_password(self, organization_id: int, attributes: Any) -> JSONDict:
        if organization_id not in self.organizations:
            raise SimHTTPError(self._no_org(organization_id))
        values = self._attributes(attributes)
        if values.get("organization-id") not in (None, organization_id, str(organization_id)):
            raise _unprocessable("organization-id", "does not match the organization of the URL")
        values.pop("organization-id", None)
        for required in ("name", "password"):
            if not str(values.get(required) or "").strip():
                raise _unprocessable(required, "can't be blank")
        self._check(values)
        stamp = _now()
        record: JSONDict = {
            "id": self._next_password,
            "organization-id": organization_id,
            "name": None,
            "username": None,
            "password": None,
            "url": None,
            "notes": None,
            "password-category-id": None,
            "password-folder-id": None,
            "password-updated-at": None,
            "resource-id": None,
            "resource-type": None,
            "restricted": False,
            "otp-secret": None,
            "archived": False,
            "created-at": stamp,
            "updated-at": stamp,
            "_psa_synced": False,
        }
        record.update(values)
        self._next_password += 1
        self.passwords[record["id"]] = record
        return record

    def update_password(self, record: JSONDict, attributes: Any) -> JSONDict:
        if record.get("_psa_synced"):
            raise _unprocessable("base", "cannot be updated: this password is synced from a PSA")
        values = self._attributes(attributes)
        if values.pop("organization-id", record["organization-id"]) not in (
            record["organization-id"],
            str(record["organization-id"]),
        ):
            raise _unprocessable("organization-id", "cannot be changed")
        for required in ("name", "password"):
            if required in values and not str(values[required] or "").strip():
                raise _unprocessable(required, "can't be blank")
        self._check({**record, **values})
        record.update(values)
        record["updated-at"] = _now()
        return record

    def render(self, record: Mapping[str, Any], *, show_password: bool) -> JSONDict:
        org = self.organizations.get(record["organization-id"], {})
        category = record.get("password-category-id")
        attributes = {
            k: v
            for k, v in record.items()
            if not k.startswith("_") and k not in ("id", "otp-secret")
        }
        attributes.pop("password")
        if show_password and self.password_access:
            attributes["password"] = record["password"]
        attributes.update(
            {
                "organization-name": org.get("name"),
                "password-category-name": self.categories.get(category) if category else None,
                "resource-url": f"https://sim.itglue.com/{record['organization-id']}/passwords/"
                f"{record['id']}",
                "my-glue": False,
                "otp-enabled": bool(record.get("otp-secret")),
                "updated-by": None,
                "updated-by-type": None,
                "cached-resource-name": None,
                "cached-resource-type-name": record.get("resource-type"),
            }
        )
        return {"id": str(record["id"]), "type": "passwords", "attributes": attributes}

    def state(self) -> JSONDict:
        return {
            "organizations": [
                {"id": str(k), "type": "organizations", "attributes": v}
                for k, v in self.organizations.items()
            ],
            "passwords": [self.render(r, show_password=True) for r in self.passwords.values()],
            "password_categories": {str(k): v for k, v in self.categories.items()},
        }

    def seed(self, data: Mapping[str, Any]) -> JSONDict:
        """``{"organizations": [{id, name}], "passwords": [{organization_id, name, ...}],
        "password_categories": {id: name}}``."""
        for key, value in (data.get("password_categories") or {}).items():
            self.categories[int(key)] = value
        orgs = [
            self.add_organization(int(o["id"]), o["name"]) for o in data.get("organizations", ())
        ]
        passwords = []
        for spec in data.get("passwords", ()):
            spec = dict(spec)
            org_id = int(spec.pop("organization_id", spec.pop("organization-id", 0)))
            synced = bool(spec.pop("psa_synced", False))
            try:
                passwords.append(self.add_password(org_id, psa_synced=synced, **spec))
            except SimHTTPError as exc:
                raise ValueError(f"invalid password {spec}: {exc.response.text}") from None
        return {"organizations": orgs, "passwords": passwords}

    def reset_state(self) -> None:
        self.organizations.clear()
        self.passwords.clear()
        self.categories = dict(DEFAULT_CATEGORIES)
        self._next_password = 1

    # -------------------------------------------------------------- validation

    @staticmethod
    def _attributes(raw: Any) -> JSONDict:
        if not isinstance(raw, Mapping):
            raise SimHTTPError(_bad_request("data.attributes must be an object"))
        values: JSONDict = {}
        for key, value in raw.items():
            name = str(key).replace("_", "-")
            if name not in WRITABLE:
                raise _unprocessable(name, "is not a known attribute")
            if name.endswith("-id") and isinstance(value, str) and value.isdigit():
                value = int(value)
            values[name] = value
        return values

    def _check(self, values: Mapping[str, Any]) -> None:
        category = values.get("password-category-id")
        if category is not None:
            try:
                known = int(category) in self.categories
            except (TypeError, ValueError):
                known = False
            if not known:
                raise _unprocessable("password-category-id", "must exist")
        if values.get("resource-id") is not None and not values.get("resource-type"):
            raise _unprocessable("resource-type", "is required with resource-id")

    def _no_org(self, org_id: Any) -> web.Response:
        return itg_error(404, "Record not found", f"Couldn't find Organization with 'id'={org_id}")

    def _org(self, request: web.Request) -> int:
        raw = request.match_info["org"]
        if not raw.isdigit() or int(raw) not in self.organizations:
            raise SimHTTPError(self._no_org(raw))
        return int(raw)

    def _password(self, request: web.Request, org_id: int | None) -> JSONDict:
        raw = request.match_info["id"]
        record = self.passwords.get(int(raw)) if raw.isdigit() else None
        if record is None or (org_id is not None and record["organization-id"] != org_id):
            raise SimHTTPError(
                itg_error(404, "Record not found", f"Couldn't find Password with 'id'={raw}")
            )
        return record

    async def _document(self, request: web.Request) -> Any:
        """The ``data`` of a JSON:API body (an object, or a list for bulk), or 415/400."""
        if request.content_type != JSONAPI:
            raise SimHTTPError(
                itg_error(
                    415,
                    "Unsupported Media Type",
                    f"Content-Type must be {JSONAPI}, not {request.content_type}",
                )
            )
        try:
            body = await request.json()
        except ValueError:
            raise SimHTTPError(_bad_request("The body is not valid JSON")) from None
        data = body.get("data") if isinstance(body, Mapping) else None
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, Mapping) or item.get("type") != "passwords":
                raise SimHTTPError(
                    _bad_request('data must be {"type": "passwords", "attributes": {...}}')
                )
        return data

    @staticmethod
    def _show(request: web.Request, default: bool) -> bool:
        try:
            value = parse_bool(request.query.get("show_password"))
        except ValueError as exc:
            raise SimHTTPError(_bad_request(str(exc))) from None
        return default if value is None else value

    # ---------------------------------------------------------------- listings

    def _listing(self, request: web.Request, org_id: int | None) -> web.Response:
        filters: dict[str, str] = {}
        for key, value in request.query.items():
            if key.startswith("filter[") and key.endswith("]"):
                name = key[7:-1]
                if name not in FILTERS:
                    return _bad_request(f"Unsupported filter: {name}")
                filters[name] = value
        if org_id is None and "organization_id" in filters:
            org_id = int(filters["organization_id"]) if filters["organization_id"].isdigit() else -1
        try:
            archived = parse_bool(filters.get("archived")) or False
        except ValueError as exc:
            return _bad_request(str(exc))
        found = [r for r in self.passwords.values() if self._matches(r, filters, org_id, archived)]
        found = self._sorted(request, found)
        size = query_int(request, "page[size]", 50, error=_bad_request, maximum=1000)
        number = query_int(request, "page[number]", 1, error=_bad_request)
        page = paginate(found, number, size)
        total_pages = max(math.ceil(page.total / size), 1)
        links: JSONDict = {
            "self": str(request.url),
            "first": str(request.url.update_query({"page[number]": 1})),
            "last": str(request.url.update_query({"page[number]": total_pages})),
        }
        if page.has_next:
            links["next"] = str(request.url.update_query({"page[number]": number + 1}))
        if page.has_prev:
            links["prev"] = str(request.url.update_query({"page[number]": number - 1}))
        return json_response(
            {
                "data": [self.render(r, show_password=False) for r in page.items],
                "meta": {
                    "current-page": number,
                    "next-page": number + 1 if page.has_next else None,
                    "prev-page": number - 1 if page.has_prev else None,
                    "total-pages": total_pages,
                    "total-count": page.total,
                    "filters": {},
                },
                "links": links,
            },
            content_type=JSONAPI,
        )

    @staticmethod
    def _matches(
        record: Mapping[str, Any], filters: Mapping[str, str], org_id: int | None, archived: bool
    ) -> bool:
        if org_id is not None and record["organization-id"] != org_id:
            return False
        if bool(record["archived"]) is not archived:
            return False
        checks: dict[str, Any] = {
            "id": lambda v: str(record["id"]) in v.split(","),
            "name": lambda v: str(record["name"] or "").casefold() == v.casefold(),
            "password_category_id": lambda v: str(record["password-category-id"]) == v,
            "url": lambda v: str(record["url"] or "").casefold() == v.casefold(),
            "cached_resource_name": lambda v: False,
        }
        return all(checks[k](v) for k, v in filters.items() if k in checks)

    @staticmethod
    def _sorted(request: web.Request, records: Sequence[JSONDict]) -> list[JSONDict]:
        sort = request.query.get("sort", "")
        ordered = sorted(records, key=lambda r: r["id"])
        if not sort:
            return ordered
        descending = sort.startswith("-")
        field = sort.lstrip("-")
        if field not in SORTS:
            raise SimHTTPError(_bad_request(f"Unsupported sort: {field}"))
        key = field.replace("_", "-")
        return (
            sorted(ordered, key=lambda r: str(r.get(key) or "").casefold(), reverse=descending)
            if field != "id"
            else sorted(ordered, key=lambda r: r["id"], reverse=descending)
        )

    # ---------------------------------------------------------------- handlers

    async def _get_organization(self, request: web.Request) -> web.StreamResponse:
        org_id = self._org(request)
        return json_response(
            {
                "data": {
                    "id": str(org_id),
                    "type": "organizations",
                    "attributes": self.organizations[org_id],
                }
            },
            content_type=JSONAPI,
        )

    async def _list_nested(self, request: web.Request) -> web.StreamResponse:
        return self._listing(request, self._org(request))

    async def _list_root(self, request: web.Request) -> web.StreamResponse:
        return self._listing(request, None)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        org_id = self._org(request)
        data = await self._document(request)
        show = self._show(request, False)
        items = data if isinstance(data, list) else [data]
        saved, next_id = dict(self.passwords), self._next_password
        try:
            created = [self.create_password(org_id, item.get("attributes") or {}) for item in items]
        except SimHTTPError:
            self.passwords, self._next_password = saved, next_id  # a bulk create is all or nothing
            raise
        rendered = [self.render(r, show_password=show) for r in created]
        return json_response(
            {"data": rendered if isinstance(data, list) else rendered[0]},
            201,
            content_type=JSONAPI,
        )

    async def _show_password(self, request: web.Request, org_id: int | None) -> web.Response:
        record = self._password(request, org_id)
        show = self._show(request, True)
        return json_response(
            {"data": self.render(record, show_password=show)}, content_type=JSONAPI
        )

    async def _show_nested(self, request: web.Request) -> web.StreamResponse:
        return await self._show_password(request, self._org(request))

    async def _show_root(self, request: web.Request) -> web.StreamResponse:
        return await self._show_password(request, None)

    async def _update(self, request: web.Request, org_id: int | None) -> web.Response:
        record = self._password(request, org_id)
        data = await self._document(request)
        if isinstance(data, list):
            return _bad_request("PATCH of one password takes a single data object")
        if data.get("id") not in (None, str(record["id"]), record["id"]):
            return _bad_request("data.id does not match the URL")
        self.update_password(record, data.get("attributes") or {})
        show = self._show(request, False)
        return json_response(
            {"data": self.render(record, show_password=show)}, content_type=JSONAPI
        )

    async def _update_nested(self, request: web.Request) -> web.StreamResponse:
        return await self._update(request, self._org(request))

    async def _update_root(self, request: web.Request) -> web.StreamResponse:
        return await self._update(request, None)

    async def _list_categories(self, request: web.Request) -> web.StreamResponse:
        data = [
            {"id": str(k), "type": "password-categories", "attributes": {"name": v}}
            for k, v in sorted(self.categories.items())
        ]
        return json_response(
            {"data": data, "meta": {"total-count": len(data)}}, content_type=JSONAPI
        )
