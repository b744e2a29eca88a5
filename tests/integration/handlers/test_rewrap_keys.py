"""``handlers rewrap-keys``: the vault's data keys and the last known passwords move to a new
``SECRETS_KEY`` (the passwords themselves stay sealed by their data keys), on a database of
its own (real PostgreSQL), through the real console script."""

import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from services.handlers.adapters.enrolments import EnrolmentStore
from services.handlers.service_layer.enrolment import Sealed, open_secret, seal_secret
from services.infra.devstack.databases import create_database, drop_database
from services.infra.migrations import migrate
from services.infra.secrets import SecretBox, SecretError, new_key
from tests.integration.import_worker.worker import BIN

from .conftest import MIGRATIONS


@pytest.fixture
async def own_db(database_url: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    name = f"rewrap_{uuid.uuid4().hex[:10]}"
    dsn = await create_database(database_url, name)
    await migrate(dsn, "handlers", MIGRATIONS)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        yield dsn, pool
    finally:
        await pool.close()
        await drop_database(database_url, name)


def _rewrap(dsn: str, old: str, new: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRETS_KEY", "OLD_SECRETS_KEY")}
    env |= {"DATABASE_URL": dsn, "SECRETS_KEY": new, "OLD_SECRETS_KEY": old}
    return subprocess.run(
        [str(BIN / "handlers"), "rewrap-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_rewrap_moves_every_sealed_value_to_the_new_key_and_can_run_again(
    own_db: tuple[str, asyncpg.Pool],
) -> None:
    dsn, pool = own_db
    old_key, new_key_ = new_key(), new_key()
    old, new = SecretBox.from_setting(old_key), SecretBox.from_setting(new_key_)
    store = EnrolmentStore(pool)
    passwords = {f"p:{uuid.uuid4()}:active_directory:{i}": f"Secret-{i}!Aa" for i in range(7)}
    for key, password in passwords.items():
        await store.open_vault_entry(key, "p", uuid.uuid4(), uuid.uuid4())
        sealed = seal_secret(old, key, password)
        await store.replace_secret(
            key,
            wrapped_key=sealed.wrapped_key,
            secret_ciphertext=sealed.secret_ciphertext,
            change_id=str(uuid.uuid4()),
            changed_at=datetime.now(UTC),
            changed_by="agent",
        )
        await pool.execute(
            "INSERT INTO handlers.latest_passwords (account_key, change_id, changed_at,"
            " ciphertext) VALUES ($1, 'c', now(), $2)",
            key,
            old.seal(password.encode(), key),
        )
    before = {r["account_key"]: r["secret_ciphertext"] for r in await _vault(pool)}

    first = _rewrap(dsn, old_key, new_key_)
    assert first.returncode == 0, first.stderr
    assert "re-sealed 14, already under the new key 0, under neither key 0" in first.stdout

    for row in await _vault(pool):
        key = row["account_key"]
        sealed = Sealed(row["wrapped_key"], row["secret_ciphertext"])
        assert open_secret(new, key, sealed) == passwords[key]
        assert row["secret_ciphertext"] == before[key], "the secret itself is not re-sealed"
        with pytest.raises(SecretError):
            open_secret(old, key, sealed)
    for row in await pool.fetch("SELECT * FROM handlers.latest_passwords"):
        key = row["account_key"]
        assert new.open(row["ciphertext"], key).decode() == passwords[key]

    again = _rewrap(dsn, old_key, new_key_)
    assert again.returncode == 0, again.stderr
    assert "re-sealed 0, already under the new key 14" in again.stdout
    for out in (first, again):
        text = out.stdout + out.stderr
        assert old_key not in text
        assert new_key_ not in text
        assert not any(p in text for p in passwords.values())


async def test_rewrap_refuses_to_start_without_the_old_key(
    own_db: tuple[str, asyncpg.Pool],
) -> None:
    dsn, _ = own_db
    out = _rewrap(dsn, "", new_key())
    assert out.returncode != 0
    assert "OLD_SECRETS_KEY" in out.stderr


async def _vault(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT * FROM handlers.vault_entries ORDER BY account_key"))
