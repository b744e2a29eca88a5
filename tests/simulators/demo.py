"""Demo credentials and data: the vendors as the dev stack's demo partner sees them.

The companies, clients and organisations are the PSA company ids and
documentation organisation ids of the demo customers in
``services/policy_service/devseed.py``. The records are chosen so that both
"matched" and "created" happen for the accounts ``import-worker simulate``
invents (``services/import_worker/simulate.py``: display names from its
``FIRST`` x ``LAST`` lists, usernames ``first.last<n>`` with ``n`` the count of
accounts invented before, ``adm-`` for administrators, emails
``<username>@customer<i>.example.com``):

- PSA contacts: every second ``FIRST`` x ``LAST`` name in each mapped company,
  with an address of the company's own domain. An account with an email never
  matches them (created); a local account (no email, no UPN) is matched by
  display name about half the time (matched) and created otherwise.
- Documentation passwords: entries with the usernames of the first
  :data:`MATCHED_ACCOUNTS` accounts a simulation invents (every name
  combination, end user and administrator) in each mapped organisation, so
  those are matched and later ones are created.
- Graph: users appear on first lookup by UPN (``autoprovision``); those of
  ``customer1.example.com`` are synced from on-premises (M365 sync: skipped),
  all others are cloud-only.

:data:`DEMO_CREDENTIALS` uses the credential field names of the integrations
API, so the dev stack can PUT them as they are.
"""

import ast
import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .autotask import AutotaskSim
from .base import VendorSim
from .connectwise import ConnectWiseSim
from .graph import GraphSim
from .halo import HaloSim
from .hudu import HuduSim
from .itglue import ITGlueSim

DEMO_CREDENTIALS: dict[str, dict[str, Any]] = {
    "connectwise": {
        "company_id": "demo",
        "public_key": "demoPublicKey01",
        "private_key": "demoPrivateKey01",
        "client_id": "3f1c9a52-7d4e-4b8a-9c61-0d2e5f7a8b90",
    },
    "autotask": {
        "username": "demo-api@example.com",
        "secret": "demo-autotask-secret",
        "integration_code": "DEMOTRACKINGIDENTIFIER0001",
    },
    "halo": {
        "client_id": "demo-halo-client",
        "client_secret": "demo-halo-secret",
        "tenant": "demo",
    },
    "itglue": {"api_key": "ITG.demo0123456789abcdef0123456789abcdef"},
    "hudu": {"api_key": "demo-hudu-api-key"},
    "m365": {
        "tenant_id": "6d2f1c7e-3b5a-4e8f-9a1d-2c4b6e8f0a13",
        "client_id": "a7e3c1d9-5b2f-4f6a-8e0c-9d1b3f5a7c24",
        "client_secret": "demo-graph-secret",
    },
}
DEMO_SETTINGS: dict[str, dict[str, Any]] = {
    "itglue": {"password_category_id": 15},
    # The simulator's AccountKey custom field: contacts created by the handlers carry it.
    "connectwise": {"marker_custom_field_id": 7},
}

CW_COMPANIES = {1001: ("Contoso Ltd", "Contoso"), 3003: ("Northwind Traders", "Northwind")}
AUTOTASK_COMPANIES = {20417: "Fabrikam Inc"}
HALO_CLIENTS = {88: "Tailspin Toys"}
ITGLUE_ORGANIZATIONS = {50101: "Contoso Ltd", 50233: "Northwind Traders"}
HUDU_COMPANIES = {77: "Fabrikam Inc", 91: "Tailspin Toys"}
MATCHED_ACCOUNTS = 3
SIMULATE_MODULE = "services.import_worker.simulate"
AUTOPROVISION = {
    "customer1.example.com": True,
    "example.com": False,
    "example.onmicrosoft.com": False,
}


def _names() -> tuple[Sequence[str], Sequence[str]]:
    """``FIRST`` and ``LAST`` of the account simulator, read from its source.

    Read rather than imported: importing it pulls in the broker client and the
    schemas, which would double the simulators' start-up time for two tuples.
    """
    spec = importlib.util.find_spec(SIMULATE_MODULE)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{SIMULATE_MODULE} is not importable from here")
    tree = ast.parse(Path(spec.origin).read_text("utf-8"))
    found: dict[str, Sequence[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("FIRST", "LAST"):
                found[target.id] = ast.literal_eval(node.value)
    return found["FIRST"], found["LAST"]


def contact_names() -> list[tuple[str, str]]:
    """Every second (first, last) combination of the account simulator."""
    first, last = _names()
    return [
        (f, lname) for i, f in enumerate(first) for j, lname in enumerate(last) if (i + j) % 2 == 0
    ]


def matched_usernames() -> list[str]:
    """The usernames the first :data:`MATCHED_ACCOUNTS` simulated accounts can have."""
    first, last = _names()
    return [
        f"{prefix}{f.lower()}.{lname.lower()}{n}"
        for n in range(MATCHED_ACCOUNTS)
        for prefix in ("", "adm-")
        for f in first
        for lname in last
    ]


def _domain(name: str) -> str:
    return name.split()[0].lower() + ".example.net"


def build_demo_sims(**options: Any) -> dict[str, VendorSim]:
    """One simulator per vendor with the demo credentials (``options`` go to each)."""
    creds = DEMO_CREDENTIALS
    return {
        "connectwise": ConnectWiseSim(**creds["connectwise"], **options),
        "autotask": AutotaskSim(**creds["autotask"], **options),
        "halo": HaloSim(**creds["halo"], **options),
        "itglue": ITGlueSim(**creds["itglue"], **options),
        "hudu": HuduSim(**creds["hudu"], **options),
        "graph": GraphSim(**creds["m365"], autoprovision=AUTOPROVISION, **options),
    }


def seed_demo(sims: Mapping[str, VendorSim]) -> dict[str, int]:
    """Fill the simulators with the demo data; returns how many records each got."""
    counts: dict[str, int] = {}
    names = contact_names()
    usernames = matched_usernames()

    cw = sims["connectwise"]
    assert isinstance(cw, ConnectWiseSim)
    for company_id, (name, identifier) in CW_COMPANIES.items():
        cw.add_company(company_id, name, identifier)
        for first, last in names:
            cw.add_contact(
                first,
                last,
                company_id=company_id,
                email=f"{first}.{last}@{_domain(name)}".lower(),
            )
    counts["connectwise"] = len(cw.contacts)

    at = sims["autotask"]
    assert isinstance(at, AutotaskSim)
    for company_id, name in AUTOTASK_COMPANIES.items():
        at.add_company(company_id, name)
        for first, last in names:
            at.add_contact(
                company_id,
                firstName=first,
                lastName=last,
                emailAddress=f"{first}.{last}@{_domain(name)}".lower(),
            )
    counts["autotask"] = len(at.contacts)

    halo = sims["halo"]
    assert isinstance(halo, HaloSim)
    for client_id, name in HALO_CLIENTS.items():
        halo.add_client(client_id, name)
        for first, last in names:
            halo.add_user(
                client_id=client_id,
                firstname=first,
                surname=last,
                emailaddress=f"{first}.{last}@{_domain(name)}".lower(),
            )
    counts["halo"] = len(halo.users)

    itg = sims["itglue"]
    assert isinstance(itg, ITGlueSim)
    for org_id, name in ITGLUE_ORGANIZATIONS.items():
        itg.add_organization(org_id, name)
        itg.add_password(org_id, name="Wi-Fi (guest)", password="Guest-Wifi-2024!")
        for username in usernames:
            itg.add_password(
                org_id,
                name=f"{username} (AD)",
                username=username,
                password="Demo-Passw0rd!",
                password_category_id=15,
            )
    counts["itglue"] = len(itg.passwords)

    hudu = sims["hudu"]
    assert isinstance(hudu, HuduSim)
    for company_id, name in HUDU_COMPANIES.items():
        hudu.add_company(company_id, name)
        hudu.add_password(company_id=company_id, name="Wi-Fi (guest)", password="Guest-Wifi-2024!")
        for username in usernames:
            hudu.add_password(
                company_id=company_id,
                name=f"{username} (AD)",
                username=username,
                password="Demo-Passw0rd!",
            )
    counts["hudu"] = len(hudu.passwords)

    graph = sims["graph"]
    assert isinstance(graph, GraphSim)
    graph.add_user("it.admin@example.onmicrosoft.com", display_name="IT Admin")
    counts["graph"] = len(graph.users)
    return counts
