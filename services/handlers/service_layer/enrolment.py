"""The commands that enrol an account (docs/contract.md §7), and what a password change
does to each enrolment.

- ``vault.password.store``: a vault entry exists from then on (``stored``); its secret
  is set by every ``account.password.changed`` (``updated``), sealed with a fresh data
  key that is itself sealed under ``SECRETS_KEY``; the previous versions keep their
  metadata only. A change that came before the command fills the entry at once.
- ``rotation.enroll``: enrolled with the rotation interval (``enrolled``); a password
  change moves the next rotation to an interval after it (``updated``).
- ``identity.self_service_reset.enable``: the enrolment is recorded (``enrolled``).
- ``identity.m365_password_sync.enable``: recorded (``enrolled``); every later password
  change sets the Microsoft 365 password through Graph (``updated``), except for a
  user synced from on-premises, whose password hash sync carries it (``skipped``). A
  change older than the enrolment is not replayed into Microsoft 365: it may be stale.
"""

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.commands import CommandAccount
from schemas.ids import ID_NAMESPACE
from schemas.results import FailureReason, Outcome, Ref
from services.handlers.adapters.enrolments import EnrolmentStore
from services.handlers.adapters.store import SealedPassword
from services.handlers.domain.execution import Execution
from services.handlers.service_layer.ports import IdentityConnector
from services.infra.secrets import SecretBox

SSPR = "self_service_reset"
M365 = "m365_password_sync"


@dataclass(frozen=True)
class Sealed:
    wrapped_key: str
    secret_ciphertext: str


@dataclass(frozen=True)
class KnownPassword:
    """A password change, opened: what the vault and the other targets are given."""

    change_id: str
    password: str
    changed_at: datetime
    changed_by: str


def vault_aad(account_key: str) -> str:
    return f"vault:{account_key}"


def seal_secret(box: SecretBox, account_key: str, password: str) -> Sealed:
    """Envelope encryption: a fresh data key seals the password; ``box`` (SECRETS_KEY)
    seals the data key. Re-keying re-seals data keys only."""
    data_key = os.urandom(32)
    secret = SecretBox(data_key).seal(password.encode(), account_key)
    return Sealed(box.seal(data_key, vault_aad(account_key)), secret)


def open_secret(box: SecretBox, account_key: str, sealed: Sealed) -> str:
    data_key = box.open(sealed.wrapped_key, vault_aad(account_key))
    return SecretBox(data_key).open(sealed.secret_ciphertext, account_key).decode()


def principal_of(account: CommandAccount) -> str:
    """Who the account is in Microsoft 365: its UPN, else its email, else its username."""
    return account.user_principal_name or account.email or account.username


def vault_entry_id(account_key: str) -> uuid.UUID:
    """The vault entry's id in results (the account key may be longer than a ref's id)."""
    return uuid.uuid5(ID_NAMESPACE, f"vault|{account_key}")


def _vault_ref(account_key: str, version: int) -> tuple[Ref, ...]:
    return (Ref(system="vault", kind="secret", id=f"{vault_entry_id(account_key)}/v{version}"),)


async def store_in_vault(
    store: EnrolmentStore,
    box: SecretBox,
    account: CommandAccount,
    partner_id: str,
    command_id: uuid.UUID,
    opened: Callable[[SealedPassword | None, str], KnownPassword | None],
) -> Execution:
    """Open the entry; set its secret at once when a password change came first."""
    sealed = await store.open_vault_entry(account.key, partner_id, account.customer_id, command_id)
    latest = opened(sealed, account.key)
    if latest is None:
        return Execution.succeeded(
            Outcome.STORED, "vault entry ready; its secret is set by the next password change"
        )
    version = await set_vault_secret(store, box, account.key, latest)
    return Execution.succeeded(
        Outcome.STORED,
        "vault entry stored with the last known password",
        _vault_ref(account.key, version),
    )


async def set_vault_secret(
    store: EnrolmentStore, box: SecretBox, account_key: str, change: KnownPassword
) -> int:
    sealed = seal_secret(box, account_key, change.password)
    return await store.replace_secret(
        account_key,
        wrapped_key=sealed.wrapped_key,
        secret_ciphertext=sealed.secret_ciphertext,
        change_id=change.change_id,
        changed_at=change.changed_at,
        changed_by=change.changed_by,
    )


async def vault_change(
    store: EnrolmentStore, box: SecretBox, account_key: str, change: KnownPassword
) -> Execution:
    version = await set_vault_secret(store, box, account_key, change)
    return Execution.succeeded(
        Outcome.UPDATED,
        f"vault secret replaced (version {version}, changed by {change.changed_by})",
        _vault_ref(account_key, version),
    )


async def enrol_rotation(
    store: EnrolmentStore,
    account: CommandAccount,
    partner_id: str,
    command_id: uuid.UUID,
    interval_days: int,
) -> Execution:
    due = await store.enrol_rotation(
        account.key, partner_id, account.customer_id, command_id, interval_days
    )
    return Execution.succeeded(
        Outcome.ENROLLED,
        f"enrolled in password rotation every {interval_days} days; next due {due:%Y-%m-%d}",
    )


async def rotation_change(
    store: EnrolmentStore, account_key: str, change: KnownPassword
) -> Execution:
    due = await store.reschedule(account_key, change.changed_at)
    return Execution.succeeded(
        Outcome.UPDATED,
        f"password changed ({change.changed_by}); next rotation due {due:%Y-%m-%d}"
        if due
        else "password changed",
    )


async def enrol_identity(
    store: EnrolmentStore,
    kind: str,
    account: CommandAccount,
    partner_id: str,
    command_id: uuid.UUID,
    *,
    m365_configured: bool = True,
) -> Execution:
    principal = principal_of(account)
    await store.enrol(account.key, kind, partner_id, account.customer_id, command_id, principal)
    if kind == SSPR:
        return Execution.succeeded(Outcome.ENROLLED, f"self-service password reset for {principal}")
    detail = f"Microsoft 365 password sync for {principal}"
    if not m365_configured:
        detail += "; the partner has no usable m365 integration yet, so changes fail until then"
    return Execution.succeeded(Outcome.ENROLLED, detail)


async def m365_change(graph: IdentityConnector, principal: str, password: str) -> Execution:
    user = await graph.find_user(principal)
    if user is None:
        return Execution.failed(
            FailureReason.VENDOR_REJECTED, f"Microsoft 365 has no user {principal}"
        )
    ref = (Ref(system="m365", kind="user", id=user.id),)
    if user.synced:
        return Execution.succeeded(
            Outcome.SKIPPED,
            f"{principal} is synced from on-premises (onPremisesSyncEnabled): password hash "
            "sync carries its password",
            ref,
        )
    await graph.set_password(user.id, password)
    return Execution.succeeded(Outcome.UPDATED, f"Microsoft 365 password of {principal} set", ref)
