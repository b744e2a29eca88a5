"""Import worker settings, from the environment (docs/contract.md §5)."""

from pydantic import Field

from services.infra.settings import CommonSettings


class WorkerSettings(CommonSettings):
    """Everything the import worker reads from its environment."""

    worker_http_host: str = Field(
        default="127.0.0.1",
        description="Address of health and metrics; containers set `0.0.0.0`.",
    )
    worker_http_port: int = Field(
        default=6066, ge=1, le=65535, description="Port of health and metrics."
    )
    worker_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Worker processes behind one `import-worker run` (one per core; they share the"
            " consumer groups). Process i serves health and metrics on WORKER_HTTP_PORT + i."
        ),
    )
    worker_group_id: str = Field(default="import-worker", description="Kafka consumer group.")
    worker_source: str = Field(default="/import-worker", description="CloudEvents source.")
    retry_topic: str = Field(
        default="import-worker.account.discovered.retry",
        description="Internal delay queue for accounts of not-yet-known customers.",
    )
    retry_delays_seconds: tuple[float, ...] = Field(
        default=(1.0, 2.0, 5.0, 10.0, 30.0),
        description="Back-off before each retry; after the last one: DLQ unknown_customer.",
    )
    imported_cache_size: int = Field(
        default=500_000, ge=0, description="Account keys known imported, kept in memory."
    )
    batch_max_records: int = Field(
        default=5000, ge=1, le=100_000, description="Hot path: records per batch."
    )
    fetch_max_wait_ms: int = Field(
        default=50, ge=0, description="Hot path: longest wait of a fetch for more records."
    )
    session_timeout_ms: int = Field(
        default=10_000, ge=1000, description="Hot path: consumer group session timeout."
    )
    heartbeat_interval_ms: int = Field(
        default=3_000, ge=100, description="Hot path: consumer group heartbeat interval."
    )
    rebalance_timeout_ms: int = Field(
        default=10_000, ge=1000, description="Hot path: consumer group rebalance timeout."
    )
    faust_session_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Projection (Faust): group session timeout."
    )
    faust_heartbeat_interval_seconds: float = Field(
        default=1.0, gt=0, description="Projection (Faust): group heartbeat interval."
    )
    faust_rebalance_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Projection (Faust): group rebalance timeout."
    )
    db_pool_min_size: int = Field(
        default=1, ge=1, description="PostgreSQL pool: connections kept open."
    )
    db_pool_max_size: int = Field(
        default=8, ge=1, description="PostgreSQL pool: most connections at once."
    )
    failure_backoff_max_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest pause between retries while PostgreSQL or the broker is down.",
    )
