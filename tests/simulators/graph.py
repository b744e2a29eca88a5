"""Microsoft Graph v1.0 (users and password resets) and its Entra ID token endpoint.

This app serves both hosts side by side: the token endpoint at
``/login/{tenant}/oauth2/v2.0/token`` (``login.microsoftonline.com``) and the
API under ``/v1.0`` (``graph.microsoft.com``). Token requests need no bearer
token and are never rate limited; there is no rate limit by default.

Token: form ``client_id``, ``client_secret``,
``scope=https://graph.microsoft.com/.default``, ``grant_type=client_credentials``
→ ``{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
"access_token"}``. Errors follow Entra ID: unknown tenant 400
``invalid_request`` (AADSTS90002), unknown client 400 ``unauthorized_client``
(AADSTS700016), bad secret 401 ``invalid_client`` (AADSTS7000215), bad scope
400 ``invalid_scope``, bad grant 400 ``unsupported_grant_type``.

API errors: ``{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}``; every answer carries ``request-id`` and echoes
``client-request-id``. ``GET /v1.0/users/{id-or-userPrincipalName}`` (the UPN
case-insensitively; a mail address that is not a UPN is 404, as in Graph)
without ``$select`` answers Graph's default property set, which does **not**
include ``accountEnabled`` or ``onPremisesSyncEnabled``: select them.
``onPremisesSyncEnabled`` is ``null`` for cloud-only users (as in Graph), true
for synced ones. ``PATCH /v1.0/users/{id}`` with ``passwordProfile`` → 204 and
the password is recorded (:attr:`GraphSim.password_changes`); a synced user →
400 "Unable to update the specified properties for on-premises mastered
Directory Sync objects or objects currently undergoing migration."; a password
that fails Entra's complexity rule (8-256 characters, 3 of lower/upper/digit/
symbol) → 400; ``privileged=False`` makes every password write 403
``Authorization_RequestDenied``.

UNVERIFIED / simulator choices: throttling is 429 ``TooManyRequests`` with
``Retry-After`` (``retry_after_header=False`` omits it, as Graph sometimes does);
``$filter`` supports ``<prop> eq '<value>'`` clauses joined by ``or``/``and`` on
id, userPrincipalName, mail, displayName; ``autoprovision`` (a demo aid, off by
default) maps UPN domain suffixes to a synced flag and creates users on their
first lookup by UPN.
"""

import datetime as dt
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .base import VendorSim
from .http import JSONDict, SimHTTPError, json_response
from .tokens import TokenIssuer, bearer

SCOPE = "https://graph.microsoft.com/.default"
SYNCED_MESSAGE = (
    "Unable to update the specified properties for on-premises mastered Directory Sync "
    "objects or objects currently undergoing migration."
)
COMPLEXITY_MESSAGE = (
    "The specified password does not comply with password complexity requirements. "
    "Please provide a different password."
)
DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
PROPERTIES = (*DEFAULT_SELECT, "accountEnabled", "onPremisesSyncEnabled", "passwordProfile")
WRITABLE = (
    "accountEnabled",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "businessPhones",
    "passwordProfile",
)
_CLAUSE = re.compile(r"\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*", re.IGNORECASE)


def _date() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def complex_enough(password: str) -> bool:
    classes = (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]")
    return 8 <= len(password) <= 256 and sum(bool(re.search(c, password)) for c in classes) >= 3


def aad_error(status: int, error: str, code: int, description: str) -> web.Response:
    return json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code],
            "timestamp": _date() + "Z",
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
        status,
    )


class GraphSim(VendorSim):
    name = "graph"
    DEFAULT_RATE_LIMIT = None

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        tenant_domains: tuple[str, ...] = (),
        token_lifetime: float = 3599.0,
        privileged: bool = True,
        autoprovision: Mapping[str, bool] | None = None,
        **options: Any,
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant_domains = tenant_domains
        self.privileged = privileged
        self.autoprovision = dict(autoprovision or {})
        self.users: dict[str, JSONDict] = {}
        self.password_changes: list[JSONDict] = []
        super().__init__(**options)
        self.tokens = TokenIssuer(token_lifetime, self.clock)

    # ------------------------------------------------------------------ routes

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/login/{tenant}/oauth2/v2.0/token", self._token)
        router.add_get("/v1.0/users", self._list_users)
        router.add_get("/v1.0/users/{id}", self._get_user)
        router.add_patch("/v1.0/users/{id}", self._patch_user)

    def is_exempt(self, request: web.Request, path: str) -> bool:
        return path.startswith("/login/")

    def is_auth_exempt(self, request: web.Request, path: str) -> bool:
        return path.startswith("/login/")

    def check_auth(self, request: web.Request) -> web.Response | None:
        token = bearer(request.headers.get("Authorization"))
        if token is None:
            return self.graph_error(
                request, 401, "InvalidAuthenticationToken", "Access token is empty."
            )
        issued = self.tokens.check(token)
        if issued is None or issued.subject != self.tenant_id:
            return self.graph_error(
                request,
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            )
        return None

    def graph_error(
        self, request: web.Request | None, status: int, code: str, message: str
    ) -> web.Response:
        client_request_id = request.headers.get("client-request-id") if request else None
        request_id = str(uuid.uuid4())
        client_request_id = client_request_id or request_id
        return json_response(
            {
                "error": {
                    "code": code,
                    "message": message,
                    "innerError": {
                        "date": _date(),
                        "request-id": request_id,
                        "client-request-id": client_request_id,
                    },
                }
            },
            status,
            headers={"request-id": request_id, "client-request-id": client_request_id},
        )

    def error_response(self, status: int, message: str) -> web.Response:
        codes = {404: "Request_ResourceNotFound", 429: "TooManyRequests", 503: "ServiceUnavailable"}
        return self.graph_error(None, status, codes.get(status, "generalException"), message)

    def rate_limited_response(self) -> web.Response:
        return self.graph_error(
            None, 429, "TooManyRequests", "Too many requests. Please try again later."
        )

    def extra_config(self) -> JSONDict:
        return {"token_lifetime": self.tokens.lifetime, "privileged": self.privileged}

    def configure_extra(self, key: str, value: Any) -> None:
        if key == "token_lifetime":
            self.tokens.lifetime = float(value)
        elif key == "privileged":
            self.privileged = bool(value)
        else:
            super().configure_extra(key, value)

    # ------------------------------------------------------------- python API

    def add_user(
        self,
        user_principal_name: str,
        *,
        display_name: str | None = None,
        mail: str | None = None,
        account_enabled: bool = True,
        on_premises_sync_enabled: bool | None = None,
        id: str | None = None,
    ) -> JSONDict:
        local = user_principal_name.split("@")[0]
        given, _, surname = (display_name or local.replace(".", " ").title()).partition(" ")
        user: JSONDict = {
            "id": id or str(uuid.uuid4()),
            "userPrincipalName": user_principal_name,
            "displayName": display_name or f"{given} {surname}".strip(),
            "givenName": given or None,
            "surname": surname or None,
            "mail": mail if mail is not None else user_principal_name,
            "accountEnabled": account_enabled,
            "onPremisesSyncEnabled": on_premises_sync_enabled,
            "businessPhones": [],
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "passwordProfile": None,
        }
        self.users[str(user["id"])] = user
        return user

    def find_user(self, key: str) -> JSONDict | None:
        """By object id or userPrincipalName (case-insensitive), as ``/users/{key}`` resolves."""
        if key in self.users:
            return self.users[key]
        folded = key.casefold()
        for user in self.users.values():
            if user["userPrincipalName"].casefold() == folded:
                return user
        domain = folded.rpartition("@")[2]
        for suffix, synced in self.autoprovision.items():
            if "@" in folded and domain.endswith(suffix.casefold()):
                return self.add_user(key, on_premises_sync_enabled=True if synced else None)
        return None

    def last_password(self, key: str) -> str | None:
        """The last password set for a user (by id or UPN), or None."""
        user = self.find_user(key)
        if user is None:
            return None
        sets = [c for c in self.password_changes if c["id"] == user["id"]]
        return sets[-1]["password"] if sets else None

    def state(self) -> JSONDict:
        return {"users": list(self.users.values()), "password_changes": self.password_changes}

    def seed(self, data: Mapping[str, Any]) -> JSONDict:
        """``{"users": [{userPrincipalName, displayName?, mail?, accountEnabled?,
        onPremisesSyncEnabled?, id?}]}``."""
        users = [
            self.add_user(
                spec["userPrincipalName"],
                display_name=spec.get("displayName"),
                mail=spec.get("mail"),
                account_enabled=spec.get("accountEnabled", True),
                on_premises_sync_enabled=spec.get("onPremisesSyncEnabled"),
                id=spec.get("id"),
            )
            for spec in data.get("users", ())
        ]
        return {"users": users}

    def reset_state(self) -> None:
        self.users.clear()
        self.password_changes.clear()
        self.tokens.expire_all()

    # ---------------------------------------------------------------- handlers

    async def _token(self, request: web.Request) -> web.StreamResponse:
        tenant = request.match_info["tenant"]
        form = await request.post()
        client_id, scope = str(form.get("client_id", "")), str(form.get("scope", ""))
        if tenant != self.tenant_id and tenant.lower() not in (
            d.lower() for d in self.tenant_domains
        ):
            return aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return aad_error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        if form.get("client_id") != self.client_id:
            return aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant}'.",
            )
        if form.get("client_secret") != self.client_secret:
            return aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID.",
            )
        if form.get("scope") != SCOPE:
            return aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} "
                "is not valid. Client credential flows must have a scope value with /.default.",
            )
        token = self.tokens.issue(self.tenant_id)
        lifetime = math.ceil(self.tokens.lifetime)
        return json_response(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token.value,
            }
        )

    def _select(self, request: web.Request) -> tuple[str, ...]:
        raw = request.query.get("$select")
        if not raw:
            return DEFAULT_SELECT
        fields = tuple(f.strip() for f in raw.split(",") if f.strip())
        for field in fields:
            if field not in PROPERTIES:
                raise SimHTTPError(
                    self.graph_error(
                        request,
                        400,
                        "BadRequest",
                        f"Could not find a property named '{field}' on type "
                        "'microsoft.graph.user'.",
                    )
                )
        return fields

    def _ok(self, request: web.Request, body: Any, status: int = 200) -> web.Response:
        request_id = str(uuid.uuid4())
        headers = {
            "request-id": request_id,
            "client-request-id": request.headers.get("client-request-id", request_id),
        }
        if status == 204:
            return web.Response(status=204, headers=headers)
        return json_response(body, status, headers=headers)

    def _context(self, request: web.Request, fields: tuple[str, ...], entity: bool) -> str:
        selection = "" if fields == DEFAULT_SELECT else f"({','.join(fields)})"
        suffix = "/$entity" if entity else ""
        return f"{self.base_url(request)}/v1.0/$metadata#users{selection}{suffix}"

    async def _get_user(self, request: web.Request) -> web.StreamResponse:
        fields = self._select(request)
        key = request.match_info["id"]
        user = self.find_user(key)
        if user is None:
            return self.graph_error(
                request,
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        body: JSONDict = {"@odata.context": self._context(request, fields, True)}
        body.update({f: user.get(f) for f in fields})
        return self._ok(request, body)

    def _filter(self, request: web.Request, text: str) -> list[JSONDict]:
        joiner = " or " if re.search(r"\sor\s", text, re.IGNORECASE) else " and "
        clauses = re.split(joiner, text, flags=re.IGNORECASE)
        parsed = []
        for clause in clauses:
            match = _CLAUSE.fullmatch(clause)
            if match is None or match.group(1) not in (
                "id",
                "userPrincipalName",
                "mail",
                "displayName",
            ):
                raise SimHTTPError(
                    self.graph_error(request, 400, "BadRequest", f"Invalid filter clause: {clause}")
                )
            parsed.append((match.group(1), match.group(2).replace("''", "'").casefold()))

        def hit(user: JSONDict, prop: str, value: str) -> bool:
            return str(user.get(prop) or "").casefold() == value

        combine = any if joiner == " or " else all
        return [u for u in self.users.values() if combine(hit(u, p, v) for p, v in parsed)]

    async def _list_users(self, request: web.Request) -> web.StreamResponse:
        fields = self._select(request)
        text = request.query.get("$filter")
        users = self._filter(request, text) if text else list(self.users.values())
        top_raw = request.query.get("$top", "100")
        skip_raw = request.query.get("$skiptoken", "0")
        if not top_raw.isdigit() or not skip_raw.isdigit() or not 1 <= int(top_raw) <= 999:
            return self.graph_error(request, 400, "BadRequest", "Invalid $top or $skiptoken.")
        top, skip = int(top_raw), int(skip_raw)
        page = users[skip : skip + top]
        body: JSONDict = {
            "@odata.context": self._context(request, fields, False),
            "value": [{f: u.get(f) for f in fields} for u in page],
        }
        if skip + top < len(users):
            body["@odata.nextLink"] = str(request.url.update_query({"$skiptoken": skip + top}))
        return self._ok(request, body)

    async def _patch_user(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["id"]
        user = self.find_user(key)
        if user is None:
            return self.graph_error(
                request,
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        try:
            body = await request.json()
        except ValueError:
            return self.graph_error(
                request, 400, "BadRequest", "Unable to read JSON request payload."
            )
        if not isinstance(body, Mapping) or not body:
            return self.graph_error(
                request, 400, "BadRequest", "Empty Payload. JSON content expected."
            )
        for prop in body:
            if prop not in WRITABLE:
                return self.graph_error(
                    request, 400, "Request_BadRequest", f"Invalid property '{prop}'."
                )
        profile = body.get("passwordProfile")
        if profile is not None:
            refusal = self._check_password(request, user, profile)
            if refusal is not None:
                return refusal
        elif user.get("onPremisesSyncEnabled"):
            return self.graph_error(request, 400, "Request_BadRequest", SYNCED_MESSAGE)
        for prop, value in body.items():
            if prop != "passwordProfile":
                user[prop] = value
        if profile is not None:
            self.password_changes.append(
                {
                    "id": user["id"],
                    "userPrincipalName": user["userPrincipalName"],
                    "password": profile["password"],
                    "forceChangePasswordNextSignIn": bool(
                        profile.get("forceChangePasswordNextSignIn", True)
                    ),
                    "at": dt.datetime.now(dt.UTC).isoformat(),
                }
            )
        return self._ok(request, None, 204)

    def _check_password(
        self, request: web.Request, user: JSONDict, profile: Any
    ) -> web.Response | None:
        if not self.privileged:
            return self.graph_error(
                request,
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        if not isinstance(profile, Mapping) or not isinstance(profile.get("password"), str):
            return self.graph_error(
                request, 400, "Request_BadRequest", "passwordProfile.password is required."
            )
        unknown = set(profile) - {
            "password",
            "forceChangePasswordNextSignIn",
            "forceChangePasswordNextSignInWithMfa",
        }
        if unknown:
            return self.graph_error(
                request, 400, "Request_BadRequest", f"Invalid property '{sorted(unknown)[0]}'."
            )
        if user.get("onPremisesSyncEnabled"):
            return self.graph_error(request, 400, "Request_BadRequest", SYNCED_MESSAGE)
        if not complex_enough(profile["password"]):
            return self.graph_error(request, 400, "Request_BadRequest", COMPLEXITY_MESSAGE)
        return None
