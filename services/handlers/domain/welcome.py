"""The welcome email: what it says, as a :class:`Mail` (pure: no network, no clock).

The words live in two Jinja2 templates shipped in the package
(``services/handlers/templates/welcome.txt`` and ``welcome.html``), so that they
can be read and changed without reading Python. The HTML one is autoescaped:
a display name comes from a customer's directory, and a ``<script>`` in it
must arrive as text. Links are only ever the partner's ``portal_url``, and
only when it is an ``http(s)`` URL (a ``javascript:`` one is left out rather
than linked).

The ``Message-ID`` is derived from the command id (:func:`message_id`): a
command delivered twice makes the same message twice, which mail clients and
servers recognise as one.
"""

import functools
import uuid
from urllib.parse import urlsplit

import jinja2

from services.handlers.domain.mail import Mail

TEMPLATE_PACKAGE = "services.handlers"
TEMPLATE_FOLDER = "templates"


def message_id(command_id: uuid.UUID, domain: str) -> str:
    """``<command id@domain>``, ``domain`` being that of the from address (RFC 5322 §3.6.4:
    a unique left part and a domain the sender controls)."""
    return f"<{command_id}@{domain}>"


def sender_domain(address: str) -> str:
    """The domain of an email address (what :func:`message_id` wants)."""
    return address.rpartition("@")[2].strip().lower()


@functools.cache
def _templates() -> jinja2.Environment:
    """The template environment, built once: autoescape for ``.html`` only, and an error
    (never an empty string) for a name a template uses but nobody passed."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_FOLDER),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _one_line(text: str) -> str:
    """Whitespace (line breaks included) collapsed: a header value must be one line."""
    return " ".join(text.split())


def _link(url: str | None) -> str | None:
    """``url`` when a mail client may safely open it (http or https with a host), else None."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def subject(brand: str) -> str:
    return _one_line(f"Your new account from {brand} is ready")


def render_welcome(
    *,
    brand: str,
    to: str,
    username: str,
    display_name: str | None,
    self_service_reset: bool,
    m365_sync: bool,
    portal_url: str | None,
    from_address: str,
    message_id: str,
) -> Mail:
    """The welcome email of one account: a subject, a plain-text part and an HTML part
    saying the same, addressed by display name (the username when there is none)."""
    brand = _one_line(brand)
    title = subject(brand)
    context = {
        "brand": brand,
        "name": _one_line(display_name or "") or username,
        "username": username,
        "self_service_reset": self_service_reset,
        "m365_sync": m365_sync,
        "portal_url": _link(portal_url),
        "subject": title,
    }
    env = _templates()
    return Mail(
        message_id=message_id,
        from_address=from_address,
        to=to,
        subject=title,
        text=env.get_template("welcome.txt").render(context),
        html=env.get_template("welcome.html").render(context),
    )


__all__ = ["message_id", "render_welcome", "sender_domain", "subject"]
