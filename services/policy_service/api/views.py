"""Thin HTTP views: parse the request, call a use case, render the response model."""

import html
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel

from schemas.customer import CustomerState
from schemas.discovery import DiscoveredAccount
from schemas.enums import AccountType
from schemas.topics import TopicNames
from services.policy_service.api import models as m
from services.policy_service.api.middleware import PRINCIPAL
from services.policy_service.api.rendered import RenderedPolicies, to_policy
from services.policy_service.api.request import (
    account_filter,
    account_page_params,
    account_type_param,
    encode_cursor,
    etag,
    if_match,
    json_body,
    page_params,
    path_uuid,
    provider_param,
)
from services.policy_service.domain.auth import Principal
from services.policy_service.domain.integrations import IntegrationRecord
from services.policy_service.service_layer.accounts import AccountFound, AccountService
from services.policy_service.service_layer.handlers import PolicyService
from services.policy_service.service_layer.integrations import IntegrationService

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


def to_customer(state: CustomerState) -> m.Customer:
    return m.Customer.model_validate(state.model_dump(exclude={"partner_id", "changed_by"}))


def to_integration(record: IntegrationRecord) -> m.Integration:
    return m.Integration(
        provider=record.provider.value,
        base_url=record.base_url,
        settings=record.settings,
        enabled=record.enabled,
        credentials_set=True,
        credential_fields=list(record.credential_fields),
        status=m.IntegrationStatus(
            state=record.status_state,
            detail=record.status_detail,
            checked_at=record.status_checked_at,
        ),
        version=record.version,
        updated_at=record.updated_at,
    )


def to_account(found: AccountFound) -> m.Account:
    row = found.row
    return m.Account(
        key=row["key"],
        customer_id=row["customer_id"],
        account_type=row["account_type"],
        directory=row["directory"],
        username=row["username"],
        display_name=row["display_name"],
        email=row["email"],
        status=row["status"],
        decision=m.AccountDecision(
            outcome=row["outcome"],
            policy_id=row["policy_id"],
            policy_version=row["policy_version"],
            notes=json.loads(row["notes"]),
            decided_at=row["decided_at"],
        ),
        commands=[
            m.AccountCommand(
                id=c.id,
                type=c.type,
                status=c.status,
                outcome=c.outcome,
                reason=c.reason,
                provider=c.provider,
                refs=[m.AccountRef.model_validate(r) for r in c.refs],
                detail=c.detail,
                updated_at=c.updated_at,
            )
            for c in found.commands
        ],
    )


def render(
    model: BaseModel | bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response of ``model`` (or of JSON already rendered)."""
    return web.Response(
        status=status,
        body=model if isinstance(model, bytes) else model.model_dump_json().encode(),
        content_type="application/json",
        headers=headers,
    )


class Views:
    """The handlers of every route in :data:`~services.policy_service.api.routes.ROUTES`."""

    def __init__(
        self,
        service: PolicyService,
        integrations: IntegrationService,
        accounts: AccountService,
        topics: TopicNames,
        registry: CollectorRegistry,
        ready: ReadyCheck,
        openapi: dict[str, Any],
    ) -> None:
        self.service = service
        self.integrations = integrations
        self.accounts = accounts
        self.topics = topics
        self.registry = registry
        self.ready = ready
        self.openapi_doc = json.dumps(openapi).encode()
        self.rendered = RenderedPolicies()
        self.docs_page = _docs_page(openapi).encode()

    @staticmethod
    def principal(request: web.Request) -> Principal:
        return request[PRINCIPAL]

    # -- policies -------------------------------------------------------------

    async def list_policies(self, request: web.Request) -> web.Response:
        after, limit = page_params(request)
        items = await self.service.list_policies(
            self.principal(request), account_type_param(request), after, limit + 1
        )
        return render(
            m.PolicyPage(
                items=[to_policy(p) for p in items[:limit]], next_cursor=_next(items, limit)
            )
        )

    async def create_policy(self, request: web.Request) -> web.Response:
        body = await json_body(request, m.PolicyCreate)
        state = await self.service.create_policy(self.principal(request), body)
        return render(
            to_policy(state),
            201,
            {"ETag": etag(state.version), "Location": f"/v1/import-policies/{state.id}"},
        )

    async def get_policy(self, request: web.Request) -> web.Response:
        state = await self.service.get_policy(self.principal(request), path_uuid(request))
        return render(self.rendered(state), headers={"ETag": etag(state.version)})

    async def update_policy(self, request: web.Request) -> web.Response:
        policy_id = path_uuid(request)
        body = await json_body(request, m.PolicyPatch)
        state = await self.service.update_policy(
            self.principal(request), policy_id, body, if_match(request)
        )
        return render(to_policy(state), headers={"ETag": etag(state.version)})

    async def delete_policy(self, request: web.Request) -> web.Response:
        await self.service.delete_policy(self.principal(request), path_uuid(request))
        return web.Response(status=204)

    async def set_policy_customers(self, request: web.Request) -> web.Response:
        policy_id = path_uuid(request)
        body = await json_body(request, m.CustomerIds)
        state = await self.service.set_policy_customers(
            self.principal(request), policy_id, list(body.customer_ids)
        )
        return render(to_policy(state), headers={"ETag": etag(state.version)})

    # -- customers ------------------------------------------------------------

    async def add_customer(self, request: web.Request) -> web.Response:
        body = await json_body(request, m.CustomerCreate)
        state = await self.service.add_customer(self.principal(request), body)
        return render(
            to_customer(state),
            201,
            {"ETag": etag(state.version), "Location": f"/v1/customers/{state.id}"},
        )

    async def list_customers(self, request: web.Request) -> web.Response:
        after, limit = page_params(request)
        items = await self.service.list_customers(self.principal(request), after, limit + 1)
        return render(
            m.CustomerPage(
                items=[to_customer(c) for c in items[:limit]], next_cursor=_next(items, limit)
            )
        )

    async def get_customer(self, request: web.Request) -> web.Response:
        state = await self.service.get_customer(self.principal(request), path_uuid(request))
        return render(to_customer(state), headers={"ETag": etag(state.version)})

    async def update_customer(self, request: web.Request) -> web.Response:
        customer_id = path_uuid(request)
        body = await json_body(request, m.CustomerPatch)
        state = await self.service.update_customer(
            self.principal(request), customer_id, body, if_match(request)
        )
        return render(to_customer(state), headers={"ETag": etag(state.version)})

    async def remove_customer(self, request: web.Request) -> web.Response:
        await self.service.remove_customer(self.principal(request), path_uuid(request))
        return web.Response(status=204)

    async def effective_policies(self, request: web.Request) -> web.Response:
        found = await self.service.effective_policies(self.principal(request), path_uuid(request))
        return render(
            self.rendered.effective(found[AccountType.END_USER], found[AccountType.ADMINISTRATOR])
        )

    async def preview(self, request: web.Request) -> web.Response:
        account = await json_body(request, DiscoveredAccount)
        decision = await self.service.preview(self.principal(request), account)
        commands = [
            m.PreviewCommand(
                id=cid,
                type=cmd.TYPE,
                topic=self.topics.channel(cmd.CHANNEL),
                data=cmd.model_dump(mode="json"),
            )
            for cid, cmd in zip(decision.command_ids(), decision.commands, strict=True)
        ]
        return render(
            m.Preview(
                outcome=decision.outcome,
                policy_id=decision.policy_id,
                policy_version=decision.policy_version,
                commands=commands,
                notes=list(decision.notes),
            )
        )

    # -- accounts ---------------------------------------------------------------

    async def list_accounts(self, request: web.Request) -> web.Response:
        principal = self.principal(request)
        where = account_filter(request, principal.partner_id)
        after, limit = account_page_params(request)
        page = await self.accounts.page(principal, where, after, limit)
        last = page.items[-1].row if page.items and page.more else None
        return render(
            m.AccountPage(
                items=[to_account(a) for a in page.items],
                next_cursor=encode_cursor(last["decided_at"], last["key"]) if last else None,
                counts=m.AccountCounts(**page.counts),
            )
        )

    async def get_account(self, request: web.Request) -> web.Response:
        key = request.match_info["account_key"]
        found = await self.accounts.get(self.principal(request), key)
        return render(to_account(found))

    # -- integrations -----------------------------------------------------------

    async def list_integrations(self, request: web.Request) -> web.Response:
        found = await self.integrations.list_all(self.principal(request))
        return render(m.IntegrationPage(items=[to_integration(r) for r in found], next_cursor=None))

    async def get_integration(self, request: web.Request) -> web.Response:
        record = await self.integrations.get(self.principal(request), provider_param(request))
        return render(to_integration(record), headers={"ETag": etag(record.version)})

    async def put_integration(self, request: web.Request) -> web.Response:
        provider = provider_param(request)
        body = await json_body(request, m.IntegrationPut)
        record = await self.integrations.put(self.principal(request), provider, body)
        return render(to_integration(record), headers={"ETag": etag(record.version)})

    async def delete_integration(self, request: web.Request) -> web.Response:
        await self.integrations.remove(self.principal(request), provider_param(request))
        return web.Response(status=204)

    # -- operations -------------------------------------------------------------

    async def healthz(self, _: web.Request) -> web.Response:
        return render(m.Health(status="ok"))

    async def readyz(self, _: web.Request) -> web.Response:
        checks = await self.ready()
        ok = all(checks.values())
        return render(
            m.Health(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503
        )

    async def metrics(self, _: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(self.registry))
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return resp

    async def openapi(self, _: web.Request) -> web.Response:
        return web.Response(body=self.openapi_doc, content_type="application/json")

    async def docs(self, _: web.Request) -> web.Response:
        return web.Response(body=self.docs_page, content_type="text/html")


def _next(items: list[Any], limit: int) -> str | None:
    """A cursor after the last item shown, when there is more to show."""
    if len(items) <= limit:
        return None
    last = items[limit - 1]
    return encode_cursor(last.created_at, last.id)


def _docs_page(openapi: dict[str, Any]) -> str:
    rows = []
    for path, ops in openapi["paths"].items():
        for method, op in ops.items():
            codes = ", ".join(op["responses"])
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code>"
                f"</td><td>{html.escape(op['summary'])}</td><td>{codes}</td></tr>"
            )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Import policy service API</title><style>body{font-family:system-ui;margin:2rem}"
        "td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}</style></head>"
        "<body><h1>Import policy service API</h1><p>Machine-readable: "
        "<a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1). Authenticate with "
        "<code>Authorization: Bearer &lt;JWT&gt;</code>.</p><table><tr><th>Method</th>"
        "<th>Path</th><th>What</th><th>Responses</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
