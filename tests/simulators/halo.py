"""Halo PSA: OAuth2 client credentials, clients, sites, and end users ("Users").

Base URL: ``https://<tenant>.halopsa.com``; this app serves ``/auth/token``
and the API under ``/api``.

Token: ``POST /auth/token`` (form ``grant_type=client_credentials``,
``client_id``, ``client_secret``, ``scope``; optional ``?tenant=``) answers
``{"access_token", "token_type": "Bearer", "expires_in"}``; a wrong client:
401 ``{"error": "invalid_client", "error_description": ...}``. API calls need
``Authorization: Bearer <token>``; an unknown or expired token: 401. Token
requests are not rate limited (300 requests per rolling 5 minutes for the rest).

UNVERIFIED points, and what this simulator does:

- 429 body: the text ``Rate Limit Reached`` (text/plain), with ``Retry-After``
  (configurable).
- 401 on the API: ``{"error": "invalid_token", "error_description": ...}`` and
  ``WWW-Authenticate: Bearer error="invalid_token"``.
- 400 body: ``{"message": "..."}``.
- ``POST /api/Users`` answers the saved user as a single object when one was
  sent, a list when several were (200 either way).
- ``site_id`` is not required: a user created with only ``client_id`` goes to
  that client's first site. One of them is required; an unknown one is 400.
- Unknown user fields in a POST are refused (400); accepted: id, name,
  firstname, surname, emailaddress, phonenumber, mobilenumber, client_id,
  site_id, activedirectory_dn, login, inactive, notes.
- ``?tenant=`` is checked only when the simulator is given a tenant.
- ``pageinate=true`` pages (``page_size`` default 50, ``page_no`` from 1);
  without it every match is answered (``count`` caps it). ``record_count`` is
  the number of matches, not of the page. Users sort by name, then id.
- Duplicate users are allowed.
"""

import math
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
from .tokens import TokenIssuer, bearer

USER_FIELDS = (
    "id",
    "name",
    "firstname",
    "surname",
    "emailaddress",
    "phonenumber",
    "mobilenumber",
    "client_id",
    "site_id",
    "activedirectory_dn",
    "login",
    "inactive",
    "notes",
)
TOKEN_PATH = "/auth/token"


def halo_400(message: str) -> web.Response:
    return json_response({"message": message}, 400)


class HaloSim(VendorSim):
    name = "halo"
    DEFAULT_RATE_LIMIT = RateLimit(300, 300.0)

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        tenant: str | None = None,
        token_lifetime: float = 3600.0,
        **options: Any,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant = tenant
        self.clients: dict[int, JSONDict] = {}
        self.sites: dict[int, JSONDict] = {}
        self.users: dict[int, JSONDict] = {}
        self._next_user = 1
        super().__init__(**options)
        self.tokens = TokenIssuer(token_lifetime, self.clock)

    # ------------------------------------------------------------------ routes

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(TOKEN_PATH, self._token)
        router.add_get("/api/Users", self._list_users)
        router.add_post("/api/Users", self._save_users)
        router.add_get("/api/Users/{id}", self._get_user)
        router.add_get("/api/Client/{id}", self._get_client)
        router.add_get("/api/Site/{id}", self._get_site)

    def is_exempt(self, request: web.Request, path: str) -> bool:
        return path == TOKEN_PATH

    def is_auth_exempt(self, request: web.Request, path: str) -> bool:
        return path == TOKEN_PATH

    def check_auth(self, request: web.Request) -> web.Response | None:
        token = bearer(request.headers.get("Authorization"))
        if token is None or self.tokens.check(token) is None:
            return json_response(
                {
                    "error": "invalid_token",
                    "error_description": "The access token is missing, invalid or expired.",
                },
                401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return None

    def error_response(self, status: int, message: str) -> web.Response:
        return json_response({"message": message}, status)

    def rate_limited_response(self) -> web.Response:
        return text_response("Rate Limit Reached", 429)

    def extra_config(self) -> JSONDict:
        return {"token_lifetime": self.tokens.lifetime}

    def configure_extra(self, key: str, value: Any) -> None:
        if key == "token_lifetime":
            self.tokens.lifetime = float(value)
        else:
            super().configure_extra(key, value)

    # ------------------------------------------------------------- python API

    def add_client(self, id: int, name: str, *, sites: Mapping[int, str] | None = None) -> JSONDict:
        """A client and its sites (a "Main" site with id ``id * 10 + 1`` by default)."""
        client = {"id": id, "name": name, "inactive": False}
        self.clients[id] = client
        for site_id, site_name in (sites or {id * 10 + 1: "Main"}).items():
            self.sites[site_id] = {
                "id": site_id,
                "name": site_name,
                "client_id": id,
                "client_name": name,
            }
        return client

    def add_user(self, **fields: Any) -> JSONDict:
        """A user as if POSTed (same validation)."""
        return self.save_user(fields)

    def save_user(self, raw: Any) -> JSONDict:
        if not isinstance(raw, Mapping):
            raise SimHTTPError(halo_400("Each user must be an object."))
        unknown = sorted(set(raw) - set(USER_FIELDS))
        if unknown:
            raise SimHTTPError(halo_400(f"Unknown user fields: {', '.join(unknown)}"))
        user_id = raw.get("id")
        creating = user_id in (None, 0, -1)
        if not creating:
            existing = self.users.get(user_id) if isinstance(user_id, int) else None
            if existing is None:
                raise SimHTTPError(halo_400(f"User {user_id} does not exist."))
            user = {**existing, **{k: v for k, v in raw.items() if k != "id"}}
        else:
            user = {
                **dict.fromkeys(USER_FIELDS, None),
                "inactive": False,
                **raw,
                "id": self._next_user,
            }
        self._place(user, raw)
        if not user.get("name"):
            user["name"] = " ".join(p for p in (user.get("firstname"), user.get("surname")) if p)
        if not user["name"]:
            raise SimHTTPError(halo_400("A user needs a name (or a firstname and surname)."))
        user["inactive"] = bool(user.get("inactive"))
        if creating:
            self._next_user += 1
        self.users[user["id"]] = user
        return user

    def _place(self, user: JSONDict, raw: Mapping[str, Any]) -> None:
        """Resolve the user's site and client from what was sent; 400 if unknown."""
        if "site_id" not in raw and "client_id" not in raw and user.get("site_id"):
            return
        site_id, client_id = raw.get("site_id"), raw.get("client_id")
        if site_id is not None:
            site = self.sites.get(site_id) if isinstance(site_id, int) else None
            if site is None:
                raise SimHTTPError(halo_400(f"Site {site_id} does not exist."))
            if client_id is not None and client_id != site["client_id"]:
                raise SimHTTPError(halo_400(f"Site {site_id} is not a site of client {client_id}."))
        elif client_id is not None:
            if not isinstance(client_id, int) or client_id not in self.clients:
                raise SimHTTPError(halo_400(f"Client {client_id} does not exist."))
            site = next((s for s in self.sites.values() if s["client_id"] == client_id), None)
            if site is None:
                raise SimHTTPError(halo_400(f"Client {client_id} has no site."))
        else:
            raise SimHTTPError(halo_400("A user needs a site_id or a client_id."))
        user.update(
            site_id=site["id"],
            site_name=site["name"],
            client_id=site["client_id"],
            client_name=site["client_name"],
        )

    def state(self) -> JSONDict:
        return {
            "clients": list(self.clients.values()),
            "sites": list(self.sites.values()),
            "users": list(self.users.values()),
            "tokens_issued": self.tokens.issued,
        }

    def seed(self, data: Mapping[str, Any]) -> JSONDict:
        """``{"clients": [{id, name, sites?: {site_id: name}}], "users": [<POST element>]}``."""
        clients = []
        for spec in data.get("clients", ()):
            sites = spec.get("sites")
            clients.append(
                self.add_client(
                    int(spec["id"]),
                    spec["name"],
                    sites={int(k): v for k, v in sites.items()} if sites else None,
                )
            )
        users = []
        for body in data.get("users", ()):
            try:
                users.append(self.save_user(body))
            except SimHTTPError as exc:
                raise ValueError(f"invalid user {body}: {exc.response.text}") from None
        return {"clients": clients, "users": users}

    def reset_state(self) -> None:
        self.clients.clear()
        self.sites.clear()
        self.users.clear()
        self.tokens.expire_all()
        self._next_user = 1

    # ---------------------------------------------------------------- handlers

    async def _token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return json_response(
                {"error": "unsupported_grant_type", "error_description": "Use client_credentials."},
                400,
            )
        tenant = request.query.get("tenant")
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
            or (self.tenant is not None and tenant not in (None, self.tenant))
        ):
            return json_response(
                {"error": "invalid_client", "error_description": "Invalid client credentials."},
                401,
            )
        token = self.tokens.issue(self.client_id)
        return json_response(
            {
                "access_token": token.value,
                "token_type": "Bearer",
                "expires_in": math.ceil(self.tokens.lifetime),
            }
        )

    @staticmethod
    def _optional_int(request: web.Request, name: str) -> int | None:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return None
        if not raw.lstrip("-").isdigit():
            raise SimHTTPError(halo_400(f"{name} must be an integer."))
        return int(raw)

    async def _list_users(self, request: web.Request) -> web.StreamResponse:
        client_id = self._optional_int(request, "client_id")
        site_id = self._optional_int(request, "site_id")
        if client_id is not None and client_id not in self.clients:
            return halo_400(f"Client {client_id} does not exist.")
        try:
            include_inactive = parse_bool(request.query.get("includeinactive")) or False
            paginated = parse_bool(request.query.get("pageinate")) or False
        except ValueError as exc:
            return halo_400(str(exc))
        search = request.query.get("search", "").strip().casefold()
        found = [
            u
            for u in self.users.values()
            if (client_id is None or u["client_id"] == client_id)
            and (site_id is None or u["site_id"] == site_id)
            and (include_inactive or not u["inactive"])
            and (
                not search
                or any(
                    search in str(u.get(f) or "").casefold()
                    for f in ("name", "emailaddress", "login")
                )
            )
        ]
        found.sort(key=lambda u: (str(u["name"]).casefold(), u["id"]))
        body: JSONDict = {"record_count": len(found)}
        if paginated:
            size = query_int(request, "page_size", 50, error=halo_400)
            number = query_int(request, "page_no", 1, error=halo_400)
            body.update(page_no=number, page_size=size, users=paginate(found, number, size).items)
        else:
            count = self._optional_int(request, "count")
            body["users"] = found[:count] if count is not None else found
        return json_response(body)

    async def _save_users(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return halo_400("The body is not valid JSON.")
        if not isinstance(body, list) or not body:
            return halo_400("POST /api/Users takes a non-empty array of users.")
        saved = [self.save_user(item) for item in body]
        return json_response(saved[0] if len(saved) == 1 else saved)

    async def _get_by_id(
        self, request: web.Request, table: Mapping[int, JSONDict], kind: str
    ) -> web.Response:
        raw = request.match_info["id"]
        record = table.get(int(raw)) if raw.isdigit() else None
        if record is None:
            return json_response({"message": f"{kind} {raw} not found."}, 404)
        return json_response(record)

    async def _get_user(self, request: web.Request) -> web.StreamResponse:
        return await self._get_by_id(request, self.users, "User")

    async def _get_client(self, request: web.Request) -> web.StreamResponse:
        return await self._get_by_id(request, self.clients, "Client")

    async def _get_site(self, request: web.Request) -> web.StreamResponse:
        return await self._get_by_id(request, self.sites, "Site")
