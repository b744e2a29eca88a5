"""Settings every service reads (docs/contract.md §5), via pydantic-settings."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Connection settings shared by the policy service and the import worker."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        description="Comma-separated broker list. `make run` starts Tansu when unset.",
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        description="PostgreSQL DSN. `make run` starts an embedded server when unset.",
    )
    topic_partitions: int = Field(default=8, ge=1, description="Partitions of created topics.")
    log_level: str = Field(default="INFO", description="Log level; logs are JSON lines on stderr.")
