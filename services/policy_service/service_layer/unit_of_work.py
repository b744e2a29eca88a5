"""One write = one PostgreSQL transaction holding the change and its events.

Handlers change rows and say which aggregates they touched; on commit the
unit of work bumps each touched aggregate's version once, reads its full
state (unless it is known: a change of a policy's fields alone), and appends
one event per aggregate to the outbox, all in the same transaction (the
transactional outbox). Nothing reaches Kafka from here: the
relay publishes what committed.
"""

import logging
import uuid
from datetime import datetime
from types import TracebackType
from typing import Self

import asyncpg

from schemas.customer import CustomerRemoved
from schemas.enums import AccountType
from schemas.envelope import utc_now
from schemas.options import AdministratorOptions, EndUserOptions
from schemas.policy import PolicyDeleted, PolicyState
from schemas.topics import TopicNames
from services.policy_service.adapters.repository import PolicyFields, Repository
from services.policy_service.domain import events
from services.policy_service.domain.auth import Principal

log = logging.getLogger(__name__)


class UnitOfWork:
    """A transaction on one pooled connection, scoped to one principal's partner."""

    def __init__(self, pool: asyncpg.Pool, topics: TopicNames, principal: Principal) -> None:
        self._pool = pool
        self._topics = topics
        self.principal = principal
        self._conn: asyncpg.Connection | None = None
        self._open = False  # a transaction was begun on the connection
        self._created_policies: set[uuid.UUID] = set()
        self._touched_policies: set[uuid.UUID] = set()
        self._bumped_policies: set[uuid.UUID] = set()  # versioned by the change itself
        self._fields: PolicyFields | None = None  # a policy's fields, written at commit
        # The state they leave, while nothing else of that policy changed: then
        # commit writes them with the change's events and does not read it.
        self._fields_state: PolicyState | None = None
        # PostgreSQL's now() in this transaction, when read (with the policy changed).
        self.transaction_time: datetime | None = None
        self._created_customers: set[uuid.UUID] = set()
        self._touched_customers: set[uuid.UUID] = set()
        # Events whose state is known when the change is made (removals, integrations).
        self._deleted: list[events.OutgoingEvent] = []
        self._audit: list[tuple[str, str, str, str, uuid.UUID, int]] = []
        self._committed = False
        # The policies' states as committed (and published): what the caller answers.
        self.committed_policies: dict[uuid.UUID, PolicyState] = {}

    @property
    def repo(self) -> Repository:
        if self._conn is None:
            raise RuntimeError("unit of work not started")
        return Repository(self._conn)

    async def __aenter__(self) -> Self:
        self._conn = await self._pool.acquire()
        try:
            self._open = True
            await self.repo.begin_locked(self.principal.partner_id)
        except BaseException:
            # ``async with`` calls no __aexit__ when __aenter__ fails: give the
            # connection back here, or every such failure leaks one from the pool.
            await self._end()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._end()

    async def _end(self) -> None:
        """Roll back unless committed, and return the connection to the pool.

        A connection that cannot even roll back (PostgreSQL went away mid
        transaction) is terminated, so the pool replaces it rather than handing
        out a broken one; the error that brought us here is the one raised.
        """
        conn, self._conn = self._conn, None
        began, self._open = self._open, False
        if conn is None:
            return
        try:
            if began and not self._committed and conn.is_in_transaction():
                await conn.execute("ROLLBACK")
        except Exception:
            conn.terminate()
        try:
            await self._pool.release(conn)
        except Exception:
            # The pool terminated it (a failed reset) and will open another; what
            # was committed stays committed, so the caller must not see this.
            log.warning("dropped a broken connection from the pool", exc_info=True)

    # -- what changed -------------------------------------------------------

    def policy_created(self, policy_id: uuid.UUID) -> None:
        self._created_policies.add(policy_id)

    def policies_changed(self, ids: list[uuid.UUID] | set[uuid.UUID]) -> None:
        self._touched_policies.update(ids)
        if self._fields_state is not None and self._fields_state.id in ids:
            self._fields_state = None  # changed since: read it at commit

    def policy_fields_changed(
        self,
        current: PolicyState,
        *,
        name: str,
        description: str,
        options: EndUserOptions | AdministratorOptions,
    ) -> None:
        """New name, description and options for ``current``, written at commit.

        The state they leave is known here (the version is one more, the time
        is the transaction's, read with ``current``). If nothing else of the
        policy changes in this unit of work, commit writes them in the
        statement that records the change: a ``PATCH`` of a policy's fields
        costs the lock, the read, that one statement and the commit. Otherwise
        (the policy changed before or after this) they are written first, and
        the state is read after everything else.
        """
        if self._fields is not None:
            raise RuntimeError("one change of a policy's fields per unit of work")
        if self.transaction_time is None:
            raise RuntimeError("the transaction's time was not read with the policy")
        at = self.transaction_time  # PostgreSQL's now(), as every other change is stamped
        changed_before = current.id in self._touched_policies | self._created_policies
        self._fields = PolicyFields(
            policy_id=current.id,
            name=name,
            description=description,
            options=options,
            actor=self.principal.sub,
            at=at,
            version=current.version,
        )
        self._touched_policies.add(current.id)
        self._bumped_policies.add(current.id)  # versioned by that statement itself
        if changed_before:  # ``current`` is not all this unit of work changed of it
            return
        self._fields_state = current.model_copy(
            update={
                "name": name,
                "description": description,
                "options": options,
                "version": current.version + 1,
                "updated_at": at,
                "changed_by": self.principal.sub,
            }
        )

    def customer_created(self, customer_id: uuid.UUID) -> None:
        self._created_customers.add(customer_id)

    def customers_changed(self, ids: list[uuid.UUID] | set[uuid.UUID]) -> None:
        self._touched_customers.update(ids)

    def policy_deleted(
        self, account_type: AccountType, policy_id: uuid.UUID, last_version: int
    ) -> None:
        state = PolicyDeleted(
            id=policy_id,
            partner_id=self.principal.partner_id,
            account_type=account_type,
            version=last_version + 1,
            deleted_at=utc_now(),
            changed_by=self.principal.sub,
        )
        self._touched_policies.discard(policy_id)
        self._deleted.append(events.policy_deleted(state))
        self._record("deleted", "policy", policy_id, state.version)

    def customer_removed(self, customer_id: uuid.UUID, last_version: int) -> None:
        state = CustomerRemoved(
            id=customer_id,
            partner_id=self.principal.partner_id,
            version=last_version + 1,
            removed_at=utc_now(),
            changed_by=self.principal.sub,
        )
        self._touched_customers.discard(customer_id)
        self._deleted.append(events.customer_removed(state))
        self._record("removed", "customer", customer_id, state.version)

    def integration_changed(self, event: events.OutgoingEvent, entity_id: uuid.UUID) -> None:
        """An integration was configured, replaced or removed: its event goes out as is."""
        self._deleted.append(event)
        data = event.envelope.data
        action = "removed" if event.envelope.type.endswith("removed") else "configured"
        self._record(action, "integration", entity_id, data.version)

    def _record(self, action: str, entity: str, entity_id: uuid.UUID, version: int) -> None:
        self._audit.append(
            (self.principal.partner_id, self.principal.sub, action, entity, entity_id, version)
        )

    # -- commit -------------------------------------------------------------

    async def commit(self) -> None:
        """Version, audit and outbox every change, then commit them together."""
        if not self._open:
            raise RuntimeError("unit of work not started")
        repo, actor, partner = self.repo, self.principal.sub, self.principal.partner_id
        fields, known = self._fields, self._fields_state
        fused = fields if known is not None else None
        if fields is not None and fused is None:
            await repo.update_policy(fields)  # before the state is read
        bump_policies = sorted(
            self._touched_policies - self._created_policies - self._bumped_policies
        )
        bump_customers = sorted(self._touched_customers - self._created_customers)
        if bump_policies:
            await repo.bump_policies(bump_policies, actor)
        if bump_customers:
            await repo.bump_customers(bump_customers, actor)

        outgoing: list[events.OutgoingEvent] = []
        policy_ids = sorted(self._touched_policies | self._created_policies)
        unknown = [i for i in policy_ids if known is None or i != known.id]
        read = await repo.policies(partner, unknown) if unknown else {}
        if known is not None:
            read[known.id] = known
        states = {i: read[i] for i in policy_ids if i in read}
        for state in states.values():
            created = state.id in self._created_policies
            outgoing.append(events.policy_event(state, created=created))
            self._record("created" if created else "updated", "policy", state.id, state.version)
        customer_ids = sorted(self._touched_customers | self._created_customers)
        cstates = await repo.customers(partner, customer_ids) if customer_ids else {}
        for cstate in cstates.values():
            created = cstate.id in self._created_customers
            outgoing.append(events.customer_event(cstate, created=created))
            self._record("added" if created else "updated", "customer", cstate.id, cstate.version)
        outgoing.extend(self._deleted)

        await repo.record_changes(
            self._audit,
            [
                (
                    self._topics.channel(e.channel),
                    e.key,
                    e.envelope.model_dump_json().encode(),
                    {"content-type": "application/cloudevents+json"},
                )
                for e in outgoing
            ],
            fused,
        )
        await repo.commit()
        self._committed = True
        self.committed_policies = states
