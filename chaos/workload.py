"""The load: partners with several policies and customers in the worker's projection, and
``account.discovered`` streams over them (new and rediscovered accounts, both types,
every directory), produced with the offset each event landed at.

Customers and policies are written straight into the worker's projection, as
``bench/worker_bench.py`` and ``test_crash.py`` do: the scenarios of the hot path
test the hot path, and what ``decide`` should say is known up front.
"""

import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.customer import CustomerState
from schemas.discovery import DiscoveredAccount, account_key
from schemas.enums import AccountType
from schemas.policy import PolicyState
from services.decision import CustomerView, Decision, EffectivePolicy, decide
from services.import_worker.adapters.projection import Projection
from services.import_worker.simulate import AgentSimulator, Discovery
from tests.integration.import_worker.events import (
    CT_HEADER,
    admin_options,
    customer,
    end_user_options,
    new_partner,
    policy,
)

Inputs = tuple[CustomerView, dict[AccountType, EffectivePolicy | None]]


@dataclass
class World:
    """What the worker's projection holds: per customer, what ``decide`` needs."""

    partners: list[str] = field(default_factory=list)
    customers: dict[uuid.UUID, Inputs] = field(default_factory=dict)
    by_partner: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    policies: int = 0

    def decide(self, account: DiscoveredAccount) -> Decision:
        view, policies = self.customers[account.customer_id]
        return decide(account, view, policies[account.account_type])


def _effective(p: PolicyState) -> EffectivePolicy:
    return EffectivePolicy(
        id=p.id, version=p.version, account_type=p.account_type, options=p.options
    )


async def seed_world(db: asyncpg.Pool, partners: int = 2) -> World:
    """Per partner: two end-user and two administrator policies, six customers that use
    them in different combinations (one without an end-user policy, one without an
    administrator policy), shared and unshared PSA companies, with and without
    documentation organisations."""
    world = World()
    projection = Projection(db)
    for _ in range(partners):
        partner = new_partner()
        eu_all = policy(partner, AccountType.END_USER, end_user_options())
        eu_lean = policy(
            partner,
            AccountType.END_USER,
            end_user_options(
                psa={"match": True, "create_if_missing": False},
                send_welcome_email=False,
                sync_password_to_m365=False,
            ),
        )
        ad_vault = policy(partner, AccountType.ADMINISTRATOR, admin_options())
        ad_doc = policy(
            partner, AccountType.ADMINISTRATOR, admin_options(save_password_in_vault=False)
        )
        states: list[CustomerState] = [
            customer(partner, end_user=eu_all.id, administrator=ad_vault.id,
                     psa=("connectwise", "A"), documentation=("itglue", "0")),
            customer(partner, end_user=eu_all.id, administrator=ad_doc.id,
                     psa=("connectwise", "S")),
            customer(partner, end_user=eu_lean.id, administrator=ad_vault.id,
                     psa=("connectwise", "S"), documentation=("hudu", "2")),
            customer(partner, end_user=eu_lean.id),
            customer(partner, administrator=ad_doc.id, documentation=("itglue", "4")),
            customer(partner, end_user=eu_all.id, administrator=ad_vault.id,
                     psa=("autotask", "B")),
        ]  # fmt: skip
        policies = {p.id: p for p in (eu_all, eu_lean, ad_vault, ad_doc)}
        for p in policies.values():
            await projection.apply_policy(p)
        for c in states:
            await projection.apply_customer(c)
        psa_users: dict[object, int] = {}
        for c in states:
            if c.psa:
                psa_users[(c.psa.provider, c.psa.company_id)] = (
                    psa_users.get((c.psa.provider, c.psa.company_id), 0) + 1
                )
        world.partners.append(partner)
        world.policies += len(policies)
        world.by_partner[partner] = [c.id for c in states]
        for c in states:
            shared = c.psa is not None and psa_users[(c.psa.provider, c.psa.company_id)] > 1
            view = CustomerView(
                id=c.id,
                partner_id=partner,
                psa=c.psa,
                documentation=c.documentation,
                psa_company_shared=shared,
            )
            assigned = {
                AccountType.END_USER: c.policy_ids.end_user,
                AccountType.ADMINISTRATOR: c.policy_ids.administrator,
            }
            world.customers[c.id] = (
                view,
                {t: _effective(policies[pid]) if pid else None for t, pid in assigned.items()},
            )
    return world


@dataclass
class Sent:
    """One discovery on the bus: its event, account key and where it landed."""

    discovery: Discovery
    partner: str
    event_id: str
    key: str
    partition: int = -1
    offset: int = -1


class Load:
    """Discoveries over a world's partners, interleaved, reproducible from ``seed``."""

    def __init__(
        self, world: World, *, rediscovery: float = 0.5, admin_share: float = 0.2, seed: int = 7
    ) -> None:
        self.random = random.Random(seed)
        self.sims = [
            (
                partner,
                AgentSimulator(
                    partner,
                    world.by_partner[partner],
                    rediscovery_rate=rediscovery,
                    admin_share=admin_share,
                    seed=seed + i,
                    agent_id=f"chaos-agent-{i}",
                ),
            )
            for i, partner in enumerate(world.partners)
        ]

    def next(self) -> Sent:
        partner, sim = self.random.choice(self.sims)
        d = sim.next()
        event_id = json.loads(d.value)["id"]
        return Sent(d, partner, event_id, account_key(partner, d.account))

    def take(self, count: int) -> list[Sent]:
        return [self.next() for _ in range(count)]


async def produce(
    producer: AIOKafkaProducer,
    topic: str,
    sent: Sequence[Sent],
    *,
    rate: float | None = None,
    chunk: int = 1000,
) -> None:
    """Send and wait for the acks (optionally at ``rate`` events/s); fills in the offsets."""
    started = time.perf_counter()
    for i in range(0, len(sent), chunk):
        part = sent[i : i + chunk]
        futures = [
            await producer.send(topic, s.discovery.value, key=s.discovery.key, headers=CT_HEADER)
            for s in part
        ]
        for s, meta in zip(part, await asyncio.gather(*futures), strict=True):
            s.partition, s.offset = meta.partition, meta.offset
        if rate:
            ahead = (i + len(part)) / rate - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)


def end_offsets(sent: Iterable[Sent]) -> dict[int, int]:
    """Per partition, the offset after the last event sent there."""
    end: dict[int, int] = {}
    for s in sent:
        end[s.partition] = max(end.get(s.partition, 0), s.offset + 1)
    return end
