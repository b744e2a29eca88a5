"""Use cases of a partner's integrations (docs/contract.md §6).

Credentials are write-only: they are checked against the provider's fields,
sealed under ``SECRETS_KEY`` with the integration's key as associated data,
and from then on exist here only as that ciphertext, the same bytes
``integration.events`` carries. Every change goes through the outbox in the
same transaction, like policies and customers.
"""

import asyncio
import socket
from collections.abc import Awaitable, Callable

from schemas.envelope import utc_now
from schemas.integrations import IntegrationRemoved, Provider, integration_key
from schemas.providers import (
    SPECS,
    IntegrationProblem,
    ProviderSpec,
    Target,
    check_base_url,
    check_credentials,
    check_settings,
    refused_addresses,
)
from schemas.topics import TopicNames
from services.infra.secrets import SecretBox
from services.policy_service.adapters.database import Database
from services.policy_service.adapters.repository import Repository
from services.policy_service.api.models import IntegrationPut
from services.policy_service.domain import events
from services.policy_service.domain.auth import Principal
from services.policy_service.domain.integrations import IntegrationRecord, audit_id
from services.policy_service.service_layer.errors import (
    FieldProblem,
    Forbidden,
    Invalid,
    NotFound,
)
from services.policy_service.service_layer.unit_of_work import UnitOfWork

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (empty when it does not), within 5 s."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=5
        )
    except (OSError, TimeoutError):
        return []
    return sorted({str(info[4][0]) for info in infos})


class IntegrationService:
    """List, read, configure and remove one partner's integrations."""

    def __init__(
        self,
        db: Database,
        topics: TopicNames,
        box: SecretBox,
        *,
        allow_private: bool,
        resolver: Resolver = resolve,
    ) -> None:
        self.db = db
        self.topics = topics
        self.box = box
        self.allow_private = allow_private
        self.resolver = resolver

    @staticmethod
    def _reader(principal: Principal) -> None:
        if not principal.may_read():
            raise Forbidden(f"role {principal.role!r} may not read integrations")

    async def list_all(self, principal: Principal) -> list[IntegrationRecord]:
        self._reader(principal)
        async with self.db.pool.acquire() as conn:
            return await Repository(conn).integrations(principal.partner_id)

    async def get(self, principal: Principal, provider: Provider) -> IntegrationRecord:
        async with self.db.pool.acquire() as conn:
            found = await Repository(conn).integrations(principal.partner_id, provider)
        if not found:
            raise NotFound(f"no {provider.value} integration")
        self._reader(principal)
        return found[0]

    async def put(
        self, principal: Principal, provider: Provider, body: IntegrationPut
    ) -> IntegrationRecord:
        if not principal.may_write():
            raise Forbidden(f"role {principal.role!r} may not change integrations")
        spec = SPECS[provider]
        target = self._shape(spec, body)
        await self._reachable_publicly(target)
        async with UnitOfWork(self.db.pool, self.topics, principal) as uow:
            repo, partner = uow.repo, principal.partner_id
            _, removed = await repo.integration_version(partner, provider)
            sealed = None
            if body.credentials is not None:
                fields = tuple(sorted(body.credentials))
                key = integration_key(partner, provider.value)
                sealed = (self.box.seal_json(body.credentials, key), fields)
            elif removed:
                raise Invalid([FieldProblem(("credentials",), "required")])
            await repo.put_integration(
                partner_id=partner,
                provider=provider,
                base_url=body.base_url,
                settings=body.settings,
                enabled=body.enabled,
                credentials=sealed,
                actor=principal.sub,
            )
            [record] = await repo.integrations(partner, provider)
            uow.integration_changed(
                events.integration_configured(record.configured_event(), utc_now()),
                audit_id(partner, provider.value),
            )
            await uow.commit()
        return record

    async def remove(self, principal: Principal, provider: Provider) -> None:
        await self.get(principal, provider)  # 404 first, for any role
        if not principal.may_write():
            raise Forbidden(f"role {principal.role!r} may not change integrations")
        async with UnitOfWork(self.db.pool, self.topics, principal) as uow:
            partner = principal.partner_id
            version = await uow.repo.remove_integration(partner, provider, principal.sub)
            if version is None:
                raise NotFound(f"no {provider.value} integration")
            state = IntegrationRemoved(partner_id=partner, provider=provider, version=version)
            uow.integration_changed(
                events.integration_removed(state, utc_now()), audit_id(partner, provider.value)
            )
            await uow.commit()

    def _shape(self, spec: ProviderSpec, body: IntegrationPut) -> Target:
        problems: list[FieldProblem] = []
        target: Target | None = None
        for check in (
            lambda: check_base_url(spec, body.base_url, allow_private=self.allow_private),
            lambda: body.credentials is None or check_credentials(spec, body.credentials),
            lambda: check_settings(spec, body.settings),
        ):
            try:
                found = check()
            except IntegrationProblem as exc:
                problems.extend(FieldProblem(loc, message) for loc, message in exc.problems)
                continue
            if isinstance(found, Target):
                target = found
        if problems or target is None:
            raise Invalid(problems)
        return target

    async def _reachable_publicly(self, target: Target) -> None:
        """A tenant must not point the handlers at the cluster's own network."""
        if self.allow_private:
            return
        addresses = await self.resolver(target.host, target.port)
        if not addresses:
            raise Invalid([FieldProblem(("base_url",), f"{target.host} does not resolve")])
        refused = refused_addresses(addresses)
        if refused:
            raise Invalid(
                [
                    FieldProblem(
                        ("base_url",),
                        f"{target.host} resolves to a private, loopback or link-local "
                        f"address ({', '.join(refused)})",
                    )
                ]
            )
