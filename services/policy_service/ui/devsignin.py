"""Dev mode only: a link that signs into the UI as a manager of the demo partner.

``GET /dev/sign-in`` issues a token (role ``manager`` unless ``?role=`` names
another role of the contract) and redirects to ``/ui/#token=...``: a URL
fragment is never sent to a server nor logged, and the UI moves the token to
``sessionStorage`` at once. The route is not registered at all when
``DEV_MODE`` is off (see :func:`services.policy_service.ui.routes.mount_ui`).

It hands a manager token to whoever asks, so it only answers clients on this
machine: a request whose TCP peer is not a loopback address (127.0.0.0/8,
``::1``, ``::ffff:127.0.0.1``) gets 403 problem JSON. The peer is the
socket's, never ``X-Forwarded-For`` nor ``request.remote`` (which a
forwarded-headers middleware may rewrite): behind a proxy on this host, the
proxy is the peer, so do not proxy this route.
"""

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.policy_service.api.auth import issue_token
from services.policy_service.api.problems import problem_response
from services.policy_service.domain.auth import Role

DEV_SIGN_IN_PATH = "/dev/sign-in"
DEMO_PARTNER = "demo-partner"
"""The partner ``make run`` seeds and signs into (``msp-import-dev``'s default partner)."""
DEV_TOKEN_TTL_SECONDS = 12 * 3600


def dev_token(secret: str, role: Role = Role.MANAGER) -> str:
    """A token for ``role`` of the demo partner, as the dev sign-in link issues it."""
    return issue_token(
        secret,
        sub=f"dev-{role.value}",
        partner_id=DEMO_PARTNER,
        role=role.value,
        ttl_seconds=DEV_TOKEN_TTL_SECONDS,
    )


def is_loopback_peer(peername: object) -> bool:
    """Whether a transport's ``peername`` is a loopback IP address.

    ``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6;
    anything else (no transport, a Unix socket's path) is not loopback.
    """
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return False
    try:
        address = ipaddress.ip_address(peername[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _peername(request: web.Request) -> object:
    """The TCP peer of the request's connection (None once it is gone)."""
    transport = request.transport
    return None if transport is None else transport.get_extra_info("peername")


def dev_sign_in(secret: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of :data:`DEV_SIGN_IN_PATH`, signing with ``secret``; loopback clients only."""

    async def handler(request: web.Request) -> web.Response:
        if not is_loopback_peer(_peername(request)):
            return problem_response(
                403,
                "Forbidden",
                f"{DEV_SIGN_IN_PATH} only answers clients on this machine (a loopback address)",
                slug="forbidden",
                instance=request.path,
                headers={"Cache-Control": "no-store"},
            )
        raw = request.query.get("role", Role.MANAGER.value)
        try:
            role = Role(raw)
        except ValueError as exc:
            roles = ", ".join(r.value for r in Role)
            raise web.HTTPBadRequest(text=f"role must be one of {roles}") from exc
        return web.Response(
            status=303,
            headers={
                "Location": f"/ui/#token={dev_token(secret, role)}",
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
        )

    return handler
