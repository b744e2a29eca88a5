"""``notification.welcome_email.send`` (docs/contract.md §7): once per account, through
the partner's ``smtp`` integration.

A welcome email may have to wait: for its address (when the command has none, the
email of the account's PSA contact, once ``psa.contact.link`` has linked it) and,
briefly, for the account's other commands (the message names what was enabled:
self-service reset, Microsoft 365 sync; those commands travel on other topics).
So the consumer only *parks* the command (``handlers.welcome_waits``, durable) and
moves on: a wait of minutes holds no offset, no slot and no memory, and survives a
restart. :meth:`Welcomes.sweep`, run by every replica, claims the parked ones that
are due (``FOR UPDATE SKIP LOCKED`` and a lease) and looks at each:

- sent already to this account: by this command (a redo after a crash) ``sent``,
  by another ``skipped``;
- no address: the PSA link finished without an email, or ten minutes
  (``WELCOME_WAIT_SECONDS``) went by: ``failed``, ``no_email``; else look again,
  with back-off (a PSA link that lands wakes it at once);
- no usable ``smtp`` integration: ``integration_missing``;
- the server away (connection refused, a 4xx deferral): look again with back-off,
  until ``VENDOR_GIVE_UP_SECONDS`` after the wait began (``timeout``); refused
  credentials ``integration_auth``; a 5xx refusal ``vendor_rejected``.

A message the server took is recorded at once (``handlers.welcome_sent``), before
the result: a crash in between finds it and reports ``sent`` without sending again.
Its ``Message-ID`` is derived from the command id, so even the window between the
server's answer and that row yields one message to the reader's mail client.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from schemas.catalog import BY_TYPE
from schemas.commands import M365PasswordSyncEnable, SelfServiceResetEnable, WelcomeEmailSend
from schemas.envelope import CausedEvent, utc_now
from schemas.providers import SmtpSettings
from schemas.results import FailureReason, Outcome, Ref
from services.handlers.adapters.connectors.base import IntegrationConfig
from services.handlers.adapters.enrolments import EnrolmentStore, Wait
from services.handlers.adapters.store import Store
from services.handlers.domain.errors import MaybeDone, VendorError, VendorUnavailable
from services.handlers.domain.execution import Execution
from services.handlers.domain.welcome import message_id, render_welcome, sender_domain
from services.handlers.service_layer.ports import Mailer
from services.handlers.service_layer.reporting import (
    Context,
    Integrations,
    Reporter,
    facts,
    missing,
    vendor_failure,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WelcomeTiming:
    settle: timedelta = timedelta(seconds=2)  # for the account's other commands to arrive
    wait_limit: timedelta = timedelta(minutes=10)  # for the PSA link's address
    give_up: timedelta = timedelta(hours=6)  # for an SMTP server that stays away
    lease: timedelta = timedelta(minutes=5)  # a claimed look; longer than one send
    backoff_cap: timedelta = timedelta(minutes=1)

    def backoff(self, tries: int) -> timedelta:
        return min(self.backoff_cap, timedelta(seconds=2.0 ** min(tries, 16)))


class Welcomes:
    def __init__(
        self,
        store: Store,
        enrolments: EnrolmentStore,
        integrations: Integrations,
        reporter: Reporter,
        mailer_for: Callable[[IntegrationConfig], Mailer],
        timing: WelcomeTiming | None = None,
    ) -> None:
        self.store = store
        self.enrolments = enrolments
        self.integrations = integrations
        self.reporter = reporter
        self.mailer_for = mailer_for
        self.timing = timing or WelcomeTiming()

    async def park(self, event: CausedEvent[Any]) -> None:
        """Leave the command to the sweeper; its first look after the settling time."""
        cmd: WelcomeEmailSend = event.data
        received = event.time or utc_now()
        first = max(utc_now(), received + self.timing.settle)
        await self.enrolments.wait(
            uuid.UUID(event.id), cmd.account.key, event.model_dump(mode="json"), first
        )

    async def sweep(self, limit: int = 20) -> int:
        """Look at the parked emails that are due; how many were claimed."""
        waits = await self.enrolments.claim_waits(limit, self.timing.lease)
        # side by side: one slow SMTP server must not hold the others' emails past
        # their lease (each look is bounded by SMTP_ATTEMPT_SECONDS, the lease longer)
        looked = await asyncio.gather(*(self._look(w) for w in waits), return_exceptions=True)
        for outcome in looked:
            if isinstance(outcome, BaseException):
                raise outcome  # an outage: the rows come back when their lease ends
        return len(waits)

    async def _look(self, wait: Wait) -> None:
        model = BY_TYPE[WelcomeEmailSend.TYPE].envelope_model()
        event = cast(CausedEvent[Any], model.model_validate(wait.envelope))
        cmd: WelcomeEmailSend = event.data
        command_id = uuid.UUID(event.id)
        entry = await self.store.inbox_entry(command_id)
        if entry is not None and entry.done:
            await self.store.unpark(command_id)
            return
        execution = await self._attempt(event, cmd, command_id, wait)
        if execution is None:
            return
        report = await self.reporter.report(
            Context(event.partnerid, event.id, event.correlationid),
            execution,
            facts(
                command_id, cmd.TYPE, cmd.account.key, cmd.account.customer_id, "smtp", wait.tries
            ),
        )
        await self.store.finish(
            command_id, report.result_type, report.result_id, report.data, unpark=True
        )

    async def _attempt(
        self, event: CausedEvent[Any], cmd: WelcomeEmailSend, command_id: uuid.UUID, wait: Wait
    ) -> Execution | None:
        """The end of the command, or None to look again later."""
        key = cmd.account.key
        waited = utc_now() - wait.waiting_since
        sent = await self.enrolments.welcome_sent(key)
        if sent is not None:
            return _already(sent.command_id == command_id, sent.sent_at, sent.message_id)
        address = cmd.email
        if address is None:
            psa_done, address = await self.enrolments.psa_link_state(key)
            if address is None:
                if psa_done:
                    return Execution.failed(
                        FailureReason.NO_EMAIL,
                        "the command has no email, and the account's PSA contact has none",
                    )
                if waited >= self.timing.wait_limit:
                    return Execution.failed(
                        FailureReason.NO_EMAIL,
                        "the command has no email, and no PSA link gave one within "
                        f"{int(self.timing.wait_limit.total_seconds() // 60)} minutes",
                    )
                await self.enrolments.wait_again(command_id, self.timing.backoff(wait.tries))
                return None
        config = await self.integrations.open(event.partnerid, "smtp")
        if config is None:
            return missing("smtp")
        try:
            return await self._send(cmd, command_id, address, config)
        except (VendorUnavailable, MaybeDone) as exc:
            if waited >= self.timing.give_up:
                return vendor_failure("smtp", exc)
            log.warning(
                "the SMTP server did not take the welcome email; trying again later: %s",
                exc.message,
                extra={"partner_id": event.partnerid, "command_id": event.id},
            )
            await self.enrolments.wait_again(command_id, self.timing.backoff(wait.tries))
            return None
        except VendorError as exc:
            return vendor_failure("smtp", exc)

    async def _send(
        self, cmd: WelcomeEmailSend, command_id: uuid.UUID, to: str, config: IntegrationConfig
    ) -> Execution:
        settings = SmtpSettings.model_validate(dict(config.settings))
        enabled = await self.enrolments.commands_of(cmd.account.key)
        mid = message_id(command_id, sender_domain(settings.from_address))
        mail = render_welcome(
            brand=settings.brand,
            to=to,
            username=cmd.account.username,
            display_name=cmd.account.display_name,
            self_service_reset=SelfServiceResetEnable.TYPE in enabled,
            m365_sync=M365PasswordSyncEnable.TYPE in enabled,
            portal_url=settings.portal_url,
            from_address=settings.from_address,
            message_id=mid,
        )
        await self.mailer_for(config).send(mail)
        await self.enrolments.record_welcome(cmd.account.key, command_id, mid)
        return Execution.succeeded(Outcome.SENT, f"sent to {to}", (_ref(mid),))


def _ref(mid: str) -> Ref:
    return Ref(system="smtp", kind="message", id=mid[:256])


def _already(ours: bool, sent_at: datetime, mid: str) -> Execution:
    if ours:
        return Execution.succeeded(Outcome.SENT, "sent (recorded before a restart)", (_ref(mid),))
    return Execution.succeeded(
        Outcome.SKIPPED,
        f"a welcome email was sent to this account already, on {sent_at:%Y-%m-%d}",
        (_ref(mid),),
    )
