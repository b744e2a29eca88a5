"""Accounts for the browser tests, published as the import worker and the handlers do:
decisions on ``import.decisions`` and results on ``command.results``, which the served
policy service projects into its read model (``/v1/accounts``)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.account_events import Account, decision_event, result_event

from .support import Bus, Partner, wait_until

CW_CONTACT_URL = (
    "https://na.myconnectwise.example/v4_6_release/services/system_io/router/"
    "openrecord.rails?recordType=ContactFV&recid=55"
)
ITG_PASSWORD_URL = "https://contoso.itglue.example/1234/passwords/9001"
SHARED_NOTE = {
    "option": "psa.create_if_missing",
    "reason": "shared_psa_company",
    "detail": "several customers map to connectwise company 1001; "
    "contacts are linked, never created",
}
NO_EMAIL = "the command has no email, and the account's PSA contact has none"


@dataclass
class Seeded:
    contoso: dict[str, Any]
    contoso_eu: dict[str, Any]
    fabrikam: dict[str, Any]
    everyone: dict[str, Any]
    admins: dict[str, Any]
    ada: Account  # Contoso, end user: PSA contact matched, welcome email failed (attention)
    bob: Account  # Fabrikam, administrator: no result yet (pending)
    carol: Account  # Contoso EU, end user: no end-user policy (no_policy)
    dave: Account  # Fabrikam, end user: IT Glue entry created (done)


def seed_accounts(partner: Partner, bus: Bus) -> Seeded:
    """Three customers (two share ConnectWise company 1001) and one account of each status;
    returns once the API shows all four with their statuses."""
    contoso = partner.add_customer("Contoso", ("connectwise", "1001"))
    contoso_eu = partner.add_customer("Contoso EU", ("connectwise", "1001"))
    fabrikam = partner.add_customer("Fabrikam", ("halo", "7"), ("itglue", "42"))
    everyone = partner.create_policy(
        "Everyone",
        customer_ids=[contoso["id"], fabrikam["id"]],
        options={"psa": {"match": True, "create_if_missing": True}, "send_welcome_email": True},
    )
    admins = partner.create_policy("Admins", "administrator", customer_ids=[fabrikam["id"]])

    def account(customer: dict[str, Any], username: str, **fields: Any) -> Account:
        return Account(partner.id, uuid.UUID(customer["id"]), username=username, **fields)

    ada = account(contoso, "ada", display_name="Ada Lovelace", email=None)
    bob = account(
        fabrikam,
        "bob.admin",
        display_name="Bob Admin",
        email=None,
        account_type="administrator",
        directory="local",
    )
    carol = account(contoso_eu, "carol", display_name="Carol Danvers", email="carol@eu.example")
    dave = account(
        fabrikam,
        "dave",
        display_name="Dave Grohl",
        email="dave@fabrikam.example",
        directory="entra_id",
    )
    now = datetime.now(UTC)
    at = [now - timedelta(minutes=m) for m in (4, 3, 2, 1)]
    bus.decisions(
        decision_event(
            ada,
            ("psa.contact.link", "notification.welcome_email.send"),
            policy_id=uuid.UUID(everyone["id"]),
            policy_version=everyone["version"],
            notes=[SHARED_NOTE],
            at=at[0],
        ),
        decision_event(
            bob,
            ("documentation.password.link", "rotation.enroll"),
            policy_id=uuid.UUID(admins["id"]),
            at=at[1],
        ),
        decision_event(carol, (), outcome="no_policy", at=at[2]),
        decision_event(
            dave,
            ("documentation.password.link",),
            policy_id=uuid.UUID(everyone["id"]),
            at=at[3],
        ),
    )
    bus.results(
        result_event(
            ada,
            "psa.contact.link",
            outcome="matched",
            provider="connectwise",
            refs=[{"system": "connectwise", "kind": "contact", "id": "55", "url": CW_CONTACT_URL}],
            detail="matched by email",
            at=at[0] + timedelta(seconds=5),
        ),
        result_event(
            ada,
            "notification.welcome_email.send",
            reason="no_email",
            provider="smtp",
            detail=NO_EMAIL,
            at=at[0] + timedelta(seconds=9),
        ),
        result_event(
            dave,
            "documentation.password.link",
            outcome="created",
            provider="itglue",
            refs=[{"system": "itglue", "kind": "password", "id": "9001", "url": ITG_PASSWORD_URL}],
            detail="created in organisation 42",
            at=at[3] + timedelta(seconds=5),
        ),
    )
    expected = {"done": 1, "pending": 1, "attention": 1, "no_policy": 1}
    wait_until(
        lambda: partner.accounts("?limit=1")["counts"],
        lambda counts: counts == expected,
        30,
        "the seeded accounts",
    )
    return Seeded(contoso, contoso_eu, fabrikam, everyone, admins, ada, bob, carol, dave)
