"""Executing one command to the end (docs/contract.md §7).

1. the inbox records the intent (one more attempt) unless the command is done
   already; a done one is answered with its stored result (same id), never
   executed again;
2. the rule of the command's type runs: against the partner's integration for
   the command's provider (its credentials opened with ``SECRETS_KEY``; none, or
   disabled, or sealed with another key: ``integration_missing``), or against the
   handlers' own records (vault, rotation, enrolments);
3. the result is published and acknowledged by the broker;
4. the inbox row turns ``done``, with what the command linked, in one transaction.

A crash anywhere before 4 redoes the command, and the rule finds what it made
(search before create, our mark on the vendor's record; upserts of our own
rows). An outage of PostgreSQL or the broker raises out of here: the caller
waits it out and runs the same work again. A vendor that stays unavailable past
the retry policy's deadline ends the command ``timeout``.

A welcome email is not sent from here: it is parked for
:class:`services.handlers.service_layer.welcome.Welcomes`, which may have to wait
minutes for its address, without holding the consumer.
"""

import dataclasses
import uuid
from typing import Any, cast

from schemas.commands import (
    Command,
    DocumentationPasswordLink,
    M365PasswordSyncEnable,
    PsaContactLink,
    RotationEnroll,
    SelfServiceResetEnable,
    VaultPasswordStore,
    WelcomeEmailSend,
)
from schemas.envelope import CausedEvent
from services.handlers.adapters.connectors.registry import Connectors
from services.handlers.adapters.enrolments import EnrolmentStore
from services.handlers.adapters.store import SealedPassword, Store
from services.handlers.domain.errors import VendorError
from services.handlers.domain.execution import Execution
from services.handlers.service_layer import documentation, enrolment, psa
from services.handlers.service_layer.documentation import DocLink
from services.handlers.service_layer.enrolment import KnownPassword
from services.handlers.service_layer.password_changes import doc_link
from services.handlers.service_layer.ports import DocumentationConnector, PsaConnector
from services.handlers.service_layer.reporting import (
    Context,
    Integrations,
    Reporter,
    facts,
    missing,
    vendor_failure,
)
from services.handlers.service_layer.welcome import Welcomes
from services.infra.secrets import SecretBox, SecretError


def provider_of(cmd: Command) -> str | None:
    """The integration a command is executed against (its result's ``provider``)."""
    if isinstance(cmd, PsaContactLink | DocumentationPasswordLink):
        return cmd.provider.value
    if isinstance(cmd, WelcomeEmailSend):
        return "smtp"
    if isinstance(cmd, M365PasswordSyncEnable):
        return "m365"
    return None


class Executor:
    def __init__(
        self,
        store: Store,
        enrolments: EnrolmentStore,
        connectors: Connectors,
        integrations: Integrations,
        reporter: Reporter,
        welcomes: Welcomes,
        box: SecretBox,
        *,
        rotation_interval_days: int = 90,
    ) -> None:
        self.store = store
        self.enrolments = enrolments
        self.connectors = connectors
        self.integrations = integrations
        self.reporter = reporter
        self.welcomes = welcomes
        self.box = box
        self.rotation_interval_days = rotation_interval_days

    async def command(self, event: CausedEvent[Any]) -> None:
        cmd: Command = event.data
        command_id = uuid.UUID(event.id)
        provider = provider_of(cmd)
        ctx = Context(event.partnerid, event.id, event.correlationid)
        entry = await self.store.begin(
            command_id, cmd.TYPE, cmd.account.key, event.partnerid, provider
        )
        if entry.done and entry.result is not None and entry.result_type is not None:
            await self.reporter.republish(ctx, entry.result_type, entry.result)
            return
        if isinstance(cmd, WelcomeEmailSend):
            await self.welcomes.park(event)
            return
        execution, links = await self._execute(cmd, ctx, command_id, provider)
        report = await self.reporter.report(
            ctx,
            execution,
            facts(
                command_id,
                cmd.TYPE,
                cmd.account.key,
                cmd.account.customer_id,
                provider,
                entry.attempts,
            ),
        )
        await self.store.finish(
            command_id, report.result_type, report.result_id, report.data, **links
        )

    async def _execute(
        self, cmd: Command, ctx: Context, command_id: uuid.UUID, provider: str | None
    ) -> tuple[Execution, dict[str, Any]]:
        account, partner = cmd.account, ctx.partner_id
        if isinstance(cmd, VaultPasswordStore):
            return await enrolment.store_in_vault(
                self.enrolments, self.box, account, partner, command_id, self._opened
            ), {}
        if isinstance(cmd, RotationEnroll):
            return await enrolment.enrol_rotation(
                self.enrolments, account, partner, command_id, self.rotation_interval_days
            ), {}
        if isinstance(cmd, SelfServiceResetEnable):
            return await enrolment.enrol_identity(
                self.enrolments, enrolment.SSPR, account, partner, command_id
            ), {}
        if isinstance(cmd, M365PasswordSyncEnable):
            configured = await self.integrations.open(partner, "m365") is not None
            return await enrolment.enrol_identity(
                self.enrolments,
                enrolment.M365,
                account,
                partner,
                command_id,
                m365_configured=configured,
            ), {}
        return await self._at_vendor(cmd, ctx, command_id, provider or "")

    async def _at_vendor(
        self, cmd: Command, ctx: Context, command_id: uuid.UUID, provider: str
    ) -> tuple[Execution, dict[str, Any]]:
        config = await self.integrations.open(ctx.partner_id, provider)
        if config is None or not self.connectors.supports(provider):
            return missing(provider), {}
        try:
            connector = self.connectors.get(config)
            if isinstance(cmd, PsaContactLink):
                execution = await psa.link_contact(cmd, cast(PsaConnector, connector))
                return execution, {"psa_link": _psa_link(cmd, ctx, provider, execution)}
            if isinstance(cmd, DocumentationPasswordLink):
                return await self._link_documentation(
                    cmd, cast(DocumentationConnector, connector), command_id
                )
        except VendorError as exc:
            return vendor_failure(provider, exc), {}
        raise TypeError(f"no rule executes {cmd.TYPE}")

    async def _link_documentation(
        self, cmd: DocumentationPasswordLink, docs: DocumentationConnector, command_id: uuid.UUID
    ) -> tuple[Execution, dict[str, Any]]:
        """Link (or create, or defer) the entry; a linked one then gets a password
        changed meanwhile (:func:`documentation.catch_up`)."""
        key = cmd.account.key
        used: str | None = None  # the change whose password a create takes

        async def known_or_defer() -> str | documentation.Deferred:
            nonlocal used
            deferred = doc_link(cmd, command_id, DocLink(None))
            found = await self.store.defer_unless_known(deferred)
            if found.handed_over_at is not None:
                return documentation.Deferred(found.handed_over_at)
            known = self._opened(found.known, key)
            if known is None:
                return documentation.Deferred()
            used = known.change_id
            return known.password

        execution, link = await documentation.link_password(cmd, docs, known_or_defer)
        if link is None:
            return execution, {"doc_link": None}
        stored = doc_link(cmd, command_id, link)
        if link.entry_id is not None:

            async def newer() -> tuple[str, str] | None:
                known = self._opened(await self.store.save_link_and_newer(stored), key)
                return (known.change_id, known.password) if known else None

            if await documentation.catch_up(cmd, link.entry_id, docs, newer, used):
                detail = f"{execution.detail}; then set to the password changed meanwhile"
                execution = dataclasses.replace(execution, detail=detail)
            return execution, {"doc_link": None}  # saved by newer(), asked at least once
        return execution, {"doc_link": stored}

    def _opened(self, sealed: SealedPassword | None, account_key: str) -> KnownPassword | None:
        """A known password, opened (None when there is none, or it does not open)."""
        if sealed is None:
            return None
        try:
            password = self.box.open(sealed.ciphertext, account_key).decode()
        except (SecretError, UnicodeDecodeError):
            return None
        return KnownPassword(sealed.change_id, password, sealed.changed_at, sealed.changed_by)


def _psa_link(
    cmd: PsaContactLink, ctx: Context, provider: str, execution: Execution
) -> tuple[str, str, str, str, str | None, str | None] | None:
    if execution.outcome is None or not execution.refs or execution.reason is not None:
        return None
    contact = execution.contact
    return (
        cmd.account.key,
        ctx.partner_id,
        provider,
        execution.refs[0].id,
        contact.email if contact else None,
        contact.phone if contact else None,
    )
