"""The policy service's use cases: each one unit of work, rules first.

Handlers take parsed request models and the principal, enforce docs/contract.md
§1, and return aggregate state. They know nothing of HTTP.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import asyncpg
from pydantic import ValidationError

from schemas.customer import CustomerState
from schemas.discovery import DiscoveredAccount
from schemas.enums import AccountType
from schemas.policy import PolicyState
from schemas.topics import TopicNames
from services.decision import CustomerView, Decision, EffectivePolicy, decide
from services.policy_service.adapters.database import Database
from services.policy_service.adapters.repository import ConcurrentChange, Cursor, Repository
from services.policy_service.api.models import (
    CustomerCreate,
    CustomerPatch,
    PolicyCreate,
    PolicyPatch,
)
from services.policy_service.domain.auth import Principal
from services.policy_service.domain.options import patch_options
from services.policy_service.service_layer.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionFailed,
)
from services.policy_service.service_layer.unit_of_work import UnitOfWork

UniqueViolation = asyncpg.exceptions.UniqueViolationError


# The unique index of a policy's name per partner and account type (migrations).
_NAME_PER_TYPE = "policies_name_per_type"


class PolicyService:
    """Use cases over policies and customers, for one database and one topic set."""

    def __init__(
        self,
        db: Database,
        topics: TopicNames,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self.db = db
        self.topics = topics
        self.new_id = new_id

    def _uow(self, principal: Principal) -> UnitOfWork:
        if not principal.may_write():
            raise Forbidden(f"role {principal.role!r} may not change policies or customers")
        return UnitOfWork(self.db.pool, self.topics, principal)

    @staticmethod
    def _reader(principal: Principal) -> None:
        if not principal.may_read():
            raise Forbidden(f"role {principal.role!r} may not read policies or customers")

    async def _found_before_role(
        self, principal: Principal, kind: str, target_id: uuid.UUID
    ) -> None:
        """404 for another partner's (or no) resource, whatever the role: never a 403.

        Only a role that may not write pays for the look-up; its 403 comes after.
        """
        if principal.may_write():
            return
        async with self.db.pool.acquire() as conn:
            repo = Repository(conn)
            lookup = repo.policy if kind == "policy" else repo.customer
            if await lookup(principal.partner_id, target_id) is None:
                raise NotFound(f"no {kind} {target_id}")

    # -- reads --------------------------------------------------------------

    async def get_policy(self, principal: Principal, policy_id: uuid.UUID) -> PolicyState:
        async with self.db.pool.acquire() as conn:
            state = await Repository(conn).policy(principal.partner_id, policy_id)
        if state is None:
            raise NotFound(f"no policy {policy_id}")
        self._reader(principal)
        return state

    async def list_policies(
        self,
        principal: Principal,
        account_type: AccountType | None,
        after: Cursor | None,
        limit: int,
    ) -> list[PolicyState]:
        self._reader(principal)
        async with self.db.pool.acquire() as conn:
            return await Repository(conn).list_policies(
                principal.partner_id, account_type, after, limit
            )

    async def get_customer(self, principal: Principal, customer_id: uuid.UUID) -> CustomerState:
        async with self.db.pool.acquire() as conn:
            state = await Repository(conn).customer(principal.partner_id, customer_id)
        if state is None:
            raise NotFound(f"no customer {customer_id}")
        self._reader(principal)
        return state

    async def list_customers(
        self, principal: Principal, after: Cursor | None, limit: int
    ) -> list[CustomerState]:
        self._reader(principal)
        async with self.db.pool.acquire() as conn:
            return await Repository(conn).list_customers(principal.partner_id, after, limit)

    async def effective_policies(
        self, principal: Principal, customer_id: uuid.UUID
    ) -> dict[AccountType, PolicyState | None]:
        async with self.db.pool.acquire() as conn:
            found = await Repository(conn).effective_policies(principal.partner_id, customer_id)
        if found is None:
            raise NotFound(f"no customer {customer_id}")
        self._reader(principal)
        return {t: found.get(t) for t in AccountType}

    async def preview(self, principal: Principal, account: DiscoveredAccount) -> Decision:
        """The decision the worker would take for ``account``, from this service's tables."""
        self._reader(principal)
        async with self.db.pool.acquire() as conn, conn.transaction(readonly=True):
            repo = Repository(conn)
            customer = await repo.customer(principal.partner_id, account.customer_id)
            if customer is None:
                raise Invalid([FieldProblem(("customer_id",), "no such customer")])
            policy_id = getattr(customer.policy_ids, account.account_type.value)
            policy = await repo.policy(principal.partner_id, policy_id) if policy_id else None
            shared = (
                customer.psa is not None
                and await repo.customers_on_psa_company(principal.partner_id, customer.psa) > 1
            )
        view = CustomerView(
            id=customer.id,
            partner_id=customer.partner_id,
            psa=customer.psa,
            documentation=customer.documentation,
            psa_company_shared=shared,
        )
        effective = (
            EffectivePolicy(
                id=policy.id,
                version=policy.version,
                account_type=policy.account_type,
                options=policy.options,
            )
            if policy
            else None
        )
        return decide(account, view, effective)

    # -- policy writes --------------------------------------------------------

    async def create_policy(self, principal: Principal, body: PolicyCreate) -> PolicyState:
        async with self._uow(principal) as uow:
            repo, partner = uow.repo, principal.partner_id
            await self._require_customers(repo, partner, body.customer_ids)
            policy_id = self.new_id()
            try:
                await repo.insert_policy(
                    policy_id=policy_id,
                    partner_id=partner,
                    account_type=body.account_type,
                    name=body.name,
                    description=body.description,
                    options=body.options,
                    actor=principal.sub,
                )
            except UniqueViolation as exc:
                raise self._name_taken(body.name, body.account_type) from exc
            uow.policy_created(policy_id)
            if body.is_default:
                uow.policies_changed(await repo.set_default(partner, body.account_type, policy_id))
            await self._assign(uow, body.account_type, policy_id, list(body.customer_ids))
            await uow.commit()
        return await self.get_policy(principal, policy_id)

    async def update_policy(
        self,
        principal: Principal,
        policy_id: uuid.UUID,
        patch: PolicyPatch,
        if_match: int | None,
    ) -> PolicyState:
        taken: Conflict | None = None  # the answer if the new name is another policy's
        try:
            async with self._changing_policy(principal, policy_id, if_match) as (uow, current):
                repo, partner = uow.repo, principal.partner_id
                options = current.options
                if patch.options is not None:
                    try:
                        options = patch_options(
                            current.account_type, current.options, patch.options
                        )
                    except ValidationError as exc:
                        raise Invalid(_problems(exc, prefix=("options",))) from exc
                name = patch.name if patch.name is not None else current.name
                description = (
                    patch.description if patch.description is not None else current.description
                )
                if (name, description, options) != (
                    current.name,
                    current.description,
                    current.options,
                ):
                    taken = self._name_taken(name, current.account_type)
                    uow.policy_fields_changed(
                        current, name=name, description=description, options=options
                    )
                if patch.is_default is True:
                    uow.policies_changed(
                        await repo.set_default(partner, current.account_type, policy_id)
                    )
                elif patch.is_default is False and await repo.unset_default(policy_id):
                    uow.policies_changed([policy_id])
                if patch.customer_ids is not None:
                    await self._require_customers(repo, partner, patch.customer_ids)
                    await self._replace_customers(uow, current, list(patch.customer_ids))
        except UniqueViolation as exc:  # the fields are written at commit
            if taken is None or exc.constraint_name != _NAME_PER_TYPE:
                raise
            raise taken from exc
        except ConcurrentChange as exc:  # the contract's 409 for a conflicting change
            raise Conflict(f"policy {policy_id} changed meanwhile; read it and retry") from exc
        return uow.committed_policies.get(policy_id) or await self.get_policy(principal, policy_id)

    async def set_policy_customers(
        self, principal: Principal, policy_id: uuid.UUID, customer_ids: list[uuid.UUID]
    ) -> PolicyState:
        async with self._changing_policy(principal, policy_id) as (uow, current):
            await self._require_customers(uow.repo, principal.partner_id, customer_ids)
            await self._replace_customers(uow, current, customer_ids)
        return uow.committed_policies.get(policy_id) or await self.get_policy(principal, policy_id)

    async def delete_policy(self, principal: Principal, policy_id: uuid.UUID) -> None:
        async with self._changing_policy(principal, policy_id) as (uow, current):
            uow.customers_changed(current.customer_ids)
            await uow.repo.delete_policy(policy_id)
            uow.policy_deleted(current.account_type, policy_id, current.version)

    # -- customer writes -------------------------------------------------------

    async def add_customer(self, principal: Principal, body: CustomerCreate) -> CustomerState:
        async with self._uow(principal) as uow:
            repo, partner = uow.repo, principal.partner_id
            customer_id = body.id or self.new_id()
            taken = Conflict(f"customer id {customer_id} is already in use")
            if await repo.customer_id_taken(customer_id):
                raise taken
            try:  # another partner may take the id meanwhile (the lock is per partner)
                await repo.insert_customer(
                    customer_id=customer_id,
                    partner_id=partner,
                    name=body.name,
                    psa=body.psa,
                    documentation=body.documentation,
                    actor=principal.sub,
                )
            except UniqueViolation as exc:
                raise taken from exc
            uow.customer_created(customer_id)
            for account_type in AccountType:
                default = await repo.default_policy(partner, account_type)
                if default is not None:
                    await self._assign(uow, account_type, default, [customer_id])
            await uow.commit()
        return await self.get_customer(principal, customer_id)

    async def update_customer(
        self,
        principal: Principal,
        customer_id: uuid.UUID,
        patch: CustomerPatch,
        if_match: int | None,
    ) -> CustomerState:
        async with self._changing_customer(principal, customer_id, if_match) as (uow, current):
            given = patch.model_fields_set
            name = patch.name if patch.name is not None else current.name
            psa = patch.psa if "psa" in given else current.psa
            documentation = (
                patch.documentation if "documentation" in given else current.documentation
            )
            if (name, psa, documentation) != (current.name, current.psa, current.documentation):
                await uow.repo.update_customer(
                    customer_id, name=name, psa=psa, documentation=documentation
                )
                uow.customers_changed([customer_id])
        return await self.get_customer(principal, customer_id)

    async def remove_customer(self, principal: Principal, customer_id: uuid.UUID) -> None:
        async with self._changing_customer(principal, customer_id) as (uow, current):
            uow.policies_changed(await uow.repo.delete_customer(customer_id))
            uow.customer_removed(customer_id, current.version)

    # -- helpers ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _changing_policy(
        self, principal: Principal, policy_id: uuid.UUID, if_match: int | None = None
    ) -> AsyncIterator[tuple[UnitOfWork, PolicyState]]:
        """A unit of work on an existing policy, committed if the block succeeds.

        404 (before any 403) if the partner has no such policy, 412 if ``If-Match``
        names another version.
        """
        await self._found_before_role(principal, "policy", policy_id)
        async with self._uow(principal) as uow:
            state, uow.transaction_time = await uow.repo.policy_and_now(
                principal.partner_id, policy_id
            )
            yield uow, _current("policy", policy_id, state, if_match)
            await uow.commit()

    @contextlib.asynccontextmanager
    async def _changing_customer(
        self, principal: Principal, customer_id: uuid.UUID, if_match: int | None = None
    ) -> AsyncIterator[tuple[UnitOfWork, CustomerState]]:
        """As :meth:`_changing_policy`, for a customer."""
        await self._found_before_role(principal, "customer", customer_id)
        async with self._uow(principal) as uow:
            state = await uow.repo.customer(principal.partner_id, customer_id)
            yield uow, _current("customer", customer_id, state, if_match)
            await uow.commit()

    @staticmethod
    async def _require_customers(
        repo: Repository, partner_id: str, customer_ids: list[uuid.UUID]
    ) -> None:
        found = await repo.existing_customers(partner_id, customer_ids)
        missing = [
            FieldProblem(("customer_ids", i), f"no customer {c}")
            for i, c in enumerate(customer_ids)
            if c not in found
        ]
        if missing:
            raise Invalid(missing)
        if len(set(customer_ids)) != len(customer_ids):
            raise Invalid([FieldProblem(("customer_ids",), "customer ids must be unique")])

    @staticmethod
    async def _assign(
        uow: UnitOfWork, account_type: AccountType, policy_id: uuid.UUID, customers: list[uuid.UUID]
    ) -> None:
        moved, left = await uow.repo.assign(
            uow.principal.partner_id, account_type, policy_id, customers
        )
        uow.customers_changed(moved)
        uow.policies_changed(left)
        if moved:
            uow.policies_changed([policy_id])

    async def _replace_customers(
        self, uow: UnitOfWork, policy: PolicyState, customer_ids: list[uuid.UUID]
    ) -> None:
        removed = await uow.repo.unassign_except(policy.id, customer_ids)
        if removed:
            uow.customers_changed(removed)
            uow.policies_changed([policy.id])
        await self._assign(uow, policy.account_type, policy.id, customer_ids)

    @staticmethod
    def _name_taken(name: str, account_type: AccountType) -> Conflict:
        return Conflict(f"a {account_type.value} policy named {name!r} already exists")


StateT = TypeVar("StateT", PolicyState, CustomerState)


def _current(kind: str, item_id: uuid.UUID, state: StateT | None, if_match: int | None) -> StateT:
    """The aggregate about to change: 404 if absent, 412 if ``If-Match`` is stale."""
    if state is None:
        raise NotFound(f"no {kind} {item_id}")
    if if_match is not None and if_match != state.version:
        asked = f"not {if_match}" if if_match >= 0 else "and If-Match named no version"
        raise PreconditionFailed(f"{kind} {item_id} is at version {state.version}, {asked}")
    return state


def _problems(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[FieldProblem]:
    return [
        FieldProblem(prefix + tuple(e["loc"]), e["msg"].removeprefix("Value error, "))
        for e in exc.errors()
    ]
