"""The handlers as a real subprocess (``handlers run``) with topics, groups and a port of their
own, the vendors' simulators served by the test process on loopback, and a bus to give
them integrations, commands and password changes and to read back their results."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

from schemas.commands import Command, DocumentationPasswordLink, PsaContactLink
from schemas.discovery import DiscoveredAccount, account_key
from schemas.enums import AccountType, Directory, DocumentationProvider, PsaProvider
from schemas.envelope import CONTENT_TYPE, utc_now
from schemas.ids import command_id
from schemas.integrations import integration_key
from schemas.topics import CHANNELS
from services.handlers.settings import HandlersSettings
from services.infra.devstack.net import free_port
from services.infra.kafka_admin import ensure_topics
from services.infra.secrets import SecretBox
from tests import secret_watch
from tests.integration.import_worker.support import Out, Reader
from tests.integration.import_worker.worker import BIN, FAST_GROUP, PARTITIONS, unique_topics
from tests.integration.policy_service.support import SECRETS_KEY
from tests.simulators.base import VendorSim

BOX = SecretBox.from_setting(SECRETS_KEY)
C = TypeVar("C", bound=Command)


@dataclass
class Handlers:
    """A ``handlers run`` subprocess."""

    bootstrap: str
    database_url: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.topics = unique_topics(self.suffix)
        self.group = f"handlers-test-{self.suffix}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        ours = {name.upper() for name in HandlersSettings.model_fields}
        env = {k: v for k, v in os.environ.items() if k not in ours and not k.startswith("TOPIC_")}
        env.update(FAST_GROUP)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "DATABASE_URL": self.database_url,
                "SECRETS_KEY": SECRETS_KEY,
                "INTEGRATIONS_ALLOW_PRIVATE": "true",
                "HANDLERS_HTTP_PORT": str(self.port),
                "HANDLERS_GROUP_ID": self.group,
                "TOPIC_PARTITIONS": str(PARTITIONS),
                "VENDOR_GIVE_UP_SECONDS": "20",
                "VENDOR_BACKOFF_MAX_SECONDS": "1",
                "COMMIT_INTERVAL_SECONDS": "0.2",
                "LOG_LEVEL": "WARNING",
            }
        )
        env.update({f"TOPIC_{name.upper()}": getattr(self.topics, name) for name in CHANNELS})
        env.update(self.extra_env)
        return env

    async def create_topics(self) -> None:
        await ensure_topics(self.bootstrap, self.topics.all_topics(), PARTITIONS)

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with (self.log_dir / f"handlers-{self.suffix}-{self.starts}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "handlers"), "run"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.log_dir,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        logs = sorted(self.log_dir.glob(f"handlers-{self.suffix}-*.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def ready(self, http: aiohttp.ClientSession, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.alive(), f"the handlers exited:\n{self.log_tail()}"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(self.base_url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            assert time.monotonic() < deadline, f"never ready:\n{self.log_tail()}"
            await asyncio.sleep(0.1)

    async def metric(self, http: aiohttp.ClientSession, sample: str) -> float:
        async with http.get(self.base_url + "/metrics") as resp:
            text = await resp.text()
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name == sample:
                return float(value)
        return 0.0

    async def metric_reaches(
        self, http: aiohttp.ClientSession, sample: str, at_least: float, timeout: float = 10.0
    ) -> float:
        """The sample once it reaches ``at_least``: counters move just after what they count."""
        deadline = time.monotonic() + timeout
        value = await self.metric(http, sample)
        while value < at_least and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            value = await self.metric(http, sample)
        return value


class Served:
    """Simulators mounted on one loopback server of the test's own loop."""

    def __init__(self, sims: dict[str, VendorSim], mounts: dict[str, str]) -> None:
        self.sims = sims
        self.mounts = mounts
        self.runner: web.AppRunner | None = None
        self.origin = ""

    async def start(self) -> "Served":
        root = web.Application()
        for name, sim in self.sims.items():
            root.add_subapp(self.mounts[name], sim.app)
        self.runner = web.AppRunner(root, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.origin = f"http://{host}:{port}"
        return self

    def url(self, name: str) -> str:
        return self.origin + self.mounts[name]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class Bus:
    """Integrations, commands and password changes in; results and dead letters out."""

    def __init__(self, producer: AIOKafkaProducer, handlers: Handlers, reader: Reader) -> None:
        self.producer = producer
        self.topics = handlers.topics
        self.reader = reader

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        await self.producer.send_and_wait(
            topic, value, key=key.encode(), headers=[("content-type", CONTENT_TYPE.encode())]
        )

    async def integration(
        self,
        partner: str,
        provider: str,
        base_url: str,
        credentials: dict[str, Any],
        settings: dict[str, Any] | None = None,
        version: int = 1,
        enabled: bool = True,
    ) -> None:
        key = integration_key(partner, provider)
        secret_watch.watch_credentials(credentials)
        envelope = _envelope(
            "integration.configured",
            key,
            partner,
            {
                "partner_id": partner,
                "provider": provider,
                "base_url": base_url,
                "settings": settings or {},
                "enabled": enabled,
                "version": version,
                "credentials_ciphertext": BOX.seal_json(credentials, key),
            },
        )
        await self._send(self.topics.integration_events, key, json.dumps(envelope).encode())

    async def command(
        self, partner: str, command: Command, correlation: str = "c-1", cid: str | None = None
    ) -> str:
        cid = cid or str(command_id(command.account.key, command.TYPE))
        envelope = _envelope(
            command.TYPE, command.account.key, partner, command.model_dump(mode="json"), cid
        )
        envelope |= {"causationid": str(uuid.uuid4()), "correlationid": correlation}
        await self._send(
            self.topics.channel(command.CHANNEL), command.account.key, json.dumps(envelope).encode()
        )
        return cid

    async def raw(self, topic: str, key: str, value: bytes) -> None:
        await self._send(topic, key, value)

    async def password(
        self,
        partner: str,
        key: str,
        customer: uuid.UUID,
        password: str,
        *,
        sealed: str | None = None,
        changed_at: datetime | None = None,
        change: str | None = None,
        changed_by: str = "technician",
    ) -> str:
        change = change or str(uuid.uuid4())
        secret_watch.watch(password)
        envelope = _envelope(
            "account.password.changed",
            key,
            partner,
            {
                "account_key": key,
                "customer_id": str(customer),
                "changed_at": (changed_at or utc_now()).isoformat(),
                "changed_by": changed_by,
                "password_ciphertext": sealed or BOX.seal(password.encode(), key),
            },
            change,
        )
        await self._send(self.topics.account_passwords, key, json.dumps(envelope).encode())
        return change

    def results(self, cid: str) -> list[Out]:
        return [
            r
            for r in self.reader.records
            if r.topic == self.topics.command_results and r.envelope["data"]["command_id"] == cid
        ]

    async def result(
        self, cid: str, when: Callable[[list[Out]], bool] = bool, timeout: float = 30
    ) -> list[Out]:
        return await self.reader.wait_for(
            lambda _: (found := self.results(cid)) and when(found) and found,
            f"results of {cid}",
            timeout,
        )


def _envelope(
    type_: str, subject: str, partner: str, data: dict[str, Any], event_id: str | None = None
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "/tests",
        "type": type_,
        "time": utc_now().isoformat(),
        "subject": subject,
        "datacontenttype": "application/json",
        "partnerid": partner,
        "data": data,
    }


def account(
    partner: str,
    customer: uuid.UUID | None = None,
    *,
    account_type: AccountType = AccountType.END_USER,
    **fields: Any,
) -> dict[str, Any]:
    """A command's ``account``: the discovered fields and the key."""
    data = {
        "customer_id": customer or uuid.uuid4(),
        "account_type": account_type,
        "directory": Directory.ACTIVE_DIRECTORY,
        "external_id": str(uuid.uuid4()),
        "username": f"user{uuid.uuid4().hex[:6]}",
        **fields,
    }
    discovered = DiscoveredAccount.model_validate(data)
    return {**discovered.model_dump(mode="json"), "key": account_key(partner, discovered)}


def psa_link(
    partner: str, provider: str, company: str, create: bool = True, **fields: Any
) -> PsaContactLink:
    return PsaContactLink.model_validate(
        {
            "account": account(partner, **fields),
            "policy_id": uuid.uuid4(),
            "policy_version": 1,
            "provider": PsaProvider(provider),
            "company_id": company,
            "create_if_missing": create,
        }
    )


def doc_link(
    partner: str, provider: str, organization: str, create: bool = True, **fields: Any
) -> DocumentationPasswordLink:
    return DocumentationPasswordLink.model_validate(
        {
            "account": account(partner, **fields),
            "policy_id": uuid.uuid4(),
            "policy_version": 1,
            "provider": DocumentationProvider(provider),
            "organization_id": organization,
            "create_if_missing": create,
        }
    )


def command(model: type[C], partner: str, **fields: Any) -> C:
    """A command of ``model`` (one without options of its own) for a fresh account."""
    return model.model_validate(
        {"account": account(partner, **fields), "policy_id": uuid.uuid4(), "policy_version": 1}
    )


def reader_topics(handlers: Handlers) -> list[str]:
    return [
        handlers.topics.command_results,
        handlers.topics.commands_dlq,
        handlers.topics.agent_requests,
    ]
