"""Dev mode only: a link that signs into the UI as a manager of the demo partner.

``GET /dev/sign-in`` issues a token (role ``manager`` unless ``?role=`` names
another role of the contract) and redirects to ``/ui/#token=...``: a URL
fragment is never sent to a server nor logged, and the UI moves the token to
``sessionStorage`` at once. The route is not registered at all when
``DEV_MODE`` is off (see :func:`services.policy_service.ui.routes.mount_ui`).
"""

from collections.abc import Awaitable, Callable

from aiohttp import web

from services.policy_service.api.auth import issue_token
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


def dev_sign_in(secret: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of :data:`DEV_SIGN_IN_PATH`, signing with ``secret``."""

    async def handler(request: web.Request) -> web.Response:
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
