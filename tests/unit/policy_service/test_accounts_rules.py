"""The accounts read model's rules, without I/O: status roll-up, which report wins,
how counts move, the commands an account shows, and reading a batch."""

import json
import uuid
from datetime import UTC, datetime, timedelta

from schemas.ids import command_id
from services.policy_service.domain.accounts import (
    CommandView,
    account_commands,
    command_statuses,
    count_changes,
    read_batch,
    roll_up,
)
from tests.account_events import ADMIN_COMMANDS, Account, decision_event, result_event

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_roll_up() -> None:
    assert roll_up("no_policy", ["failed"]) == "no_policy"
    assert roll_up("imported", []) == "done"
    assert roll_up("imported", ["succeeded", "succeeded"]) == "done"
    assert roll_up("imported", ["succeeded", "pending"]) == "pending"
    assert roll_up("imported", ["pending", "failed", "succeeded"]) == "attention"


def test_a_command_without_a_result_is_pending() -> None:
    assert command_statuses(["a", "b"], {"b": "failed"}) == ["pending", "failed"]
    assert command_statuses(["a"], {"a": "succeeded", "x": "failed"}) == ["succeeded", "failed"]


def test_count_changes() -> None:
    c = uuid.uuid4()
    was = {"k1": ("p", c, "end_user", "pending"), "k2": ("p", c, "end_user", "done")}
    now = {
        "k1": ("p", c, "end_user", "done"),
        "k2": ("p", c, "end_user", "done"),
        "k3": ("p", c, "administrator", "attention"),
    }
    assert count_changes(was, now) == {
        ("p", c, "end_user", "pending"): -1,
        ("p", c, "end_user", "done"): 1,
        ("p", c, "administrator", "attention"): 1,
    }
    assert count_changes(now, now) == {}


def test_an_import_wins_over_any_no_policy_and_else_the_latest_decision() -> None:
    a = Account("p1", uuid.uuid4())
    imported = decision_event(a, at=T0)
    late_no_policy = decision_event(a, outcome="no_policy", at=T0 + timedelta(hours=1))
    for order in ([imported, late_no_policy], [late_no_policy, imported]):
        [row] = read_batch(order).decisions.values()
        assert row.decision.outcome == "imported"
    older = decision_event(a, outcome="no_policy", at=T0)
    newer = decision_event(a, outcome="no_policy", at=T0 + timedelta(seconds=1))
    [row] = read_batch([newer, older]).decisions.values()
    assert row.decided_at == T0 + timedelta(seconds=1)


def test_the_latest_result_of_a_command_wins() -> None:
    a = Account("p1", uuid.uuid4())
    deferred = result_event(a, "documentation.password.link", outcome="deferred", at=T0)
    created = result_event(a, "documentation.password.link", outcome="created",
                           at=T0 + timedelta(minutes=1))  # fmt: skip
    [row] = read_batch([created, deferred, deferred]).results.values()
    assert getattr(row.result, "outcome", None) == "created"


def test_unreadable_and_foreign_records_are_counted_not_kept() -> None:
    mine = Account("p1", uuid.uuid4())
    forged = json.loads(decision_event(mine))
    forged["partnerid"] = "p2"
    batch = read_batch(
        [b"", b"{", b"[]", json.dumps({"type": "policy.updated"}).encode(), None,
         json.dumps(forged).encode(), decision_event(mine)]
    )  # fmt: skip
    assert (batch.unreadable, batch.foreign, len(batch.decisions)) == (5, 1, 1)


def test_the_commands_an_account_shows() -> None:
    a = Account("p1", uuid.uuid4(), account_type="administrator")
    ids = [str(command_id(a.key, t)) for t in ADMIN_COMMANDS]
    stray = uuid.uuid4()
    reported = [
        CommandView(uuid.UUID(ids[1]), "rotation.enroll", "succeeded", "enrolled", None, None,
                    [], None, T0),
        CommandView(stray, None, "failed", None, "timeout", None, [], None, T0),
    ]  # fmt: skip
    shown = account_commands(a.key, ids, T0 - timedelta(1), reported)
    assert [(c.type, c.status) for c in shown] == [
        ("documentation.password.link", "pending"),
        ("rotation.enroll", "succeeded"),
        (None, "failed"),
    ]
    assert shown[0].updated_at == T0 - timedelta(1)


def test_integration_status_from_results() -> None:
    a = Account("p1", uuid.uuid4())
    batch = read_batch(
        [
            result_event(a, "psa.contact.link", reason="integration_auth", provider="halo",
                         detail="401", at=T0),
            result_event(a, "documentation.password.link", reason="integration_missing",
                         provider="itglue", at=T0),
        ]
    )  # fmt: skip
    assert batch.statuses() == [("p1", "halo", "failing", "401", T0)]
