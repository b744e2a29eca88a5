"""Policy service settings, from the environment (docs/contract.md §5)."""

from pydantic import Field, SecretStr

from services.infra.settings import CommonSettings, SecretsSettings


class PolicyServiceSettings(CommonSettings, SecretsSettings):
    """Everything the policy service reads from its environment."""

    auth_jwt_secret: SecretStr = Field(
        description="HS256 secret that signs bearer tokens. `make run` makes one when unset."
    )
    http_host: str = Field(
        default="127.0.0.1",
        description="Address the API listens on; containers set `0.0.0.0`.",
    )
    http_port: int = Field(
        default=8080, ge=1, le=65535, description="Port of the API, UI, health and metrics."
    )
    dev_mode: bool = Field(
        default=False,
        description="Enables the dev sign-in route (loopback clients only); `make run` sets it.",
    )
    db_pool_min_size: int = Field(
        default=2, ge=1, description="PostgreSQL pool: connections kept open."
    )
    db_pool_max_size: int = Field(
        default=32, ge=1, description="PostgreSQL pool: most connections at once."
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest request body in bytes; larger ones get 413.",
    )
    relay_enabled: bool = Field(default=True, description="Run the outbox relay in-process.")
    relay_poll_interval_seconds: float = Field(
        default=0.5, gt=0, description="Outbox relay: pause when the outbox is drained."
    )
    relay_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Outbox relay: rows published per batch."
    )
    outbox_retention_hours: float = Field(
        default=24.0, ge=0, description="Published outbox rows are deleted after this long."
    )
    kafka_request_timeout_ms: int = Field(
        default=10_000, ge=100, description="Outbox relay: producer request timeout."
    )
    results_consumer_enabled: bool = Field(
        default=True,
        description="Project import.decisions and command.results in-process (the read model).",
    )
    results_group_id: str = Field(
        default="policy-service-results",
        description="Consumer group of import.decisions and command.results (the read model).",
    )
    read_model_batch_size: int = Field(
        default=5000,
        ge=1,
        le=50_000,
        description="Read model: records written per transaction at most.",
    )
