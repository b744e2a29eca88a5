"""The handlers' Prometheus metrics (no partner, account or secret in any label)."""

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.handlers.adapters.http import VendorMetrics


class HandlerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.results = Counter(
            "handlers_results",
            "Results reported, by command type, provider and outcome or reason",
            ["command_type", "provider", "result"],
            registry=r,
        )
        self.dead_letters = Counter(
            "handlers_dead_letters",
            "Records sent to commands.dlq, by reason",
            ["reason"],
            registry=r,
        )
        self.held = Gauge("handlers_in_flight", "Commands held (running or queued)", registry=r)
        self.failures = Counter(
            "handlers_work_failures",
            "Attempts that failed on an outage (and were retried), by error",
            ["error"],
            registry=r,
        )
        self.integrations = Counter(
            "handlers_integration_events",
            "integration.events projected, by result",
            ["result"],
            registry=r,
        )
        self.rotation_requests = Counter(
            "handlers_rotation_requests",
            "rotation.requested published, first or resent (left unanswered)",
            ["kind"],
            registry=r,
        )
        self.password_changes = Counter(
            "handlers_password_changes",
            "account.password.changed handled, by result (applied, superseded, unopenable)",
            ["result"],
            registry=r,
        )
        self.welcome_waiting = Gauge(
            "handlers_welcome_emails_claimed",
            "Welcome emails claimed by this replica's last look",
            registry=r,
        )
        self.vendor = VendorMetrics(r)

    def result(self, command_type: str, provider: str, label: str) -> None:
        self.results.labels(command_type, provider, label).inc()

    def rotation_request(self, resent: bool) -> None:
        self.rotation_requests.labels("resent" if resent else "first").inc()
