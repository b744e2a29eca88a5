"""8. API abuse against ``policy-service run``.

* Schemathesis over the whole OpenAPI document with every check (``st run --checks
  all``: examples, coverage, fuzzing and stateful phases), tallied from its NDJSON
  report: no 5xx, every response conforms to the document.
* The integration tests' own cases, called here and counted: the role x route x
  partner matrix (``test_rbac_matrix.py``), every unusable token on every route, and
  oversized, malformed and deeply nested bodies (``test_bad_input.py``).

Rejections of schema-valid requests that depend on server state and cannot be written
in OpenAPI (ids of resources that do not exist, a stale or malformed ``If-Match``, a
cursor the service never issued, an option of the policy's other account type), and
email addresses that only JSON Schema's ``format`` annotation would refuse (an
annotation, not an assertion, in 2020-12; the contract checks their shape), are
counted apart as "state-dependent"; any other data-acceptance finding fails.
"""

import asyncio
import base64
import json
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from chaos.lab import BIN, Lab, PolicyProc, WorkerRig, http_session
from chaos.report import Result
from tests.integration.policy_service import test_bad_input as bad_input
from tests.integration.policy_service import test_rbac_matrix as rbac
from tests.integration.policy_service.support import ROLES, Api, Tenant, token


@dataclass(frozen=True)
class Size:
    examples: int  # schemathesis examples per operation and phase


SIZES = {"full": Size(100), "ci": Size(10)}
TITLE = "8 API abuse"
CONFORMANCE = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
STATE_DEPENDENT = re.compile(
    r"not a cursor this service gave out|no customer|no such customer"
    r"|is at version \d+, (not \d+|and If-Match named no version)"
    # an option of the other account type: the policy's type is not in the PATCH body
    r'|"pointer":"#/options/\w+","field":"options\.\w+","detail":"Extra inputs are not permitted"'
)


def _provider_dependent(operation: str, body: str) -> bool:
    """A PUT of an integration refused for the provider's own rules (its URL scheme, its
    credential fields, its settings): the schema is one for every provider, since an
    OpenAPI request body cannot depend on a path parameter, so these are the
    provider-dependent answers a schema-valid body may get (docs/contract.md §6)."""
    if operation != "PUT /v1/integrations/{provider}":
        return False
    try:
        errors = json.loads(body).get("errors") or []
    except (ValueError, AttributeError):
        return False
    pointers = [str(e.get("pointer", "")) for e in errors if isinstance(e, dict)]
    own = ("#/base_url", "#/credentials", "#/settings")
    return bool(pointers) and all(p.startswith(own) for p in pointers)


async def run(lab: Lab, size: str) -> Result:
    s = SIZES[size]
    result = Result(TITLE, f"schemathesis --checks all, {s.examples} examples/op; test matrices")
    dsn = await lab.database("s8")
    logs = lab.logs("s8")
    rig = WorkerRig(lab.bootstrap, dsn, logs)  # only for topic names of its own
    service = PolicyProc(dsn, lab.bootstrap, rig.topics, logs)
    service.start()
    try:
        async with http_session() as http:
            await service.wait_ready(http)
            api = Api(http, service.base_url)
            await _schemathesis(service.base_url, s.examples, logs, result)
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
            try:
                await _matrix(api, pool, result)
            finally:
                await pool.close()
            await _tokens(api, result)
            await _bodies(api, result)
    finally:
        service.stop()
    return result


async def _schemathesis(base_url: str, examples: int, logs: Path, result: Result) -> None:
    report = logs / "schemathesis.ndjson"
    command = [
        str(BIN / "st"), "run", f"{base_url}/openapi.json", "--checks", "all",
        "-H", f"Authorization: Bearer {token(f'p-{uuid.uuid4().hex[:16]}', 'manager', ttl=7200)}",
        "--max-examples", str(examples), "--seed", "8", "--workers", "1", "--no-color",
        "--report", "ndjson", "--report-ndjson-path", str(report),
        "--suppress-health-check", "all",
    ]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=logs,  # schemathesis leaves a .schemathesis directory behind
    )
    (logs / "schemathesis.out").write_text(done.stdout + done.stderr)
    statuses: Counter[int] = Counter()
    checks: Counter[tuple[str, str]] = Counter()
    state_dependent, unexpected, expected = 0, [], []
    for line in report.read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if not event:
            continue
        recorder = event["recorder"]
        interactions = recorder.get("interactions", {})
        for interaction in interactions.values():
            if interaction.get("response"):
                statuses[interaction["response"]["status_code"]] += 1
        for case_id, results in recorder.get("checks", {}).items():
            for check in results:
                checks[(check["name"], check["status"])] += 1
                if check["status"] != "failure":
                    continue
                failure = check.get("failure_info", {}).get("failure", {})
                body = _body(interactions.get(case_id, {}))
                if check["name"] in ("positive_data_acceptance", "negative_data_rejection") and (
                    STATE_DEPENDENT.search(body)
                    or "'email' format" in failure.get("message", "")
                    or _provider_dependent(str(failure.get("operation")), body)
                ):
                    state_dependent += 1
                    expected.append(f"{failure.get('operation')}: {body[:200]}")
                else:
                    unexpected.append(f"{failure.get('operation')}: {failure.get('title')}")
    failed = {name for (name, status) in checks if status == "failure"}
    failures = sum(n for (_, status), n in checks.items() if status == "failure")
    result.figures.update(
        {
            "schemathesis requests": sum(statuses.values()),
            "5xx": sum(n for code, n in statuses.items() if code >= 500),
            "checks run/failed": f"{sum(checks.values())}/{failures}",
            "conformance failures": sum(checks[(name, "failure")] for name in CONFORMANCE),
            "state-dependent or format-only findings": state_dependent,
            "other findings": len(unexpected),
        }
    )  # fmt: skip
    (logs / "schemathesis-findings.txt").write_text(
        "state-dependent:\n" + "\n".join(expected) + "\n\nother:\n" + "\n".join(unexpected)
    )
    result.check("schemathesis ran every phase", bool(checks) and done.returncode in (0, 1))
    result.check("0 5xx", result.figures["5xx"] == 0)
    result.check("responses conform to the schema", not failed & set(CONFORMANCE))
    result.check("no other schemathesis finding", not unexpected)


def _body(interaction: dict[str, Any]) -> str:
    content = (interaction.get("response") or {}).get("content") or {}
    raw = content.get("$base64")
    return base64.b64decode(raw).decode("utf-8", "replace") if raw else str(content)


async def _count(calls: Sequence[tuple[str, Callable[[], Awaitable[None]]]]) -> list[str]:
    """Run each case; the names of those that failed."""
    failed = []
    for name, call in calls:
        try:
            await call()
        except AssertionError:
            failed.append(name)
    return failed


async def _world(api: Api, pool: asyncpg.Pool) -> rbac.World:
    """What ``test_rbac_matrix.world`` builds: an owner, its customer, policy,
    integration and account."""
    return await rbac.build_world(Tenant(api), pool)


async def _matrix(api: Api, pool: asyncpg.Pool, result: Result) -> None:
    failed: list[str] = []
    cases = 0
    for case in rbac.CASES:
        for role in ROLES:
            for scope in ("own", "other"):
                world = await _world(api, pool)
                cases += 1
                failed += await _count(
                    [
                        (
                            f"{case} {role} {scope}",
                            lambda c=case, r=role, sc=scope, w=world: rbac.test_access(
                                c, r, sc, w, api
                            ),
                        )
                    ]
                )
    cross = [f for f in failed if f.endswith("other")]
    result.figures["role x route x partner cases"] = f"{cases - len(failed)}/{cases} as specified"
    result.figures["cross-tenant reads or writes"] = len(cross)
    result.check("the access matrix holds", not failed)
    result.check("0 cross-tenant reads or writes", not cross)


async def _tokens(api: Api, result: Result) -> None:
    calls = [
        (name, lambda make=make: rbac.test_unusable_token_is_401_on_every_route(make, api))
        for name, make in rbac.BAD_AUTH.items()
    ]
    failed = await _count(calls)
    requests = len(calls) * len(rbac.CASES)
    result.figures["bad tokens x routes -> 401"] = (
        f"{requests - len(failed) * len(rbac.CASES)}/{requests}"
    )
    result.check("alg none, wrong algorithm, missing claims, expired: all 401", not failed)


async def _bodies(api: Api, result: Result) -> None:
    tenant = Tenant(api)
    customer = await tenant.add_customer()
    policy = await tenant.create_policy(customer_ids=[customer["id"]])
    paths = {"policy": policy["id"], "customer": customer["id"]}
    calls: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("over 1 MiB", lambda: bad_input.test_body_over_one_mib_is_413(Tenant(api))),
        ("deep", lambda: bad_input.test_deep_but_parseable_json_is_not_a_500(tenant, paths)),
    ]
    for method, template in bad_input.BODY_ROUTES:
        for name, body in bad_input.MALFORMED.items():
            calls.append(
                (
                    f"{name} {method} {template}",
                    lambda m=method, t=template, b=body: bad_input.test_malformed_json_is_400(
                        m, t, b, tenant, paths
                    ),
                )
            )
    failed = await _count(calls)
    result.figures["oversized (413), malformed/deep (400/422)"] = (
        f"{len(calls) - len(failed)}/{len(calls)}"
    )
    result.check("oversized bodies 413, deep or malformed JSON 400/422", not failed)
