"""deploy/: every kustomization renders with kustomize and validates strictly.

Core resources against the Kubernetes OpenAPI schemas of kubernetes-validate,
KEDA and Strimzi resources against their vendored CRDs; then the properties
the deployment issue asks for (probes, hardening, budgets, autoscaling).
"""

import copy
from collections import Counter
from typing import Any

import pytest
import yaml

from .deploylib import (
    DEPLOY,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    config_maps,
    container_env,
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
        "ServiceAccount": 2,
        "ConfigMap": 3,
        "Deployment": 2,
        "Service": 2,
        "Job": 2,
        "HorizontalPodAutoscaler": 1,
        "ScaledObject": 1,
        "PodDisruptionBudget": 2,
        "NetworkPolicy": 4,
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
    for name, port_var in (("policy-service", "HTTP_PORT"), ("import-worker", "WORKER_HTTP_PORT")):
        deployment = one(docs, "Deployment", name)
        container = _container(deployment)
        (port,) = container["ports"]
        assert port["name"] == "http"
        assert str(port["containerPort"]) == container_env(container, maps)[port_var]
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        service = one(docs, "Service", name)
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        # Autoscalers own the replica count.
        assert "replicas" not in deployment["spec"]
        assert len(deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]) == 2


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_services_listen_on_every_interface(overlay: str) -> None:
    # The services default to loopback (`make run`); probes and Services reach the pod IP.
    docs = render(overlay)
    maps = config_maps(docs)
    for name, host_var in (("policy-service", "HTTP_HOST"), ("import-worker", "WORKER_HTTP_HOST")):
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
    jobs = {
        job["metadata"]["name"]: _container(job)["command"]
        for job in of_kind(render(overlay), "Job")
    }
    assert jobs == {
        "policy-service-migrate": ["policy-service", "migrate"],
        "import-worker-migrate": ["import-worker", "migrate"],
    }


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_network_policies_cover_every_pod(overlay: str) -> None:
    docs = render(overlay)
    policies = of_kind(docs, "NetworkPolicy")

    def selects(policy: Any, labels: dict[str, str]) -> bool:
        wanted = policy["spec"]["podSelector"].get("matchLabels", {})
        return all(labels.get(k) == v for k, v in wanted.items())

    default_deny = [p for p in policies if "ingress" not in p["spec"] and "egress" not in p["spec"]]
    assert default_deny, "a default-deny policy"
    for workload, _ in pod_specs(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(selects(p, labels) for p in default_deny), workload["metadata"]["name"]
        allowing = [p for p in policies if p not in default_deny and selects(p, labels)]
        assert allowing, f"no egress allowed for {workload['metadata']['name']}"
        egress_ports = {
            port["port"]
            for p in allowing
            for rule in p["spec"].get("egress", [])
            for port in rule["ports"]
        }
        assert {53, 5432} <= egress_ports
    for name in ("policy-service", "import-worker"):
        container = _container(one(docs, "Deployment", name))
        labels = one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        ingress_ports = {
            port["port"]
            for p in policies
            if p not in default_deny and selects(p, labels)
            for rule in p["spec"].get("ingress", [])
            for port in rule["ports"]
        }
        assert ingress_ports == {container["ports"][0]["containerPort"]}, name
