"""Integrations through the HTTP API (docs/contract.md §6): write-only credentials sealed
under SECRETS_KEY, per-provider validation, versions that never go back, events through
the outbox with the credentials as ciphertext only, and the status the handlers report
on ``command.results``."""

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from schemas.ids import command_id
from schemas.integrations import integration_key
from services.infra.secrets import SecretBox
from services.policy_service.settings import PolicyServiceSettings
from tests.served_app import served_policy_service

from .support import (
    SECRETS_KEY,
    Api,
    Tenant,
    assert_problem,
    collect_events,
    error_fields,
    settings_for,
)

SECRET_VALUES = ("cw-private-key-Zq81", "cw-public-key-7Hh2")
PROVIDERS: dict[str, dict[str, Any]] = {
    "connectwise": {
        "base_url": "https://api-na.myconnectwise.example/v4_6_release/apis/3.0",
        "credentials": {
            "company_id": "cw-company-Lm3",
            "public_key": SECRET_VALUES[1],
            "private_key": SECRET_VALUES[0],
            "client_id": "8c5e4d3b-0000-4000-8000-000000000001",
        },
        "settings": {"requests_per_minute": 60},
    },
    "autotask": {
        "base_url": "https://webservices5.autotask.example/atservicesrest",
        "credentials": {
            "username": "at-user-Kx9",
            "secret": "at-secret-Pq4",
            "integration_code": "at-code-W2e",
        },
        "settings": {"requests_per_hour": 10000, "max_concurrency": 3},
    },
    "halo": {
        "base_url": "https://acme.halopsa.example",
        "credentials": {
            "client_id": "halo-client-R5t",
            "client_secret": "halo-secret-Yh7",
            "tenant": "halo-tenant-Uu1",
        },
    },
    "itglue": {
        "base_url": "https://api.itglue.example",
        "credentials": {"api_key": "ITG.itg-key-Ab5"},
        "settings": {"password_category_id": 15},
    },
    "hudu": {
        "base_url": "https://acme.huducloud.example",
        "credentials": {"api_key": "hudu-key-Cd6"},
    },
    "smtp": {
        "base_url": "smtp://mail.example.com:587",
        "credentials": {"username": "", "password": ""},
        "settings": {"from_address": "it@acme.example"},
    },
    "m365": {
        "base_url": "https://graph.microsoft.example/v1.0",
        "credentials": {
            "tenant_id": "m365-tenant-Ef7",
            "client_id": "m365-client-Gh8",
            "client_secret": "m365-secret-Ij9",
        },
    },
}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_configure_read_and_remove_every_provider(tenant: Tenant, provider: str) -> None:
    body = PROVIDERS[provider]
    put = await tenant.call("PUT", f"/v1/integrations/{provider}", json_body=body)
    assert put.status == 200, put.body
    shown = put.body
    assert shown["provider"] == provider
    assert shown["base_url"] == body["base_url"]
    assert shown["settings"] == body.get("settings", {})
    assert shown["enabled"] is True
    assert shown["credentials_set"] is True
    assert shown["credential_fields"] == sorted(body["credentials"])
    assert shown["status"] == {"state": "unknown", "detail": None, "checked_at": None}
    assert shown["version"] == 1
    assert put.headers["ETag"] == '"1"'
    for value in body["credentials"].values():
        if len(value) > 3:
            assert value not in json.dumps(shown)

    assert await tenant.ok("GET", f"/v1/integrations/{provider}") == shown
    listed = await tenant.ok("GET", "/v1/integrations")
    assert listed == {"items": [shown], "next_cursor": None}

    await tenant.ok("DELETE", f"/v1/integrations/{provider}", 204)
    assert_problem(await tenant.call("GET", f"/v1/integrations/{provider}"), 404)
    assert (await tenant.ok("GET", "/v1/integrations"))["items"] == []


async def test_versions_never_go_back_and_credentials_may_be_kept(tenant: Tenant) -> None:
    body = PROVIDERS["hudu"]
    assert (await tenant.ok("PUT", "/v1/integrations/hudu", json_body=body))["version"] == 1
    changed = {"base_url": "https://other.huducloud.example", "enabled": False}
    kept = await tenant.ok("PUT", "/v1/integrations/hudu", json_body=changed)
    assert (kept["version"], kept["enabled"], kept["credential_fields"]) == (2, False, ["api_key"])
    await tenant.ok("DELETE", "/v1/integrations/hudu", 204)  # version 3
    again = await tenant.call("PUT", "/v1/integrations/hudu", json_body=changed)
    problem = assert_problem(again, 422)  # removed: its credentials are gone
    assert error_fields(problem) == {"credentials"}
    back = await tenant.ok("PUT", "/v1/integrations/hudu", json_body=body)
    assert back["version"] == 4


@pytest.mark.parametrize(
    ("provider", "body", "fields"),
    [
        ("connectwise", {"credentials": {"company_id": "a"}}, {
            "credentials.public_key", "credentials.private_key", "credentials.client_id"}),
        ("halo", {"credentials": {"client_id": "c", "client_secret": "s", "pin": "1"}},
         {"credentials.pin"}),
        ("hudu", {"credentials": {"api_key": ""}}, {"credentials.api_key"}),
        ("hudu", {"settings": {"requests_per_minute": "fast"}}, {"settings.requests_per_minute"}),
        ("hudu", {"settings": {"colour": "red"}}, {"settings.colour"}),
        ("itglue", {"settings": {"requests_per_5_minutes": 0}},
         {"settings.requests_per_5_minutes"}),
        ("smtp", {"settings": {}}, {"settings.from_address"}),
        ("smtp", {"base_url": "https://mail.example.com"}, {"base_url"}),
        ("hudu", {"base_url": "ftp://hudu.example"}, {"base_url"}),
        ("hudu", {"base_url": "https://user:pw@hudu.example"}, {"base_url"}),
        ("hudu", {"credentials": {"api_key": 42}}, {"credentials.api_key"}),
    ],
)  # fmt: skip
async def test_bad_integrations_are_422_field_by_field(
    tenant: Tenant, provider: str, body: dict[str, Any], fields: set[str]
) -> None:
    sent = {**PROVIDERS[provider], **body}
    reply = await tenant.call("PUT", f"/v1/integrations/{provider}", json_body=sent)
    problem = assert_problem(reply, 422)
    assert error_fields(problem) == fields
    for value in (sent.get("credentials") or {}).values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in json.dumps(problem)
    assert_problem(await tenant.call("GET", f"/v1/integrations/{provider}"), 404)


async def test_an_unknown_provider_names_nothing(tenant: Tenant) -> None:
    assert_problem(await tenant.call("GET", "/v1/integrations/salesforce"), 404)
    reply = await tenant.call("PUT", "/v1/integrations/salesforce", json_body=PROVIDERS["hudu"])
    assert_problem(reply, 404)


async def test_the_credentials_travel_sealed_and_open_with_the_key(
    tenant: Tenant, kafka_bootstrap: str
) -> None:
    await tenant.ok("PUT", "/v1/integrations/connectwise", json_body=PROVIDERS["connectwise"])
    key = integration_key(tenant.partner_id, "connectwise")
    [event] = await collect_events(kafka_bootstrap, "integration.events", {key}, bool)
    assert event.type == "integration.configured"
    assert event.envelope["subject"] == key
    raw = json.dumps(event.envelope)
    for secret in SECRET_VALUES:
        assert secret not in raw
    data = event.data
    assert set(data) == {
        "partner_id", "provider", "base_url", "settings", "enabled", "version",
        "credentials_ciphertext",
    }  # fmt: skip
    sealed = base64.b64decode(data["credentials_ciphertext"])
    assert len(sealed) > 12 + 16  # nonce, ciphertext, tag
    box = SecretBox.from_setting(SECRETS_KEY)
    assert (
        box.open_json(data["credentials_ciphertext"], key)
        == PROVIDERS["connectwise"]["credentials"]
    )
    other = integration_key("another-partner", "connectwise")
    with pytest.raises(ValueError, match="does not open"):
        box.open_json(data["credentials_ciphertext"], other)  # bound to its own key

    await tenant.ok("DELETE", "/v1/integrations/connectwise", 204)
    events = await collect_events(
        kafka_bootstrap, "integration.events", {key}, lambda got: len(got) >= 2
    )
    removed = events[-1]
    assert removed.type == "integration.removed"
    assert removed.data == {
        "partner_id": tenant.partner_id,
        "provider": "connectwise",
        "version": 2,
    }


async def test_readers_read_and_only_writers_write(tenant: Tenant) -> None:
    await tenant.ok("PUT", "/v1/integrations/halo", json_body=PROVIDERS["halo"])
    for role in ("technician", "read_only"):
        got = await tenant.call("GET", "/v1/integrations/halo", role=role)
        assert got.status == 200
        assert_problem(
            await tenant.call(
                "PUT", "/v1/integrations/halo", role=role, json_body=PROVIDERS["halo"]
            ),
            403,
        )
        assert_problem(await tenant.call("DELETE", "/v1/integrations/halo", role=role), 403)
        assert_problem(await tenant.call("DELETE", "/v1/integrations/hudu", role=role), 404)


# -------------------------------------------------------------- status from results


def _result(
    partner: str, provider: str, type_: str, when: datetime, **fields: Any
) -> dict[str, Any]:
    key = f"{partner}:{uuid.uuid4()}:active_directory:ext-1"
    command = str(command_id(key, "psa.contact.link"))
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/handlers",
        "type": type_,
        "time": when.isoformat(),
        "subject": key,
        "datacontenttype": "application/json",
        "partnerid": partner,
        "causationid": command,
        "correlationid": command,
        "data": {
            "command_id": command,
            "command_type": "psa.contact.link",
            "account_key": key,
            "customer_id": str(uuid.uuid4()),
            "provider": provider,
            "refs": [],
            "detail": fields.pop("detail", ""),
            "attempts": 1,
            "finished_at": when.isoformat(),
            **fields,
        },
    }


@pytest.fixture(scope="module")
def consuming_url(policy_database: str, kafka_bootstrap: str) -> Iterator[str]:
    """A service that consumes command.results (and has no relay of its own)."""
    settings = settings_for(
        policy_database, kafka_bootstrap, relay_enabled=False, results_consumer_enabled=True
    )
    with served_policy_service(settings) as url:
        yield url


async def test_the_handlers_reports_set_the_status(
    http: aiohttp.ClientSession, consuming_url: str, kafka_bootstrap: str
) -> None:
    tenant = Tenant(Api(http, consuming_url))
    await tenant.ok("PUT", "/v1/integrations/halo", json_body=PROVIDERS["halo"])
    now = datetime.now(UTC) + timedelta(seconds=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()

    async def report(value: dict[str, Any]) -> None:
        await producer.send_and_wait(
            "command.results", json.dumps(value).encode(), key=value["subject"].encode()
        )

    async def status() -> dict[str, Any]:
        state: dict[str, Any] = (await tenant.ok("GET", "/v1/integrations/halo"))["status"]
        return state

    try:
        refused = "401 Unauthorized: invalid_client"
        await report(
            _result(tenant.partner_id, "halo", "command.failed", now,
                    reason="integration_auth", detail=refused)
        )  # fmt: skip
        await _until(lambda s: s["state"] == "failing", status)
        assert (await status())["detail"] == refused
        await report({"type": "garbage", "subject": "x"})  # not a result: skipped, counted
        await report(  # an older report does not win
            _result(tenant.partner_id, "halo", "command.succeeded", now - timedelta(seconds=1),
                    outcome="matched")
        )  # fmt: skip
        await report(
            _result(tenant.partner_id, "halo", "command.succeeded", now + timedelta(seconds=1),
                    outcome="created")
        )  # fmt: skip
        await _until(lambda s: s["state"] == "ok", status)
        ok = await status()
        assert ok["detail"] is None
        assert ok["checked_at"] is not None
    finally:
        await producer.stop()


async def _until(check: Any, read: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check(await read()):
        assert time.monotonic() < deadline, await read()
        await asyncio.sleep(0.1)


# -------------------------------------------------------------- public addresses only


@pytest.fixture(scope="module")
def strict_url(policy_database: str, kafka_bootstrap: str) -> Iterator[str]:
    """A service without INTEGRATIONS_ALLOW_PRIVATE (and without a relay or consumer)."""
    settings: PolicyServiceSettings = settings_for(
        policy_database,
        kafka_bootstrap,
        integrations_allow_private=False,
        relay_enabled=False,
        results_consumer_enabled=False,
    )
    with served_policy_service(settings) as url:
        yield url


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("http://93.184.216.34", "must be https"),
        ("https://127.0.0.1", "loopback"),
        ("https://10.1.2.3/api", "private"),
        ("https://169.254.169.254", "link-local"),
        ("https://[::1]:8443", "loopback"),
        ("https://100.64.0.9", "private"),
        ("https://nowhere.invalid", "does not resolve"),
    ],
)
async def test_without_the_dev_switch_only_public_https_is_accepted(
    http: aiohttp.ClientSession, strict_url: str, base_url: str, why: str
) -> None:
    tenant = Tenant(Api(http, strict_url))
    body = {**PROVIDERS["hudu"], "base_url": base_url}
    problem = assert_problem(await tenant.call("PUT", "/v1/integrations/hudu", json_body=body), 422)
    assert error_fields(problem) == {"base_url"}
    detail = " ".join(e["detail"] for e in problem["errors"])
    assert why.split()[0] in detail or why in detail, detail


async def test_without_the_dev_switch_a_public_address_is_accepted(
    http: aiohttp.ClientSession, strict_url: str
) -> None:
    tenant = Tenant(Api(http, strict_url))
    body = {**PROVIDERS["hudu"], "base_url": "https://93.184.216.34"}
    assert (await tenant.ok("PUT", "/v1/integrations/hudu", json_body=body))["version"] == 1


async def test_no_secret_reaches_a_log_line(
    tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await tenant.ok("PUT", "/v1/integrations/connectwise", json_body=PROVIDERS["connectwise"])
    bad = {**PROVIDERS["connectwise"], "credentials": {"private_key": SECRET_VALUES[0]}}
    await tenant.call("PUT", "/v1/integrations/connectwise", json_body=bad)
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert logged  # the access log did run
    for secret in SECRET_VALUES:
        assert secret not in logged
