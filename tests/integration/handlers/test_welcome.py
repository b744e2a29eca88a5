"""``notification.welcome_email.send`` end to end (docs/contract.md §7): ``handlers run`` as
a real process, a real SMTP server in this process (the dev stack's sink, aiosmtpd), the
ConnectWise simulator for the PSA link that gives the address."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from schemas.commands import (
    M365PasswordSyncEnable,
    SelfServiceResetEnable,
    WelcomeEmailSend,
)
from services.handlers.domain.execution import result_id
from services.infra.devstack.net import free_port
from tests.simulators.smtp import SmtpSink

from .conftest import CREDENTIALS, Rig
from .harness import account, psa_link

CW_COMPANY = 2002
FROM = "it-support@msp.example"
SETTINGS = {"from_address": FROM, "starttls": False, "brand": "Contoso IT"}


@pytest.fixture(scope="module")
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture(scope="module")
async def rig(start_rig: Callable[..., Awaitable[Rig]]) -> Rig:
    return await start_rig(
        WELCOME_CHECK_SECONDS="0.2",
        WELCOME_SETTLE_SECONDS="0.5",
        WELCOME_WAIT_SECONDS="4",
    )


async def _partner(rig: Rig, sink: SmtpSink, *, smtp_url: str | None = None) -> str:
    partner = f"w-{uuid.uuid4().hex[:12]}"
    await rig.bus.integration(
        partner, "smtp", smtp_url or sink.url, {"username": "", "password": ""}, SETTINGS
    )
    sim = rig.served.sims["connectwise"]
    if CW_COMPANY not in sim.companies:  # type: ignore[attr-defined]
        sim.add_company(CW_COMPANY, "Contoso Ltd")  # type: ignore[attr-defined]
    await rig.bus.integration(
        partner,
        "connectwise",
        rig.served.url("connectwise"),
        CREDENTIALS["connectwise"],
        {"marker_custom_field_id": 7},
    )
    await asyncio.sleep(0.5)  # let the projection take them
    return partner


def _welcome(partner: str, email: str | None, **fields: object) -> WelcomeEmailSend:
    return WelcomeEmailSend.model_validate(
        {
            "account": account(partner, **fields),
            "policy_id": uuid.uuid4(),
            "policy_version": 1,
            "email": email,
        }
    )


def _to(sink: SmtpSink, address: str) -> list[object]:
    return [m for m in sink.messages if address in m.to]


async def test_a_welcome_email_is_sent_once_and_says_what_was_enabled(
    rig: Rig, sink: SmtpSink
) -> None:
    partner = await _partner(rig, sink)
    address = f"kim-{uuid.uuid4().hex[:6]}@contoso.example"
    welcome = _welcome(partner, address, username="kim.k", display_name="Kim Kowalski")
    same_account = {"account": welcome.account, "policy_id": uuid.uuid4(), "policy_version": 1}
    for model in (SelfServiceResetEnable, M365PasswordSyncEnable):
        await rig.bus.command(partner, model.model_validate(same_account))
    cid = await rig.bus.command(partner, welcome)

    [result] = await rig.bus.result(cid)
    assert result.envelope["type"] == "command.succeeded"
    data = result.envelope["data"]
    assert data["outcome"] == "sent"
    assert data["provider"] == "smtp"
    assert result.envelope["id"] == str(result_id(uuid.UUID(cid), "sent"))
    [mail] = _to(sink, address)
    assert mail.message_id == f"<{cid}@msp.example>"  # type: ignore[attr-defined]
    assert mail.mail_from == FROM  # type: ignore[attr-defined]
    assert "Contoso IT" in mail.subject  # type: ignore[attr-defined]
    text = mail.text  # type: ignore[attr-defined]
    assert "Hello Kim Kowalski" in text
    assert "kim.k" in text
    assert "Self-service password reset" in text
    assert "Microsoft 365 password sync" in text
    assert data["refs"] == [
        {"system": "smtp", "kind": "message", "id": f"<{cid}@msp.example>", "url": None}
    ]

    # the same command again: answered from the inbox, nothing sent
    await rig.bus.command(partner, welcome)
    both = await rig.bus.result(cid, lambda rs: len(rs) == 2)
    assert {r.envelope["id"] for r in both} == {result.envelope["id"]}
    # another welcome command for the same account: once per account
    other = await rig.bus.command(partner, welcome, cid=str(uuid.uuid4()))
    [skipped] = await rig.bus.result(other)
    assert skipped.envelope["data"]["outcome"] == "skipped"
    await asyncio.sleep(1)
    assert len(_to(sink, address)) == 1


async def test_without_an_email_it_waits_for_the_psa_contact_and_sends_there(
    rig: Rig, sink: SmtpSink
) -> None:
    partner = await _partner(rig, sink)
    contact_email = f"lee-{uuid.uuid4().hex[:6]}@contoso.example"
    rig.served.sims["connectwise"].add_contact(  # type: ignore[attr-defined]
        "Lee", "Long", company_id=CW_COMPANY, email=contact_email
    )
    link = psa_link(
        partner,
        "connectwise",
        str(CW_COMPANY),
        create=False,
        email=None,
        display_name="Lee Long",
    )
    welcome = WelcomeEmailSend.model_validate(
        {"account": link.account, "policy_id": uuid.uuid4(), "policy_version": 1, "email": None}
    )
    cid = await rig.bus.command(partner, welcome)
    await asyncio.sleep(1.5)  # it waits: no address yet
    assert rig.bus.results(cid) == []
    # meanwhile other commands are executed: the wait holds nothing up
    other = psa_link(partner, "connectwise", str(CW_COMPANY), create=False, email=None)
    other_cid = await rig.bus.command(partner, other)
    await rig.bus.result(other_cid)

    await rig.bus.command(partner, link)
    [result] = await rig.bus.result(cid, timeout=30)
    assert result.envelope["data"]["outcome"] == "sent", result.envelope["data"]
    assert result.envelope["data"]["detail"] == f"sent to {contact_email}"
    assert len(_to(sink, contact_email)) == 1


async def test_no_email_fails_at_once_when_the_psa_contact_has_none_else_after_the_wait(
    rig: Rig, sink: SmtpSink
) -> None:
    partner = await _partner(rig, sink)
    link = psa_link(partner, "connectwise", str(CW_COMPANY), create=False, email=None)
    cid_link = await rig.bus.command(partner, link)
    [linked] = await rig.bus.result(cid_link)
    assert linked.envelope["data"]["outcome"] == "not_found"
    after_link = WelcomeEmailSend.model_validate(
        {"account": link.account, "policy_id": uuid.uuid4(), "policy_version": 1, "email": None}
    )
    cid_a = await rig.bus.command(partner, after_link)
    lonely = _welcome(partner, None)  # no PSA link command will ever come
    cid_b = await rig.bus.command(partner, lonely)

    [a] = await rig.bus.result(cid_a)
    assert a.envelope["type"] == "command.failed"
    assert a.envelope["data"]["reason"] == "no_email"
    assert "PSA contact has none" in a.envelope["data"]["detail"]
    [b] = await rig.bus.result(cid_b, timeout=30)
    assert b.envelope["data"]["reason"] == "no_email"
    assert "within" in b.envelope["data"]["detail"]


async def test_an_smtp_server_that_is_down_is_waited_out(rig: Rig, sink: SmtpSink) -> None:
    port = free_port()
    partner = await _partner(rig, sink, smtp_url=f"smtp://127.0.0.1:{port}")
    address = f"ola-{uuid.uuid4().hex[:6]}@contoso.example"
    cid = await rig.bus.command(partner, _welcome(partner, address))
    await asyncio.sleep(2.5)
    assert rig.bus.results(cid) == []
    late = SmtpSink()
    await late.start(port=port)
    try:
        [result] = await rig.bus.result(cid, timeout=60)
        assert result.envelope["data"]["outcome"] == "sent"
        assert len(_to(late, address)) == 1
    finally:
        await late.close()


async def test_without_an_smtp_integration_it_fails_integration_missing(
    rig: Rig, sink: SmtpSink
) -> None:
    partner = f"w-{uuid.uuid4().hex[:12]}"
    cid = await rig.bus.command(partner, _welcome(partner, "x@contoso.example"))
    [result] = await rig.bus.result(cid)
    assert result.envelope["data"]["reason"] == "integration_missing"
