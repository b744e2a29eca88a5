"""The worker's Prometheus metrics, on a registry of its own (served at /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.import_worker.service_layer.engine import BatchResult


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "import_events",
            "Discovered events by outcome "
            "(imported, no_policy, rediscovered, retried, dead_lettered)",
            ["outcome"],
            registry=r,
        )
        self.commands = Counter("import_commands", "Commands sent, by type", ["type"], registry=r)
        self.dead_letters = Counter(
            "import_dead_letters", "Dead-lettered records, by reason", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "import_batch_size",
            "Records per batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=r,
        )
        self.batch_latency = Histogram(
            "import_batch_seconds",
            "Time to process and commit one batch",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.lag = Gauge(
            "import_consumer_lag",
            "Records behind the high watermark, by topic",
            ["topic"],
            registry=r,
        )
        self.failures = Counter(
            "import_batch_failures",
            "Batch attempts that failed (and were retried)",
            ["error"],
            registry=r,
        )
        self.undecodable = Counter(
            "import_undecodable_batches",
            "Record batches that could not be decoded (their partition is paused), by topic",
            ["topic"],
            registry=r,
        )
        self.projected = Counter(
            "import_projection_events",
            "Policy and customer events projected, by result",
            ["entity", "result"],
            registry=r,
        )

    def record(self, result: BatchResult, records: int, seconds: float) -> None:
        self.batch_size.observe(records)
        self.batch_latency.observe(seconds)
        for outcome, n in result.decided.items():
            self.events.labels(outcome).inc(n)
        if result.rediscovered:
            self.events.labels("rediscovered").inc(result.rediscovered)
        if result.retried:
            self.events.labels("retried").inc(result.retried)
        for kind, n in result.commands.items():
            self.commands.labels(kind).inc(n)
        for reason, n in result.dead_letters.items():
            self.dead_letters.labels(reason).inc(n)
            self.events.labels("dead_lettered").inc(n)
