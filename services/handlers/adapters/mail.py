"""The partner's SMTP server, as the welcome email's :class:`Mailer` (aiosmtplib).

What it does, and why:

- **where**: the host of ``base_url`` is resolved here, the addresses checked
  (no private, loopback or link-local one unless ``allow_private``, the rule
  of :mod:`.net`), and the connection made to a checked address, not to the
  name again: a second lookup could answer elsewhere (DNS rebinding). TLS
  still verifies the certificate against the host name.
- **TLS**: ``smtps://`` is TLS from the first byte; ``smtp://`` upgrades with
  STARTTLS, required (a server that does not offer it is refused, the mail is
  never sent in clear instead) unless the ``starttls`` setting is false, which
  only ``allow_private`` permits (the dev stack's sink on loopback): across a
  network the password and the mail would travel in clear (docs/contract.md §6.2).
- **retries**, as the HTTP client does them: a 4xx deferral, a refused or
  dropped connection and a timeout are tried again with capped, jittered
  exponential back-off (``policy.initial`` to ``policy.maximum``) until
  ``policy.give_up_after`` seconds have passed, then :class:`VendorUnavailable`.
  A connection lost after DATA may mean the mail was delivered; sending it
  again is still right, since its ``Message-ID`` (from the command id) makes
  the copy recognisable.
- **errors**: refused credentials (530, 534, 535, 538, or no AUTH offered)
  are :class:`VendorAuthError`, any other 5xx :class:`VendorRejected` with the
  server's reply. No message, exception or log line carries the password:
  the texts are built here from the server's reply code and words (the
  password masked even there), and the library's exceptions are not chained.
"""

import asyncio
import email.utils
import functools
import logging
import random
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from schemas.integrations import Provider
from schemas.providers import SPECS, SmtpSettings, check_base_url, refused_addresses
from services.handlers.adapters.connectors.base import IntegrationConfig
from services.handlers.adapters.http import RetryPolicy
from services.handlers.adapters.net import check_host
from services.handlers.domain.errors import (
    AddressRefused,
    VendorAuthError,
    VendorError,
    VendorRejected,
    VendorUnavailable,
)
from services.handlers.domain.mail import Mail

log = logging.getLogger(__name__)

AUTH_REFUSED = frozenset({530, 534, 535, 538})
"""Replies that mean "these credentials (or none) will not do": auth required, mechanism
too weak, credentials invalid, encryption required for auth (RFC 4954 §6)."""


class Deferred(Exception):
    """An attempt that failed in a way another attempt may not (4xx, no connection)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Address:
    """One resolved address of the server: what ``socket.connect`` takes."""

    family: socket.AddressFamily
    sockaddr: tuple[Any, ...]

    @property
    def host(self) -> str:
        return str(self.sockaddr[0])


def build_message(mail: Mail, *, now: datetime | None = None) -> EmailMessage:
    """``mail`` as a multipart/alternative message (text first, HTML preferred by clients
    that can show it), with the headers a receiving server checks."""
    message = EmailMessage()
    try:
        message["Message-ID"] = mail.message_id
        message["Date"] = email.utils.format_datetime(now or datetime.now(UTC))
        message["From"] = mail.from_address
        message["To"] = mail.to
        message["Subject"] = mail.subject
    except ValueError as exc:  # a line break in a header: a bug upstream, never injected
        raise VendorRejected(f"the message cannot be sent: {exc}") from None
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """The wait before attempt ``attempt + 1``: doubling from ``policy.initial``, up to
    ``initial`` of jitter (processes that failed together do not retry together), capped."""
    base = policy.initial * 2 ** min(attempt - 1, 30)
    return float(min(base + rng.uniform(0, policy.initial), policy.maximum))


def classify(exc: BaseException, *, phase: str) -> VendorError | Deferred:
    """What an aiosmtplib (or socket) failure means for the command; ``phase`` is
    ``connect``, ``login`` or ``send``."""
    refused = _certificate_refusal(exc)
    if refused is not None:
        reason = refused.verify_message or refused.reason or "not trusted"
        return VendorRejected(f"TLS: the server's certificate is refused ({reason})")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]  # one recipient per message: its reply is the answer
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"SMTP {exc.code}: {exc.message}".strip()
        if 400 <= exc.code < 500:
            return Deferred(text, exc.code)
        if exc.code in AUTH_REFUSED or isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return VendorAuthError(text, exc.code)
        return VendorRejected(text, exc.code)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return Deferred(f"no answer from the server ({phase})")
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        return Deferred(f"connection failed ({phase}): {exc.__cause__ or exc}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return Deferred(f"connection lost ({phase})")
    if isinstance(exc, OSError):
        return Deferred(f"connection failed ({phase}): {exc.strerror or type(exc).__name__}")
    if phase == "login":  # no AUTH offered, or no mechanism in common
        return VendorAuthError(f"SMTP login impossible: {exc}")
    return VendorRejected(f"SMTP: {exc}")  # STARTTLS not offered, SMTPUTF8 needed, ...


def _certificate_refusal(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """A failed certificate check anywhere in the chain (aiosmtplib wraps it): a
    configuration to fix, not a server to wait for."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@functools.cache
def _local_hostname() -> str:
    """The name this host gives in EHLO (looked up once: it may take a DNS round trip)."""
    return socket.getfqdn() or "localhost"


class SmtpMailer:
    """:class:`~services.handlers.service_layer.ports.Mailer` of one partner's ``smtp``
    integration. Raises ``ValueError`` at construction for a configuration the policy
    service would have refused (the URL's shape, the settings)."""

    def __init__(
        self,
        config: IntegrationConfig,
        policy: RetryPolicy,
        *,
        allow_private: bool,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._base_url = config.base_url
        self._target = check_base_url(
            SPECS[Provider.SMTP], config.base_url, allow_private=allow_private
        )
        self.settings = SmtpSettings.model_validate(dict(config.settings))
        self._credentials: Mapping[str, str] = config.credentials
        self._policy = policy
        self._allow_private = allow_private
        self._implicit_tls = self._target.scheme == "smtps"
        self._starttls = not self._implicit_tls and self.settings.starttls is not False
        self._tls = tls_context or ssl.create_default_context()
        self._random = random.Random()

    @property
    def from_address(self) -> str:
        """The integration's sender (``settings.from_address``): the envelope's MAIL FROM,
        the address the partner's server lets the handlers send as."""
        return self.settings.from_address

    @property
    def where(self) -> str:
        return f"{self._target.scheme}://{self._target.host}:{self._target.port}"

    async def send(self, mail: Mail) -> None:
        """Deliver ``mail`` to ``mail.to`` (see the module's docstring for the failures)."""
        if not (self._implicit_tls or self._starttls or self._allow_private):
            raise VendorRejected(
                f"{self.where}: starttls is off, and mail may not leave in clear text"
            )
        message = build_message(mail)
        deadline = time.monotonic() + self._policy.give_up_after
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._attempt(message, mail.to)
                return
            except Deferred as exc:
                wait = backoff(self._policy, attempt, self._random)
                if time.monotonic() + wait > deadline:
                    raise VendorUnavailable(f"{self.where}: {exc.message}", exc.status) from None
                log.warning(
                    "smtp %s: %s; attempt %d, next in %.1fs", self.where, exc.message, attempt, wait
                )
                await asyncio.sleep(wait)

    async def _attempt(self, message: EmailMessage, to: str) -> None:
        """One connection: connect (and TLS), log in, send, quit."""
        local_hostname = await asyncio.to_thread(_local_hostname)
        sock = await self._connect(await self._addresses())
        try:
            client = aiosmtplib.SMTP(
                hostname=self._target.host,  # the name TLS verifies; the socket is connected
                sock=sock,
                local_hostname=local_hostname,
                use_tls=self._implicit_tls,
                start_tls=self._starttls,
                tls_context=self._tls,
                timeout=self._policy.request_timeout,
            )
        except BaseException:
            sock.close()
            raise
        phase = "connect"
        try:
            await client.connect()  # from here, the client's transport owns the socket
            username = self._credentials.get("username", "")
            if username:
                phase = "login"
                await client.login(username, self._credentials.get("password", ""))
            phase = "send"
            await client.send_message(message, sender=self.from_address, recipients=[to])
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise self._masked(classify(exc, phase=phase)) from None
        except BaseException:
            client.close()
            raise
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()  # delivered already: a rude goodbye changes nothing

    async def _addresses(self) -> list[Address]:
        """The server's addresses this process may connect to (``AddressRefused`` if none)."""
        check_host(self._base_url, allow_private=self._allow_private)  # an IP literal
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                self._target.host, self._target.port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise Deferred(f"cannot resolve {self._target.host}: {exc.strerror}") from None
        found = [Address(family, sockaddr) for family, _, _, _, sockaddr in infos]
        if self._allow_private:
            return found
        refused = set(refused_addresses([a.host for a in found]))
        allowed = [a for a in found if a.host not in refused]
        if not allowed:
            raise AddressRefused(
                f"{self._target.host} resolves only to addresses the handlers may not reach"
                f" ({', '.join(sorted(refused))})"
            )
        return allowed

    async def _connect(self, addresses: list[Address]) -> socket.socket:
        """A socket connected to the first address that answers."""
        loop = asyncio.get_running_loop()
        failure = "no address"
        for address in addresses:
            sock = socket.socket(address.family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(
                    loop.sock_connect(sock, address.sockaddr), self._policy.request_timeout
                )
            except (OSError, TimeoutError) as exc:
                sock.close()
                failure = getattr(exc, "strerror", None) or "timed out"
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise Deferred(f"cannot connect to {self._target.host}:{self._target.port}: {failure}")

    def _masked(self, error: VendorError | Deferred) -> VendorError | Deferred:
        """``error`` with the password cut out of its text, should a server echo it."""
        password = self._credentials.get("password", "")
        if not password or password not in error.message:
            return error
        text = error.message.replace(password, "***")
        if isinstance(error, Deferred):
            return Deferred(text, error.status)
        return type(error)(text, error.status)


__all__ = ["SmtpMailer", "backoff", "build_message", "classify"]
