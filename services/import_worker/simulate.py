"""A discovery-agent simulator: realistic ``account.discovered`` events for given customers.

It mixes end-user and administrator accounts from Active Directory, Entra ID
and local directories, and re-reports accounts it already reported at a
chosen rate (agents rescan the same directories all day). Used by the
benchmark, by ``make run``'s demo, and by users trying their own setup.
"""

import asyncio
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from schemas.discovery import ACCOUNT_DISCOVERED, DiscoveredAccount
from schemas.enums import AccountType, Directory
from schemas.envelope import CONTENT_TYPE, CloudEvent, utc_now

FIRST = ("Alex", "Sam", "Jo", "Kim", "Lee", "Max", "Pat", "Ria", "Tom", "Una", "Vic", "Zoe")
LAST = ("Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Clark")


@dataclass(frozen=True)
class Discovery:
    key: bytes
    value: bytes
    account: DiscoveredAccount


class AgentSimulator:
    """Generates discoveries; ``rediscovery_rate`` of them repeat an earlier account."""

    def __init__(
        self,
        partner_id: str,
        customer_ids: Sequence[uuid.UUID],
        *,
        rediscovery_rate: float = 0.9,
        admin_share: float = 0.1,
        seed: int | None = None,
        agent_id: str = "sim-agent-1",
    ) -> None:
        if not customer_ids:
            raise ValueError("at least one customer is needed")
        self.partner_id = partner_id
        self.customer_ids = list(customer_ids)
        self.rediscovery_rate = rediscovery_rate
        self.admin_share = admin_share
        self.random = random.Random(seed)
        self.agent_id = agent_id
        self.seen: list[DiscoveredAccount] = []

    def new_account(self) -> DiscoveredAccount:
        r = self.random
        customer = r.choice(self.customer_ids)
        directory = r.choices(list(Directory), weights=(6, 3, 1))[0]
        admin = r.random() < self.admin_share
        first, last = r.choice(FIRST), r.choice(LAST)
        n = len(self.seen)
        username = f"{'adm-' if admin else ''}{first.lower()}.{last.lower()}{n}"
        external = (
            f"S-1-5-21-{r.randrange(10**9)}-{n}"
            if directory is Directory.LOCAL
            else str(uuid.UUID(int=r.getrandbits(128), version=4))
        )
        return DiscoveredAccount(
            customer_id=customer,
            account_type=AccountType.ADMINISTRATOR if admin else AccountType.END_USER,
            directory=directory,
            external_id=external,
            username=username,
            display_name=f"{first} {last}",
            email=f"{username}@customer{self.customer_ids.index(customer)}.example.com"
            if directory is not Directory.LOCAL
            else None,
            user_principal_name=f"{username}@example.onmicrosoft.com"
            if directory is Directory.ENTRA_ID
            else None,
            agent_id=self.agent_id,
        )

    def next(self) -> Discovery:
        if self.seen and self.random.random() < self.rediscovery_rate:
            account = self.random.choice(self.seen)
        else:
            account = self.new_account()
            self.seen.append(account)
        account = account.model_copy(update={"discovered_at": utc_now()})
        event = CloudEvent[DiscoveredAccount](
            specversion="1.0",
            id=str(uuid.uuid4()),
            source=f"/agents/{self.agent_id}",
            type=ACCOUNT_DISCOVERED,
            time=utc_now(),
            subject=str(account.customer_id),
            partnerid=self.partner_id,
            data=account,
        )
        return Discovery(
            str(account.customer_id).encode(), event.model_dump_json().encode(), account
        )

    def stream(self, count: int) -> Iterator[Discovery]:
        for _ in range(count):
            yield self.next()


async def publish(
    bootstrap: str,
    topic: str,
    discoveries: Iterator[Discovery],
    *,
    rate: float | None = None,
    chunk: int = 500,
) -> int:
    """Send discoveries (optionally at ``rate`` per second); return how many were acked."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, enable_idempotence=False
    )
    await producer.start()
    sent = 0
    started = time.perf_counter()
    try:
        pending = []
        for d in discoveries:
            pending.append(
                await producer.send(
                    topic, d.value, key=d.key, headers=[("content-type", CONTENT_TYPE.encode())]
                )
            )
            sent += 1
            if rate:
                ahead = sent / rate - (time.perf_counter() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if len(pending) >= chunk:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent
