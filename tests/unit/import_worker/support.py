"""Builders for the engine tests: customers, policies, discovered records, checks.

Expected values are written from docs/contract.md (topic names, header names,
reasons), not taken from the code under test.
"""

import json
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

import schemas
from schemas.enums import AccountType, Directory, DocumentationProvider, PsaProvider
from schemas.ids import command_id
from schemas.mappings import DocumentationMapping, PsaMapping
from schemas.options import AdministratorOptions, EndUserOptions, MatchOrCreate
from schemas.topics import TopicNames
from services.decision import CustomerView, EffectivePolicy
from services.import_worker.domain.inbound import InRecord, Origin
from services.import_worker.service_layer.engine import BatchEngine, EngineConfig
from services.import_worker.service_layer.ports import CustomerRecord, LedgerRow, OutMessage

from .fakes import FakeDirectory, FakeLedger, FakePublisher

PARTNER = "acme-msp"
OTHER_PARTNER = "globex-msp"
DISCOVERED = "account.discovered"
RETRY_TOPIC = "import-worker.account.discovered.retry"
DELAYS = (1.0, 2.0, 5.0)
SOURCE = "/import-worker"
END_USER, ADMIN = AccountType.END_USER, AccountType.ADMINISTRATOR
AD, ENTRA, LOCAL = Directory.ACTIVE_DIRECTORY, Directory.ENTRA_ID, Directory.LOCAL

# docs/contract.md §2: the topic (default name) of every type the worker sends.
TOPIC_OF = {
    "psa.contact.link": "commands.psa",
    "documentation.password.link": "commands.documentation",
    "vault.password.store": "commands.vault",
    "rotation.enroll": "commands.rotation",
    "notification.welcome_email.send": "commands.notification",
    "identity.self_service_reset.enable": "commands.identity",
    "identity.m365_password_sync.enable": "commands.identity",
    "import.decision.recorded": "import.decisions",
}
COMMAND_TOPICS = frozenset(TOPIC_OF.values()) - {"import.decisions"}
CE_HEADER = ("content-type", b"application/cloudevents+json")

PSA = PsaMapping(provider=PsaProvider.CONNECTWISE, company_id="cw-1001")
DOC = DocumentationMapping(provider=DocumentationProvider.ITGLUE, organization_id="itg-77")
SCHEMA_DIR = Path(schemas.__file__).resolve().parent / "json"


def default_topics() -> TopicNames:
    """``TopicNames()`` with its declared defaults, whatever ``TOPIC_*`` says."""
    return TopicNames(**{n: f.default for n, f in TopicNames.model_fields.items()})


def make_engine(
    directory: FakeDirectory,
    ledger: FakeLedger | None = None,
    publisher: FakePublisher | None = None,
) -> BatchEngine:
    config = EngineConfig(
        topics=default_topics(), retry_topic=RETRY_TOPIC, retry_delays=DELAYS, source=SOURCE
    )
    return BatchEngine(config, directory, ledger or FakeLedger(), publisher or FakePublisher())


def mc(match: bool = False, create: bool = False) -> MatchOrCreate:
    return MatchOrCreate(match=match, create_if_missing=create)


def policy(account_type: AccountType, version: int = 3, **options: Any) -> EffectivePolicy:
    model = EndUserOptions if account_type is END_USER else AdministratorOptions
    return EffectivePolicy(
        id=uuid.uuid5(uuid.NAMESPACE_DNS, f"policy-{account_type}-{version}-{sorted(options)}"),
        version=version,
        account_type=account_type,
        options=model(**options),
    )


ALL_END_USER = {
    "documentation": mc(True, True),
    "psa": mc(True, True),
    "send_welcome_email": True,
    "enable_self_serve_reset": True,
    "sync_password_to_m365": True,
}
ALL_ADMIN = {
    "documentation": mc(True, False),
    "save_password_in_vault": True,
    "enable_password_rotation": True,
}


def customer(
    name: str = "c1",
    *,
    partner: str = PARTNER,
    psa: bool = True,
    documentation: bool = True,
    shared: bool = False,
    end_user: EffectivePolicy | None = None,
    admin: EffectivePolicy | None = None,
    pending: frozenset[AccountType] = frozenset(),
) -> CustomerRecord:
    return CustomerRecord(
        view=CustomerView(
            id=customer_id(name),
            partner_id=partner,
            psa=PSA if psa else None,
            documentation=DOC if documentation else None,
            psa_company_shared=shared,
        ),
        policies={END_USER: end_user, ADMIN: admin},
        pending=pending,
    )


def customer_id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_DNS, f"customer-{name}.example")


def discovered(
    customer_name: str = "c1",
    *,
    account_type: AccountType = END_USER,
    directory: Directory = AD,
    external_id: str = "ext-1",
    event_id: str | None = None,
    partnerid: str = PARTNER,
    email: str | None = "jane.doe@example.com",
    **extensions: Any,
) -> dict[str, Any]:
    """An ``account.discovered`` envelope as an agent would put it on the wire."""
    data: dict[str, Any] = {
        "customer_id": str(customer_id(customer_name)),
        "account_type": account_type.value,
        "directory": directory.value,
        "external_id": external_id,
        "username": "jdoe",
        "display_name": "Jane Doe",
        "email": email,
    }
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "/agents/agent-7",
        "type": DISCOVERED,
        "time": "2024-05-01T12:00:00Z",
        "subject": str(customer_id(customer_name)),
        "datacontenttype": "application/json",
        "partnerid": partnerid,
        "data": data,
        **extensions,
    }


def key_of(event: dict[str, Any], partner: str = PARTNER) -> str:
    d = event["data"]
    return f"{partner}:{d['customer_id']}:{d['directory']}:{d['external_id']}"


def record(
    value: dict[str, Any] | bytes | None,
    offset: int = 0,
    *,
    topic: str = DISCOVERED,
    partition: int = 0,
    key: bytes | None = b"customer-key",
    attempt: int = 0,
    origin: Origin | None = None,
) -> InRecord:
    raw = json.dumps(value).encode() if isinstance(value, dict) else value
    return InRecord(topic, partition, offset, key, raw, attempt=attempt, origin=origin)


def body(message: OutMessage) -> dict[str, Any]:
    assert message.value is not None
    parsed: dict[str, Any] = json.loads(message.value)
    return parsed


def headers(message: OutMessage) -> dict[str, str]:
    return {k: v.decode() for k, v in message.headers}


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value.upper():
        return False
    try:
        return datetime.fromisoformat(value.replace("z", "Z")).tzinfo is not None
    except ValueError:
        return False


@cache
def validator(type_: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{type_}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    checker = FormatChecker()
    checker.checks("date-time")(_is_rfc3339)
    return Draft202012Validator(schema, format_checker=checker)


def assert_valid(message: OutMessage) -> dict[str, Any]:
    """The message is a contract message: its schema accepts it, its id is right."""
    envelope = body(message)
    errors = [e.message for e in validator(envelope["type"]).iter_errors(envelope)]
    assert not errors, (envelope["type"], errors)
    assert message.topic == TOPIC_OF[envelope["type"]]
    assert message.key == envelope["subject"].encode()
    assert CE_HEADER in message.headers
    if envelope["type"] != "import.decision.recorded":
        assert envelope["id"] == str(command_id(envelope["subject"], envelope["type"]))
    return envelope


def ledger_backed(
    publisher: FakePublisher, rows: dict[str, LedgerRow], older: frozenset[str] = frozenset()
) -> None:
    """Every row's decision, and every command it lists, was acknowledged.

    ``older``: rows that were in the ledger before the test began.
    """
    sent = {body(m)["id"]: body(m) for m in publisher.sent if m.topic in TOPIC_OF.values()}
    for key, row in rows.items():
        if key in older:
            continue
        decision = sent.get(str(row.decision_id))
        assert decision is not None, f"ledger holds {key} but its decision was not published"
        assert decision["subject"] == key
        assert decision["data"]["outcome"] == "imported"
        for cid in decision["data"]["command_ids"]:
            assert cid in sent, f"ledger holds {key} but command {cid} was not published"
