"""The admin web UI: static files served under ``/ui/`` by the policy service itself.

The UI is plain HTML, CSS and JavaScript modules shipped in ``static/`` (no
build step, nothing fetched from elsewhere), and talks to the public ``/v1``
API with the same bearer token as any other client. In dev mode only, a
``/dev/sign-in`` link hands out a token for the demo partner.
"""

from services.policy_service.ui.routes import STATIC_DIR, mount_ui

__all__ = ["STATIC_DIR", "mount_ui"]
