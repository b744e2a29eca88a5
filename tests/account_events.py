"""Builders of ``import.decision.recorded`` and ``command.*`` result events, as the
import worker and the handlers produce them: for tests of the accounts read model
(the projection, the API and the UI)."""

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from schemas.decision import DECISION_RECORDED
from schemas.envelope import utc_now
from schemas.ids import command_id, decision_id
from schemas.results import COMMAND_FAILED, COMMAND_SUCCEEDED
from services.handlers.domain.execution import result_id

END_USER_COMMANDS = (
    "documentation.password.link",
    "psa.contact.link",
    "notification.welcome_email.send",
    "identity.self_service_reset.enable",
)
ADMIN_COMMANDS = ("documentation.password.link", "rotation.enroll")


@dataclass
class Account:
    """One discovered account of a partner's customer."""

    partner_id: str
    customer_id: uuid.UUID
    external_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    username: str = "jdoe"
    display_name: str | None = "Jane Doe"
    email: str | None = "jane.doe@example.com"
    account_type: str = "end_user"
    directory: str = "active_directory"

    @property
    def key(self) -> str:
        return f"{self.partner_id}:{self.customer_id}:{self.directory}:{self.external_id}"

    def fields(self) -> dict[str, object]:
        data: dict[str, object] = {
            "key": self.key,
            "customer_id": str(self.customer_id),
            "account_type": self.account_type,
            "directory": self.directory,
            "external_id": self.external_id,
            "username": self.username,
        }
        if self.display_name is not None:
            data["display_name"] = self.display_name
        if self.email is not None:
            data["email"] = self.email
        return data


def decision_event(
    account: Account,
    command_types: tuple[str, ...] = END_USER_COMMANDS,
    *,
    outcome: str = "imported",
    policy_id: uuid.UUID | None = None,
    policy_version: int | None = 1,
    notes: list[dict[str, str]] | None = None,
    at: datetime | None = None,
    discovery_id: str | None = None,
) -> bytes:
    """The decision for ``account``: its commands are those of ``command_types``."""
    cause = discovery_id or str(uuid.uuid4())
    imported = outcome == "imported"
    envelope = {
        "specversion": "1.0",
        "id": str(decision_id(account.key, cause)),
        "source": "urn:msp-import:import-worker",
        "type": DECISION_RECORDED,
        "time": _stamp(at or utc_now()),
        "subject": account.key,
        "datacontenttype": "application/json",
        "partnerid": account.partner_id,
        "causationid": cause,
        "correlationid": cause,
        "data": {
            "account": account.fields(),
            "outcome": outcome,
            "policy_id": str(policy_id or uuid.uuid4()) if imported else None,
            "policy_version": policy_version if imported else None,
            "command_ids": [str(command_id(account.key, t)) for t in command_types]
            if imported
            else [],
            "notes": notes or [],
        },
    }
    return json.dumps(envelope).encode()


def result_event(
    account: Account,
    command_type: str,
    *,
    outcome: str | None = "matched",
    reason: str | None = None,
    provider: str | None = "connectwise",
    refs: list[dict[str, str | None]] | None = None,
    detail: str = "",
    at: datetime | None = None,
    partner_id: str | None = None,
) -> bytes:
    """A ``command.succeeded`` (``outcome``) or, given a ``reason``, ``command.failed``."""
    cid = command_id(account.key, command_type)
    failed = reason is not None
    said = reason if failed else outcome
    data: dict[str, object] = {
        "command_id": str(cid),
        "command_type": command_type,
        "account_key": account.key,
        "customer_id": str(account.customer_id),
        "provider": provider,
        "refs": refs or [],
        "detail": detail,
        "attempts": 1,
        "finished_at": _stamp(at or utc_now()),
    }
    data["reason" if failed else "outcome"] = said
    envelope = {
        "specversion": "1.0",
        "id": str(result_id(cid, str(said))),
        "source": "urn:msp-import:handlers",
        "type": COMMAND_FAILED if failed else COMMAND_SUCCEEDED,
        "time": _stamp(at or utc_now()),
        "subject": account.key,
        "datacontenttype": "application/json",
        "partnerid": partner_id or account.partner_id,
        "causationid": str(cid),
        "correlationid": str(cid),
        "data": data,
    }
    return json.dumps(envelope).encode()


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
