"""Property-based API tests from the service's own OpenAPI document (schemathesis).

For every operation of the route table, requests generated from the document the
running service serves (``/openapi.json``), valid and invalid, go to that service with
a manager's token. Half the generated ids are swapped for ids of real resources
of that partner, so the happy paths run too, not only the 404s.
"""

import uuid
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.policy_service.api.routes import ROUTES, Route

from .support import new_partner, token

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class Fixtures:
    """Real resources of one partner, made over plain HTTP."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.auth = {"Authorization": f"Bearer {token(new_partner(), 'manager', ttl=3600)}"}
        self.http = requests.Session()
        self.existing = {kind: self.make(kind) for kind in ("customer", "policy")}

    def make(self, kind: str) -> str:
        if kind == "customer":
            path, body = "/v1/customers", {"name": f"fixture {uuid.uuid4()}"}
        else:
            path = "/v1/import-policies"
            body = {"account_type": "end_user", "name": f"fixture {uuid.uuid4()}"}
        reply = self.http.post(self.base_url + path, json=body, headers=self.auth, timeout=30)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def swap_ids(self, case: schemathesis.Case) -> None:
        """Aim even-numbered generated ids at real resources (fresh ones for DELETE)."""
        kind = "policy" if case.path.startswith("/v1/import-policies") else "customer"
        params = case.path_parameters or {}
        if _even_uuid(params.get("id")):
            if case.method.upper() == "DELETE":
                params["id"] = self.make(kind)
            else:
                params["id"] = self.existing[kind]
        body = case.body
        if isinstance(body, dict) and _even_uuid(body.get("customer_id")):
            body["customer_id"] = self.existing["customer"]


def _even_uuid(value: Any) -> bool:
    try:
        return uuid.UUID(str(value)).int % 2 == 0
    except ValueError:
        return False


@pytest.fixture(scope="module")
def fixtures(base_url: str) -> Iterator[Fixtures]:
    made = Fixtures(base_url)
    yield made
    made.http.close()


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> Any:
    """The OpenAPI document the running instance serves."""
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


# Negative data needs something to negate: a parameter or a body.
CASES = [
    pytest.param(route, mode, id=f"{route.method} {route.path} {mode}")
    for route in ROUTES
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or route.params or route.body
]


@pytest.mark.parametrize(("route", "mode"), CASES)
def test_api_conforms_to_its_openapi(
    route: Route, mode: GenerationMode, api_schema: Any, fixtures: Fixtures
) -> None:
    operation = api_schema[route.path][route.method]

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        fixtures.swap_ids(case)
        case.call_and_validate(
            base_url=fixtures.base_url, headers=fixtures.auth, checks=CHECKS, timeout=30
        )

    run()
