"""Helpers of the policy service integration tests: a served app, an HTTP client, tokens,
tenants (one partner each) and a topic reader that collects CloudEvents."""

import asyncio
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from multidict import CIMultiDictProxy

from services.policy_service.api.auth import issue_token
from services.policy_service.settings import PolicyServiceSettings
from tests import secret_watch

SECRET = "policy-service-integration-tests-" + "0123456789abcdef" * 3  # 80 bytes
# base64 of b"tests-secrets-key-0123456789abcd" (32 bytes): the AES key of credentials.
SECRETS_KEY = "dGVzdHMtc2VjcmV0cy1rZXktMDEyMzQ1Njc4OWFiY2Q="
secret_watch.watch(SECRET, SECRETS_KEY)
WRITERS = ("super", "primary", "manager")
READERS = ("technician", "read_only")
UNKNOWN_ROLE = "auditor"
ROLES = (*WRITERS, *READERS, UNKNOWN_ROLE)
PROBLEM_JSON = "application/problem+json"
_ABSENT: Any = object()
SCHEMA = "policy_service"
MIGRATIONS = "services.policy_service.adapters.migrations"


def settings_for(database_url: str, bootstrap: str, **overrides: Any) -> PolicyServiceSettings:
    """The service's settings for tests: fast relay polling, the tests' JWT secret."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap,
        "auth_jwt_secret": SECRET,
        "secrets_key": SECRETS_KEY,
        "integrations_allow_private": True,
        "relay_poll_interval_seconds": 0.05,
        # Off unless a test needs it: aiokafka's fetcher shuffles with the global
        # random module, which Hypothesis (schemathesis) must not see move under it.
        "results_consumer_enabled": False,
    }
    return PolicyServiceSettings(**(values | overrides))


def token(partner_id: str, role: str = "manager", sub: str | None = None, ttl: int = 600) -> str:
    return issue_token(
        SECRET, sub=sub or f"user-{role}", partner_id=partner_id, role=role, ttl_seconds=ttl
    )


def new_partner() -> str:
    return f"p-{uuid.uuid4().hex[:16]}"


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: Any

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    """``reply`` is an RFC 9457 problem of ``status``; return its body."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.content_type == PROBLEM_JSON, reply.headers
    body = reply.body
    assert isinstance(body, dict), body
    for member in ("type", "title", "status", "detail"):
        assert member in body, body
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def error_fields(problem: dict[str, Any]) -> set[str]:
    return {e["field"] for e in problem.get("errors", [])}


class Api:
    """The service over real HTTP."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def call(
        self,
        method: str,
        path: str,
        *,
        auth: str | None = None,
        json_body: Any = _ABSENT,
        data: bytes | str | io.BytesIO | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = auth
        if json_body is not _ABSENT:
            data = json.dumps(json_body)
            sent.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.base_url + path, data=data, headers=sent
        ) as resp:
            raw = await resp.read()
            ctype = resp.headers.get("Content-Type", "")
            body: Any = json.loads(raw) if raw and "json" in ctype else raw.decode()
            return Reply(resp.status, resp.headers, body)


@dataclass
class Tenant:
    """One partner: tokens for its users and shortcuts for its resources."""

    api: Api
    partner_id: str = field(default_factory=new_partner)

    def auth(self, role: str = "manager", sub: str | None = None) -> str:
        return f"Bearer {token(self.partner_id, role, sub)}"

    async def call(self, method: str, path: str, role: str = "manager", **kw: Any) -> Reply:
        return await self.api.call(method, path, auth=self.auth(role, kw.pop("sub", None)), **kw)

    async def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        reply = await self.call(method, path, **kw)
        assert reply.status == status, (method, path, reply.status, reply.body)
        return reply.body

    async def create_policy(
        self, account_type: str = "end_user", name: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        body = {"account_type": account_type, "name": name or f"policy {uuid.uuid4().hex[:8]}"}
        body.setdefault("options", {})
        body |= fields
        result: dict[str, Any] = await self.ok("POST", "/v1/import-policies", 201, json_body=body)
        return result

    async def add_customer(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"name": name or f"customer {uuid.uuid4().hex[:8]}", **fields}
        result: dict[str, Any] = await self.ok("POST", "/v1/customers", 201, json_body=body)
        return result

    async def policy(self, policy_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.ok("GET", f"/v1/import-policies/{policy_id}")
        return result

    async def customer(self, customer_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.ok("GET", f"/v1/customers/{customer_id}")
        return result

    async def policies(self, account_type: str | None = None) -> list[dict[str, Any]]:
        query = f"?limit=500&account_type={account_type}" if account_type else "?limit=500"
        page = await self.ok("GET", f"/v1/import-policies{query}")
        assert page["next_cursor"] is None
        items: list[dict[str, Any]] = page["items"]
        return items


def discovered(customer_id: str, account_type: str = "end_user", **extra: Any) -> dict[str, Any]:
    """An ``account.discovered`` data object for the preview."""
    return {
        "customer_id": customer_id,
        "account_type": account_type,
        "directory": "active_directory",
        "external_id": str(uuid.uuid4()),
        "username": "jdoe",
        "email": "jdoe@example.com",
        **extra,
    }


@dataclass(frozen=True)
class Event:
    """One record of a topic, its value parsed as a CloudEvent."""

    topic: str
    partition: int
    offset: int
    key: str
    headers: dict[str, bytes]
    envelope: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.envelope["id"])

    @property
    def type(self) -> str:
        return str(self.envelope["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.envelope["data"]
        return data

    @property
    def version(self) -> int:
        return int(self.data["version"])


async def collect_events(
    bootstrap: str,
    topic: str,
    keys: set[str],
    until: Callable[[list[Event]], bool],
    timeout: float = 30.0,
) -> list[Event]:
    """Read ``topic`` from the beginning; the events keyed by ``keys`` once ``until`` holds.

    Every partition is assigned by hand (no consumer group, no join delay).
    """
    deadline = time.monotonic() + timeout
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=5000,
    )
    await consumer.start()
    events: list[Event] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            assert time.monotonic() < deadline, f"topic {topic} never appeared"
            await consumer.topics()  # refreshes the metadata
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await asyncio.sleep(0.1)
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        while not until(events):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"gave up on {topic}; got {[(e.key, e.type) for e in events]}"
            batch = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for tp, records in batch.items():
                for record in records:
                    key = record.key.decode() if record.key else ""
                    if key not in keys:
                        continue
                    events.append(
                        Event(
                            topic=tp.topic,
                            partition=tp.partition,
                            offset=record.offset,
                            key=key,
                            headers=dict(record.headers),
                            envelope=json.loads(record.value),
                        )
                    )
        return events
    finally:
        await consumer.stop()


def versions_by_key(events: list[Event]) -> dict[str, list[int]]:
    """The versions seen per key, in the order they arrived (duplicates by id dropped)."""
    seen: set[str] = set()
    out: dict[str, list[int]] = {}
    for event in events:
        if event.id in seen:
            continue
        seen.add(event.id)
        out.setdefault(event.key, []).append(event.version)
    return out
