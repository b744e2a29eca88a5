"""A discovery agent changing passwords: ``account.password.changed`` events, as an agent
that rotated (or saw a technician change) an account's password would send them.

The password is sealed as the contract has it (AES-256-GCM under ``SECRETS_KEY``,
the account key as associated data) and never printed. Which accounts: the keys
given, or the latest ones the worker imported for a customer (its ledger).
"""

import secrets
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.envelope import CONTENT_TYPE, CloudEvent, utc_now
from schemas.passwords import PASSWORD_CHANGED, ChangedBy, PasswordChanged
from services.infra.secrets import SecretBox

ALPHABET = string.ascii_letters + string.digits + "-_!.#"


def new_password(length: int = 20) -> str:
    """A random password with a lower, an upper, a digit and a symbol (every directory's
    complexity rule, Microsoft 365's included)."""
    while True:
        password = "".join(secrets.choice(ALPHABET) for _ in range(length))
        classes = (str.islower, str.isupper, str.isdigit, lambda c: c in "-_!.#")
        if all(any(test(c) for c in password) for test in classes):
            return password


@dataclass(frozen=True)
class Account:
    key: str
    customer_id: uuid.UUID


async def imported_accounts(database_url: str, customer_id: uuid.UUID, count: int) -> list[Account]:
    """The ``count`` accounts of the customer the worker imported last."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT account_key, customer_id FROM import_worker.ledger
               WHERE customer_id = $1 ORDER BY decided_at DESC LIMIT $2""",
            customer_id,
            count,
        )
    finally:
        await conn.close()
    return [Account(r["account_key"], r["customer_id"]) for r in rows]


def change_event(
    box: SecretBox,
    account: Account,
    password: str,
    changed_by: ChangedBy,
    *,
    source: str = "/agents/sim-agent-1",
) -> bytes:
    partner_id = account.key.split(":", 1)[0]
    event = CloudEvent[PasswordChanged](
        specversion="1.0",
        id=str(uuid.uuid4()),
        source=source,
        type=PASSWORD_CHANGED,
        time=utc_now(),
        subject=account.key,
        partnerid=partner_id,
        data=PasswordChanged(
            account_key=account.key,
            customer_id=account.customer_id,
            changed_at=utc_now(),
            changed_by=changed_by,
            password_ciphertext=box.seal(password.encode(), account.key),
        ),
    )
    return event.model_dump_json().encode()


async def publish_changes(
    bootstrap: str,
    topic: str,
    box: SecretBox,
    accounts: Sequence[Account],
    changed_by: ChangedBy = ChangedBy.AGENT,
) -> int:
    """One change (a fresh random password) per account; how many were acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for account in accounts:
            await producer.send_and_wait(
                topic,
                change_event(box, account, new_password(), changed_by),
                key=account.key.encode(),
                headers=[("content-type", CONTENT_TYPE.encode())],
            )
    finally:
        await producer.stop()
    return len(accounts)
