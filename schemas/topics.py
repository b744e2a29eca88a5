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

    policy_events: str = "policy.events"
    customer_events: str = "customer.events"
    account_discovered: str = "account.discovered"
    commands_psa: str = "commands.psa"
    commands_documentation: str = "commands.documentation"
    commands_vault: str = "commands.vault"
    commands_rotation: str = "commands.rotation"
    commands_notification: str = "commands.notification"
    commands_identity: str = "commands.identity"
    import_decisions: str = "import.decisions"
    account_discovered_dlq: str = "account.discovered.dlq"
    partitions: int = Field(default=8, ge=1, le=10_000)

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
