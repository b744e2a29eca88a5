"""Publishing ``command.succeeded`` / ``command.failed`` (docs/contract.md §7), and
opening a partner's integration for a connector.

Both are needed by every rule: the command executor, the password-change fan-out
and the welcome emails that wait.
"""

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from schemas.envelope import utc_now
from schemas.integrations import integration_key
from schemas.results import FailureReason
from services.handlers.adapters.connectors.base import IntegrationConfig
from services.handlers.adapters.store import Store
from services.handlers.domain.errors import (
    AddressRefused,
    VendorAuthError,
    VendorError,
    VendorRejected,
)
from services.handlers.domain.execution import Execution, ResultFacts, result_data, result_id
from services.infra.secrets import SecretBox, SecretError

log = logging.getLogger(__name__)

#: A result to publish: (event type, event id, envelope JSON bytes, key).
Publish = Callable[[str, uuid.UUID, bytes, str], Awaitable[None]]
#: Counts a result: (command type, provider, outcome or reason).
OnResult = Callable[[str, str, str], None]


@dataclass(frozen=True)
class Context:
    """Who a result is for: the partner, the command it answers, the correlation."""

    partner_id: str
    cause_id: str
    correlation_id: str


@dataclass(frozen=True)
class Report:
    """A result ready to publish and to keep in the inbox."""

    result_type: str
    result_id: uuid.UUID
    data: dict[str, Any]


class Reporter:
    def __init__(
        self, publish: Publish, *, source: str = "/handlers", on_result: OnResult | None = None
    ) -> None:
        self.publish = publish
        self.source = source
        self.on_result = on_result or (lambda command_type, provider, label: None)

    async def report(self, ctx: Context, execution: Execution, facts: ResultFacts) -> Report:
        """Publish the result of ``execution``; what to keep of it."""
        result_type, rid, data = result_data(execution, facts)
        report = Report(result_type, rid, data.model_dump(mode="json"))
        await self.send(ctx, report)
        self.on_result(facts.command_type, facts.provider or "", execution.label)
        return report

    async def republish(self, ctx: Context, result_type: str, data: dict[str, Any]) -> None:
        """A done command again: its stored result, with the id it had."""
        label = data.get("outcome") or data.get("reason") or ""
        command_id = uuid.UUID(data["command_id"])
        await self.send(ctx, Report(result_type, result_id(command_id, label), data))

    async def send(self, ctx: Context, report: Report) -> None:
        envelope = {
            "specversion": "1.0",
            "id": str(report.result_id),
            "source": self.source,
            "type": report.result_type,
            "time": utc_now().isoformat(),
            "subject": report.data["account_key"],
            "datacontenttype": "application/json",
            "partnerid": ctx.partner_id,
            "causationid": ctx.cause_id,
            "correlationid": ctx.correlation_id,
            "data": report.data,
        }
        await self.publish(
            report.result_type,
            report.result_id,
            json.dumps(envelope).encode(),
            report.data["account_key"],
        )


class Integrations:
    """A partner's integration with its credentials opened (in memory only)."""

    def __init__(self, store: Store, box: SecretBox) -> None:
        self.store = store
        self.box = box

    async def open(self, partner_id: str, provider: str) -> IntegrationConfig | None:
        """None when missing, disabled, or sealed under another ``SECRETS_KEY``."""
        stored = await self.store.integration(partner_id, provider)
        if stored is None or not stored.enabled or not stored.credentials_ciphertext:
            return None
        try:
            credentials = self.box.open_json(
                stored.credentials_ciphertext, integration_key(partner_id, provider)
            )
        except SecretError:
            log.error(
                "the %s integration's credentials do not open with this SECRETS_KEY",
                provider,
                extra={"partner_id": partner_id},
            )
            return None
        return IntegrationConfig(
            partner_id=partner_id,
            provider=provider,
            base_url=stored.base_url,
            settings=stored.settings,
            credentials={str(k): str(v) for k, v in credentials.items()},
            version=stored.version,
        )


def missing(provider: str) -> Execution:
    return Execution.failed(
        FailureReason.INTEGRATION_MISSING, f"the partner has no usable {provider} integration"
    )


def vendor_failure(provider: str, exc: VendorError) -> Execution:
    """A vendor failure as the result says it (VendorUnavailable, MaybeDone: timeout)."""
    message = exc.message
    if isinstance(exc, VendorAuthError):
        return Execution.failed(
            FailureReason.INTEGRATION_AUTH, f"{provider} refused the credentials: {message}"
        )
    if isinstance(exc, VendorRejected):
        return Execution.failed(FailureReason.VENDOR_REJECTED, f"{provider}: {message}")
    if isinstance(exc, AddressRefused):
        return Execution.failed(FailureReason.INTEGRATION_MISSING, message)
    return Execution.failed(
        FailureReason.TIMEOUT, f"{provider} did not answer in time, after retries: {message}"
    )


def facts(
    command_id: uuid.UUID,
    command_type: str,
    account_key: str,
    customer_id: uuid.UUID,
    provider: str | None,
    attempts: int = 1,
) -> ResultFacts:
    return ResultFacts(
        command_id=command_id,
        command_type=command_type,
        account_key=account_key,
        customer_id=customer_id,
        provider=provider,
        attempts=attempts,
        finished_at=utc_now(),
    )
