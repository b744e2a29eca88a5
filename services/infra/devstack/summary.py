"""What ``msp-import-dev up`` reports once the stack is up, rendered for a terminal.

Kept free of I/O so the wording can be checked without starting anything.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from services.infra.devstack.children import ServiceSpec
from services.infra.devstack.tokens import DEV_PARTNER, DEV_ROLE, DEV_TTL

READY_LINE = "Press Ctrl-C to stop the stack."
"""Last line of the summary; scripts and tests wait for it."""


@dataclass(frozen=True)
class ServiceState:
    """How far a service got: ``ready`` answers /healthz, ``starting`` runs but has not yet."""

    spec: ServiceSpec
    status: Literal["ready", "starting", "unavailable"]
    detail: str = ""


@dataclass(frozen=True)
class StackInfo:
    """Everything the summary shows."""

    bootstrap: str
    broker_local: bool
    database_url: str
    postgres_local: bool
    topics: list[str]
    topics_created: list[str]
    partitions: int
    services: list[ServiceState]
    secret: str
    secret_generated: bool
    token: str
    log_dir: Path
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds per start-up phase, shown so slow steps are visible."""
    simulators: str | None = None
    """Where the vendors' simulators answer (the demo integrations point there)."""


def _service_line(state: ServiceState, extra: str) -> str:
    line = f"  {state.spec.name:<16}{extra}"
    if state.status == "starting":
        return f"{line}\n  {'':<16}still starting: {state.detail}"
    if state.status == "unavailable":
        return f"{line}\n  {'':<16}NOT AVAILABLE YET: {state.detail}"
    return line


def render_summary(info: StackInfo, seconds: float) -> str:
    """The block printed once broker, database, topics and services are up."""
    broker_kind = (
        "Tansu, in memory: a restart loses all topics" if info.broker_local else "external"
    )
    pg_kind = "embedded" if info.postgres_local else "external"
    policy, worker, *more = info.services
    api = f"http://127.0.0.1:{policy.spec.port}"
    example = f"{api}/v1/import-policies?account_type=end_user"
    phases = ", ".join(f"{name} {took:.2f} s" for name, took in info.phases.items())
    lines = [
        f"msp-import dev stack up in {seconds:.2f} s" + (f" ({phases})" if phases else ""),
        "",
        f"  {'broker':<16}{info.bootstrap}  ({broker_kind})",
        f"  {'DATABASE_URL':<16}{info.database_url}  ({pg_kind})",
        f"  {'topics':<16}{len(info.topics)} contract topics, {info.partitions} partitions"
        f" for new ones ({len(info.topics_created)} created now)",
        _service_line(policy, f"{api}  (docs {api}/docs, metrics {api}/metrics)"),
        _service_line(worker, f"{worker.spec.health_url}  (metrics: /metrics)"),
        *(_service_line(other, f"{other.spec.health_url}  (metrics: /metrics)") for other in more),
        f"  {'logs':<16}{info.log_dir}/",
    ]
    if info.simulators:
        lines.insert(
            -1,
            f"  {'simulators':<16}{info.simulators}  (ConnectWise, Autotask, Halo, IT Glue,"
            " Hudu, Graph: the demo integrations)",
        )
        lines.insert(
            -1,
            f"  {'mail':<16}{info.simulators}/smtp/  (the welcome emails the demo partner's"
            " smtp integration sent)",
        )
    lines += [f"  note: {note}" for note in info.notes]
    secret_origin = "generated for this run" if info.secret_generated else "from the environment"
    lines += [
        "",
        f"  # AUTH_JWT_SECRET ({secret_origin}) and a dev JWT: role {DEV_ROLE},"
        f" partner {DEV_PARTNER}, valid {DEV_TTL.total_seconds() / 3600:.0f} h",
        f"  export AUTH_JWT_SECRET='{info.secret}'",
        f"  export TOKEN='{info.token}'",
        f"  curl -H \"Authorization: Bearer $TOKEN\" '{example}'",
        "  # another token: msp-import-dev token --role read_only --partner demo-partner",
        "",
        READY_LINE,
    ]
    return "\n".join(lines)
