"""Every message of the contract: its type, channel, key and models.

The generator, the decoders and the tests all read this one table, so a new
message type is added in exactly one place.
"""

import builtins
from dataclasses import dataclass
from functools import cache
from typing import cast

from pydantic import BaseModel

from schemas import (
    agent_requests,
    commands,
    customer,
    decision,
    discovery,
    integrations,
    passwords,
    policy,
    results,
)
from schemas.envelope import CausedEvent, CloudEvent, InboundEvent


@dataclass(frozen=True)
class Channel:
    """A topic of the contract (by its :class:`~schemas.topics.TopicNames` field)."""

    name: str
    key: str
    producer: str
    description: str


@dataclass(frozen=True)
class MessageSpec:
    """One CloudEvents ``type``: where it travels and what its ``data`` is.

    ``inbound`` messages are made outside this system (discovery agents): their
    envelope leaves ``time`` and ``subject`` optional and their schemas say that
    ``data`` may carry more fields than the contract knows.
    """

    type: str
    channel: str
    data_model: builtins.type[BaseModel]
    caused: bool
    summary: str
    inbound: bool = False

    @property
    def schema_name(self) -> str:
        return self.type

    def envelope_model(self) -> builtins.type[CloudEvent[BaseModel]]:
        """The envelope model with this message's ``data`` model filled in."""
        return _envelope(self.data_model, self.caused, self.inbound)


@cache
def _envelope(
    data_model: type[BaseModel], caused: bool, inbound: bool
) -> type[CloudEvent[BaseModel]]:
    base = InboundEvent if inbound else CausedEvent if caused else CloudEvent
    return cast("type[CloudEvent[BaseModel]]", base[data_model])


CHANNELS: tuple[Channel, ...] = (
    Channel(
        "policy_events",
        "policy id",
        "policy service",
        "Full state of an import policy after each change (compactable).",
    ),
    Channel(
        "customer_events",
        "customer id",
        "policy service",
        "Full state of a customer, with its policy per account type (compactable).",
    ),
    Channel(
        "account_discovered",
        "customer id",
        "discovery agents",
        "Accounts found by discovery agents on customers' networks.",
    ),
    Channel("commands_psa", "account key", "import worker", "Commands for the PSA handler."),
    Channel(
        "commands_documentation",
        "account key",
        "import worker",
        "Commands for the documentation (IT Glue / Hudu) handler.",
    ),
    Channel("commands_vault", "account key", "import worker", "Commands for the vault handler."),
    Channel(
        "commands_rotation",
        "account key",
        "import worker",
        "Commands for the password-rotation handler.",
    ),
    Channel(
        "commands_notification",
        "account key",
        "import worker",
        "Commands for the notification handler.",
    ),
    Channel(
        "commands_identity",
        "account key",
        "import worker",
        "Commands for the identity (Microsoft 365 / self-service reset) handler.",
    ),
    Channel(
        "import_decisions",
        "account key",
        "import worker",
        "The decision recorded for each account, with notes.",
    ),
    Channel(
        "account_discovered_dlq",
        "as received",
        "import worker",
        "account.discovered messages the worker could not act on: the original bytes, "
        "with headers x-error-reason, x-error-detail, x-original-topic, "
        "x-original-partition, x-original-offset.",
    ),
    Channel(
        "integration_events",
        "<partner_id>:<provider>",
        "policy service",
        "Each partner's integrations, credentials as AES-256-GCM ciphertext (compactable).",
    ),
    Channel(
        "command_results",
        "account key",
        "handlers",
        "How each command ended: command.succeeded (outcome) or command.failed (reason).",
    ),
    Channel(
        "account_passwords",
        "account key",
        "discovery agents, the platform",
        "An account's password changed; the password as AES-256-GCM ciphertext only.",
    ),
    Channel(
        "commands_dlq",
        "as received",
        "handlers",
        "Commands the handlers could not read: the original bytes, with headers "
        "x-error-reason, x-error-detail, x-original-topic, x-original-partition, "
        "x-original-offset.",
    ),
    Channel(
        "agent_requests",
        "account key",
        "handlers",
        "Requests to the discovery agents: rotate an enrolled account's password.",
    ),
)

DLQ_REASONS: tuple[str, ...] = (
    "invalid_json",
    "invalid_envelope",
    "invalid_data",
    "unknown_customer",
    "partner_mismatch",
    "processing_failed",
)

MESSAGES: tuple[MessageSpec, ...] = (
    MessageSpec(
        policy.POLICY_CREATED, "policy_events", policy.PolicyState, False, "A policy was created."
    ),
    MessageSpec(
        policy.POLICY_UPDATED,
        "policy_events",
        policy.PolicyState,
        False,
        "A policy changed (options, name, default flag or customers).",
    ),
    MessageSpec(
        policy.POLICY_DELETED,
        "policy_events",
        policy.PolicyDeleted,
        False,
        "A policy was deleted; its customers are unassigned.",
    ),
    MessageSpec(
        customer.CUSTOMER_ADDED,
        "customer_events",
        customer.CustomerState,
        False,
        "A customer was added, with the default policies it was given.",
    ),
    MessageSpec(
        customer.CUSTOMER_UPDATED,
        "customer_events",
        customer.CustomerState,
        False,
        "A customer changed (name, mappings or policy assignment).",
    ),
    MessageSpec(
        customer.CUSTOMER_REMOVED,
        "customer_events",
        customer.CustomerRemoved,
        False,
        "A customer was removed.",
    ),
    MessageSpec(
        discovery.ACCOUNT_DISCOVERED,
        "account_discovered",
        discovery.DiscoveredAccount,
        False,
        "An agent found an account.",
        inbound=True,
    ),
    *(
        MessageSpec(model.TYPE, model.CHANNEL, model, True, (model.__doc__ or "").strip())
        for model in commands.COMMAND_MODELS
    ),
    MessageSpec(
        decision.DECISION_RECORDED,
        "import_decisions",
        decision.DecisionRecorded,
        True,
        "The worker's decision for an account.",
    ),
    MessageSpec(
        integrations.INTEGRATION_CONFIGURED,
        "integration_events",
        integrations.IntegrationConfigured,
        False,
        "An integration was configured or changed.",
    ),
    MessageSpec(
        integrations.INTEGRATION_REMOVED,
        "integration_events",
        integrations.IntegrationRemoved,
        False,
        "An integration was removed.",
    ),
    MessageSpec(
        results.COMMAND_SUCCEEDED,
        "command_results",
        results.CommandSucceeded,
        True,
        "A command did what it asked (outcome).",
    ),
    MessageSpec(
        results.COMMAND_FAILED,
        "command_results",
        results.CommandFailed,
        True,
        "A command could not be carried out (reason).",
    ),
    MessageSpec(
        passwords.PASSWORD_CHANGED,
        "account_passwords",
        passwords.PasswordChanged,
        False,
        "An account's password changed.",
        inbound=True,
    ),
    MessageSpec(
        agent_requests.ROTATION_REQUESTED,
        "agent_requests",
        agent_requests.RotationRequested,
        False,
        "An enrolled account's password is due for rotation.",
    ),
)

BY_TYPE: dict[str, MessageSpec] = {spec.type: spec for spec in MESSAGES}
