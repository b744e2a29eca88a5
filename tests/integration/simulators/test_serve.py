"""Every simulator on one server: the demo data, and ``python -m tests.simulators``."""

import asyncio
import base64
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services.policy_service.devseed import CUSTOMERS
from tests.simulators import MOUNTS, ServedSimulators, serve_all
from tests.simulators.demo import (
    AUTOTASK_COMPANIES,
    CW_COMPANIES,
    DEMO_CREDENTIALS,
    HALO_CLIENTS,
    HUDU_COMPANIES,
    ITGLUE_ORGANIZATIONS,
    build_demo_sims,
    matched_usernames,
    seed_demo,
)

REPO = Path(__file__).resolve().parents[3]


def cw_headers() -> dict[str, str]:
    creds = DEMO_CREDENTIALS["connectwise"]
    user = f"{creds['company_id']}+{creds['public_key']}:{creds['private_key']}"
    return {
        "Authorization": "Basic " + base64.b64encode(user.encode()).decode(),
        "clientId": creds["client_id"],
    }


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest.fixture
async def served() -> AsyncIterator[ServedSimulators]:
    sims = build_demo_sims()
    seed_demo(sims)
    server = await serve_all(sims)
    try:
        yield server
    finally:
        await server.close()


def test_the_demo_matches_the_demo_customers_of_the_dev_stack() -> None:
    psa: dict[str, set[int]] = {}
    docs: dict[str, set[int]] = {}
    for customer in CUSTOMERS:
        if "psa" in customer:
            psa.setdefault(customer["psa"]["provider"], set()).add(
                int(customer["psa"]["company_id"])
            )
        if "documentation" in customer:
            mapping = customer["documentation"]
            docs.setdefault(mapping["provider"], set()).add(int(mapping["organization_id"]))
    assert psa == {
        "connectwise": set(CW_COMPANIES),
        "autotask": set(AUTOTASK_COMPANIES),
        "halo": set(HALO_CLIENTS),
    }
    assert docs == {"itglue": set(ITGLUE_ORGANIZATIONS), "hudu": set(HUDU_COMPANIES)}


async def test_serve_all_mounts_every_vendor_with_the_demo_data(
    served: ServedSimulators, http: aiohttp.ClientSession
) -> None:
    urls = served.urls
    health = await (await http.get(served.origin + "/healthz")).json()
    assert health["base_urls"] == urls
    assert urls["connectwise"].endswith(MOUNTS["connectwise"])

    contacts = await http.get(
        urls["connectwise"] + "/company/contacts",
        params={"conditions": 'company/id=1001 AND firstName="Alex" AND lastName="Smith"'},
        headers=cw_headers(),
    )
    assert len(await contacts.json()) == 1
    company = await http.get(urls["connectwise"] + "/company/companies/3003", headers=cw_headers())
    assert (await company.json())["name"] == "Northwind Traders"

    at = DEMO_CREDENTIALS["autotask"]
    zone = await (
        await http.get(urls["autotask"] + "/V1.0/zoneInformation", params={"user": at["username"]})
    ).json()
    assert zone["url"] == urls["autotask"] + "/"
    at_headers = {
        "ApiIntegrationCode": at["integration_code"],
        "UserName": at["username"],
        "Secret": at["secret"],
    }
    fabrikam = await http.get(zone["url"] + "V1.0/Companies/20417", headers=at_headers)
    assert (await fabrikam.json())["item"]["companyName"] == "Fabrikam Inc"

    halo = DEMO_CREDENTIALS["halo"]
    token = await http.post(
        urls["halo"] + "/auth/token",
        params={"tenant": halo["tenant"]},
        data={
            "grant_type": "client_credentials",
            "client_id": halo["client_id"],
            "client_secret": halo["client_secret"],
            "scope": "all",
        },
    )
    halo_auth = {"Authorization": "Bearer " + (await token.json())["access_token"]}
    users = await http.get(
        urls["halo"] + "/api/Users", params={"client_id": "88"}, headers=halo_auth
    )
    assert (await users.json())["record_count"] > 0

    itg = {"x-api-key": DEMO_CREDENTIALS["itglue"]["api_key"]}
    listing = await http.get(
        urls["itglue"] + "/organizations/50233/relationships/passwords",
        params={"page[size]": "1000"},
        headers=itg,
    )
    usernames = {d["attributes"]["username"] for d in (await listing.json())["data"]}
    assert set(matched_usernames()) <= usernames

    hudu = {"x-api-key": DEMO_CREDENTIALS["hudu"]["api_key"]}
    passwords = await http.get(
        urls["hudu"] + "/api/v1/asset_passwords",
        params={"company_id": "91", "name": "alex.smith0 (AD)"},
        headers=hudu,
    )
    assert [p["username"] for p in (await passwords.json())["asset_passwords"]] == ["alex.smith0"]

    m365 = DEMO_CREDENTIALS["m365"]
    graph_token = await http.post(
        urls["m365_token_url"],
        data={
            "client_id": m365["client_id"],
            "client_secret": m365["client_secret"],
            "scope": "https://graph.microsoft.com/.default",
            "grant_type": "client_credentials",
        },
    )
    graph_auth = {"Authorization": "Bearer " + (await graph_token.json())["access_token"]}
    user = await http.get(
        urls["m365"] + "/users/alex.smith0@customer1.example.com",
        params={"$select": "onPremisesSyncEnabled"},
        headers=graph_auth,
    )
    assert (await user.json())["onPremisesSyncEnabled"] is True


async def read_ready_line(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert line, "the simulators exited before printing their ready line"
    ready: dict[str, Any] = json.loads(line)
    return ready


async def test_the_cli_prints_its_urls_serves_and_stops_on_sigterm(
    http: aiohttp.ClientSession,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.simulators",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = await read_ready_line(proc)
        assert ready["ready"] is True
        assert ready["port"] > 0
        urls = ready["base_urls"]
        assert urls["connectwise"] == f"http://127.0.0.1:{ready['port']}{MOUNTS['connectwise']}"
        assert set(urls) >= {"connectwise", "autotask", "halo", "itglue", "hudu", "graph", "m365"}
        company = await http.get(
            urls["connectwise"] + "/company/companies/1001", headers=cw_headers()
        )
        assert (await company.json())["name"] == "Contoso Ltd"
        state = await (await http.get(ready["admin"]["hudu"] + "/state")).json()
        assert {c["id"] for c in state["companies"]} == set(HUDU_COMPANIES)
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, stderr.decode()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.communicate()
