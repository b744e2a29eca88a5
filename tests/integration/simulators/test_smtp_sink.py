"""The dev stack's SMTP sink (``tests/simulators/smtp.py``): mail sent to it with
aiosmtplib, read back through the simulators' HTTP server."""

import asyncio
import contextlib
import io
import json
import signal
import sys
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiohttp
import aiosmtplib
import pytest

from tests.simulators import ServedSimulators, serve_all
from tests.simulators.smtp import SmtpSink

from .test_serve import REPO, read_ready_line


def message(n: int, *, subject: str = "Welcome number", html: bool = True) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "it-support@demo-msp.example"
    mail["To"] = "alex@customer.example"
    mail["Subject"] = f"{subject} {n}"
    mail["Message-ID"] = f"<{n}@demo-msp.example>"
    mail.set_content(f"Hello number {n}\n")
    if html:
        mail.add_alternative(f"<!DOCTYPE html><p>Hello <b>number {n}</b></p>\n", subtype="html")
    return mail


async def send(port: int, mail: EmailMessage) -> None:
    await aiosmtplib.send(mail, hostname="127.0.0.1", port=port, start_tls=False, timeout=5)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest.fixture
async def served() -> AsyncIterator[ServedSimulators]:
    server = await serve_all({}, smtp_port=0)
    try:
        yield server
    finally:
        await server.close()


async def test_sent_mail_is_listed_as_json_and_shown_on_the_page(
    served: ServedSimulators, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    assert served.smtp is not None
    port = served.smtp.port
    await send(port, message(1))
    await send(port, message(2, subject="<b>Bold</b> welcome", html=False))

    listing = await (await http.get(served.origin + "/smtp/messages")).json()
    assert [m["subject"] for m in listing] == ["Welcome number 1", "<b>Bold</b> welcome 2"]
    first = listing[0]
    assert first["to"] == "alex@customer.example"
    assert first["from"] == "it-support@demo-msp.example"
    assert first["message_id"] == "<1@demo-msp.example>"
    assert first["text"] == "Hello number 1\n"
    assert first["received_at"].endswith("+00:00")
    assert first["html_url"] == "/smtp/messages/1.html"
    assert listing[1]["html_url"] is None

    part = await http.get(served.origin + first["html_url"])
    assert part.status == 200
    assert "<b>number 1</b>" in await part.text()
    assert "default-src 'none'" in part.headers["Content-Security-Policy"]
    assert (await http.get(served.origin + "/smtp/messages/2.html")).status == 404

    page = await http.get(served.origin + "/smtp")  # redirected to /smtp/
    body = await page.text()
    assert page.url.path == "/smtp/"
    assert body.index("welcome 2") < body.index("Welcome number 1")  # newest first
    assert '<iframe src="/smtp/messages/1.html" sandbox' in body
    assert "&lt;b&gt;Bold&lt;/b&gt; welcome 2" in body
    assert "<b>Bold" not in body

    out = capsys.readouterr().out.splitlines()
    assert out == [
        "mail to alex@customer.example: Welcome number 1",
        "mail to alex@customer.example: <b>Bold</b> welcome 2",
    ]


async def test_the_demo_integrations_point_at_the_sink(
    served: ServedSimulators, http: aiohttp.ClientSession
) -> None:
    assert served.smtp is not None
    wanted = await (await http.get(served.origin + "/demo/integrations")).json()
    assert wanted["smtp"] == {
        "base_url": f"smtp://127.0.0.1:{served.smtp.port}",
        "credentials": {"username": "", "password": ""},
        "settings": {
            "from_address": "it-support@demo-msp.example",
            "starttls": False,
            "brand": "Demo MSP",
            "portal_url": "https://portal.demo-msp.example",
        },
    }
    assert served.ready_line()["smtp"] == served.smtp.port


async def test_without_the_sink_there_is_no_smtp_integration(
    http: aiohttp.ClientSession,
) -> None:
    server = await serve_all({})
    try:
        assert "smtp" not in await (await http.get(server.origin + "/demo/integrations")).json()
        assert "smtp" not in server.ready_line()
        assert (await http.get(server.origin + "/smtp/messages")).status == 404
    finally:
        await server.close()


async def test_only_the_last_messages_are_kept() -> None:
    sink = SmtpSink(max_messages=3, out=io.StringIO())
    port = await sink.start()
    try:
        for n in range(1, 6):
            await send(port, message(n))
    finally:
        await sink.close()
    assert sink.received == 5
    assert [m.n for m in sink.messages] == [3, 4, 5]
    assert sink.find(1) is None


async def test_the_cli_runs_the_sink_and_prints_its_port() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.simulators",
        "--no-seed",
        "--smtp-port",
        "0",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = await read_ready_line(proc)
        assert ready["smtp"] > 0
        await send(ready["smtp"], message(7))
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line.decode().strip() == "mail to alex@customer.example: Welcome number 7"
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(ready["admin"]["smtp"] + "messages") as resp,
        ):
            assert [m["subject"] for m in json.loads(await resp.text())] == ["Welcome number 7"]
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, stderr.decode()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.communicate()
