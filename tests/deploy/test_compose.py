"""docker-compose.yml: valid against the compose-spec schema, and the stack the issue asks for."""

import copy
import re
import shutil
import subprocess
from typing import Any

import pytest

from .deploylib import (
    ENV_EXAMPLE,
    SETTINGS,
    InterpolationError,
    compose_errors,
    find_tool,
    http_env,
    interpolate,
    load_compose,
    read_env_file,
)

pytestmark = pytest.mark.deploy

# Stand-ins for the two secrets .env.example leaves empty on purpose.
FILLED = {"AUTH_JWT_SECRET": "x" * 48, "POSTGRES_PASSWORD": "p" * 32, "SECRETS_KEY": "k" * 44}


def _env() -> dict[str, str]:
    env = read_env_file(ENV_EXAMPLE)
    env.update(FILLED)
    return env


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as Compose sees it: interpolated with .env.example's values."""
    return interpolate(load_compose(), _env())  # type: ignore[no-any-return]


def test_validates_against_compose_spec(compose: dict[str, Any]) -> None:
    errors = compose_errors(compose)
    assert not errors, "\n".join(errors)


def test_validates_with_defaults_only() -> None:
    # Only the secrets set: every other variable falls back to its default.
    errors = compose_errors(interpolate(load_compose(), FILLED))
    assert not errors, "\n".join(errors)


def test_schema_rejects_what_compose_rejects(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["import-worker"]["depends_on"]["kafka"]["condition"] = "healthy"
    broken["services"]["policy-service"]["helthcheck"] = {}
    assert len(compose_errors(broken)) >= 2


def test_every_variable_is_documented_in_env_example() -> None:
    seen: set[str] = set()
    interpolate(load_compose(), _env(), seen)
    assert seen <= set(read_env_file(ENV_EXAMPLE)), seen - set(read_env_file(ENV_EXAMPLE))


@pytest.mark.parametrize("secret", sorted(FILLED))
def test_secrets_are_required(secret: str) -> None:
    env = _env()
    env[secret] = ""
    with pytest.raises(InterpolationError, match=secret):
        interpolate(load_compose(), env)
    assert read_env_file(ENV_EXAMPLE)[secret] == ""  # no secret in the repository


def test_kafka_is_a_kraft_single_node(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert set(listeners) == {"PLAINTEXT", "CONTROLLER", "PLAINTEXT_HOST"}
    assert advertised["PLAINTEXT"] == "kafka:19092"  # in-network
    assert advertised["PLAINTEXT_HOST"].startswith("localhost:")  # host access
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    for name, value in env.items():
        if name.endswith("REPLICATION_FACTOR") or name.endswith("MIN_ISR"):
            assert value == "1", name
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])


def test_services_healthchecks_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    long_running = {name for name, s in services.items() if s.get("restart") != "no"}
    one_shot = set(services) - long_running
    assert one_shot == {"kafka-topics", *(f"{name}-migrate" for name in SETTINGS)}
    assert long_running == {"kafka", "postgres", *SETTINGS}
    for name in long_running:
        assert "healthcheck" in services[name], name
    # `docker compose up --wait` succeeds only if each one-shot is awaited
    # (service_completed_successfully) by a long-running service.
    for name in one_shot:
        assert any(
            services[other].get("depends_on", {}).get(name, {}).get("condition")
            == "service_completed_successfully"
            for other in long_running
        ), name
    for name in SETTINGS:
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["kafka-topics"]["condition"] == "service_completed_successfully"
        assert deps[f"{name}-migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["command"] == [name, "run"]
        assert services[f"{name}-migrate"]["command"] == [name, "migrate"]
        # Each migrates the database its service uses.
        migrate_url = services[f"{name}-migrate"]["environment"]["DATABASE_URL"]
        assert migrate_url == services[name]["environment"]["DATABASE_URL"], name
        # The image's healthcheck script asks the service's own port.
        assert services[name]["healthcheck"]["test"] == [
            "CMD",
            "python",
            "/usr/local/bin/healthcheck",
            "/readyz",
        ], name
    assert services["import-worker"]["deploy"]["replicas"] == 2


def test_services_listen_on_every_interface_of_their_container(compose: dict[str, Any]) -> None:
    # The services default to loopback (`make run`); published ports reach the container IP.
    services = compose["services"]
    for name in SETTINGS:
        host_var, port_var, default_port = http_env(name)
        env = services[name]["environment"]
        assert env[host_var] == "0.0.0.0", name
        # The port the healthcheck script falls back to (deploy/docker/healthcheck.py).
        assert env.get(port_var, str(default_port)) == str(default_port), name


def test_named_volumes_hold_the_data(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(compose["volumes"]) == {"kafka-data", "postgres-data"}
    assert "kafka-data:/var/lib/kafka/data" in services["kafka"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_app_containers_are_hardened(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "/var/lib/msp-account-import" in service["tmpfs"], name


def test_topic_script_passes_shellcheck(compose: dict[str, Any]) -> None:
    shellcheck = find_tool("shellcheck") or shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (make validate-deploy installs it)")
    (script,) = compose["services"]["kafka-topics"]["command"]
    result = subprocess.run(
        [shellcheck, "--shell=bash", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
