"""``account.password.changed``: one change, fanned out to every target of the account
(docs/contract.md §7), each at most once per change.

The change is opened (associated data: the account key; one that does not open is
the caller's to dead-letter, never logged with its value) and kept sealed as the
account's latest. A change older than one seen already is superseded: applying it
would put an old password back. Then, in order, each target the account has:

- ``documentation``: the linked IT Glue / Hudu entry gets the password (or a deferred
  one is created with it): a result of the ``documentation.password.link`` command;
- ``vault``: the vault entry's secret is replaced (``vault.password.store``);
- ``m365``: the Microsoft 365 password is set through Graph, or ``skipped`` for a
  user synced from on-premises (``identity.m365_password_sync.enable``);
- ``rotation``: the next rotation falls due an interval after the change
  (``rotation.enroll``).

Each target's row in ``password_changes`` is written with its result, after the
result was acknowledged: a crash redoes only the targets not written yet.
"""

import logging
import uuid
from dataclasses import dataclass
from typing import cast

from schemas.commands import (
    DocumentationPasswordLink,
    M365PasswordSyncEnable,
    RotationEnroll,
    VaultPasswordStore,
)
from schemas.envelope import CloudEvent
from schemas.passwords import PasswordChanged
from services.handlers.adapters.connectors.registry import Connectors
from services.handlers.adapters.enrolments import EnrolmentStore
from services.handlers.adapters.store import Store, StoredDocLink
from services.handlers.domain.errors import VendorError
from services.handlers.domain.execution import Execution
from services.handlers.service_layer import documentation, enrolment
from services.handlers.service_layer.documentation import DocLink
from services.handlers.service_layer.enrolment import KnownPassword
from services.handlers.service_layer.ports import DocumentationConnector, IdentityConnector
from services.handlers.service_layer.reporting import (
    Context,
    Integrations,
    Reporter,
    facts,
    missing,
    vendor_failure,
)
from services.infra.secrets import SecretBox, SecretError

log = logging.getLogger(__name__)


class Unopenable(Exception):
    """A password change whose ciphertext does not open: dead-letter it."""


@dataclass(frozen=True)
class _Change:
    """One change being applied: who it is for, and the password, opened."""

    event: CloudEvent[PasswordChanged]
    known: KnownPassword
    correlation_id: str

    @property
    def key(self) -> str:
        return self.event.data.account_key

    @property
    def customer_id(self) -> uuid.UUID:
        return self.event.data.customer_id

    def context(self, command_id: uuid.UUID) -> Context:
        return Context(self.event.partnerid, str(command_id), self.correlation_id)


class PasswordChanges:
    def __init__(
        self,
        store: Store,
        enrolments: EnrolmentStore,
        connectors: Connectors,
        integrations: Integrations,
        reporter: Reporter,
        box: SecretBox,
    ) -> None:
        self.store = store
        self.enrolments = enrolments
        self.connectors = connectors
        self.integrations = integrations
        self.reporter = reporter
        self.box = box

    async def apply(self, event: CloudEvent[PasswordChanged]) -> str:
        """Apply the change to every target not done yet: ``applied``, or ``superseded``."""
        data = event.data
        key = data.account_key
        try:
            password = self.box.open(data.password_ciphertext, key).decode()
        except (SecretError, UnicodeDecodeError) as exc:
            raise Unopenable("the password does not open with this key for this account") from exc
        targets = await self.enrolments.remember_change(
            key, event.id, data.changed_at, data.password_ciphertext, data.changed_by.value
        )
        if targets is None:
            log.info(
                "a password change older than the account's latest is not applied",
                extra={"change_id": event.id},
            )
            return "superseded"
        correlation = (event.model_extra or {}).get("correlationid")
        change = _Change(
            event,
            KnownPassword(event.id, password, data.changed_at, data.changed_by.value),
            correlation if isinstance(correlation, str) else event.id,
        )
        if targets.has_doc_link and "documentation" not in targets.applied:
            await self._documentation(change)
        if targets.vault_command is not None and "vault" not in targets.applied:
            execution = await enrolment.vault_change(self.enrolments, self.box, key, change.known)
            await self._finish(
                change, "vault", targets.vault_command, VaultPasswordStore.TYPE, None, execution
            )
        if targets.m365 is not None and "m365" not in targets.applied:
            execution = await self._m365(change, targets.m365.principal or "")
            await self._finish(
                change,
                "m365",
                targets.m365.command_id,
                M365PasswordSyncEnable.TYPE,
                "m365",
                execution,
            )
        if targets.rotation_command is not None and "rotation" not in targets.applied:
            execution = await enrolment.rotation_change(self.enrolments, key, change.known)
            await self._finish(
                change, "rotation", targets.rotation_command, RotationEnroll.TYPE, None, execution
            )
        return "applied"

    async def _m365(self, change: _Change, principal: str) -> Execution:
        config = await self.integrations.open(change.event.partnerid, "m365")
        if config is None:
            return missing("m365")
        graph = self.connectors.get(config)
        try:
            return await enrolment.m365_change(
                _as_identity(graph), principal, change.known.password
            )
        except VendorError as exc:
            return vendor_failure("m365", exc)

    async def _documentation(self, change: _Change) -> None:
        stored = await self.store.doc_link(change.key)
        if stored is None:
            return
        command = DocumentationPasswordLink.model_validate(stored.command)
        config = await self.integrations.open(change.event.partnerid, stored.provider)
        new_link: StoredDocLink | None = None
        if config is None:
            execution = missing(stored.provider)
        else:
            try:
                execution, updated = await documentation.apply_password(
                    command,
                    DocLink(stored.entry_id, stored.url),
                    _as_docs(self.connectors.get(config)),
                    change.known.password,
                )
                new_link = doc_link(command, stored.command_id, updated)
            except VendorError as exc:
                execution = vendor_failure(stored.provider, exc)
        await self._finish(
            change,
            "documentation",
            stored.command_id,
            command.TYPE,
            stored.provider,
            execution,
            new_link,
        )

    async def _finish(
        self,
        change: _Change,
        target: str,
        command_id: uuid.UUID,
        command_type: str,
        provider: str | None,
        execution: Execution,
        link: StoredDocLink | None = None,
    ) -> None:
        result = await self.reporter.report(
            change.context(command_id),
            execution,
            facts(command_id, command_type, change.key, change.customer_id, provider),
        )
        await self.store.finish_change(
            change.event.id,
            target,
            change.key,
            doc_link=link,
            result=(command_id, result.result_type, result.result_id, result.data),
        )


def doc_link(cmd: DocumentationPasswordLink, command_id: uuid.UUID, link: DocLink) -> StoredDocLink:
    return StoredDocLink(
        account_key=cmd.account.key,
        command_id=command_id,
        provider=cmd.provider.value,
        organization_id=cmd.organization_id,
        entry_id=link.entry_id,
        url=link.url,
        command=cmd.model_dump(mode="json"),
    )


def _as_docs(connector: object) -> DocumentationConnector:
    return cast(DocumentationConnector, connector)


def _as_identity(connector: object) -> IdentityConnector:
    return cast(IdentityConnector, connector)
