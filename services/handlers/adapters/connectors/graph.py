"""Microsoft Graph: a Microsoft 365 tenant's users and their passwords, for
``identity.m365_password_sync.enable``.

``base_url`` is Graph's API base (``https://graph.microsoft.com/v1.0``); the token
comes from Entra ID, at the ``token_url`` setting (``{tenant_id}`` in it is
replaced by the credentials' tenant) or ``DEFAULT_TOKEN_URL``.

From the vendor's documentation (and reproduced by the simulator):

- token: ``POST {token_url}``, a form with ``client_id``, ``client_secret``,
  ``scope=https://graph.microsoft.com/.default``, ``grant_type=client_credentials``,
  answered ``{"token_type": "Bearer", "expires_in", "access_token"}``; a refusal is
  ``{"error", "error_description": "AADSTS...: ..."}``: 400 for an unknown tenant,
  an unknown client, a bad scope or grant, 401 ``invalid_client`` for a bad secret.
  Token requests are not rate limited: they go straight through the session, not
  the pacer;
- ``GET /users/{id or userPrincipalName}?$select=...`` (404 when there is none);
  ``accountEnabled`` and ``onPremisesSyncEnabled`` are not in the default property
  set, so they are selected; ``onPremisesSyncEnabled`` is null for cloud-only users;
- ``PATCH /users/{id}`` ``{"passwordProfile": {"password", "forceChangePasswordNextSignIn"}}``
  answers 204. A user synced from on-premises AD is refused with 400 ("Unable to
  update the specified properties for on-premises mastered Directory Sync
  objects..."), a password that fails the complexity rule with 400, an app
  without the permission with 403 ``Authorization_RequestDenied``;
- errors: ``{"error": {"code", "message", "innerError"}}``; throttling is 429 with
  ``Retry-After`` in seconds, sometimes without it (the base client then backs off).

UNVERIFIED, and what this module chose:

- The token is cached until five minutes before ``expires_in`` runs out (half its
  life when that is under ten minutes); one token request at a time. A 401 on the
  API drops it and the base client retries once with a fresh one. A token request
  refused with 400/401/403 is :class:`VendorAuthError` with Entra's ``error`` and
  ``error_description``; 429, 5xx, timeouts and dropped connections are retried
  with the retry policy's back-off (honouring ``Retry-After``) until its
  ``give_up_after``, then :class:`VendorUnavailable`.
- The scope is always ``https://graph.microsoft.com/.default`` (a national cloud
  would need its own Graph host and scope).
- An API error is ``"code: message"``; any 400 of the password write (synced user,
  weak password, ...) is :class:`VendorRejected`, and its 403 is
  :class:`VendorAuthError` (the app lacks ``User-PasswordProfile.ReadWrite.All`` or
  the Entra role the target needs), as the base client maps them.
- A 404 on the lookup is "no such user" only when it is Graph's error body; a 404
  in another shape (a ``base_url`` that is not Graph's API) is
  :class:`VendorRejected`, so a misconfiguration is not read as every user missing.
- The UPN is percent-encoded in the path (``@`` kept). A UPN that starts with ``$``
  needs Graph's ``/users('$...')`` form: not handled.
- ``forceChangePasswordNextSignIn`` is false (the password is the user's AD
  password, set on their behalf); the write is idempotent and retried as such.
- Neither the secret nor a password is ever put in a message: they are also
  scrubbed from any vendor text that would echo them.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from schemas.providers import M365Settings
from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import (
    Answer,
    VendorHttp,
)
from services.handlers.adapters.oauth import ClientCredentialsToken, parse_json, scrub
from services.handlers.domain.errors import (
    VendorAuthError,
    VendorError,
    VendorRejected,
    VendorUnavailable,
)
from services.handlers.service_layer.ports import IdentityConnector

log = logging.getLogger(__name__)

SYSTEM = "m365"
DEFAULT_TOKEN_URL = "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"
SCOPE = "https://graph.microsoft.com/.default"
USERS = "/users"
SELECT = "id,userPrincipalName,accountEnabled,onPremisesSyncEnabled"
TOKEN_MARGIN = 300.0
DEFAULT_LIFETIME = 3599.0
MESSAGE_MAX = 500


class GraphToken(ClientCredentialsToken):
    """The :class:`~services.handlers.adapters.http.Auth` of Graph: a cached token."""

    margin = TOKEN_MARGIN
    default_lifetime = DEFAULT_LIFETIME

    def reason(self, body: Any) -> str:
        return _entra_reason(body)


class GraphHttp(VendorHttp):
    system = SYSTEM

    def error_message(self, answer: Answer) -> str:
        error = graph_error(answer.text)
        if error is None:
            return super().error_message(answer)
        code, message = error
        return f"{code}: {message}"[:MESSAGE_MAX] if message else code[:MESSAGE_MAX]


@dataclass(slots=True)
class GraphUser:
    """A Microsoft 365 user (an :class:`M365User`)."""

    id: str
    user_principal_name: str
    synced: bool
    account_enabled: bool | None = None


class GraphConnector:
    """The :class:`IdentityConnector` of one partner's Microsoft 365 tenant."""

    system = SYSTEM

    def __init__(self, http: GraphHttp) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"GraphConnector(base_url={self.http.base_url!r})"

    async def find_user(self, user_principal_name: str) -> GraphUser | None:
        upn = user_principal_name.strip()
        if not upn:
            return None
        try:
            answer = await self.http.request("GET", user_path(upn), params={"$select": SELECT})
        except VendorRejected as exc:
            if exc.status == 404 and _is_graph_message(exc.message):
                return None
            if exc.status == 404:
                raise VendorRejected(
                    f"{exc.message} (is base_url Graph's API?)", exc.status
                ) from None
            raise
        return _user(answer)

    async def set_password(self, user_id: str, password: str) -> None:
        body = {"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": False}}
        echoed: VendorError | None = None
        try:
            await self.http.request("PATCH", user_path(user_id), json_body=body, idempotent=True)
        except VendorError as exc:
            if not (password and password in exc.message):
                raise
            echoed = _scrubbed(exc, password)  # never seen: Graph does not echo it
        if echoed is not None:
            raise echoed  # outside the handler: no __context__ holding the original


def user_path(key: str) -> str:
    """``/users/{key}``, the id or UPN percent-encoded (``@`` kept as is)."""
    return f"{USERS}/{quote(key, safe='@')}"


# -- answers ----------------------------------------------------------------------


def graph_error(text: str) -> tuple[str, str] | None:
    """(code, message) of Graph's ``{"error": {"code", "message"}}``, or None."""
    body = parse_json(text)
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping) or not isinstance(error.get("code"), str):
        return None
    message = error.get("message")
    return error["code"], " ".join(str(message).split()) if message else ""


def _is_graph_message(message: str) -> bool:
    """Whether an error message was made from Graph's error body (not the fallback)."""
    return not message.startswith("HTTP ")


def _entra_reason(body: Any) -> str:
    """Entra ID's words in a token error (``error: error_description``)."""
    if not isinstance(body, Mapping):
        return "no reason given"
    parts = [body.get("error"), body.get("error_description")]
    reason = ": ".join(" ".join(str(p).split()) for p in parts if p)
    return reason[:MESSAGE_MAX] or "no reason given"


def _user(answer: Answer) -> GraphUser:
    body = parse_json(answer.text)
    if not isinstance(body, Mapping) or not body.get("id") or not body.get("userPrincipalName"):
        raise VendorRejected("Graph answered a user lookup without a user")
    enabled = body.get("accountEnabled")
    return GraphUser(
        id=str(body["id"]),
        user_principal_name=str(body["userPrincipalName"]),
        synced=body.get("onPremisesSyncEnabled") is True,
        account_enabled=enabled if isinstance(enabled, bool) else None,
    )


def _scrubbed(exc: VendorError, password: str) -> VendorError:
    message = scrub(exc.message, password)
    if isinstance(exc, VendorUnavailable):
        return VendorUnavailable(message, exc.status, exc.retry_after)
    return type(exc)(message, exc.status)


# -- composition ------------------------------------------------------------------


def _credential(credentials: Mapping[str, str], name: str) -> str:
    value = credentials.get(name)
    if not value:
        raise VendorAuthError(f"the integration's credentials have no {name}")
    return value


def token_url(settings: Mapping[str, Any], tenant_id: str) -> str:
    """The token endpoint of the tenant: the ``token_url`` setting, or Entra's."""
    try:
        configured = M365Settings.model_validate(dict(settings)).token_url
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise VendorRejected(f"the integration's settings are not valid: {fields}") from None
    template = configured or DEFAULT_TOKEN_URL
    return template.replace("{tenant_id}", quote(tenant_id, safe=""))


def connect(config: IntegrationConfig, context: ConnectContext) -> IdentityConnector:
    """The connector of one integration (no I/O until it is used: the token comes later)."""
    credentials = config.credentials
    tenant_id = _credential(credentials, "tenant_id")
    form = {
        "client_id": _credential(credentials, "client_id"),
        "client_secret": _credential(credentials, "client_secret"),
        "scope": SCOPE,
        "grant_type": "client_credentials",
    }
    token = GraphToken(context.session, token_url(config.settings, tenant_id), form, context.policy)
    http = GraphHttp(
        context.session,
        config.base_url,
        auth=token,
        pacer=context.pacer,
        policy=context.policy,
        metrics=context.metrics,
        default_headers={"Accept": "application/json"},
        slots=context.slots,
    )
    return GraphConnector(http)
