"""A dev SMTP server that keeps what it is sent: where the dev stack's welcome emails go.

``make run`` points the demo partner's ``smtp`` integration here (``smtp://127.0.0.1:<port>``,
``starttls`` false, no credentials), so a welcome email can be read instead of
delivered. It is aiosmtpd's SMTP protocol served in the simulators' own event
loop (no thread, so no locking): no TLS, no AUTH, loopback only (a sink that
accepted mail from anywhere would be an open relay's worth of trouble).

It keeps the last ``max_messages`` in memory (older ones are dropped: a long
``make run`` must not grow without bound), prints one line per message on
stdout (``mail to <to>: <subject>``), and shows them on the simulators' HTTP
server:

- ``GET /smtp/messages``: JSON, oldest first: ``n``, ``to``, ``from``, ``subject``,
  ``message_id``, ``received_at``, ``text`` and ``html_url`` (null without an HTML part);
- ``GET /smtp/``: an HTML list, newest first, each HTML part in a sandboxed iframe;
- ``GET /smtp/messages/{n}.html``: that HTML part alone, under a CSP that lets it load
  nothing and run nothing (a mail is untrusted content, even in a dev tool).
"""

import asyncio
import email
import email.policy
import html
import sys
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, TextIO

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from .http import json_response

MAX_MESSAGES = 500
SERVER_NAME = "smtp-sink.localhost"
PART_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'"
DEMO_SETTINGS: dict[str, Any] = {
    "from_address": "it-support@demo-msp.example",
    "starttls": False,
    "brand": "Demo MSP",
    "portal_url": "https://portal.demo-msp.example",
}
"""The demo partner's ``smtp`` settings (with the sink's URL and empty credentials)."""


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the sink keeps it (the envelope's sender and recipients)."""

    n: int
    mail_from: str
    to: tuple[str, ...]
    subject: str
    message_id: str
    received_at: datetime
    text: str
    html: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "to": ", ".join(self.to),
            "from": self.mail_from,
            "subject": self.subject,
            "message_id": self.message_id,
            "received_at": self.received_at.isoformat(),
            "text": self.text,
            "html_url": f"/smtp/messages/{self.n}.html" if self.html is not None else None,
        }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _part(message: EmailMessage, subtype: str) -> str | None:
    body = message.get_body((subtype,))
    if not isinstance(body, EmailMessage):
        return None
    content = body.get_content()
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def parse_mail(
    n: int, mail_from: str, to: list[str], content: bytes, received_at: datetime
) -> ReceivedMail:
    """What the sink shows of a message: its headers decoded, its text and HTML parts."""
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # what policy.default makes
    return ReceivedMail(
        n=n,
        mail_from=mail_from,
        to=tuple(to),
        subject=_one_line(str(message.get("Subject", ""))),
        message_id=str(message.get("Message-ID", "")).strip(),
        received_at=received_at,
        text=_part(message, "plain") or "",
        html=_part(message, "html"),
    )


class SmtpSink:
    """The SMTP server and its memory; :meth:`add_routes` puts its pages on an aiohttp app."""

    def __init__(self, *, max_messages: int = MAX_MESSAGES, out: TextIO | None = None) -> None:
        self.messages: deque[ReceivedMail] = deque(maxlen=max_messages)
        self.received = 0  # every message ever taken, the dropped ones included
        self._out = out
        self._server: asyncio.Server | None = None
        self.host = ""
        self.port = 0

    @property
    def url(self) -> str:
        """The ``base_url`` of an ``smtp`` integration that sends here."""
        return f"smtp://{self.host}:{self.port}"

    def demo_integration(self) -> dict[str, Any]:
        """The demo partner's ``smtp`` integration, as the dev stack PUTs it."""
        return {
            "base_url": self.url,
            "credentials": {"username": "", "password": ""},
            "settings": dict(DEMO_SETTINGS),
        }

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: any free port); the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname=SERVER_NAME, enable_SMTPUTF8=True, loop=loop), host, port
        )
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """aiosmtpd's hook: keep the message, say so on stdout."""
        self.received += 1
        mail = parse_mail(
            self.received,
            str(envelope.mail_from or ""),
            list(envelope.rcpt_tos),
            envelope.original_content or b"",
            datetime.now(UTC),
        )
        self.messages.append(mail)
        out = self._out or sys.stdout
        out.write(f"mail to {_one_line(', '.join(mail.to))}: {mail.subject}\n")
        out.flush()
        return f"250 OK: kept as message {mail.n}"

    def find(self, n: int) -> ReceivedMail | None:
        return next((m for m in self.messages if m.n == n), None)

    # -- HTTP ----------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/smtp", self._redirect)
        router.add_get("/smtp/", self._page)
        router.add_get("/smtp/messages", self._list)
        router.add_get(r"/smtp/messages/{n:\d+}.html", self._html_part)

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/smtp/")

    async def _list(self, request: web.Request) -> web.StreamResponse:
        return json_response([m.summary() for m in self.messages])

    async def _html_part(self, request: web.Request) -> web.StreamResponse:
        mail = self.find(int(request.match_info["n"]))
        if mail is None or mail.html is None:
            raise web.HTTPNotFound(text="no such message (or it has no HTML part)")
        return web.Response(
            text=mail.html,
            content_type="text/html",
            headers={"Content-Security-Policy": PART_POLICY, "X-Content-Type-Options": "nosniff"},
        )

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=render_page(list(reversed(self.messages)), self.messages.maxlen or 0),
            content_type="text/html",
            headers={"Content-Security-Policy": PAGE_POLICY},
        )


PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2937; background: #f9fafb; }
article { background: #fff; border: 1px solid #d1d5db; border-radius: 6px; margin: 0 0 1rem;
  padding: 0.75rem 1rem; }
summary { cursor: pointer; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dt { color: #4b5563; }
dd { margin: 0; word-break: break-all; }
iframe { width: 100%; height: 36rem; border: 1px solid #d1d5db; background: #fff; }
pre { white-space: pre-wrap; background: #f3f4f6; padding: 0.75rem; }
"""


def _entry(mail: ReceivedMail, open_: bool) -> str:
    e = html.escape
    fields = [
        ("From", mail.mail_from),
        ("To", ", ".join(mail.to)),
        ("Message-ID", mail.message_id),
        ("Received", mail.received_at.isoformat(timespec="seconds")),
    ]
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in fields)
    if mail.html is not None:
        body = (
            f'<iframe src="/smtp/messages/{mail.n}.html" sandbox loading="lazy"'
            f' title="{e(mail.subject)} (HTML part)"></iframe>'
            f"<details><summary>Plain text</summary><pre>{e(mail.text)}</pre></details>"
        )
    else:
        body = f"<pre>{e(mail.text)}</pre>"
    return (
        f"<article><details{' open' if open_ else ''}><summary>#{mail.n} {e(mail.subject)}"
        f" &mdash; to {e(', '.join(mail.to))}</summary><dl>{rows}</dl>{body}</details></article>"
    )


def render_page(newest_first: list[ReceivedMail], kept: int) -> str:
    """The ``/smtp/`` page: every kept message, the newest open."""
    entries = "".join(_entry(m, i == 0) for i, m in enumerate(newest_first))
    count = len(newest_first)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Mail sink ({count})</title><style>{PAGE_STYLE}</style></head><body><main>"
        "<h1>Received mail</h1>"
        f"<p>{count} message{'' if count == 1 else 's'}, newest first (the last {kept} are"
        ' kept). As JSON: <a href="/smtp/messages">/smtp/messages</a>.</p>'
        f"{entries or '<p>Nothing received yet.</p>'}</main></body></html>"
    )


__all__ = ["DEMO_SETTINGS", "MAX_MESSAGES", "ReceivedMail", "SmtpSink", "parse_mail"]
