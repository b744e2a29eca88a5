"""A Docker-free local stack: a Kafka-protocol broker and PostgreSQL from Python wheels.

Used by ``msp-import-dev up`` (``make run``) and by the test fixtures in
``tests/conftest.py``; production uses Apache Kafka and a managed PostgreSQL.
"""

from services.infra.devstack.broker import BrokerStartError, LocalBroker
from services.infra.devstack.postgres import LocalPostgres, PostgresError

__all__ = ["BrokerStartError", "LocalBroker", "LocalPostgres", "PostgresError"]
