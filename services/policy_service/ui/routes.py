"""Routes of the admin UI: ``/`` and ``/ui`` redirect to ``/ui/``, which serves ``static/``.

The files are served with a strict Content-Security-Policy: scripts, styles
and API calls may only come from this origin, so the page works (and can only
work) without the internet.
"""

from pathlib import Path

from aiohttp import web

from services.policy_service.settings import PolicyServiceSettings
from services.policy_service.ui.devsignin import DEV_SIGN_IN_PATH, dev_sign_in

STATIC_DIR = Path(__file__).parent / "static"
UI_PREFIX = "/ui/"

CONTENT_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate on every load (Last-Modified), so a new release is never half-cached.
    "Cache-Control": "no-cache",
}


def mount_ui(app: web.Application, settings: PolicyServiceSettings) -> None:
    """Add the UI routes to ``app``; ``/dev/sign-in`` only exists in dev mode."""
    app.router.add_get("/", _to_ui, name="ui_root")
    app.router.add_get("/ui", _to_ui, name="ui_bare")
    app.router.add_get(UI_PREFIX + "{path:.*}", _asset, name="ui")
    if settings.dev_mode:
        app.router.add_get(
            DEV_SIGN_IN_PATH,
            dev_sign_in(settings.auth_jwt_secret.get_secret_value()),
            name="dev_sign_in",
        )


async def _to_ui(_: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": UI_PREFIX})


def resolve_asset(path: str, root: Path = STATIC_DIR) -> Path | None:
    """The file under ``root`` that ``path`` names (``index.html`` for none), or None.

    Only regular files with a known type directly or deeper under ``root``:
    ``..``, absolute paths, hidden files and anything else are not found.
    """
    name = path or "index.html"
    parts = name.split("/")
    if "\\" in name or any(not p or p.startswith(".") for p in parts):
        return None
    candidate = root.joinpath(*parts)
    if candidate.suffix not in CONTENT_TYPES:
        return None
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
        return None
    return resolved


async def _asset(request: web.Request) -> web.StreamResponse:
    found = resolve_asset(request.match_info["path"])
    if found is None:
        raise web.HTTPNotFound(text=f"no UI file {request.path}")
    headers = {**SECURITY_HEADERS, "Content-Type": CONTENT_TYPES[found.suffix]}
    return web.FileResponse(found, headers=headers)
