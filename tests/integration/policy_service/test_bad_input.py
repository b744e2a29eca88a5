"""Bad input is refused with the right 4xx and problem JSON, never a 500 (docs/contract.md §4)."""

import base64
import io
import json
import uuid
from typing import Any

import pytest

from .support import Api, Tenant, assert_problem, discovered, error_fields

BODY_ROUTES = (
    ("POST", "/v1/import-policies"),
    ("PATCH", "/v1/import-policies/{policy}"),
    ("PUT", "/v1/import-policies/{policy}/customers"),
    ("POST", "/v1/customers"),
    ("PATCH", "/v1/customers/{customer}"),
    ("POST", "/v1/import-preview"),
)
ID_ROUTES = (
    ("GET", "/v1/import-policies/{id}"),
    ("PATCH", "/v1/import-policies/{id}"),
    ("DELETE", "/v1/import-policies/{id}"),
    ("PUT", "/v1/import-policies/{id}/customers"),
    ("GET", "/v1/customers/{id}"),
    ("PATCH", "/v1/customers/{id}"),
    ("DELETE", "/v1/customers/{id}"),
    ("GET", "/v1/customers/{id}/effective-policies"),
)


@pytest.fixture
async def paths(tenant: Tenant) -> dict[str, str]:
    customer = await tenant.add_customer()
    policy = await tenant.create_policy(customer_ids=[customer["id"]])
    return {"policy": policy["id"], "customer": customer["id"]}


async def _send(
    tenant: Tenant, method: str, path: str, data: bytes | str, ctype: str | None
) -> Any:
    headers = {"Content-Type": ctype} if ctype else {}
    return await tenant.call(method, path, data=data, headers=headers)


MALFORMED = {
    "truncated": b'{"name": "x"',
    "trailing comma": b'{"name": "x",}',
    "single quotes": b"{'name': 'x'}",
    "empty": b"",
    "not utf-8": b'{"name": "\xff\xfe"}',
    "nested arrays": b"[" * 100_000,
    "nested objects": b'{"a":' * 100_000,
    "nested inside a field": b'{"name": "x", "options": ' + b"[" * 100_000,
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize(("method", "template"), BODY_ROUTES)
async def test_malformed_json_is_400(
    method: str, template: str, body: bytes, tenant: Tenant, paths: dict[str, str]
) -> None:
    reply = await _send(tenant, method, template.format(**paths), body, "application/json")
    problem = assert_problem(reply, 400)
    assert problem["type"].endswith("/malformed-json")


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
@pytest.mark.parametrize(("method", "template"), BODY_ROUTES)
async def test_wrong_content_type_is_415(
    method: str, template: str, ctype: str | None, tenant: Tenant, paths: dict[str, str]
) -> None:
    reply = await _send(tenant, method, template.format(**paths), b'{"name": "x"}', ctype)
    assert_problem(reply, 415)


async def test_a_json_suffix_type_is_accepted(tenant: Tenant) -> None:
    reply = await _send(
        tenant, "POST", "/v1/customers", json.dumps({"name": "x"}), "application/merge-patch+json"
    )
    assert reply.status == 201, reply.body


INVALID: list[tuple[str, str, Any, set[str]]] = [
    (
        "POST",
        "/v1/import-policies",
        {"account_type": "guest", "name": 5, "is_default": "maybe", "colour": "red"},
        {"account_type", "name", "is_default", "colour"},
    ),
    (
        "POST",
        "/v1/import-policies",
        {"account_type": "end_user", "name": " ", "options": {"vault": True}},
        {"name", "options.vault"},
    ),
    (
        "POST",
        "/v1/import-policies",
        {"account_type": "administrator", "name": "x" * 201, "options": {"psa": {}}},
        {"name", "options.psa"},
    ),
    (
        "POST",
        "/v1/import-policies",
        {"account_type": "end_user", "name": "n", "customer_ids": ["nope", 7]},
        {"customer_ids.0", "customer_ids.1"},
    ),
    ("PATCH", "/v1/import-policies/{policy}", {"options": [1]}, {"options"}),
    ("PATCH", "/v1/import-policies/{policy}", {"options": {"psa": 1}}, {"options.psa"}),
    ("PATCH", "/v1/import-policies/{policy}", {"is_default": 1e999, "x": 1}, {"is_default", "x"}),
    ("PUT", "/v1/import-policies/{policy}/customers", {}, {"customer_ids"}),
    (
        "PUT",
        "/v1/import-policies/{policy}/customers",
        {"customer_ids": [str(uuid.uuid4())] * 10_001},
        {"customer_ids"},
    ),
    (
        "POST",
        "/v1/customers",
        {"name": "", "id": "nope", "psa": {"provider": "sap", "company_id": ""}},
        {"name", "id", "psa.provider", "psa.company_id"},
    ),
    (
        "PATCH",
        "/v1/customers/{customer}",
        {"documentation": {"provider": "hudu"}},
        {"documentation.organization_id"},
    ),
    (
        "POST",
        "/v1/import-preview",
        {"customer_id": "x", "account_type": "end_user", "directory": "ldap", "email": "no"},
        {"customer_id", "directory", "external_id", "username", "email"},
    ),
]


@pytest.mark.parametrize(("method", "template", "body", "fields"), INVALID)
async def test_invalid_fields_are_422_field_by_field(
    method: str,
    template: str,
    body: Any,
    fields: set[str],
    tenant: Tenant,
    paths: dict[str, str],
) -> None:
    reply = await tenant.call(method, template.format(**paths), json_body=body)
    problem = assert_problem(reply, 422)
    assert error_fields(problem) == fields
    for error in problem["errors"]:
        assert error["pointer"] == "#/" + error["field"].replace(".", "/")
        assert error["detail"]
    assert (await tenant.policy(paths["policy"]))["version"] == 1
    assert (await tenant.customer(paths["customer"]))["version"] == 2


@pytest.mark.parametrize("body", [[], None, 3, "text", [{"name": "x"}]])
async def test_a_body_that_is_not_an_object_is_422(body: Any, tenant: Tenant) -> None:
    assert_problem(await tenant.call("POST", "/v1/customers", json_body=body), 422)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "nul \u0000 inside"),
        ("name", "lone \ud800 surrogate"),
        ("psa", {"provider": "halo", "company_id": "\u0000"}),
        ("documentation", {"provider": "hudu", "organization_id": "\udfff"}),
    ],
)
async def test_text_postgresql_cannot_store_is_422(field: str, value: Any, tenant: Tenant) -> None:
    body = {"name": "ok", field: value}
    reply = await tenant.call(
        "POST", "/v1/customers", data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(reply, 422)
    assert {f.split(".")[0] for f in error_fields(problem)} == {field}
    listed = await tenant.ok("GET", "/v1/customers")
    assert listed["items"] == []


async def test_deep_but_parseable_json_is_not_a_500(tenant: Tenant, paths: dict[str, str]) -> None:
    deep: Any = True
    for _ in range(900):
        deep = {"a": deep}
    for method, path, body in [
        ("PATCH", f"/v1/import-policies/{paths['policy']}", {"options": {"documentation": deep}}),
        ("PATCH", f"/v1/import-policies/{paths['policy']}", {"options": deep}),
        ("POST", "/v1/customers", {"name": deep}),
        ("POST", "/v1/import-preview", discovered(paths["customer"], username=deep)),
    ]:
        reply = await tenant.call(method, path, json_body=body)
        assert_problem(reply, 422)


async def test_body_over_one_mib_is_413(tenant: Tenant) -> None:
    body = json.dumps({"account_type": "end_user", "name": "x", "description": "d" * 2**20})
    reply = await tenant.call(
        "POST",
        "/v1/import-policies",
        data=io.BytesIO(body.encode()),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(reply, 413)
    assert await tenant.policies() == []


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
@pytest.mark.parametrize(("method", "template"), ID_ROUTES)
async def test_an_id_that_is_no_uuid_is_404(
    method: str, template: str, bad_id: str, tenant: Tenant
) -> None:
    kwargs: dict[str, Any] = {}
    if method in ("PATCH", "PUT"):
        kwargs["json_body"] = {"customer_ids": []} if method == "PUT" else {}
    reply = await tenant.call(method, template.format(id=bad_id), **kwargs)
    assert_problem(reply, 404)


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BAD_QUERIES = [
    "limit=0",
    "limit=501",
    "limit=-1",
    "limit=abc",
    "limit=1.5",
    "limit=",
    "limit=%C2%B2",  # superscript two: a "digit" to str.isdigit, not to int()
    "limit=%D9%A3",  # Arabic-Indic three
    "limit=" + "9" * 5000,  # more digits than int() takes
    "cursor=%%%",
    "cursor=" + base64.urlsafe_b64encode(b"not json").decode(),
    "cursor=" + _cursor(["2024-01-01T00:00:00", str(uuid.uuid4())]),  # naive timestamp
    "cursor=" + _cursor(["2024-01-01T00:00:00+00:00", "not-a-uuid"]),
    "cursor=" + _cursor({"a": 1}),
    "cursor=" + _cursor([None, None]),
    "cursor=" + _cursor("ab"),
    "cursor=%FF%FE",
    "cursor=",  # present but empty: no cursor this service gave out
]


@pytest.mark.parametrize("query", BAD_QUERIES)
@pytest.mark.parametrize("path", ["/v1/import-policies", "/v1/customers"])
async def test_bad_paging_is_400(path: str, query: str, tenant: Tenant) -> None:
    problem = assert_problem(await tenant.call("GET", f"{path}?{query}"), 400)
    assert error_fields(problem) == {query.split("=")[0]}


async def test_bad_account_type_filter_is_400(tenant: Tenant) -> None:
    reply = await tenant.call("GET", "/v1/import-policies?account_type=guest")
    assert error_fields(assert_problem(reply, 400)) == {"account_type"}


@pytest.mark.parametrize(
    "tag", ["garbage", '"²"', "W/", '"-1"', '"99999999999999999999999"', '"' + "9" * 5000 + '"']
)
async def test_an_if_match_that_is_no_version_is_412(
    tag: str, tenant: Tenant, paths: dict[str, str]
) -> None:
    for path in (f"/v1/import-policies/{paths['policy']}", f"/v1/customers/{paths['customer']}"):
        reply = await tenant.call(
            "PATCH", path, json_body={"name": "new"}, headers={"If-Match": tag}
        )
        problem = assert_problem(reply, 412)
        assert "If-Match named no version" in problem["detail"], problem


async def test_unknown_paths_and_methods_are_problems(tenant: Tenant, api: Api) -> None:
    assert_problem(await tenant.call("GET", "/v1/nothing-here"), 404)
    assert_problem(await api.call("GET", "/nothing-here"), 404)
    reply = await tenant.call("PUT", "/v1/customers", json_body={})
    assert_problem(reply, 405)
    assert "POST" in reply.headers["Allow"]
