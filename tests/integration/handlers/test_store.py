"""The handlers' store on a real PostgreSQL: a documentation link's two writers (its
command, and the password change that makes a deferred entry) and what each leaves."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.handlers.adapters.store import Store, StoredDocLink

T1 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T2 = T1 + timedelta(seconds=5)


def _result(cid: uuid.UUID, outcome: str, at: datetime) -> tuple[str, uuid.UUID, dict[str, Any]]:
    data = {"command_id": str(cid), "outcome": outcome, "finished_at": at.isoformat()}
    return "command.succeeded", uuid.uuid5(cid, outcome), data


def _link(key: str, cid: uuid.UUID, entry_id: str | None = None) -> StoredDocLink:
    return StoredDocLink(key, cid, "itglue", "50101", entry_id, None, {"type": "x"})


def _account() -> str:
    return f"p-{uuid.uuid4().hex[:8]}:c:ad:u"


async def _started(pool: asyncpg.Pool, key: str | None = None) -> tuple[Store, str, uuid.UUID]:
    """A store, an account (of its own unless ``key``), and a command of it begun in
    the inbox."""
    store, key, cid = Store(pool), key or _account(), uuid.uuid4()
    await store.begin(cid, "documentation.password.link", key, key.split(":")[0], "itglue")
    return store, key, cid


async def _inbox(pool: asyncpg.Pool, cid: uuid.UUID) -> tuple[str, str]:
    row = await pool.fetchrow(
        "SELECT state, result->>'outcome' AS o FROM handlers.inbox WHERE command_id = $1", cid
    )
    return row["state"], row["o"]


@pytest.mark.parametrize("change_first", [True, False])
async def test_the_inbox_keeps_the_latest_result_whichever_writer_comes_last(
    handlers_db: asyncpg.Pool, change_first: bool
) -> None:
    store, key, cid = await _started(handlers_db)
    created = (cid, *_result(cid, "created", T2))
    deferred = _result(cid, "deferred", T1)  # a redo's report of its first attempt

    async def change() -> None:
        await store.finish_change(
            str(uuid.uuid4()), "documentation", key, doc_link=_link(key, cid, "7"), result=created
        )

    if change_first:
        await change()
        await store.finish(cid, *deferred)
    else:
        await store.finish(cid, *deferred)
        await change()
    assert await _inbox(handlers_db, cid) == ("done", "created")


async def test_a_later_result_of_the_command_replaces_an_earlier_one(
    handlers_db: asyncpg.Pool,
) -> None:
    store, key, cid = await _started(handlers_db)
    await store.finish(cid, *_result(cid, "deferred", T1))
    await store.finish_change(
        str(uuid.uuid4()), "documentation", key, result=(cid, *_result(cid, "created", T2))
    )
    await store.finish_change(
        str(uuid.uuid4()),
        "documentation",
        key,
        result=(cid, *_result(cid, "updated", T2 + timedelta(1))),
    )
    assert await _inbox(handlers_db, cid) == ("done", "updated")


async def test_defer_unless_known_defers_hands_over_or_answers_the_password(
    handlers_db: asyncpg.Pool,
) -> None:
    store, key, cid = await _started(handlers_db)

    first = await store.defer_unless_known(_link(key, cid))
    assert first.known is None
    assert first.handed_over_at is None
    stored = await store.doc_link(key)
    assert stored is not None
    assert stored.entry_id is None

    await handlers_db.execute(
        """INSERT INTO handlers.latest_passwords
               (account_key, change_id, changed_at, ciphertext, changed_by)
           VALUES ($1, 'ch-1', now(), 'sealed', 'technician')""",
        key,
    )
    redo = await store.defer_unless_known(_link(key, cid))
    assert redo.known is not None
    assert redo.known.change_id == "ch-1"
    assert redo.handed_over_at is not None  # this command deferred: the change creates

    other = await store.defer_unless_known(_link(key, uuid.uuid4()))
    assert other.known is not None
    assert other.handed_over_at is None
    await handlers_db.execute(
        "UPDATE handlers.doc_links SET entry_id = '7' WHERE account_key = $1", key
    )
    made = await store.defer_unless_known(_link(key, cid))
    assert made.handed_over_at is None  # the change made the entry: nothing deferred


async def test_a_saved_link_answers_a_password_remembered_after_its_command_began(
    handlers_db: asyncpg.Pool,
) -> None:
    key = _account()
    remember = """INSERT INTO handlers.latest_passwords AS p
                      (account_key, change_id, changed_at, ciphertext, changed_by)
                  VALUES ($1, $2, now(), 'sealed', 'technician')
                  ON CONFLICT (account_key) DO UPDATE SET change_id = EXCLUDED.change_id,
                      remembered_at = clock_timestamp()"""
    await handlers_db.execute(remember, key, "before")
    store, _, cid = await _started(handlers_db, key)
    assert await store.save_link_and_newer(_link(key, cid, "7")) is None  # known before
    stored = await store.doc_link(key)
    assert stored is not None
    assert stored.entry_id == "7"
    await handlers_db.execute(remember, key, "meanwhile")
    newer = await store.save_link_and_newer(_link(key, cid, "7"))
    assert newer is not None
    assert newer.change_id == "meanwhile"
