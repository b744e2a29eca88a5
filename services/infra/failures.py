"""Which errors mean "a dependency is away" rather than "this work is bad".

The distinction drives two behaviours users can see:

- the import worker retries a batch for as long as PostgreSQL or the broker
  is unavailable (nothing may be dead-lettered because of an outage), but
  isolates and dead-letters a record that fails on its own for any other
  reason, so one poison record cannot stall its partition;
- the policy service answers 503 with ``Retry-After`` while its database is
  unreachable, instead of a 500 that would read as a bug.
"""

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # connection refused / reset, broken pipes, DNS (ConnectionError is one)
    TimeoutError,  # pool acquire, statement and request timeouts
    EOFError,  # a socket closed half way through a reply
    KafkaError,  # broker-side: unavailable, not leader, request timed out, ...
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or vanished
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # class 40: serialization failure, deadlock
    asyncpg.exceptions.InternalServerError,  # class XX: the server's own failure
    asyncpg.InterfaceError,  # the client's connection was closed under it
    # A connection left mid-reply by a server that died ("cannot switch to state
    # 15; another operation (2) is in progress"), seen when PostgreSQL restarts.
    asyncpg.InternalClientError,
)

# Broker errors about one record rather than about the broker.
_RECORD_LEVEL: tuple[type[BaseException], ...] = (MessageSizeTooLargeError,)


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later can succeed without changing it."""
    if isinstance(exc, _RECORD_LEVEL):
        return False
    return isinstance(exc, _TRANSIENT)


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says PostgreSQL cannot be reached or is shutting down."""
    return isinstance(
        exc,
        (
            OSError,
            TimeoutError,
            EOFError,
            asyncpg.PostgresConnectionError,
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.exceptions.InsufficientResourcesError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ),
    )
