"""``BatchEngine.process`` at the message level: rules, envelopes, decisions, ledger.

docs/contract.md §§2 and 3, through in-memory fakes of the ports.
Dead letters and retries: ``test_engine_dlq.py``; failures: ``test_engine_delivery.py``.
"""

import uuid
from typing import Any

import pytest

from schemas.ids import command_id, decision_id
from services.import_worker.service_layer.ports import CustomerRecord

from .fakes import FakeDirectory, FakeLedger, FakePublisher
from .support import (
    AD,
    ADMIN,
    ALL_ADMIN,
    ALL_END_USER,
    CE_HEADER,
    END_USER,
    ENTRA,
    LOCAL,
    PARTNER,
    SOURCE,
    assert_valid,
    body,
    customer,
    discovered,
    key_of,
    make_engine,
    mc,
    policy,
    record,
)

pytestmark = pytest.mark.unit

DOC_LINK, PSA_LINK, WELCOME = (
    "documentation.password.link",
    "psa.contact.link",
    "notification.welcome_email.send",
)
SSPR, M365 = "identity.self_service_reset.enable", "identity.m365_password_sync.enable"
VAULT, ROTATION = "vault.password.store", "rotation.enroll"
DECISION = "import.decision.recorded"

# (customer, account type, directory, expected command types in order, expected notes)
RULES: dict[str, tuple[CustomerRecord, Any, Any, list[str], list[tuple[str, str]]]] = {
    "end_user_everything": (
        customer(end_user=policy(END_USER, **ALL_END_USER)),
        END_USER, AD, [DOC_LINK, PSA_LINK, WELCOME, SSPR, M365], [],
    ),
    "end_user_local_directory_syncs_to_m365": (
        customer(end_user=policy(END_USER, sync_password_to_m365=True)),
        END_USER, LOCAL, [M365], [],
    ),
    "end_user_entra_is_already_in_m365": (
        customer(end_user=policy(END_USER, **ALL_END_USER)),
        END_USER, ENTRA, [DOC_LINK, PSA_LINK, WELCOME, SSPR],
        [("sync_password_to_m365", "already_in_m365")],
    ),
    "end_user_shared_psa_company_never_creates": (
        customer(shared=True, end_user=policy(END_USER, psa=mc(True, True))),
        END_USER, AD, [PSA_LINK], [("psa.create_if_missing", "shared_psa_company")],
    ),
    "end_user_no_mappings": (
        customer(psa=False, documentation=False, end_user=policy(END_USER, **ALL_END_USER)),
        END_USER, AD, [WELCOME, SSPR, M365],
        [
            ("documentation.match", "no_documentation_organization"),
            ("documentation.create_if_missing", "no_documentation_organization"),
            ("psa.match", "no_psa_company"),
            ("psa.create_if_missing", "no_psa_company"),
        ],
    ),
    "end_user_all_off": (customer(end_user=policy(END_USER)), END_USER, AD, [], []),
    "admin_documented_password_not_in_vault": (
        customer(admin=policy(ADMIN, **ALL_ADMIN)),
        ADMIN, AD, [DOC_LINK, ROTATION],
        [("save_password_in_vault", "password_in_documentation")],
    ),
    "admin_without_documentation_goes_to_vault": (
        customer(documentation=False, admin=policy(ADMIN, **ALL_ADMIN)),
        ADMIN, ENTRA, [VAULT, ROTATION],
        [("documentation.match", "no_documentation_organization")],
    ),
    "admin_vault_only": (
        customer(admin=policy(ADMIN, save_password_in_vault=True)), ADMIN, LOCAL, [VAULT], [],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", RULES.values(), ids=RULES.keys())
async def test_every_rule_end_to_end(case: tuple[Any, ...]) -> None:
    cust, account_type, directory, expected, notes = case
    publisher, ledger = FakePublisher(), FakeLedger()
    event = discovered(account_type=account_type, directory=directory, event_id="evt-1")
    key = key_of(event)

    result = await make_engine(FakeDirectory(cust), ledger, publisher).process([record(event)])

    envelopes = [assert_valid(m) for m in publisher.sent]
    assert [e["type"] for e in envelopes] == [*expected, DECISION]
    policy_ = cust.policies[account_type]
    for envelope in envelopes:
        assert envelope["specversion"] == "1.0"
        assert envelope["source"] == SOURCE
        assert envelope["subject"] == key
        assert envelope["partnerid"] == PARTNER
        assert envelope["datacontenttype"] == "application/json"
        assert envelope["causationid"] == "evt-1"
        assert envelope["correlationid"] == "evt-1"
        assert envelope["data"]["account"]["key"] == key
        assert envelope["data"]["account"]["username"] == "jdoe"
        assert envelope["data"]["policy_id"] == str(policy_.id)
        assert envelope["data"]["policy_version"] == policy_.version
    decision = envelopes[-1]
    assert decision["id"] == str(decision_id(key, "evt-1"))
    assert decision["data"]["outcome"] == "imported"
    assert decision["data"]["command_ids"] == [str(command_id(key, t)) for t in expected]
    assert [(n["option"], n["reason"]) for n in decision["data"]["notes"]] == notes
    assert all(n["detail"] for n in decision["data"]["notes"])
    assert result.decided == {"imported": 1}
    assert result.commands == dict.fromkeys(expected, 1)
    assert set(ledger.rows) == {key}
    row = ledger.rows[key]
    assert (row.partner_id, row.customer_id) == (PARTNER, cust.view.id)
    assert (row.policy_id, row.policy_version) == (policy_.id, policy_.version)
    assert row.decision_id == decision_id(key, "evt-1")


async def test_command_data_carries_what_the_handler_needs() -> None:
    cust = customer(end_user=policy(END_USER, **ALL_END_USER))
    publisher = FakePublisher()
    await make_engine(FakeDirectory(cust), publisher=publisher).process(
        [record(discovered(event_id="evt-1"))]
    )
    data = {body(m)["type"]: body(m)["data"] for m in publisher.sent}
    assert data[DOC_LINK] | {"account": None} == {
        "account": None, "policy_id": str(cust.policies[END_USER].id), "policy_version": 3,
        "provider": "itglue", "organization_id": "itg-77", "create_if_missing": True,
        "sync_back": True,
    }  # fmt: skip
    assert data[PSA_LINK]["provider"] == "connectwise"
    assert data[PSA_LINK]["company_id"] == "cw-1001"
    assert data[PSA_LINK]["create_if_missing"] is True
    assert data[WELCOME]["email"] == "jane.doe@example.com"


async def test_welcome_email_without_an_address_says_null() -> None:
    cust = customer(end_user=policy(END_USER, send_welcome_email=True))
    publisher = FakePublisher()
    await make_engine(FakeDirectory(cust), publisher=publisher).process(
        [record(discovered(email=None))]
    )
    welcome = assert_valid(publisher.sent[0])
    assert welcome["type"] == WELCOME
    assert welcome["data"]["email"] is None


async def test_correlation_id_is_carried_over_from_the_discovered_event() -> None:
    cust = customer(end_user=policy(END_USER, send_welcome_email=True))
    publisher = FakePublisher()
    event = discovered(event_id="evt-9", correlationid="scan-2024-05-01")
    await make_engine(FakeDirectory(cust), publisher=publisher).process([record(event)])
    assert len(publisher.sent) == 2
    for message in publisher.sent:
        envelope = assert_valid(message)
        assert (envelope["causationid"], envelope["correlationid"]) == ("evt-9", "scan-2024-05-01")
        assert message.headers == [CE_HEADER]


async def test_an_overlong_correlation_id_never_makes_an_invalid_command() -> None:
    """An agent's ``correlationid`` is untrusted input; the schema allows 128 characters.

    Whatever the worker does with it (fall back to the event id, or dead-letter
    the event), what it publishes must stay valid against the contract.
    """
    cust = customer(end_user=policy(END_USER, send_welcome_email=True))
    publisher = FakePublisher()
    event = discovered(event_id="evt-9", correlationid="c" * 129)
    await make_engine(FakeDirectory(cust), publisher=publisher).process([record(event)])
    for message in publisher.sent:
        if message.topic in ("commands.notification", "import.decisions"):
            assert_valid(message)


async def test_no_policy_is_recorded_and_decided_afresh_every_time() -> None:
    directory = FakeDirectory(customer(admin=policy(ADMIN, **ALL_ADMIN)))
    publisher, ledger = FakePublisher(), FakeLedger()
    engine = make_engine(directory, ledger, publisher)
    first, second = discovered(event_id="evt-1"), discovered(event_id="evt-2")
    key = key_of(first)

    for event in (first, second, first):
        result = await engine.process([record(event)])
        assert result.decided == {"no_policy": 1}
        assert result.rediscovered == 0
    decisions = [assert_valid(m) for m in publisher.sent]
    assert [d["type"] for d in decisions] == [DECISION] * 3
    assert [d["id"] for d in decisions] == [
        str(decision_id(key, e)) for e in ("evt-1", "evt-2", "evt-1")
    ]
    for d in decisions:
        assert d["data"] | {"account": None} == {
            "account": None, "outcome": "no_policy", "policy_id": None,
            "policy_version": None, "command_ids": [], "notes": [],
        }  # fmt: skip
    assert ledger.rows == {}


async def test_no_policy_then_a_policy_imports_the_account() -> None:
    directory = FakeDirectory(customer())
    publisher, ledger = FakePublisher(), FakeLedger()
    engine = make_engine(directory, ledger, publisher)
    await engine.process([record(discovered(event_id="evt-1"))])
    directory.add(customer(end_user=policy(END_USER, send_welcome_email=True)))
    await engine.process([record(discovered(event_id="evt-2"))])
    assert [body(m)["type"] for m in publisher.sent] == [DECISION, WELCOME, DECISION]
    assert [body(m)["data"].get("outcome") for m in publisher.sent] == [
        "no_policy", None, "imported",
    ]  # fmt: skip
    assert set(ledger.rows) == {key_of(discovered())}


async def test_an_imported_account_discovered_again_gets_nothing() -> None:
    directory = FakeDirectory(customer(end_user=policy(END_USER, **ALL_END_USER)))
    publisher, ledger = FakePublisher(), FakeLedger()
    engine = make_engine(directory, ledger, publisher)
    await engine.process([record(discovered(event_id="evt-1"))])
    first = list(publisher.sent)
    row = ledger.rows[key_of(discovered())]

    # The policy changed meanwhile: still no new commands, no new decision.
    directory.add(customer(end_user=policy(END_USER, version=4, psa=mc(True))))
    result = await engine.process([record(discovered(event_id="evt-2"), offset=1)])

    assert publisher.sent == first
    assert result.rediscovered == 1
    assert result.decided == {}
    assert result.commands == {}
    assert ledger.rows == {row.account_key: row}


async def test_an_imported_account_whose_policy_was_unassigned_gets_nothing() -> None:
    """Only a ``no_policy`` account is decided afresh; this one was imported.

    "Every first decision for an account is recorded": a later ``no_policy``
    decision for an imported account is not a first decision, and recording
    one on every scan would say the account is not imported.
    """
    directory = FakeDirectory(customer(end_user=policy(END_USER, send_welcome_email=True)))
    publisher, ledger = FakePublisher(), FakeLedger()
    engine = make_engine(directory, ledger, publisher)
    await engine.process([record(discovered(event_id="evt-1"))])
    first = list(publisher.sent)

    directory.add(customer())  # the customer was moved off every policy
    result = await engine.process([record(discovered(event_id="evt-2"), offset=1)])

    assert [body(m)["data"]["outcome"] for m in publisher.sent[len(first) :]] == []
    assert result.decided == {}
    assert result.rediscovered == 1


async def test_the_same_account_twice_in_one_batch_is_decided_once() -> None:
    directory = FakeDirectory(customer(end_user=policy(END_USER, send_welcome_email=True)))
    publisher, ledger = FakePublisher(), FakeLedger()
    result = await make_engine(directory, ledger, publisher).process(
        [record(discovered(event_id="evt-1")), record(discovered(event_id="evt-2"), offset=1)]
    )
    envelopes = [assert_valid(m) for m in publisher.sent]
    assert [e["type"] for e in envelopes] == [WELCOME, DECISION]
    assert {e["causationid"] for e in envelopes} == {"evt-1"}
    assert result.decided == {"imported": 1}
    assert result.rediscovered == 1
    assert len(ledger.rows) == 1
    assert len(ledger.claims) == 1
    assert len(ledger.claims[0]) == 1


async def test_many_accounts_and_customers_in_one_batch() -> None:
    directory = FakeDirectory(
        customer("c1", end_user=policy(END_USER, send_welcome_email=True)),
        customer("c2", admin=policy(ADMIN, enable_password_rotation=True)),
    )
    events = [
        discovered("c1", external_id="u1"),
        discovered("c1", external_id="u2", directory=ENTRA),
        discovered("c2", external_id="a1", account_type=ADMIN),
        discovered("c2", external_id="u3"),  # c2 has no end-user policy
    ]
    publisher, ledger = FakePublisher(), FakeLedger()
    engine = make_engine(directory, ledger, publisher)
    result = await engine.process([record(e, offset=i) for i, e in enumerate(events)])

    assert len(directory.lookups) == 1
    assert sorted(directory.lookups[0]) == sorted(
        {uuid.UUID(e["data"]["customer_id"]) for e in events}
    )
    assert set(ledger.rows) == {key_of(e) for e in events[:3]}
    assert result.decided == {"imported": 3, "no_policy": 1}
    assert result.commands == {WELCOME: 2, ROTATION: 1}
    by_subject: dict[str, list[str]] = {}
    for m in publisher.sent:
        envelope = assert_valid(m)
        by_subject.setdefault(envelope["subject"], []).append(envelope["type"])
    assert by_subject == {
        key_of(events[0]): [WELCOME, DECISION],
        key_of(events[1]): [WELCOME, DECISION],
        key_of(events[2]): [ROTATION, DECISION],
        key_of(events[3]): [DECISION],
    }


async def test_an_empty_or_all_rediscovered_batch_commits_without_publishing() -> None:
    directory = FakeDirectory(customer(end_user=policy(END_USER, send_welcome_email=True)))
    publisher, ledger = FakePublisher(), FakeLedger()
    engine = make_engine(directory, ledger, publisher)
    await engine.process([])
    await engine.process([record(discovered())])
    calls = publisher.calls
    await engine.process([record(discovered(), offset=1)])
    assert publisher.calls == calls
    assert ledger.open == 0
    assert ledger.rollbacks == 0
