"""``msp-import-dev up``: broker, PostgreSQL, topics and both services on one machine.

Start-up runs what it can in parallel (broker and PostgreSQL; then the two
services' ``migrate``/``run``) because the time to a usable stack is what a
developer waits for. Shutdown is strictly ordered: services first (they
flush to the broker and database), then the broker, then PostgreSQL. It runs
on SIGINT, SIGTERM and SIGHUP, and a stdout whose reader is gone (``make run |
tee log`` and Ctrl-C) does not stop it. If ``up`` is killed outright, the
kernel sends SIGTERM to the services and the broker (Linux, see
:func:`~services.infra.devstack.procs.spawn_tied`); PostgreSQL keeps running
and the next ``up`` adopts it.

A service that is not there yet or fails is reported, not fatal: broker,
database and topics are useful on their own, e.g. to run one service from
an IDE against them.
"""

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from schemas.topics import TopicNames
from services.infra.devstack.broker import LocalBroker
from services.infra.devstack.children import ChildProcesses, ServiceSpec, http_ok, script_path
from services.infra.devstack.net import LOOPBACK, first_free_port
from services.infra.devstack.postgres import LocalPostgres, PostmasterInfo
from services.infra.devstack.procs import pid_alive
from services.infra.devstack.summary import ServiceState, StackInfo, render_summary
from services.infra.devstack.tokens import make_token, new_secret
from services.infra.kafka_admin import broker_reachable, ensure_topics
from services.infra.secrets import new_key
from services.policy_service.devseed import SeedError, seed_integrations

log = logging.getLogger(__name__)
T = TypeVar("T")
Echo = Callable[[str], None]


class StackError(RuntimeError):
    """The stack cannot start (its message is shown to the user as is)."""


@dataclass(frozen=True)
class StackConfig:
    """Options of ``up``; ``kafka_bootstrap``/``database_url`` set mean "use that, start none"."""

    data_dir: Path
    broker_port: int = 9092
    postgres_port: int = 5432
    http_port: int = 8080
    worker_http_port: int = 6066
    handlers_http_port: int = 6067
    simulators_port: int = 6080
    kafka_bootstrap: str | None = None
    database_url: str | None = None
    jwt_secret: str | None = None
    service_timeout: float = 60.0


def service_environment(
    base: Mapping[str, str],
    config: StackConfig,
    *,
    database_url: str,
    bootstrap: str,
    secret: str,
) -> dict[str, str]:
    """The environment of the services ``up`` runs: ``base`` plus the stack's settings.

    Dev mode hands out manager tokens (``/dev/sign-in``), so both services
    listen on loopback only, whatever ``HTTP_HOST``/``WORKER_HTTP_HOST`` the
    shell has (containers set 0.0.0.0 in their own environment).
    """
    env = dict(base)
    env.update(
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        AUTH_JWT_SECRET=secret,
        SECRETS_KEY=base.get("SECRETS_KEY") or dev_secrets_key(config.data_dir),
        # The demo integrations point at the local simulators, over plain http.
        INTEGRATIONS_ALLOW_PRIVATE="true",
        HTTP_HOST=LOOPBACK,
        HTTP_PORT=str(config.http_port),
        WORKER_HTTP_HOST=LOOPBACK,
        WORKER_HTTP_PORT=str(config.worker_http_port),
        HANDLERS_HTTP_HOST=LOOPBACK,
        HANDLERS_HTTP_PORT=str(config.handlers_http_port),
        DEV_MODE="1",
    )
    return env


def dev_secrets_key(data_dir: Path) -> str:
    """The dev stack's ``SECRETS_KEY``, kept in ``<data-dir>/secrets_key`` (mode 0600):
    the credentials stored in the dev database must still open after a restart."""
    path = data_dir.resolve() / "secrets_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def repository_root() -> Path | None:
    """The source checkout this package runs from (editable install), if it is one."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "tests" / "simulators" / "__main__.py").exists() else None


class DevStack:
    """Owns everything ``up`` starts and stops it all, whatever state start-up reached."""

    def __init__(self, config: StackConfig, echo: Echo) -> None:
        self._config = config
        self._echo = echo
        self._log_dir = config.data_dir.resolve() / "logs"
        self._broker: LocalBroker | None = None
        self._postgres: LocalPostgres | None = None
        self._children: ChildProcesses | None = None
        self._services: list[ServiceState] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(4, "devstack")
        self._pending: list[concurrent.futures.Future[Any]] = []
        self._notes: list[str] = []

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        """Run blocking start-up work; shutdown waits for it even if we were cancelled."""
        future = self._executor.submit(fn)
        self._pending.append(future)
        return await asyncio.wrap_future(future)

    async def start(self) -> StackInfo:
        """Bring everything up; raise :class:`StackError` if broker, database or topics fail."""
        self._log_dir.mkdir(parents=True, exist_ok=True)
        phases: dict[str, float] = {}
        mark = time.monotonic()
        results = await asyncio.gather(
            self._broker_up(), self._postgres_up(), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        bootstrap, database_url = str(results[0]), str(results[1])
        mark = _lap(phases, "broker+PostgreSQL", mark)

        topics = TopicNames()
        try:
            created = await ensure_topics(bootstrap, topics.all_topics(), topics.partitions)
        except Exception as exc:
            raise StackError(f"could not create the contract topics on {bootstrap}: {exc}") from exc
        mark = _lap(phases, "topics", mark)

        secret = self._config.jwt_secret or new_secret()
        env = service_environment(
            os.environ, self._config, database_url=database_url, bootstrap=bootstrap, secret=secret
        )
        self._children = ChildProcesses(self._log_dir, env)
        simulators = await self._simulators_up()
        specs = [
            ServiceSpec("policy-service", self._config.http_port),
            ServiceSpec("import-worker", self._config.worker_http_port),
            ServiceSpec("handlers", self._config.handlers_http_port),
        ]
        self._services = list(await asyncio.gather(*(self._service_up(s) for s in specs)))
        if simulators is not None and self._services[0].status == "ready":
            await self._demo_integrations(simulators)
        _lap(phases, "services", mark)
        return StackInfo(
            bootstrap=bootstrap,
            broker_local=self._broker is not None,
            database_url=database_url,
            postgres_local=self._postgres is not None,
            topics=topics.all_topics(),
            topics_created=created,
            partitions=topics.partitions,
            services=self._services,
            secret=secret,
            secret_generated=self._config.jwt_secret is None,
            token=make_token(secret),
            log_dir=self._log_dir,
            notes=self._notes,
            phases=phases,
            simulators=simulators,
        )

    async def _demo_integrations(self, simulators: str) -> None:
        policy = f"http://{LOOPBACK}:{self._config.http_port}"
        try:
            names = await self._in_thread(lambda: seed_integrations(policy, simulators))
        except SeedError as exc:
            self._notes.append(f"demo integrations not configured: {exc}")
            return
        self._notes.append(f"demo integrations ({', '.join(names)}) point at the simulators")

    async def _simulators_up(self) -> str | None:
        """The vendors' simulators (a source checkout's ``tests/simulators``) for the demo
        integrations; None when they are not there (an installed package) or do not start."""
        root = repository_root()
        if root is None:
            self._notes.append("no vendor simulators (not a source checkout): no demo integrations")
            return None
        assert self._children is not None
        port = first_free_port(self._config.simulators_port)
        command = [
            sys.executable,
            "-m",
            "tests.simulators",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
        ]
        self._children.spawn_command("simulators", command, cwd=root)
        deadline = time.monotonic() + self._config.service_timeout
        while time.monotonic() < deadline:
            if await http_ok(port, "/healthz"):
                return f"http://{LOOPBACK}:{port}"
            await asyncio.sleep(0.1)
        self._notes.append(
            f"the vendor simulators did not answer; see {self._children.log_path('simulators')}"
        )
        return None

    async def _broker_up(self) -> str:
        external = self._config.kafka_bootstrap
        if external:
            if not await broker_reachable(external, timeout=5):
                raise StackError(f"no broker answers at KAFKA_BOOTSTRAP_SERVERS={external}")
            return external
        port = first_free_port(self._config.broker_port)
        if port != self._config.broker_port:
            self._notes.append(f"port {self._config.broker_port} is busy: broker on {port}")
        self._broker = LocalBroker(port, log_path=self._log_dir / "tansu.log")
        await self._in_thread(self._broker.start)
        return self._broker.bootstrap

    async def _postgres_up(self) -> str:
        external = self._config.database_url
        if external:
            try:
                conn = await asyncpg.connect(external, timeout=5)
            except Exception as exc:
                raise StackError(f"cannot connect to DATABASE_URL={external}: {exc}") from exc
            await conn.close()
            return external
        wanted = self._config.postgres_port
        data_dir = self._config.data_dir.resolve() / "postgres"
        running = PostmasterInfo.read(data_dir)
        # A server left running on this data dir (``up`` was killed) is adopted on its port.
        port = running.port if running and pid_alive(running.pid) else first_free_port(wanted)
        self._postgres = LocalPostgres(data_dir, port)
        await self._in_thread(self._postgres.start)
        if self._postgres.port != wanted:
            self._notes.append(f"port {wanted} is busy: PostgreSQL on {self._postgres.port}")
        return self._postgres.dsn()

    async def _service_up(self, spec: ServiceSpec) -> ServiceState:
        """``migrate`` then ``run``, then wait for /healthz; never raises."""
        children = self._children
        assert children is not None
        if not script_path(spec.name).exists():
            return ServiceState(spec, "unavailable", f"{script_path(spec.name)} is not installed")
        timeout = self._config.service_timeout
        migrated = await children.run(spec.name, "migrate", limit=timeout)
        if migrated != 0:
            why = "timed out" if migrated == -1 else f"exited with code {migrated}"
            return ServiceState(
                spec, "unavailable", f"`{spec.name} migrate` {why}: {children.last_line(spec.name)}"
            )
        proc = children.spawn(spec.name, "run")
        deadline = time.monotonic() + timeout
        while True:
            code = proc.poll()
            if code is not None:
                children.reap()
                return ServiceState(
                    spec,
                    "unavailable",
                    f"`{spec.name} run` exited with code {code}: {children.last_line(spec.name)}",
                )
            if await http_ok(spec.port, spec.health_path):
                return ServiceState(spec, "ready")
            if time.monotonic() >= deadline:
                return ServiceState(
                    spec, "starting", f"no answer on {spec.health_url} after {timeout:.0f} s"
                )
            await asyncio.sleep(0.1)

    async def watch(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: report children that exit, services that become ready,
        and a broker or database that dies."""
        waiting = {s.spec.name: s.spec for s in self._services if s.status == "starting"}
        broker_reported = postgres_reported = False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            if self._children is not None:
                for name, code in self._children.reap():
                    waiting.pop(name, None)
                    self._echo(
                        f"{name} exited with code {code}: {self._children.last_line(name)}"
                        " (broker and database keep running)"
                    )
            for name, spec in list(waiting.items()):
                if await http_ok(spec.port, spec.health_path):
                    del waiting[name]
                    self._echo(f"{name} is ready on {spec.health_url}")
            if self._broker is not None and not self._broker.running and not broker_reported:
                broker_reported = True
                self._echo(f"the broker exited unexpectedly; see {self._broker.log_path}")
            if self._postgres is not None and not self._postgres.running and not postgres_reported:
                postgres_reported = True
                self._echo(f"PostgreSQL exited unexpectedly; see {self._postgres.log_path}")

    async def shutdown(self) -> None:
        """Stop services, then the broker, then PostgreSQL; each step runs even if one fails."""
        if self._children is not None:
            self._echo("stopping services ...")
            await self._step(self._children.terminate_all())
        # Start-up work still running in threads (we may have been interrupted) must
        # finish first, or it could start a server after we stopped it.
        await asyncio.to_thread(concurrent.futures.wait, list(self._pending))
        if self._broker is not None:
            self._echo("stopping the broker ...")
            await self._step(asyncio.to_thread(self._broker.stop))
        if self._postgres is not None:
            self._echo("stopping PostgreSQL ...")
            await self._step(asyncio.to_thread(self._postgres.stop))
        self._executor.shutdown(wait=True)

    async def _step(self, work: Awaitable[object]) -> None:
        try:
            await work
        except Exception:
            log.exception("shutdown step failed")


def _lap(phases: dict[str, float], name: str, since: float) -> float:
    """Record the seconds since ``since`` as phase ``name``; return now."""
    now = time.monotonic()
    phases[name] = now - since
    return now


def _stop_signals() -> list[signal.Signals]:
    """SIGINT, SIGTERM, and SIGHUP (the terminal closed) unless it is ignored (``nohup``)."""
    signals = [signal.SIGINT, signal.SIGTERM]
    hangup = getattr(signal, "SIGHUP", None)
    if hangup is not None and signal.getsignal(hangup) is not signal.SIG_IGN:
        signals.append(hangup)
    return signals


def _never_raising(echo: Echo) -> Echo:
    """``echo`` that cannot raise on a gone reader (EPIPE, EIO): shutdown must go on."""

    def say(message: str) -> None:
        try:
            echo(message)
        except OSError as exc:
            log.warning("could not print", extra={"error": str(exc)})

    return say


async def serve(config: StackConfig, began: float, echo: Echo, echo_err: Echo) -> int:
    """Run ``up`` until SIGINT, SIGTERM or SIGHUP; the exit code of the command.

    What it prints can fail (``make run | tee log`` and Ctrl-C ends ``tee`` too):
    that never stops the ordered shutdown.
    """
    echo, echo_err = _never_raising(echo), _never_raising(echo_err)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stop_signals = _stop_signals()
    for sig in stop_signals:
        loop.add_signal_handler(sig, stop.set)
    stack = DevStack(config, echo)
    exit_code = 0
    try:
        starting = asyncio.create_task(stack.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            stopping.cancel()
            info = starting.result()
            echo(render_summary(info, time.monotonic() - began))
            await stack.watch(stop)
        else:
            echo("interrupted during start-up")
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
    except (StackError, OSError, RuntimeError) as exc:
        echo_err(f"error: {exc}")
        exit_code = 1
    finally:
        await stack.shutdown()
        for sig in stop_signals:
            loop.remove_signal_handler(sig)
    echo("stopped")
    return exit_code
