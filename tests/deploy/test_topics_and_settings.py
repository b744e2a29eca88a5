"""The topics and settings of the deployment files agree with the code.

Topic names come from the contract package (schemas/topics.py) and the
worker's settings (its retry topic); environment variables must be fields of
the services' pydantic settings (policy service, import worker, handlers), so
a typo in a manifest cannot go unnoticed.
"""

from typing import Any

import pytest

from .deploylib import (
    COMPACTED_CHANNELS,
    OVERLAYS,
    SETTINGS,
    config_maps,
    container_env,
    default_partitions,
    expected_topics,
    handler_command_topics,
    load_compose,
    of_kind,
    one,
    pod_specs,
    render,
    required_env_names,
    settings_env_names,
)

pytestmark = pytest.mark.deploy

OVERLAY_PATHS = [f"overlays/{o}" for o in OVERLAYS]
TOPIC_RENDERS = ["base/kafka-topics", *OVERLAY_PATHS]


def compose_topics() -> dict[str, tuple[str, str]]:
    """name -> (cleanup.policy, retention.ms) from the kafka-topics one-shot service."""
    spec = load_compose()["services"]["kafka-topics"]["environment"]["CREATE_TOPICS"]
    rows = [line.split() for line in spec.splitlines() if line.strip()]
    assert all(len(row) == 3 for row in rows), rows
    topics = {name: (cleanup, retention) for name, cleanup, retention in rows}
    assert len(topics) == len(rows), "a topic is listed twice"
    return topics


def kafka_topics(kustomization: str) -> dict[str, Any]:
    topics: dict[str, Any] = {}
    for doc in of_kind(render(kustomization), "KafkaTopic"):
        name = doc["spec"]["topicName"]
        assert doc["metadata"]["name"] == name
        assert name not in topics
        topics[name] = doc
    return topics


def test_contract_topics_are_the_ones_expected() -> None:
    # A guard on this test's own premise: the contract's table (docs/contract.md §2).
    assert set(expected_topics().values()) == {
        "policy.events",
        "customer.events",
        "account.discovered",
        "commands.psa",
        "commands.documentation",
        "commands.vault",
        "commands.rotation",
        "commands.notification",
        "commands.identity",
        "import.decisions",
        "account.discovered.dlq",
        "integration.events",
        "command.results",
        "account.passwords",
        "commands.dlq",
        "agent.requests",
        "import-worker.account.discovered.retry",
    }


def test_compose_creates_exactly_the_contract_topics() -> None:
    assert set(compose_topics()) == set(expected_topics().values())
    kafka_topics_service = load_compose()["services"]["kafka-topics"]["environment"]
    assert kafka_topics_service["PARTITIONS"] == f"${{TOPIC_PARTITIONS:-{default_partitions()}}}"


@pytest.mark.parametrize("kustomization", TOPIC_RENDERS)
def test_kafka_topics_are_exactly_the_contract_topics(kustomization: str) -> None:
    topics = kafka_topics(kustomization)
    assert set(topics) == set(expected_topics().values())
    for doc in topics.values():
        assert doc["metadata"]["labels"]["strimzi.io/cluster"]


def test_compaction_and_retention_agree_everywhere() -> None:
    compacted = {expected_topics()[channel] for channel in COMPACTED_CHANNELS}
    in_compose = compose_topics()
    for kustomization in TOPIC_RENDERS:
        for name, doc in kafka_topics(kustomization).items():
            config = doc["spec"]["config"]
            cleanup = "compact" if name in compacted else "delete"
            assert config["cleanup.policy"] == cleanup, name
            assert in_compose[name] == (config["cleanup.policy"], config["retention.ms"]), name


def test_base_partitions_are_the_services_default() -> None:
    for doc in kafka_topics("base/kafka-topics").values():
        assert doc["spec"]["partitions"] == default_partitions()


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_topic_partitions_match_topic_partitions_setting(overlay: str) -> None:
    docs = render(overlay)
    partitions = {doc["spec"]["partitions"] for doc in of_kind(docs, "KafkaTopic")}
    assert len(partitions) == 1
    for _, pod in pod_specs(docs):
        for container in pod["containers"]:
            env = container_env(container, config_maps(docs))
            if "TOPIC_PARTITIONS" in env:
                assert env["TOPIC_PARTITIONS"] == str(*partitions)


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_keda_scales_the_worker_group_on_account_discovered(overlay: str) -> None:
    docs = render(overlay)
    scaled = one(docs, "ScaledObject", "import-worker")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "import-worker"
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    worker = one(docs, "Deployment", "import-worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    env = container_env(container, config_maps(docs))
    assert meta["topic"] == expected_topics()["account_discovered"]
    assert meta["consumerGroup"] == env["WORKER_GROUP_ID"]
    assert meta["bootstrapServers"] == env["KAFKA_BOOTSTRAP_SERVERS"]
    assert meta["allowIdleConsumers"] == "false"
    topic = kafka_topics(overlay)[meta["topic"]]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= topic["spec"]["partitions"]


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_keda_scales_the_handlers_group_on_the_command_topics(overlay: str) -> None:
    docs = render(overlay)
    scaled = one(docs, "ScaledObject", "handlers")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "handlers"
    handlers = one(docs, "Deployment", "handlers")
    (container,) = handlers["spec"]["template"]["spec"]["containers"]
    env = container_env(container, config_maps(docs))
    triggers = spec["triggers"]
    assert all(trigger["type"] == "kafka" for trigger in triggers)
    # One trigger per command topic the code consumes: a topic nobody consumes
    # yet would show ever-growing lag and pin the replicas at the maximum.
    topics = [trigger["metadata"]["topic"] for trigger in triggers]
    assert sorted(topics) == sorted(handler_command_topics())
    in_kafka = kafka_topics(overlay)
    for trigger in triggers:
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == env["HANDLERS_GROUP_ID"]
        assert meta["bootstrapServers"] == env["KAFKA_BOOTSTRAP_SERVERS"]
        assert meta["allowIdleConsumers"] == "false"
        assert meta["offsetResetPolicy"] == "earliest"  # the consumer's auto_offset_reset
        partitions = in_kafka[meta["topic"]]["spec"]["partitions"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_handlers_and_policy_service_share_the_secrets_key(overlay: str) -> None:
    # The handlers open what the policy service sealed: one key, from one Secret entry.
    docs = render(overlay)
    refs: dict[str, Any] = {}
    for name in ("policy-service", "handlers"):
        (container,) = one(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        (item,) = [item for item in container["env"] if item["name"] == "SECRETS_KEY"]
        refs[name] = item["valueFrom"]["secretKeyRef"]
    assert refs["policy-service"] == refs["handlers"]


def _service_of(command: list[str]) -> str:
    assert command[0] in SETTINGS, command
    return command[0]


@pytest.mark.parametrize("overlay", ["base", *OVERLAY_PATHS])
def test_manifest_env_vars_exist_in_settings(overlay: str) -> None:
    docs = render(overlay)
    maps = config_maps(docs)
    for workload, pod in pod_specs(docs):
        for container in pod["containers"]:
            service = _service_of(container["command"])
            env = container_env(container, maps)
            unknown = set(env) - settings_env_names(service)
            assert not unknown, f"{workload['metadata']['name']}: {sorted(unknown)}"
            if container["command"][1] == "run":
                missing = required_env_names(service) - set(env)
                assert not missing, f"{workload['metadata']['name']}: {sorted(missing)}"


def test_config_maps_only_hold_settings() -> None:
    # Keys of the generated ConfigMaps that no container reads would be dead config.
    docs = render("base")
    read: set[str] = set()
    for _, pod in pod_specs(docs):
        for container in pod["containers"]:
            read |= set(container_env(container, config_maps(docs)))
    for name, data in config_maps(docs).items():
        assert set(data) <= read, name


def test_compose_env_vars_exist_in_settings() -> None:
    for name, service in load_compose()["services"].items():
        if "build" not in service:
            continue  # Kafka and PostgreSQL images
        owner = _service_of(service["command"])
        unknown = set(service["environment"]) - settings_env_names(owner)
        assert not unknown, f"{name}: {sorted(unknown)}"
        if service["command"][1] == "run":
            assert required_env_names(owner) <= set(service["environment"]), name


def test_compose_gives_handlers_the_policy_services_secrets_key() -> None:
    services = load_compose()["services"]
    key = services["policy-service"]["environment"]["SECRETS_KEY"]
    assert key.startswith("${SECRETS_KEY")
    assert services["handlers"]["environment"]["SECRETS_KEY"] == key
