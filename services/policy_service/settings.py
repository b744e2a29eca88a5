"""Policy service settings, from the environment (CONTRACT.md section 5)."""

from pydantic import Field, SecretStr

from services.infra.settings import CommonSettings


class PolicyServiceSettings(CommonSettings):
    """Everything the policy service reads from its environment."""

    auth_jwt_secret: SecretStr = Field(description="HS256 secret that signs bearer tokens.")
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=1, le=65535)
    dev_mode: bool = Field(default=False, description="Enables the dev sign-in route.")
    db_pool_min_size: int = Field(default=2, ge=1)
    db_pool_max_size: int = Field(default=32, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger bodies get 413.")
    relay_enabled: bool = Field(default=True, description="Run the outbox relay in-process.")
    relay_poll_interval_seconds: float = Field(default=0.5, gt=0)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_retention_hours: float = Field(default=24.0, ge=0)
    kafka_request_timeout_ms: int = Field(default=10_000, ge=100)
