"""Executing one command, or one password change, to the end (docs/contract.md §7).

A command:

1. the inbox records the intent (one more attempt) unless the command is done
   already; a done one is answered with its stored result (same id), never
   executed again;
2. the partner's integration for the command's provider, its credentials
   opened with ``SECRETS_KEY``; none (or disabled, or sealed with another key):
   ``integration_missing``;
3. the rule of the command's type runs against the vendor's connector;
4. the result is published and acknowledged by the broker;
5. the inbox row turns ``done``, with what the command linked, in one transaction.

A crash anywhere before 5 redoes the command, and the rule finds what it made
at the vendor (search before create, our mark on the record). An outage of
PostgreSQL or the broker raises out of here: the caller waits it out and runs
the same work again. A vendor that stays unavailable past the retry policy's
deadline ends the command ``timeout``.

A password change (``account.password.changed``) is opened (a ciphertext that
does not open is the caller's to dead-letter), kept sealed as the account's
latest, and applied once per change to each target the account has: here the
documentation entry (set its password, or create a deferred one), each with
the result of the command that linked it.
"""

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from schemas.commands import DocumentationPasswordLink, PsaContactLink
from schemas.envelope import CausedEvent, CloudEvent, utc_now
from schemas.integrations import integration_key
from schemas.passwords import PasswordChanged
from schemas.results import FailureReason
from services.handlers.adapters.connectors.base import IntegrationConfig
from services.handlers.adapters.connectors.registry import Connectors
from services.handlers.adapters.store import Store, StoredDocLink
from services.handlers.domain.errors import (
    AddressRefused,
    VendorAuthError,
    VendorError,
    VendorRejected,
)
from services.handlers.domain.execution import Execution, ResultFacts, result_data, result_id
from services.handlers.service_layer import documentation, psa
from services.handlers.service_layer.documentation import DocLink
from services.handlers.service_layer.ports import DocumentationConnector, PsaConnector
from services.infra.secrets import SecretBox, SecretError

log = logging.getLogger(__name__)

#: A result to publish: (event type, event id, envelope JSON bytes, key).
Publish = Callable[[str, uuid.UUID, bytes, str], Awaitable[None]]


class Unopenable(Exception):
    """A password change whose ciphertext does not open: dead-letter it."""


@dataclass(frozen=True)
class Context:
    """Who a command or change is for, from its envelope."""

    partner_id: str
    cause_id: str
    correlation_id: str


class Executor:
    def __init__(
        self,
        store: Store,
        connectors: Connectors,
        box: SecretBox,
        publish: Publish,
        *,
        source: str = "/handlers",
        on_result: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.box = box
        self.publish = publish
        self.source = source
        self.on_result = on_result or (lambda command_type, provider, label: None)

    # -- commands ---------------------------------------------------------------------

    async def command(self, event: CausedEvent[Any]) -> None:
        cmd = event.data
        command_id = uuid.UUID(event.id)
        provider = getattr(cmd, "provider", None)
        provider_name = provider.value if provider is not None else None
        ctx = Context(event.partnerid, event.id, event.correlationid)
        entry = await self.store.begin(
            command_id, cmd.TYPE, cmd.account.key, event.partnerid, provider_name
        )
        if entry.done and entry.result is not None and entry.result_type is not None:
            await self._republish(ctx, entry.result_type, entry.result)
            return
        execution, links = await self._execute(cmd, ctx, provider_name)
        facts = ResultFacts(
            command_id=command_id,
            command_type=cmd.TYPE,
            account_key=cmd.account.key,
            customer_id=cmd.account.customer_id,
            provider=provider_name,
            attempts=entry.attempts,
            finished_at=utc_now(),
        )
        result_type, result_id, data = result_data(execution, facts)
        await self._send(ctx, result_type, result_id, data.model_dump(mode="json"))
        await self.store.finish(
            command_id, result_type, result_id, data.model_dump(mode="json"), **links
        )
        self.on_result(cmd.TYPE, provider_name or "", execution.label)

    async def _execute(
        self, cmd: Any, ctx: Context, provider: str | None
    ) -> tuple[Execution, dict[str, Any]]:
        config = await self._integration(ctx.partner_id, provider) if provider else None
        if config is None or not self.connectors.supports(provider or ""):
            return (
                Execution.failed(
                    FailureReason.INTEGRATION_MISSING,
                    f"the partner has no usable {provider} integration",
                ),
                {},
            )
        try:
            connector = self.connectors.get(config)
            if isinstance(cmd, PsaContactLink):
                execution = await psa.link_contact(cmd, _as_psa(connector))
                return execution, {"psa_link": _psa_link(cmd, ctx, provider or "", execution)}
            if isinstance(cmd, DocumentationPasswordLink):
                password = await self._latest_password(cmd.account.key)
                execution, link = await documentation.link_password(
                    cmd, _as_docs(connector), password
                )
                doc = _doc_link(cmd, uuid.UUID(ctx.cause_id), link) if link else None
                return execution, {"doc_link": doc}
        except VendorError as exc:
            return _failure(provider or "", exc), {}
        return (
            Execution.failed(FailureReason.INTEGRATION_MISSING, f"{cmd.TYPE} is not executed"),
            {},
        )

    async def _integration(self, partner_id: str, provider: str) -> IntegrationConfig | None:
        stored = await self.store.integration(partner_id, provider)
        if stored is None or not stored.enabled or not stored.credentials_ciphertext:
            return None
        try:
            credentials = self.box.open_json(
                stored.credentials_ciphertext, integration_key(partner_id, provider)
            )
        except SecretError:
            log.error(
                "the %s integration's credentials do not open with this SECRETS_KEY",
                provider,
                extra={"partner_id": partner_id},
            )
            return None
        return IntegrationConfig(
            partner_id=partner_id,
            provider=provider,
            base_url=stored.base_url,
            settings=stored.settings,
            credentials={str(k): str(v) for k, v in credentials.items()},
            version=stored.version,
        )

    async def _latest_password(self, account_key: str) -> str | None:
        sealed = await self.store.latest_password(account_key)
        if sealed is None:
            return None
        try:
            return self.box.open(sealed.ciphertext, account_key).decode()
        except (SecretError, UnicodeDecodeError):
            return None

    # -- password changes -------------------------------------------------------------

    async def password_changed(self, event: CloudEvent[PasswordChanged]) -> None:
        change = event.data
        key = change.account_key
        try:
            password = self.box.open(change.password_ciphertext, key).decode()
        except (SecretError, UnicodeDecodeError) as exc:
            raise Unopenable("the password does not open with this key for this account") from exc
        await self.store.remember_password(
            key, event.id, change.changed_at, change.password_ciphertext
        )
        extra = event.model_extra or {}
        correlation = extra.get("correlationid")
        ctx = Context(
            event.partnerid, event.id, correlation if isinstance(correlation, str) else event.id
        )
        await self._sync_documentation(event.id, key, password, ctx)

    async def _sync_documentation(
        self, change_id: str, key: str, password: str, ctx: Context
    ) -> None:
        stored = await self.store.doc_link(key)
        if stored is None or await self.store.change_applied(change_id, "documentation"):
            return
        command = DocumentationPasswordLink.model_validate(stored.command)
        config = await self._integration(ctx.partner_id, stored.provider)
        link = DocLink(stored.entry_id, stored.url)
        if config is None:
            execution = Execution.failed(
                FailureReason.INTEGRATION_MISSING,
                f"the partner has no usable {stored.provider} integration",
            )
            new_link = None
        else:
            try:
                execution, updated = await documentation.apply_password(
                    command, link, _as_docs(self.connectors.get(config)), password
                )
                new_link = _doc_link(command, stored.command_id, updated)
            except VendorError as exc:
                execution, new_link = _failure(stored.provider, exc), None
        facts = ResultFacts(
            command_id=stored.command_id,
            command_type=command.TYPE,
            account_key=key,
            customer_id=command.account.customer_id,
            provider=stored.provider,
            attempts=1,
            finished_at=utc_now(),
        )
        result_type, result_id, data = result_data(execution, facts)
        cause = Context(ctx.partner_id, str(stored.command_id), ctx.correlation_id)
        await self._send(cause, result_type, result_id, data.model_dump(mode="json"))
        await self.store.finish_change(
            change_id,
            "documentation",
            key,
            doc_link=new_link,
            result=(stored.command_id, result_type, result_id, data.model_dump(mode="json")),
        )
        self.on_result(command.TYPE, stored.provider, execution.label)

    # -- results ----------------------------------------------------------------------

    async def _republish(self, ctx: Context, result_type: str, data: dict[str, Any]) -> None:
        label = data.get("outcome") or data.get("reason") or ""
        command_id = uuid.UUID(data["command_id"])
        await self._send(ctx, result_type, result_id(command_id, label), data)

    async def _send(
        self, ctx: Context, result_type: str, event_id: uuid.UUID, data: dict[str, Any]
    ) -> None:
        envelope = {
            "specversion": "1.0",
            "id": str(event_id),
            "source": self.source,
            "type": result_type,
            "time": utc_now().isoformat(),
            "subject": data["account_key"],
            "datacontenttype": "application/json",
            "partnerid": ctx.partner_id,
            "causationid": ctx.cause_id,
            "correlationid": ctx.correlation_id,
            "data": data,
        }
        await self.publish(
            result_type, event_id, json.dumps(envelope).encode(), data["account_key"]
        )


def _failure(provider: str, exc: VendorError) -> Execution:
    """A vendor failure as the result says it (VendorUnavailable, MaybeDone: timeout)."""
    message = exc.message
    if isinstance(exc, VendorAuthError):
        return Execution.failed(
            FailureReason.INTEGRATION_AUTH, f"{provider} refused the credentials: {message}"
        )
    if isinstance(exc, VendorRejected):
        return Execution.failed(FailureReason.VENDOR_REJECTED, f"{provider}: {message}")
    if isinstance(exc, AddressRefused):
        return Execution.failed(FailureReason.INTEGRATION_MISSING, message)
    return Execution.failed(
        FailureReason.TIMEOUT, f"{provider} did not answer in time, after retries: {message}"
    )


def _as_psa(connector: object) -> PsaConnector:
    return cast(PsaConnector, connector)


def _as_docs(connector: object) -> DocumentationConnector:
    return cast(DocumentationConnector, connector)


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


def _doc_link(
    cmd: DocumentationPasswordLink, command_id: uuid.UUID, link: DocLink
) -> StoredDocLink:
    return StoredDocLink(
        account_key=cmd.account.key,
        command_id=command_id,
        provider=cmd.provider.value,
        organization_id=cmd.organization_id,
        entry_id=link.entry_id,
        url=link.url,
        command=cmd.model_dump(mode="json"),
    )
