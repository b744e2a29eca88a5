"""The bus as docs/contract.md §2 describes it: AsyncAPI, topics, keys, ids."""

import uuid
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

import schemas
from schemas.discovery import DiscoveredAccount, account_key
from schemas.ids import command_id
from schemas.topics import TopicNames

pytestmark = pytest.mark.unit

SCHEMA_DIR = Path(schemas.__file__).resolve().parent

# docs/contract.md §2, typed from the table: topic -> (key, message types).
CONTRACT_TOPICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "policy.events": (
        "policy id",
        ("import_policy.created", "import_policy.updated", "import_policy.deleted"),
    ),
    "customer.events": ("customer id", ("customer.added", "customer.updated", "customer.removed")),
    "account.discovered": ("customer id", ("account.discovered",)),
    "commands.psa": ("account key", ("psa.contact.link",)),
    "commands.documentation": ("account key", ("documentation.password.link",)),
    "commands.vault": ("account key", ("vault.password.store",)),
    "commands.rotation": ("account key", ("rotation.enroll",)),
    "commands.notification": ("account key", ("notification.welcome_email.send",)),
    "commands.identity": (
        "account key",
        ("identity.self_service_reset.enable", "identity.m365_password_sync.enable"),
    ),
    "import.decisions": ("account key", ("import.decision.recorded",)),
    "account.discovered.dlq": ("as received", ()),
    "integration.events": (
        "<partner_id>:<provider>",
        ("integration.configured", "integration.removed"),
    ),
    "command.results": ("account key", ("command.succeeded", "command.failed")),
    "account.passwords": ("account key", ("account.password.changed",)),
    "commands.dlq": ("as received", ()),
    "agent.requests": ("account key", ("rotation.requested",)),
}
COMMAND_TYPES = [
    t for topic, (_, ts) in CONTRACT_TOPICS.items() if topic.startswith("commands.") for t in ts
]
DLQ_HEADERS = {
    "x-error-reason",
    "x-error-detail",
    "x-original-topic",
    "x-original-partition",
    "x-original-offset",
}
DLQ_REASONS = {
    "invalid_json",
    "invalid_envelope",
    "invalid_data",
    "unknown_customer",
    "partner_mismatch",
    "processing_failed",
}

PARTNER = "acme-msp"
CUSTOMER = "3f6c2b7e-9d41-4c1a-8e0f-2b5d7a9c1e34"
EXTERNAL_ID = "S-1-5-21-3623811015-3361044348-30300820-1013"


def _key(directory: str = "active_directory", partner: str = PARTNER) -> str:
    return f"{partner}:{CUSTOMER}:{directory}:{EXTERNAL_ID}"


@pytest.fixture
def clean_topic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TopicNames.model_fields:
        monkeypatch.delenv(f"TOPIC_{name.upper()}", raising=False)


# ---------------------------------------------------------------- AsyncAPI


@pytest.fixture(scope="module")
def asyncapi() -> dict:
    return yaml.safe_load((SCHEMA_DIR / "asyncapi.yaml").read_text(encoding="utf-8"))


def _channel_at(doc: dict, topic: str) -> dict:
    found = [c for c in doc["channels"].values() if c["address"] == topic]
    assert len(found) == 1, f"{len(found)} channels at {topic}"
    return found[0]


def test_asyncapi_version_and_content_type(asyncapi: dict) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["defaultContentType"] == "application/cloudevents+json"


def test_asyncapi_has_a_channel_per_contract_topic(asyncapi: dict) -> None:
    addresses = sorted(c["address"] for c in asyncapi["channels"].values())
    assert addresses == sorted(CONTRACT_TOPICS)


@pytest.mark.parametrize("topic", list(CONTRACT_TOPICS))
def test_asyncapi_channel_carries_the_contract_types_and_key(asyncapi: dict, topic: str) -> None:
    key, types = CONTRACT_TOPICS[topic]
    channel = _channel_at(asyncapi, topic)
    components = asyncapi["components"]["messages"]
    refs = {name: m["$ref"] for name, m in channel["messages"].items()}
    for name, ref in refs.items():
        assert ref == f"#/components/messages/{name}"
        assert name in components
    assert f"Key: {key}." in channel["description"]
    if not types:  # the dead-letter topic
        (message,) = (components[name] for name in refs)
        assert set(message["headers"]["required"]) == DLQ_HEADERS
        assert set(message["headers"]["properties"]["x-error-reason"]["enum"]) == DLQ_REASONS
        return
    assert set(refs) == set(types)
    for type_ in types:
        message = components[type_]
        assert message["bindings"]["kafka"]["key"]["description"] == key
        assert message["contentType"] == "application/cloudevents+json"
        pins = [p for p in message["payload"]["allOf"] if "properties" in p]
        assert pins == [{"properties": {"type": {"const": type_}}}]


def test_asyncapi_documents_the_command_id_formula(asyncapi: dict) -> None:
    assert "UUIDv5" in asyncapi["info"]["description"]
    assert "'<account key>|<command type>'" in asyncapi["info"]["description"]


# ---------------------------------------------------------------- ids


def test_command_id_is_a_deterministic_uuid5() -> None:
    key = _key()
    first = command_id(key, "psa.contact.link")
    assert first == command_id(key, "psa.contact.link")
    assert first.version == 5
    assert first.variant == uuid.RFC_4122
    # The formula published in the AsyncAPI description, computed independently.
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "urn:msp-account-import")
    assert first == uuid.uuid5(namespace, f"{key}|psa.contact.link")


def test_command_id_differs_by_type_and_by_account() -> None:
    key = _key()
    assert len(COMMAND_TYPES) == 7
    assert len({command_id(key, t) for t in COMMAND_TYPES}) == len(COMMAND_TYPES)
    for other in (_key("local"), _key(partner="other-msp"), key.replace(EXTERNAL_ID, "S-1-5-2")):
        assert command_id(key, "rotation.enroll") != command_id(other, "rotation.enroll")


@pytest.mark.parametrize("directory", ["active_directory", "entra_id", "local"])
def test_account_key_layout(directory: str) -> None:
    account = DiscoveredAccount.model_validate(
        {
            "customer_id": CUSTOMER,
            "account_type": "end_user",
            "directory": directory,
            "external_id": EXTERNAL_ID,
            "username": "jdoe",
        }
    )
    expected = f"acme-msp:{CUSTOMER}:{directory}:{EXTERNAL_ID}"
    assert account_key("acme-msp", account) == expected


# ---------------------------------------------------------------- topic names


@pytest.mark.usefixtures("clean_topic_env")
def test_topic_names_default_to_the_contract() -> None:
    topics = TopicNames()
    assert topics.all_topics() == list(CONTRACT_TOPICS)
    assert topics.partitions == 8


@pytest.mark.usefixtures("clean_topic_env")
def test_topic_names_read_overrides_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPIC_COMMANDS_PSA", "acme.commands.psa")
    monkeypatch.setenv("TOPIC_PARTITIONS", "3")
    topics = TopicNames()
    assert topics.commands_psa == "acme.commands.psa"
    assert topics.channel("commands_psa") == "acme.commands.psa"
    assert topics.partitions == 3
    expected = ["acme.commands.psa" if t == "commands.psa" else t for t in CONTRACT_TOPICS]
    assert topics.all_topics() == expected


@pytest.mark.usefixtures("clean_topic_env")
@pytest.mark.parametrize("partitions", ["0", "many"])
def test_topic_partitions_must_be_a_positive_int(
    monkeypatch: pytest.MonkeyPatch, partitions: str
) -> None:
    monkeypatch.setenv("TOPIC_PARTITIONS", partitions)
    with pytest.raises(ValidationError):
        TopicNames()
