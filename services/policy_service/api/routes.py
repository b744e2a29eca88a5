"""The HTTP surface in one table: the router and the OpenAPI document both read it."""

from dataclasses import dataclass, field

from pydantic import BaseModel

from schemas.discovery import DiscoveredAccount
from schemas.integrations import Provider
from services.policy_service.api import models as m


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query" | "path" | "header"
    schema: dict[str, object]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    view: str
    summary: str
    status: int = 200
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    authenticated: bool = True
    tags: tuple[str, ...] = field(default=())


ID = Param("id", "path", {"type": "string", "format": "uuid"}, "The resource's id.", True)
LIMIT = Param(
    "limit", "query", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Page size."
)
CURSOR = Param("cursor", "query", {"type": "string"}, "`next_cursor` of the previous page.")
ACCOUNT_TYPE = Param(
    "account_type",
    "query",
    {"type": "string", "enum": ["end_user", "administrator"]},
    "Only policies of this account type.",
)
IF_MATCH = Param(
    "If-Match",
    "header",
    {"type": "string"},
    "The ETag (version) the change is based on; 412 when stale.",
)

PROVIDER = Param(
    "provider",
    "path",
    {"type": "string", "enum": [p.value for p in Provider]},
    "The provider of the integration.",
    True,
)

ACCOUNT_FILTERS = (
    Param("customer_id", "query", {"type": "string", "format": "uuid"}, "Only this customer's."),
    Param(
        "account_type",
        "query",
        {"type": "string", "enum": ["end_user", "administrator"]},
        "Only accounts of this type.",
    ),
    Param(
        "status",
        "query",
        {"type": "string", "enum": ["done", "pending", "attention", "no_policy"]},
        "Only accounts with this status.",
    ),
    Param(
        "q",
        "query",
        {"type": "string", "maxLength": 200},
        "Part of the username, display name or email (case-insensitive).",
    ),
)
ACCOUNT_KEY = Param(
    "account_key",
    "path",
    {"type": "string"},
    "The account key `<partner_id>:<customer_id>:<directory>:<external_id>`, URL-encoded.",
    True,
)

READ = (401, 403, 404)
WRITE = (400, 401, 403, 404, 409, 413, 415, 422)

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v1/import-policies",
        "list_policies",
        "List the partner's import policies",
        response=m.PolicyPage,
        params=(ACCOUNT_TYPE, LIMIT, CURSOR),
        errors=(400, 401, 403),
        tags=("policies",),
    ),
    Route(
        "POST",
        "/v1/import-policies",
        "create_policy",
        "Create an import policy",
        201,
        body=m.PolicyCreate,
        response=m.Policy,
        errors=WRITE,
        tags=("policies",),
    ),
    Route(
        "GET",
        "/v1/import-policies/{id}",
        "get_policy",
        "One policy (ETag = version)",
        response=m.Policy,
        params=(ID,),
        errors=READ,
        tags=("policies",),
    ),
    Route(
        "PATCH",
        "/v1/import-policies/{id}",
        "update_policy",
        "Change a policy (not its account type)",
        body=m.PolicyPatch,
        response=m.Policy,
        params=(ID, IF_MATCH),
        errors=(*WRITE, 412),
        tags=("policies",),
    ),
    Route(
        "DELETE",
        "/v1/import-policies/{id}",
        "delete_policy",
        "Delete a policy; its customers become unassigned",
        204,
        params=(ID,),
        errors=(401, 403, 404),
        tags=("policies",),
    ),
    Route(
        "PUT",
        "/v1/import-policies/{id}/customers",
        "set_policy_customers",
        "Set exactly which customers are assigned",
        body=m.CustomerIds,
        response=m.Policy,
        params=(ID,),
        errors=WRITE,
        tags=("policies",),
    ),
    Route(
        "POST",
        "/v1/customers",
        "add_customer",
        "Add a customer; the default policies are applied",
        201,
        body=m.CustomerCreate,
        response=m.Customer,
        errors=WRITE,
        tags=("customers",),
    ),
    Route(
        "GET",
        "/v1/customers",
        "list_customers",
        "List the partner's customers",
        response=m.CustomerPage,
        params=(LIMIT, CURSOR),
        errors=(400, 401, 403),
        tags=("customers",),
    ),
    Route(
        "GET",
        "/v1/customers/{id}",
        "get_customer",
        "One customer (ETag = version)",
        response=m.Customer,
        params=(ID,),
        errors=READ,
        tags=("customers",),
    ),
    Route(
        "PATCH",
        "/v1/customers/{id}",
        "update_customer",
        "Change a customer's name or mappings",
        body=m.CustomerPatch,
        response=m.Customer,
        params=(ID, IF_MATCH),
        errors=(*WRITE, 412),
        tags=("customers",),
    ),
    Route(
        "DELETE",
        "/v1/customers/{id}",
        "remove_customer",
        "Remove a customer",
        204,
        params=(ID,),
        errors=(401, 403, 404),
        tags=("customers",),
    ),
    Route(
        "GET",
        "/v1/customers/{id}/effective-policies",
        "effective_policies",
        "The policy in force for each account type",
        response=m.EffectivePolicies,
        params=(ID,),
        errors=READ,
        tags=("customers",),
    ),
    Route(
        "POST",
        "/v1/import-preview",
        "preview",
        "The decision the worker would take for a discovered account (nothing is sent)",
        body=DiscoveredAccount,
        response=m.Preview,
        errors=(400, 401, 403, 413, 415, 422),
        tags=("preview",),
    ),
    Route(
        "GET",
        "/v1/accounts",
        "list_accounts",
        "The partner's decided accounts, newest first, with counts per status",
        response=m.AccountPage,
        params=(*ACCOUNT_FILTERS, LIMIT, CURSOR),
        errors=(400, 401, 403),
        tags=("accounts",),
    ),
    Route(
        "GET",
        "/v1/accounts/{account_key}",
        "get_account",
        "One account: its decision and every command with its latest result",
        response=m.Account,
        params=(ACCOUNT_KEY,),
        errors=READ,
        tags=("accounts",),
    ),
    Route(
        "GET",
        "/v1/integrations",
        "list_integrations",
        "The partner's integrations (never a secret)",
        response=m.IntegrationPage,
        errors=(401, 403),
        tags=("integrations",),
    ),
    Route(
        "GET",
        "/v1/integrations/{provider}",
        "get_integration",
        "One integration; 404 when not configured",
        response=m.Integration,
        params=(PROVIDER,),
        errors=READ,
        tags=("integrations",),
    ),
    Route(
        "PUT",
        "/v1/integrations/{provider}",
        "put_integration",
        "Configure or replace an integration (credentials are write-only)",
        body=m.IntegrationPut,
        response=m.Integration,
        params=(PROVIDER,),
        errors=(400, 401, 403, 404, 409, 413, 415, 422),
        tags=("integrations",),
    ),
    Route(
        "DELETE",
        "/v1/integrations/{provider}",
        "delete_integration",
        "Remove an integration",
        204,
        params=(PROVIDER,),
        errors=(401, 403, 404),
        tags=("integrations",),
    ),
    Route(
        "GET",
        "/healthz",
        "healthz",
        "Liveness",
        response=m.Health,
        authenticated=False,
        tags=("operations",),
    ),
    Route(
        "GET",
        "/readyz",
        "readyz",
        "Readiness: database and broker reachable",
        response=m.Health,
        errors=(503,),
        authenticated=False,
        tags=("operations",),
    ),
    Route(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        authenticated=False,
        tags=("operations",),
    ),
    Route(
        "GET",
        "/openapi.json",
        "openapi",
        "This document",
        authenticated=False,
        tags=("operations",),
    ),
    Route(
        "GET",
        "/docs",
        "docs",
        "Human-readable API reference",
        authenticated=False,
        tags=("operations",),
    ),
)
