"""Hudu: companies and asset passwords (``/api/v1``).

Base URL: ``https://<instance>`` (self-hosted or ``*.huducloud.com``); this app
serves ``/api/v1/...``. Auth: header ``x-api-key``; missing or wrong: 401.
Limit: 300 requests per rolling minute. Lists take ``page`` and ``page_size``
(default 25) and give no total: a page shorter than ``page_size`` is the last.

Quirks reproduced: ``GET /api/v1/asset_passwords/{id}`` for a missing id
answers **200 with the body ``null``**; a missing envelope key answers 400
``{"error": "Parameter missing", "details": "param is missing or the value is
empty: asset_password"}``; validation failures answer 422 ``{"errors": "..."}``
(one string).

UNVERIFIED points, and what this simulator does:

- 429 body: the text ``Retry later`` (Rack::Attack's default), with
  ``Retry-After`` (configurable: ``retry_after_header=False`` drops it).
- 401 body: ``{"error": "Invalid API key"}``.
- ``search`` matches the password's ``name`` only (case-insensitive substring);
  ``name`` is an exact, case-sensitive match. Usernames are matched client-side.
- ``archived`` defaults to false (archived passwords are left out).
- ``page_size`` above 1000 is clamped to 1000.
- Unknown attributes in ``asset_password`` are refused with 422 (Rails would
  drop them silently), so typos surface.
- ``GET /api/v1/companies/{id}`` for a missing id is 404 ``{"error": "Record not found"}``
  (only passwords have the 200-null quirk); PUT of a missing password is 404.
- Duplicate passwords are allowed.
"""

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .base import VendorSim
from .http import (
    JSONDict,
    SimHTTPError,
    json_response,
    paginate,
    parse_bool,
    query_int,
    text_response,
)
from .limits import RateLimit

API = "/api/v1"
PERMITTED = (
    "company_id",
    "name",
    "username",
    "password",
    "url",
    "description",
    "password_folder_id",
    "passwordable_type",
    "passwordable_id",
    "otp_secret",
    "in_portal",
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _slug(name: str, record_id: int) -> str:
    return f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}-{record_id}"


def hudu_error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


def _invalid(*messages: str) -> SimHTTPError:
    return SimHTTPError(json_response({"errors": ", ".join(messages)}, 422))


def _bad_param(message: str) -> web.Response:
    return hudu_error(400, message)


class HuduSim(VendorSim):
    name = "hudu"
    DEFAULT_RATE_LIMIT = RateLimit(300, 60.0)

    def __init__(self, *, api_key: str, **options: Any) -> None:
        self.api_key = api_key
        self.companies: dict[int, JSONDict] = {}
        self.folders: dict[int, JSONDict] = {}
        self.passwords: dict[int, JSONDict] = {}
        self._next_password = 1
        super().__init__(**options)

    # ------------------------------------------------------------------ routes

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(API + "/companies", self._list_companies)
        router.add_get(API + "/companies/{id}", self._get_company)
        router.add_get(API + "/asset_passwords", self._list_passwords)
        router.add_post(API + "/asset_passwords", self._create_password)
        router.add_get(API + "/asset_passwords/{id}", self._get_password)
        router.add_put(API + "/asset_passwords/{id}", self._update_password)
        router.add_put(API + "/asset_passwords/{id}/archive", self._archive)
        router.add_put(API + "/asset_passwords/{id}/unarchive", self._unarchive)

    def check_auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return hudu_error(401, "Invalid API key")
        return None

    def error_response(self, status: int, message: str) -> web.Response:
        return hudu_error(status, message)

    def rate_limited_response(self) -> web.Response:
        return text_response("Retry later\n", 429)

    # ------------------------------------------------------------- python API

    def add_company(self, id: int, name: str, *, nickname: str | None = None) -> JSONDict:
        stamp = _now()
        company = {
            "id": id,
            "name": name,
            "nickname": nickname,
            "slug": _slug(name, id),
            "company_type": "Customer",
            "archived": False,
            "id_in_integration": None,
            "created_at": stamp,
            "updated_at": stamp,
            "object_type": "Company",
        }
        self.companies[id] = company
        return company

    def add_folder(self, id: int, company_id: int, name: str) -> JSONDict:
        folder = {"id": id, "company_id": company_id, "name": name}
        self.folders[id] = folder
        return folder

    def add_password(self, *, archived: bool = False, **fields: Any) -> JSONDict:
        """A password as if POSTed (same validation)."""
        record = self.create_password(fields)
        record["archived"] = archived
        return record

    def create_password(self, fields: Any) -> JSONDict:
        values = self._permitted(fields)
        missing = [
            f"{label} can't be blank"
            for key, label in (
                ("company_id", "Company"),
                ("name", "Name"),
                ("password", "Password"),
            )
            if values.get(key) in (None, "")
        ]
        if missing:
            raise _invalid(*missing)
        stamp = _now()
        record: JSONDict = {
            "id": self._next_password,
            **dict.fromkeys(PERMITTED),
            "in_portal": False,
            "archived": False,
            "created_at": stamp,
            "updated_at": stamp,
            "object_type": "AssetPassword",
        }
        record.update(values)
        self._check(record)
        self._next_password += 1
        self.passwords[record["id"]] = record
        return record

    def update_password(self, record: JSONDict, fields: Any) -> JSONDict:
        values = self._permitted(fields)
        for key, label in (("company_id", "Company"), ("name", "Name"), ("password", "Password")):
            if key in values and values[key] in (None, ""):
                raise _invalid(f"{label} can't be blank")
        updated = {**record, **values}
        self._check(updated)
        updated["updated_at"] = _now()
        record.update(updated)
        return record

    def render(self, record: Mapping[str, Any]) -> JSONDict:
        company = self.companies.get(record["company_id"], {})
        folder = self.folders.get(record.get("password_folder_id") or -1, {})
        return {
            **record,
            "company_name": company.get("name"),
            "password_folder_name": folder.get("name"),
            "slug": _slug(str(record["name"]), record["id"]),
        }

    def state(self) -> JSONDict:
        return {
            "companies": list(self.companies.values()),
            "password_folders": list(self.folders.values()),
            "asset_passwords": [self.render(r) for r in self.passwords.values()],
        }

    def seed(self, data: Mapping[str, Any]) -> JSONDict:
        """``{"companies": [{id, name}], "password_folders": [{id, company_id, name}],
        "asset_passwords": [{company_id, name, password, ...}]}``."""
        companies = [self.add_company(int(c["id"]), c["name"]) for c in data.get("companies", ())]
        for folder in data.get("password_folders", ()):
            self.add_folder(int(folder["id"]), int(folder["company_id"]), folder["name"])
        passwords = []
        for spec in data.get("asset_passwords", ()):
            try:
                passwords.append(self.render(self.add_password(**spec)))
            except SimHTTPError as exc:
                raise ValueError(f"invalid password {spec}: {exc.response.text}") from None
        return {"companies": companies, "asset_passwords": passwords}

    def reset_state(self) -> None:
        self.companies.clear()
        self.folders.clear()
        self.passwords.clear()
        self._next_password = 1

    # -------------------------------------------------------------- validation

    @staticmethod
    def _permitted(fields: Any) -> JSONDict:
        if not isinstance(fields, Mapping):
            raise _invalid("asset_password must be an object")
        unknown = sorted(set(fields) - set(PERMITTED))
        if unknown:
            raise _invalid(f"Unknown attribute: {', '.join(unknown)}")
        values = dict(fields)
        for key in ("company_id", "password_folder_id", "passwordable_id"):
            value = values.get(key)
            if isinstance(value, str) and value.isdigit():
                values[key] = int(value)
        return values

    def _check(self, record: Mapping[str, Any]) -> None:
        if record["company_id"] not in self.companies:
            raise _invalid("Company must exist")
        folder_id = record.get("password_folder_id")
        if folder_id is not None:
            folder = self.folders.get(folder_id)
            if folder is None or folder["company_id"] != record["company_id"]:
                raise _invalid("Password folder must exist")

    async def _envelope(self, request: web.Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            raise SimHTTPError(hudu_error(400, "The body is not valid JSON")) from None
        fields = body.get("asset_password") if isinstance(body, Mapping) else None
        if not fields:
            raise SimHTTPError(
                json_response(
                    {
                        "error": "Parameter missing",
                        "details": "param is missing or the value is empty: asset_password",
                    },
                    400,
                )
            )
        return fields

    def _find(self, request: web.Request) -> JSONDict | None:
        raw = request.match_info["id"]
        return self.passwords.get(int(raw)) if raw.isdigit() else None

    # ---------------------------------------------------------------- handlers

    async def _list_companies(self, request: web.Request) -> web.StreamResponse:
        size = query_int(request, "page_size", 25, error=_bad_param, maximum=1000)
        number = query_int(request, "page", 1, error=_bad_param)
        name = request.query.get("name")
        found = [c for c in self.companies.values() if name is None or c["name"] == name]
        found.sort(key=lambda c: c["id"])
        return json_response({"companies": paginate(found, number, size).items})

    async def _get_company(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info["id"]
        company = self.companies.get(int(raw)) if raw.isdigit() else None
        if company is None:
            return hudu_error(404, "Record not found")
        return json_response({"company": company})

    async def _list_passwords(self, request: web.Request) -> web.StreamResponse:
        size = query_int(request, "page_size", 25, error=_bad_param, maximum=1000)
        number = query_int(request, "page", 1, error=_bad_param)
        raw_company = request.query.get("company_id")
        if raw_company not in (None, "") and not raw_company.isdigit():
            return _bad_param("company_id must be an integer")
        company_id = int(raw_company) if raw_company else None
        try:
            archived = parse_bool(request.query.get("archived")) or False
        except ValueError as exc:
            return _bad_param(str(exc))
        name = request.query.get("name")
        search = request.query.get("search", "").casefold()
        found = [
            r
            for r in self.passwords.values()
            if (company_id is None or r["company_id"] == company_id)
            and bool(r["archived"]) is archived
            and (name is None or r["name"] == name)
            and (not search or search in str(r["name"]).casefold())
        ]
        found.sort(key=lambda r: r["id"])
        page = paginate(found, number, size)
        return json_response({"asset_passwords": [self.render(r) for r in page.items]})

    async def _create_password(self, request: web.Request) -> web.StreamResponse:
        record = self.create_password(await self._envelope(request))
        return json_response({"asset_password": self.render(record)}, 201)

    async def _get_password(self, request: web.Request) -> web.StreamResponse:
        record = self._find(request)
        return json_response(None if record is None else {"asset_password": self.render(record)})

    async def _update_password(self, request: web.Request) -> web.StreamResponse:
        record = self._find(request)
        if record is None:
            return hudu_error(404, "Record not found")
        self.update_password(record, await self._envelope(request))
        return json_response({"asset_password": self.render(record)})

    async def _set_archived(self, request: web.Request, archived: bool) -> web.Response:
        record = self._find(request)
        if record is None:
            return hudu_error(404, "Record not found")
        record["archived"] = archived
        record["updated_at"] = _now()
        return json_response({"asset_password": self.render(record)})

    async def _archive(self, request: web.Request) -> web.StreamResponse:
        return await self._set_archived(request, True)

    async def _unarchive(self, request: web.Request) -> web.StreamResponse:
        return await self._set_archived(request, False)
