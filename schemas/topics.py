"""Topic names of the contract, overridable from the environment (``TOPIC_*``)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TopicNames(BaseSettings):
    """The topic behind each channel of the contract.

    Defaults are the contract's names; ``TOPIC_COMMANDS_PSA=acme.commands.psa``
    renames one. ``TOPIC_PARTITIONS`` is the partition count for topics the
    services create themselves.
    """

    model_config = SettingsConfigDict(env_prefix="TOPIC_", frozen=True, extra="ignore")

    policy_events: str = Field(
        default="policy.events", description="Topic: full state of each import policy (compacted)."
    )
    customer_events: str = Field(
        default="customer.events", description="Topic: full state of each customer (compacted)."
    )
    account_discovered: str = Field(
        default="account.discovered",
        description="Topic: accounts found by discovery agents (the worker's input).",
    )
    commands_psa: str = Field(
        default="commands.psa", description="Topic: commands for the PSA handler."
    )
    commands_documentation: str = Field(
        default="commands.documentation",
        description="Topic: commands for the documentation (IT Glue / Hudu) handler.",
    )
    commands_vault: str = Field(
        default="commands.vault", description="Topic: commands for the vault handler."
    )
    commands_rotation: str = Field(
        default="commands.rotation",
        description="Topic: commands for the password-rotation handler.",
    )
    commands_notification: str = Field(
        default="commands.notification", description="Topic: commands for the notification handler."
    )
    commands_identity: str = Field(
        default="commands.identity",
        description="Topic: commands for the identity handler (Microsoft 365, password reset).",
    )
    import_decisions: str = Field(
        default="import.decisions", description="Topic: the decision recorded for each account."
    )
    account_discovered_dlq: str = Field(
        default="account.discovered.dlq",
        description="Topic: discovered accounts the worker could not act on, with the reason.",
    )
    integration_events: str = Field(
        default="integration.events",
        description="Topic: each partner's integrations (credentials as ciphertext only).",
    )
    command_results: str = Field(
        default="command.results",
        description="Topic: how each command ended, reported by the handlers.",
    )
    account_passwords: str = Field(
        default="account.passwords",
        description="Topic: password changes of accounts (the password as ciphertext only).",
    )
    commands_dlq: str = Field(
        default="commands.dlq",
        description="Topic: commands the handlers could not read, with the reason.",
    )
    agent_requests: str = Field(
        default="agent.requests",
        description="Topic: requests to the discovery agents (password rotations).",
    )
    partitions: int = Field(default=8, ge=1, le=10_000, description="Partitions of created topics.")

    def channel(self, channel: str) -> str:
        """The topic name of ``channel`` (a field name such as ``commands_psa``)."""
        value = getattr(self, channel)
        if not isinstance(value, str):
            raise KeyError(channel)
        return value

    def all_topics(self) -> list[str]:
        """Every topic of the contract, in declaration order."""
        return [getattr(self, name) for name in CHANNELS]


CHANNELS: tuple[str, ...] = tuple(
    name for name, field in TopicNames.model_fields.items() if field.annotation is str
)
