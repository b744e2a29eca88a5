"""The contract as committed JSON Schemas and as pydantic models agree.

Every example below is written by hand as an agent or handler would put it on
the wire (docs/contract.md §2), not produced by the code under test.
"""

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import ValidationError

import schemas
from schemas.catalog import BY_TYPE, MESSAGES
from schemas.generate import stale_files
from schemas.ids import command_id
from schemas.options import AdministratorOptions, EndUserOptions
from schemas.topics import TopicNames

pytestmark = pytest.mark.unit

SCHEMA_DIR = Path(schemas.__file__).resolve().parent

# docs/contract.md §2, typed from the table: every message type of the bus.
CONTRACT_TYPES = {
    "import_policy.created",
    "import_policy.updated",
    "import_policy.deleted",
    "customer.added",
    "customer.updated",
    "customer.removed",
    "account.discovered",
    "psa.contact.link",
    "documentation.password.link",
    "vault.password.store",
    "rotation.enroll",
    "notification.welcome_email.send",
    "identity.self_service_reset.enable",
    "identity.m365_password_sync.enable",
    "import.decision.recorded",
    "integration.configured",
    "integration.removed",
    "command.succeeded",
    "command.failed",
    "account.password.changed",
    "rotation.requested",
}

# ---------------------------------------------------------------- examples

PARTNER = "acme-msp"
CUSTOMER = "3f6c2b7e-9d41-4c1a-8e0f-2b5d7a9c1e34"
POLICY = "b7a1d0c2-5e8f-4a3b-9c6d-1e2f3a4b5c6d"
ADMIN_POLICY = "0c9e8d7f-6a5b-4c3d-8e1f-a2b3c4d5e6f7"
DISCOVERY_EVENT = "5d0b7c4e-2a19-4f6b-b3d8-7e1a9c2f4b60"
EXTERNAL_ID = "7c1e2f3a-8b9d-4e5f-a6b7-c8d9e0f1a2b3"
NOW = "2024-05-01T12:00:00Z"


def _account(account_type: str = "end_user", directory: str = "active_directory") -> dict:
    return {
        "customer_id": CUSTOMER,
        "account_type": account_type,
        "directory": directory,
        "external_id": EXTERNAL_ID,
        "username": "jdoe",
        "display_name": "Jane Doe",
        "email": "jane.doe@example.com",
        "phone": "+1 555 0100",
        "user_principal_name": "jdoe@contoso.example.com",
        "agent_id": "agent-42",
        "discovered_at": "2024-05-01T11:59:30+02:00",
    }


def _key(directory: str = "active_directory") -> str:
    return f"{PARTNER}:{CUSTOMER}:{directory}:{EXTERNAL_ID}"


def _command(type_: str, account_type: str = "end_user", **extra: Any) -> dict:
    account = {**_account(account_type), "key": _key()}
    data = {"account": account, "policy_id": POLICY, "policy_version": 3, **extra}
    return _envelope(type_, _key(), data, event_id=str(command_id(_key(), type_)))


def _envelope(type_: str, subject: str, data: dict, *, event_id: str | None = None) -> dict:
    envelope = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "urn:msp-account-import:test",
        "type": type_,
        "time": NOW,
        "subject": subject,
        "datacontenttype": "application/json",
        "partnerid": PARTNER,
        "data": data,
    }
    if BY_TYPE[type_].caused:
        envelope |= {"causationid": DISCOVERY_EVENT, "correlationid": DISCOVERY_EVENT}
    return envelope


def _policy(type_: str, version: int) -> dict:
    options = {
        "documentation": {"match": True, "create_if_missing": True},
        "psa": {"match": True, "create_if_missing": False},
        "send_welcome_email": True,
        "enable_self_serve_reset": False,
        "sync_password_to_m365": True,
    }
    state = {
        "id": POLICY,
        "partner_id": PARTNER,
        "account_type": "end_user",
        "name": "Standard end users",
        "description": "Link to IT Glue and ConnectWise, welcome them.",
        "is_default": True,
        "customer_ids": [CUSTOMER],
        "options": options,
        "version": version,
        "created_at": "2024-04-01T09:00:00Z",
        "updated_at": NOW,
        "changed_by": "user-1",
    }
    return _envelope(type_, POLICY, state)


def _customer(type_: str, version: int) -> dict:
    state = {
        "id": CUSTOMER,
        "partner_id": PARTNER,
        "name": "Contoso Ltd",
        "psa": {"provider": "connectwise", "company_id": "cw-1001"},
        "documentation": {"provider": "itglue", "organization_id": "itg-77"},
        "policy_ids": {"end_user": POLICY, "administrator": None},
        "version": version,
        "created_at": "2024-04-01T09:00:00Z",
        "updated_at": NOW,
        "changed_by": "user-1",
    }
    return _envelope(type_, CUSTOMER, state)


def _decision() -> dict:
    types = ["documentation.password.link", "notification.welcome_email.send"]
    data = {
        "account": {**_account(), "key": _key()},
        "outcome": "imported",
        "policy_id": POLICY,
        "policy_version": 3,
        "command_ids": [str(command_id(_key(), t)) for t in types],
        "notes": [
            {"option": "psa.match", "reason": "no_psa_company", "detail": "no PSA company"},
        ],
    }
    return _envelope("import.decision.recorded", _key(), data)


def _result(type_: str, **extra: Any) -> dict:
    command = str(command_id(_key(), "psa.contact.link"))
    data = {
        "command_id": command,
        "command_type": "psa.contact.link",
        "account_key": _key(),
        "customer_id": CUSTOMER,
        "provider": "connectwise",
        "refs": [{"system": "connectwise", "kind": "contact", "id": "4711", "url": None}],
        "detail": "linked",
        "attempts": 1,
        "finished_at": NOW,
        **extra,
    }
    envelope = _envelope(type_, _key(), data)
    return envelope | {"causationid": command, "correlationid": DISCOVERY_EVENT}


EXAMPLES: dict[str, Callable[[], dict]] = {
    "import_policy.created": lambda: _policy("import_policy.created", 1),
    "import_policy.updated": lambda: _policy("import_policy.updated", 2),
    "import_policy.deleted": lambda: _envelope(
        "import_policy.deleted",
        ADMIN_POLICY,
        {
            "id": ADMIN_POLICY,
            "partner_id": PARTNER,
            "account_type": "administrator",
            "version": 5,
            "deleted_at": NOW,
            "changed_by": "user-1",
        },
    ),
    "customer.added": lambda: _customer("customer.added", 1),
    "customer.updated": lambda: _customer("customer.updated", 2),
    "customer.removed": lambda: _envelope(
        "customer.removed",
        CUSTOMER,
        {"id": CUSTOMER, "partner_id": PARTNER, "version": 3, "removed_at": NOW, "changed_by": "u"},
    ),
    "account.discovered": lambda: _envelope("account.discovered", CUSTOMER, _account()),
    "psa.contact.link": lambda: _command(
        "psa.contact.link", provider="autotask", company_id="at-55", create_if_missing=True
    ),
    "documentation.password.link": lambda: _command(
        "documentation.password.link",
        provider="hudu",
        organization_id="hudu-9",
        create_if_missing=False,
        sync_back=True,
    ),
    "vault.password.store": lambda: _command("vault.password.store", "administrator"),
    "rotation.enroll": lambda: _command("rotation.enroll", "administrator"),
    "notification.welcome_email.send": lambda: _command(
        "notification.welcome_email.send", email=None
    ),
    "identity.self_service_reset.enable": lambda: _command("identity.self_service_reset.enable"),
    "identity.m365_password_sync.enable": lambda: _command("identity.m365_password_sync.enable"),
    "import.decision.recorded": _decision,
    "integration.configured": lambda: _envelope(
        "integration.configured",
        f"{PARTNER}:halo",
        {
            "partner_id": PARTNER,
            "provider": "halo",
            "base_url": "https://acme.halopsa.com",
            "settings": {"requests_per_5_minutes": 300},
            "enabled": True,
            "version": 2,
            "credentials_ciphertext": "bm9uY2Vub25jZW5vY2lwaGVydGV4dA==",
        },
    ),
    "integration.removed": lambda: _envelope(
        "integration.removed",
        f"{PARTNER}:halo",
        {"partner_id": PARTNER, "provider": "halo", "version": 3},
    ),
    "command.succeeded": lambda: _result(
        "command.succeeded",
        outcome="created",
        contact={"email": "jane.doe@example.com", "phone": "+1 555 0100"},
    ),
    "command.failed": lambda: _result("command.failed", reason="ambiguous_match"),
    "account.password.changed": lambda: _envelope(
        "account.password.changed",
        _key(),
        {
            "account_key": _key(),
            "customer_id": CUSTOMER,
            "changed_at": NOW,
            "changed_by": "rotation",
            "password_ciphertext": "bm9uY2Vub25jZW5vY2lwaGVydGV4dA==",
        },
    ),
    "rotation.requested": lambda: _envelope(
        "rotation.requested",
        _key(),
        {"account_key": _key(), "customer_id": CUSTOMER, "due_at": NOW, "interval_days": 90},
    ),
}
ALL_TYPES = sorted(EXAMPLES)
CAUSED_TYPES = [t for t in ALL_TYPES if BY_TYPE[t].caused]

# ---------------------------------------------------------------- helpers

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@cache
def validator(type_: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / "json" / f"{type_}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    checker = FormatChecker()
    # jsonschema checks date-time only with an optional package; RFC 3339 by hand.
    checker.checks("date-time")(_is_rfc3339)
    return Draft202012Validator(schema, format_checker=checker)


def assert_rejected_by_both(type_: str, wire: dict) -> None:
    with pytest.raises(ValidationError):
        BY_TYPE[type_].envelope_model().model_validate(wire)
    assert not validator(type_).is_valid(wire), "the JSON Schema accepted it"


@pytest.fixture
def clean_topic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TopicNames.model_fields:
        monkeypatch.delenv(f"TOPIC_{name.upper()}", raising=False)


# ---------------------------------------------------------------- generated files


@pytest.mark.usefixtures("clean_topic_env")
def test_committed_schemas_match_the_models() -> None:
    assert stale_files() == []


def test_examples_cover_the_catalogue_and_the_contract() -> None:
    assert set(EXAMPLES) == {spec.type for spec in MESSAGES}
    assert set(EXAMPLES) == CONTRACT_TYPES
    files = {p.name for p in (SCHEMA_DIR / "json").glob("*.json")}
    assert files == {f"{t}.json" for t in CONTRACT_TYPES}


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_example_validates_and_round_trips(type_: str) -> None:
    spec = BY_TYPE[type_]
    wire = EXAMPLES[type_]()
    validator(type_).validate(wire)

    event = spec.envelope_model().model_validate(wire)
    assert isinstance(event.data, spec.data_model)
    dumped = event.model_dump(mode="json")
    validator(type_).validate(dumped)
    assert dumped["type"] == type_
    assert dumped["partnerid"] == PARTNER
    assert uuid.UUID(dumped["id"]) == uuid.UUID(wire["id"])

    again = spec.envelope_model().model_validate(json.loads(json.dumps(dumped)))
    assert again == event
    assert again.model_dump(mode="json") == dumped


def test_command_example_ids_are_the_deterministic_ids() -> None:
    wire = EXAMPLES["psa.contact.link"]()
    assert wire["id"] == str(command_id(wire["data"]["account"]["key"], "psa.contact.link"))


# ---------------------------------------------------------------- negative cases


def _set(path: str, value: object) -> Callable[[dict], None]:
    *parents, last = path.split(".")

    def mutate(wire: dict) -> None:
        node = wire
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def _drop(path: str) -> Callable[[dict], None]:
    *parents, last = path.split(".")

    def mutate(wire: dict) -> None:
        node = wire
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


NEGATIVE = [
    pytest.param("account.discovered", _drop("partnerid"), id="no-partnerid-discovered"),
    pytest.param("psa.contact.link", _drop("partnerid"), id="no-partnerid-command"),
    pytest.param("customer.added", _drop("partnerid"), id="no-partnerid-customer"),
    pytest.param("account.discovered", _set("specversion", "0.3"), id="specversion-0.3"),
    pytest.param("import_policy.created", _set("specversion", "2.0"), id="specversion-2.0"),
    pytest.param("account.discovered", _set("partnerid", "acme:evil"), id="partnerid-colon"),
    pytest.param("import.decision.recorded", _set("partnerid", "a:b"), id="partnerid-colon-dec"),
    pytest.param("import_policy.created", _set("data.partner_id", "a:b"), id="data-partner-colon"),
    pytest.param("customer.added", _set("data.partner_id", "a:b"), id="customer-partner-colon"),
    pytest.param("account.discovered", _set("data.account_type", "guest"), id="account-type"),
    pytest.param("import_policy.created", _set("data.account_type", "guest"), id="policy-type"),
    pytest.param("account.discovered", _set("data.directory", "ldap"), id="directory"),
    pytest.param("rotation.enroll", _set("data.account.directory", "ldap"), id="cmd-directory"),
    pytest.param("psa.contact.link", _set("data.provider", "kaseya"), id="psa-provider"),
    pytest.param("psa.contact.link", _set("data.provider", "itglue"), id="psa-provider-doc"),
    pytest.param(
        "documentation.password.link", _set("data.provider", "confluence"), id="doc-provider"
    ),
    pytest.param("customer.added", _set("data.psa.provider", "kaseya"), id="customer-psa"),
    pytest.param(
        "customer.updated", _set("data.documentation.provider", "halo"), id="customer-doc"
    ),
    pytest.param("import.decision.recorded", _set("data.outcome", "maybe"), id="outcome"),
    pytest.param("documentation.password.link", _set("data.sync_back", False), id="sync-back"),
    pytest.param("account.discovered", _set("time", "2024-05-01T12:00:00"), id="naive-time"),
    pytest.param("account.discovered", _drop("data.external_id"), id="no-external-id"),
    pytest.param("psa.contact.link", _drop("data.account.key"), id="command-no-key"),
    pytest.param("vault.password.store", _drop("data.policy_version"), id="no-policy-version"),
]


@pytest.mark.parametrize(("type_", "mutate"), NEGATIVE)
def test_invalid_message_is_rejected(type_: str, mutate: Callable[[dict], None]) -> None:
    wire = EXAMPLES[type_]()
    mutate(wire)
    assert_rejected_by_both(type_, wire)


def assert_read_tolerantly(type_: str, wire: dict, path: tuple[str, ...]) -> None:
    """The model ignores the unknown field at ``path``; only the schemas of messages
    this system produces refuse it (producers emit the contract's fields alone)."""
    spec = BY_TYPE[type_]
    event = spec.envelope_model().model_validate(wire)
    dumped = event.model_dump(mode="json")
    node = dumped
    for part in path[:-1]:
        node = node[part]
    assert path[-1] not in node, "an unknown field survived the round trip"
    assert validator(type_).is_valid(wire) is spec.inbound


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_unknown_field_inside_data_is_ignored_by_readers(type_: str) -> None:
    """docs/contract.md §2: tolerant readers; a newer producer's field is not an error."""
    wire = EXAMPLES[type_]()
    wire["data"]["unexpected"] = "value"
    assert_read_tolerantly(type_, wire, ("data", "unexpected"))


def test_unknown_nested_option_is_ignored_by_readers() -> None:
    wire = EXAMPLES["import_policy.created"]()
    wire["data"]["options"]["psa"]["color"] = "x"
    assert_read_tolerantly("import_policy.created", wire, ("data", "options", "psa", "color"))


def test_only_inbound_data_schemas_allow_unknown_fields() -> None:
    inbound = {spec.type for spec in MESSAGES if spec.inbound}
    assert inbound == {"account.discovered", "account.password.changed"}
    for spec in MESSAGES:
        schema = json.loads((SCHEMA_DIR / "json" / f"{spec.type}.json").read_text())
        data = schema["properties"]["data"]
        target = schema["$defs"][data["$ref"].rpartition("/")[2]] if "$ref" in data else data
        assert target["additionalProperties"] is spec.inbound, spec.type


@pytest.mark.parametrize("type_", CAUSED_TYPES)
@pytest.mark.parametrize("attribute", ["causationid", "correlationid"])
def test_command_and_decision_need_causation_and_correlation(type_: str, attribute: str) -> None:
    wire = EXAMPLES[type_]()
    del wire[attribute]
    assert_rejected_by_both(type_, wire)


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_schema_pins_its_own_type(type_: str) -> None:
    for other in ALL_TYPES:
        wire = EXAMPLES[type_]()
        wire["type"] = other
        assert validator(type_).is_valid(wire) == (other == type_), other


@pytest.mark.parametrize(
    ("sent", "claimed"),
    [
        ("psa.contact.link", "documentation.password.link"),
        ("import_policy.created", "import_policy.deleted"),
        ("account.discovered", "customer.added"),
        ("vault.password.store", "psa.contact.link"),
    ],
)
def test_dispatch_by_type_rejects_a_payload_of_another_shape(sent: str, claimed: str) -> None:
    wire = EXAMPLES[sent]()
    wire["type"] = claimed
    assert_rejected_by_both(claimed, wire)


@pytest.mark.parametrize("rule", ["documentation", "psa"])
def test_end_user_create_without_match_is_rejected(rule: str) -> None:
    wire = EXAMPLES["import_policy.created"]()
    wire["data"]["options"][rule] = {"match": False, "create_if_missing": True}
    with pytest.raises(ValidationError, match="create_if_missing requires match"):
        BY_TYPE["import_policy.created"].envelope_model().model_validate(wire)
    with pytest.raises(ValidationError):
        EndUserOptions.model_validate({rule: {"match": False, "create_if_missing": True}})


def test_administrator_create_without_match_is_rejected() -> None:
    bad = {"documentation": {"create_if_missing": True}}
    with pytest.raises(ValidationError, match="create_if_missing requires match"):
        AdministratorOptions.model_validate(bad)
    wire = EXAMPLES["import_policy.created"]()
    wire["data"] |= {"account_type": "administrator", "options": bad}
    with pytest.raises(ValidationError):
        BY_TYPE["import_policy.created"].envelope_model().model_validate(wire)


@pytest.mark.parametrize(
    ("account_type", "options"),
    [
        ("administrator", {"send_welcome_email": True}),
        ("administrator", {"psa": {"match": True}}),
        ("end_user", {"save_password_in_vault": True}),
        ("end_user", {"enable_password_rotation": True}),
    ],
)
def test_policy_options_of_the_other_account_type_are_not_read(
    account_type: str, options: dict
) -> None:
    """Each account type has its own set of options (docs/contract.md §1): the other
    type's are unknown fields, ignored by readers and refused by the produced schema."""
    wire = EXAMPLES["import_policy.updated"]()
    wire["data"] |= {"account_type": account_type, "options": options}
    [name] = options
    assert_read_tolerantly("import_policy.updated", wire, ("data", "options", name))
