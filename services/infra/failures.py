"""Which errors mean "a dependency is away" rather than "this work is bad".

One classification, used everywhere a failure must be told apart from bad
input (docs/contract.md §3):

- the import worker's hot path retries a batch for as long as PostgreSQL or
  the broker is away, and isolates and dead-letters a record that fails on
  its own for any other reason;
- the worker's projection waits out an outage and skips only an event the
  database refuses for good;
- the outbox relay logs an outage as a wait, anything else as an error;
- the policy service answers 503 with ``Retry-After`` while its database is
  unavailable, instead of a 500 that would read as a bug.

A PostgreSQL outage is a dropped or refused connection, or an error of the
SQLSTATE classes below: a server that turned read-only (a failover behind a
pooler or VIP, a managed instance whose disk filled: ``25006``), an idle or
in-transaction timeout (``25P03``, ``57P05``), resources exhausted (``53``),
a shutdown or cancellation (``57``). None of them says anything about the
work itself: the same statement succeeds once the server is back.
"""

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

#: SQLSTATE classes that mean "the database is unavailable", not "this statement is wrong":
#: 08 connection exception, 25 invalid transaction state (read-only, timeouts),
#: 53 insufficient resources, 57 operator intervention.
OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "25", "53", "57"})

# Errors raised below SQL: the connection is gone, was never made, or timed out.
_CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OSError,  # connection refused / reset, broken pipes, DNS (ConnectionError is one)
    TimeoutError,  # pool acquire, statement and request timeouts
    EOFError,  # a socket closed half way through a reply
    asyncpg.InterfaceError,  # the client's connection was closed under it
    # A connection left mid-reply by a server that died ("cannot switch to state
    # 15; another operation (2) is in progress"), seen when PostgreSQL restarts.
    asyncpg.InternalClientError,
)

# Broker errors about one record rather than about the broker.
_RECORD_LEVEL: tuple[type[BaseException], ...] = (MessageSizeTooLargeError,)

# Class 40 (serialization failure, deadlock): not an outage, but the same work
# succeeds when retried, once the concurrent writer it collided with is done.
_RETRY_SQLSTATE_CLASSES = frozenset({"40"})


def _sqlstate_class(exc: BaseException) -> str | None:
    if not isinstance(exc, asyncpg.PostgresError):
        return None
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate[:2] if isinstance(sqlstate, str) and len(sqlstate) == 5 else None


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says PostgreSQL is unreachable or cannot take work just now."""
    if isinstance(exc, _CONNECTION_LOST):
        return True
    return _sqlstate_class(exc) in OUTAGE_SQLSTATE_CLASSES


def broker_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` is the broker's (unavailable, not leader, timed out, ...)."""
    return isinstance(exc, KafkaError) and not isinstance(exc, _RECORD_LEVEL)


def is_outage(exc: BaseException) -> bool:
    """PostgreSQL or the broker is away: wait, never dead-letter or skip because of it."""
    return database_unavailable(exc) or broker_unavailable(exc)


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later can succeed without changing it.

    Every outage, plus PostgreSQL's "retry this transaction" class 40.
    """
    return is_outage(exc) or _sqlstate_class(exc) in _RETRY_SQLSTATE_CLASSES


__all__ = [
    "OUTAGE_SQLSTATE_CLASSES",
    "broker_unavailable",
    "database_unavailable",
    "is_outage",
    "is_transient",
]
