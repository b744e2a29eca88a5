"""The SMTP mailer (``adapters/mail.py``) against a real SMTP server in this process.

aiosmtpd's ``Controller`` serves on 127.0.0.1 (its own thread and loop), with a
handler that records every envelope; TLS uses a self-signed certificate made
here with ``cryptography``, which the mailer is told to trust. No network
beyond loopback is used.
"""

import datetime
import email
import email.policy
import email.utils
import ipaddress
import logging
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.handlers.adapters.connectors.base import IntegrationConfig
from services.handlers.adapters.http import RetryPolicy
from services.handlers.adapters.mail import SmtpMailer
from services.handlers.domain.errors import (
    AddressRefused,
    VendorAuthError,
    VendorRejected,
    VendorUnavailable,
)
from services.handlers.domain.mail import Mail
from services.handlers.domain.welcome import message_id, render_welcome

FROM = "it-support@msp.example"
TO = "alex.smith@customer.example"
USER = "relay-user"
PASSWORD = "Relay-Passw0rd-never-shown"
FAST = RetryPolicy(give_up_after=5.0, initial=0.01, maximum=0.05, request_timeout=5.0)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    authenticated: bool

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """aiosmtpd handler: records what it accepts; ``rcpt_replies`` answer the next RCPTs."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: list[str] = field(default_factory=list)
    rcpt_calls: int = 0

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.rcpt_calls += 1
        reply = self.rcpt_replies.pop(0) if self.rcpt_replies else "250 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert envelope.original_content is not None
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=envelope.original_content,
                tls=session.ssl is not None or _over_tls(server),
                authenticated=bool(session.authenticated),
            )
        )
        return "250 Message accepted for delivery"


def _over_tls(server: SMTP) -> bool:
    """Implicit TLS: aiosmtpd fills ``session.ssl`` for STARTTLS only."""
    transport = server.transport
    return transport is not None and transport.get_extra_info("sslcontext") is not None


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1 and localhost: the server's, and a client
    context trusting exactly it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(Path(folder / "cert.pem"), Path(folder / "key.pem"))
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(server, client)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    handler: Recorder
    port: int


Serve = Callable[..., Server]


@pytest.fixture
def smtp_server() -> Iterator[Serve]:
    """Start an aiosmtpd server on 127.0.0.1 (SMTP keyword arguments as given); all are
    stopped after the test."""
    controllers: list[Controller] = []

    def start(**kwargs: Any) -> Server:
        handler = Recorder()
        port = free_port()
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, server_hostname="mail.test", **kwargs
        )
        controller.start()
        controllers.append(controller)
        return Server(handler, port)

    yield start
    for controller in controllers:
        controller.stop()


def config(
    base_url: str, *, username: str = "", password: str = "", **settings: Any
) -> IntegrationConfig:
    return IntegrationConfig(
        partner_id="p-mail",
        provider="smtp",
        base_url=base_url,
        settings={"from_address": FROM, **settings},
        credentials={"username": username, "password": password},
    )


def welcome() -> Mail:
    return render_welcome(
        brand="Contoso IT",
        to=TO,
        username="alex.smith",
        display_name="Alex Smith",
        self_service_reset=True,
        m365_sync=True,
        portal_url="https://portal.msp.example",
        from_address=FROM,
        message_id=message_id(uuid.uuid4(), "msp.example"),
    )


async def test_a_mail_arrives_as_text_and_html_with_its_headers(smtp_server: Serve) -> None:
    server = smtp_server()
    mailer = SmtpMailer(
        config(f"smtp://127.0.0.1:{server.port}", starttls=False), FAST, allow_private=True
    )
    mail = welcome()
    await mailer.send(mail)

    [received] = server.handler.received
    assert received.mail_from == FROM
    assert received.rcpt_tos == [TO]
    assert not received.tls
    assert not received.authenticated
    message = received.message()
    assert message.get_content_type() == "multipart/alternative"
    assert message["Message-ID"] == mail.message_id
    assert message["From"] == FROM
    assert message["To"] == TO
    assert message["Subject"] == mail.subject
    sent_at = email.utils.parsedate_to_datetime(message["Date"])
    assert abs(sent_at - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(minutes=1)
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]  # the last is the one clients prefer
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert text.get_content().replace("\r\n", "\n") == mail.text  # CRLF on the wire
    assert html.get_content().replace("\r\n", "\n") == mail.html


async def test_smtp_upgrades_with_starttls_by_default(smtp_server: Serve, tls: Tls) -> None:
    server = smtp_server(tls_context=tls.server, require_starttls=True)
    mailer = SmtpMailer(
        config(f"smtp://127.0.0.1:{server.port}"),
        FAST,
        allow_private=True,
        tls_context=tls.client,
    )
    await mailer.send(welcome())
    [received] = server.handler.received
    assert received.tls


async def test_smtps_is_tls_from_the_first_byte(smtp_server: Serve, tls: Tls) -> None:
    server = smtp_server(ssl_context=tls.server)
    mailer = SmtpMailer(
        config(f"smtps://localhost:{server.port}"),
        FAST,
        allow_private=True,
        tls_context=tls.client,
    )
    await mailer.send(welcome())
    [received] = server.handler.received
    assert received.tls


async def test_it_logs_in_with_the_integration_credentials(smtp_server: Serve, tls: Tls) -> None:
    server = smtp_server(
        tls_context=tls.server,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    mailer = SmtpMailer(
        config(f"smtp://127.0.0.1:{server.port}", username=USER, password=PASSWORD),
        FAST,
        allow_private=True,
        tls_context=tls.client,
    )
    await mailer.send(welcome())
    [received] = server.handler.received
    assert received.authenticated


async def test_refused_credentials_are_an_auth_error_that_never_shows_the_password(
    smtp_server: Serve, tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-Passw0rd-never-shown"
    server = smtp_server(
        tls_context=tls.server,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    mailer = SmtpMailer(
        config(f"smtp://127.0.0.1:{server.port}", username=USER, password=wrong),
        FAST,
        allow_private=True,
        tls_context=tls.client,
    )
    with pytest.raises(VendorAuthError) as caught:
        await mailer.send(welcome())
    assert caught.value.status == 535
    assert wrong not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert not any(wrong in r.getMessage() for r in caplog.records)
    assert server.handler.received == []


async def test_a_deferral_at_rcpt_is_retried_and_the_mail_arrives_once(
    smtp_server: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtp_server()
    server.handler.rcpt_replies = ["451 4.7.1 Greylisted, try again later"] * 2
    mailer = SmtpMailer(
        config(f"smtp://127.0.0.1:{server.port}", starttls=False), FAST, allow_private=True
    )
    await mailer.send(welcome())
    assert server.handler.rcpt_calls == 3
    assert len(server.handler.received) == 1
    retries = [r for r in caplog.records if r.name == "services.handlers.adapters.mail"]
    assert len(retries) == 2
    assert "Greylisted" in retries[0].getMessage()


async def test_a_server_that_keeps_deferring_is_given_up_on(smtp_server: Serve) -> None:
    server = smtp_server()
    server.handler.rcpt_replies = ["421 4.3.2 System not accepting network messages"] * 1000
    policy = RetryPolicy(give_up_after=0.3, initial=0.01, maximum=0.05, request_timeout=5.0)
    mailer = SmtpMailer(
        config(f"smtp://127.0.0.1:{server.port}", starttls=False), policy, allow_private=True
    )
    with pytest.raises(VendorUnavailable) as caught:
        await mailer.send(welcome())
    assert caught.value.status == 421
    assert "not accepting" in caught.value.message
    assert server.handler.rcpt_calls > 1
    assert server.handler.received == []


async def test_a_refused_connection_is_retried_until_given_up() -> None:
    policy = RetryPolicy(give_up_after=0.2, initial=0.01, maximum=0.05, request_timeout=5.0)
    mailer = SmtpMailer(
        config(f"smtp://127.0.0.1:{free_port()}", starttls=False), policy, allow_private=True
    )
    with pytest.raises(VendorUnavailable, match="cannot connect"):
        await mailer.send(welcome())


async def test_a_permanent_refusal_is_vendor_rejected_with_the_servers_words(
    smtp_server: Serve,
) -> None:
    server = smtp_server()
    server.handler.rcpt_replies = ["550 5.1.1 No such user here"]
    mailer = SmtpMailer(
        config(f"smtp://127.0.0.1:{server.port}", starttls=False), FAST, allow_private=True
    )
    with pytest.raises(VendorRejected) as caught:
        await mailer.send(welcome())
    assert caught.value.status == 550
    assert "No such user here" in caught.value.message
    assert server.handler.rcpt_calls == 1  # not retried


async def test_a_server_without_starttls_gets_nothing_in_clear(smtp_server: Serve) -> None:
    server = smtp_server()  # no TLS context: it offers no STARTTLS
    mailer = SmtpMailer(config(f"smtp://127.0.0.1:{server.port}"), FAST, allow_private=True)
    with pytest.raises(VendorRejected, match="STARTTLS"):
        await mailer.send(welcome())
    assert server.handler.rcpt_calls == 0


async def test_an_untrusted_certificate_is_refused_not_retried(
    smtp_server: Serve, tls: Tls
) -> None:
    server = smtp_server(ssl_context=tls.server)
    mailer = SmtpMailer(config(f"smtps://127.0.0.1:{server.port}"), FAST, allow_private=True)
    with pytest.raises(VendorRejected, match=r"certificate is refused \(self.signed"):
        await mailer.send(welcome())
    assert server.handler.received == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_address_is_refused_unless_allowed(smtp_server: Serve, host: str) -> None:
    server = smtp_server()
    mailer = SmtpMailer(config(f"smtp://{host}:{server.port}"), FAST, allow_private=False)
    with pytest.raises(AddressRefused):
        await mailer.send(welcome())
    assert server.handler.rcpt_calls == 0


async def test_clear_text_smtp_is_refused_where_private_addresses_are_not_allowed() -> None:
    mailer = SmtpMailer(
        config("smtp://mail.example.com:25", starttls=False), FAST, allow_private=False
    )
    with pytest.raises(VendorRejected, match="starttls is off"):
        await mailer.send(welcome())  # refused before any lookup or connection
