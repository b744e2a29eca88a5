"""Settings every service reads (docs/contract.md §5), via pydantic-settings."""

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.infra.secrets import parse_key


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
    shutdown_timeout_seconds: float = Field(
        default=8.0,
        gt=0,
        description="On SIGTERM: longest graceful stop; then the process exits, committing"
        " nothing more (unfinished work is redone by the next owner).",
    )


class SecretsSettings(BaseSettings):
    """What the services that hold integration credentials read (policy service, handlers)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    secrets_key: SecretStr = Field(
        description="base64 of 32 bytes: the AES-256-GCM key of credentials and passwords; "
        "the policy service and the handlers are given the same. `make run` makes one."
    )
    integrations_allow_private: bool = Field(
        default=False,
        description="Let integrations point at private, loopback or link-local addresses "
        "and plain http (the dev stack and tests set it, for the local simulators).",
    )

    @field_validator("secrets_key")
    @classmethod
    def _a_key(cls, value: SecretStr) -> SecretStr:
        parse_key(value.get_secret_value())  # raises without echoing the value
        return value
