"""deploy/: every kustomization renders with kustomize and validates strictly.

Core resources against the Kubernetes OpenAPI schemas of kubernetes-validate,
KEDA and Strimzi resources against their vendored CRDs; then the properties
the deployment issue asks for (probes, hardening, budgets, autoscaling).
"""

import copy
import ipaddress
from collections import Counter
from typing import Any

import pytest
import yaml

from .deploylib import (
    DEPLOY,
    HTTP_SETTINGS,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    config_maps,
    container_env,
    http_env,
    kubectl,
    of_kind,
    one,
    pod_specs,
    render,
    validate_any,
    validate_core,
    validate_custom,
)

pytestmark = pytest.mark.deploy

RENDERED = ("base", "base/kafka-topics", *(f"overlays/{o}" for o in OVERLAYS))
OVERLAY_PATHS = [f"overlays/{o}" for o in OVERLAYS]
# Every service has a Deployment, a Service and a migration Job of that name.
SERVICES = tuple(HTTP_SETTINGS)


def test_kubectl_with_kustomize_v5_is_available() -> None:
    assert kubectl()


@pytest.mark.parametrize("kustomization", RENDERED)
def test_kustomization_renders(kustomization: str) -> None:
    assert render(kustomization)


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_overlay_has_every_resource(overlay: str) -> None:
    kinds = Counter(doc["kind"] for doc in render(overlay))
    assert kinds == {
        "Namespace": 1,
        "ServiceAccount": 3,
        "ConfigMap": 4,
        "Deployment": 3,
        "Service": 3,
        "Job": 3,
        "HorizontalPodAutoscaler": 1,
        "ScaledObject": 2,
        "PodDisruptionBudget": 3,
        "NetworkPolicy": 5,
        "KafkaTopic": 17,
    }
    # The Secret is the operator's: no kustomization renders one.
    assert "Secret" not in kinds


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", RENDERED)
def test_resources_validate_strictly(kustomization: str, version: str) -> None:
    errors = [err for doc in render(kustomization) for err in validate_any(doc, version)]
    assert not errors, "\n".join(errors)


def test_secret_template_validates_and_holds_no_secret() -> None:
    path = DEPLOY / "base" / "secret.template.yaml"
    (doc,) = list(yaml.safe_load_all(path.read_text("utf-8")))
    for version in KUBERNETES_VERSIONS:
        assert validate_core(doc, version) is None
    assert all("REPLACE" in value for value in doc["stringData"].values())
    # Its keys are exactly the ones the workloads reference.
    referenced = {
        item["valueFrom"]["secretKeyRef"]["key"]
        for overlay in OVERLAY_PATHS
        for _, pod in pod_specs(render(overlay))
        for container in pod["containers"]
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert referenced == set(doc["stringData"])
    kustomization = (DEPLOY / "base" / "kustomization.yaml").read_text("utf-8")
    assert "- secret.template.yaml" not in kustomization


# Negative controls: the validators do reject what is wrong, so a pass means something.


def _workload(kind: str, overlay: str = "overlays/prod") -> dict[str, Any]:
    return copy.deepcopy(dict(of_kind(render(overlay), kind)[0]))


def test_core_validation_rejects_unknown_field() -> None:
    deployment = _workload("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert validate_core(deployment, KUBERNETES_VERSIONS[-1]) is not None


def test_crd_validation_rejects_unknown_field_and_bad_values() -> None:
    scaled = _workload("ScaledObject")
    scaled["spec"]["maxReplicas"] = 3
    assert validate_custom(scaled, KUBERNETES_VERSIONS[-1])
    topic = _workload("KafkaTopic")
    topic["spec"]["partitions"] = 0
    assert validate_custom(topic, KUBERNETES_VERSIONS[-1])
    topic = _workload("KafkaTopic")
    topic["metadata"]["labels"] = {"strimzi.io/cluster": 1}
    assert validate_custom(topic, KUBERNETES_VERSIONS[-1])


# ------------------------------------------------------------- properties


def _container(doc: Any) -> Any:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_workloads_are_hardened(overlay: str) -> None:
    for workload, pod in pod_specs(render(overlay)):
        name = workload["metadata"]["name"]
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == 10001, name  # the Dockerfile's USER
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, name
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, name


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_probes_use_the_real_endpoints_and_ports(overlay: str) -> None:
    docs = render(overlay)
    maps = config_maps(docs)
    for name in SERVICES:
        _, port_var, _ = http_env(name)
        deployment = one(docs, "Deployment", name)
        container = _container(deployment)
        assert container["command"] == [name, "run"]
        (port,) = container["ports"]
        assert port["name"] == "http"
        assert str(port["containerPort"]) == container_env(container, maps)[port_var]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port["containerPort"]), name
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        service = one(docs, "Service", name)
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        assert service["spec"]["ports"][0]["port"] == port["containerPort"]
        # Autoscalers own the replica count.
        assert "replicas" not in deployment["spec"]
        assert len(deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]) == 2


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_services_listen_on_every_interface(overlay: str) -> None:
    # The services default to loopback (`make run`); probes and Services reach the pod IP.
    docs = render(overlay)
    maps = config_maps(docs)
    for name in SERVICES:
        host_var, _, _ = http_env(name)
        container = _container(one(docs, "Deployment", name))
        assert container_env(container, maps).get(host_var) == "0.0.0.0", name


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_worker_has_a_writable_working_directory(overlay: str) -> None:
    # Faust writes its data directory under the image's WORKDIR.
    container = _container(one(render(overlay), "Deployment", "import-worker"))
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/var/lib/msp-account-import" in mounts
    dockerfile = (DEPLOY.parent / "Dockerfile").read_text("utf-8")
    assert "WORKDIR /var/lib/msp-account-import" in dockerfile


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_every_deployment_has_a_disruption_budget(overlay: str) -> None:
    docs = render(overlay)
    for deployment in of_kind(docs, "Deployment"):
        selector = deployment["spec"]["selector"]
        budgets = [
            pdb
            for pdb in of_kind(docs, "PodDisruptionBudget")
            if pdb["spec"]["selector"] == selector
        ]
        assert len(budgets) == 1, deployment["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_policy_service_scales_on_cpu(overlay: str) -> None:
    hpa = one(render(overlay), "HorizontalPodAutoscaler", "policy-service")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "policy-service",
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_migration_jobs_run_each_service_migrate(overlay: str) -> None:
    docs = render(overlay)
    jobs = {job["metadata"]["name"]: _container(job)["command"] for job in of_kind(docs, "Job")}
    assert jobs == {f"{name}-migrate": [name, "migrate"] for name in SERVICES}
    for name in SERVICES:
        # Each migrates the database its service uses.
        job = _secret_refs(_container(one(docs, "Job", f"{name}-migrate")))
        run = _secret_refs(_container(one(docs, "Deployment", name)))
        assert job["DATABASE_URL"] == run["DATABASE_URL"], name
        assert job["DATABASE_URL"]["key"] == f"{name}-database-url"


def _secret_refs(container: Any) -> dict[str, Any]:
    return {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }


def _selects(policy: Any, labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def _is_default_deny(policy: Any) -> bool:
    return "ingress" not in policy["spec"] and "egress" not in policy["spec"]


def _allowing(docs: Any, workload: Any) -> list[Any]:
    """The policies other than default-deny that select the pods of ``workload``."""
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return [
        p for p in of_kind(docs, "NetworkPolicy") if not _is_default_deny(p) and _selects(p, labels)
    ]


def _kafka_port(docs: Any) -> int:
    """The broker port of KAFKA_BOOTSTRAP_SERVERS, as every service is given it."""
    maps = config_maps(docs)
    ports = {
        int(server.rsplit(":", 1)[1])
        for deployment in of_kind(docs, "Deployment")
        for server in str(
            container_env(_container(deployment), maps)["KAFKA_BOOTSTRAP_SERVERS"]
        ).split(",")
    }
    (port,) = ports
    return port


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_network_policies_cover_every_pod(overlay: str) -> None:
    docs = render(overlay)
    policies = of_kind(docs, "NetworkPolicy")
    default_deny = [p for p in policies if _is_default_deny(p)]
    assert default_deny, "a default-deny policy"
    for workload, _ in pod_specs(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(_selects(p, labels) for p in default_deny), workload["metadata"]["name"]
        allowing = _allowing(docs, workload)
        assert allowing, f"no egress allowed for {workload['metadata']['name']}"
        egress_ports = {
            port["port"]
            for p in allowing
            for rule in p["spec"].get("egress", [])
            for port in rule["ports"]
        }
        assert {53, 5432} <= egress_ports
        if workload["kind"] == "Deployment":
            assert _kafka_port(docs) in egress_ports, workload["metadata"]["name"]
    for name in SERVICES:
        deployment = one(docs, "Deployment", name)
        container = _container(deployment)
        ingress_ports = {
            port["port"]
            for p in _allowing(docs, deployment)
            for rule in p["spec"].get("ingress", [])
            for port in rule["ports"]
        }
        assert ingress_ports == {container["ports"][0]["containerPort"]}, name


# Addresses a tenant's base_url must never reach (the handlers' resolver refuses
# them too): cloud metadata, private, loopback, shared, link-local, unique-local.
NOT_PUBLIC = (
    "169.254.169.254",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "100.64.0.10",
    "0.0.0.0",
    "::1",
    "fd00:ec2::254",
    "fe80::1",
)
PUBLIC = ("8.8.8.8", "52.96.0.1", "2606:4700::1111")
VENDOR_PORTS = {443, 465, 587}  # HTTPS; SMTP over TLS and with STARTTLS


def _reaches(rule: Any, address: str) -> bool:
    """Whether an egress rule's peers admit ``address`` (no ``to``: everywhere)."""
    if "to" not in rule:
        return True
    ip = ipaddress.ip_address(address)
    for peer in rule["to"]:
        assert set(peer) == {"ipBlock"}, peer  # pod or namespace peers are not expected
        block = peer["ipBlock"]
        cidr = ipaddress.ip_network(block["cidr"])
        excepted = any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
        if ip.version == cidr.version and ip in cidr and not excepted:
            return True
    return False


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_only_the_handlers_reach_the_vendors_and_only_public_addresses(overlay: str) -> None:
    docs = render(overlay)
    internal = {53, 5432, _kafka_port(docs)}
    for workload, _ in pod_specs(docs):
        name = workload["metadata"]["name"]
        rules = [rule for p in _allowing(docs, workload) for rule in p["spec"].get("egress", [])]
        for rule in rules:
            ports = {port["port"] for port in rule["ports"]}
            if "to" not in rule:
                # Open destinations only for DNS, Kafka and PostgreSQL (in or out of the cluster).
                assert ports <= internal, f"{name}: {sorted(ports)} to anywhere"
        vendor_rules = [r for r in rules if VENDOR_PORTS & {p["port"] for p in r["ports"]}]
        if name != "handlers":
            assert not vendor_rules, name
            continue
        (rule,) = vendor_rules
        assert {port["port"] for port in rule["ports"]} == VENDOR_PORTS
        assert all(port["protocol"] == "TCP" for port in rule["ports"])
        for address in NOT_PUBLIC:
            assert not _reaches(rule, address), address
        for address in PUBLIC:
            assert _reaches(rule, address), address
