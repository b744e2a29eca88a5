"""The API's policy view is what validating the state into the response model gives,
and its cached rendering is the response model's JSON, byte for byte."""

import uuid
from datetime import UTC, datetime

import pytest

from schemas.enums import AccountType
from schemas.options import AdministratorOptions, EndUserOptions, MatchOrCreate
from schemas.policy import PolicyState
from services.policy_service.api import models as m
from services.policy_service.api.rendered import RenderedPolicies, to_policy

pytestmark = pytest.mark.unit

WHEN = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def state(account_type: AccountType) -> PolicyState:
    options = (
        EndUserOptions(
            psa=MatchOrCreate(match=True, create_if_missing=True), send_welcome_email=True
        )
        if account_type is AccountType.END_USER
        else AdministratorOptions(save_password_in_vault=True, enable_password_rotation=True)
    )
    return PolicyState(
        id=uuid.uuid4(),
        partner_id="acme-msp",
        account_type=account_type,
        name='Standard «café» "quoted"',
        description="line\nbreak",
        is_default=True,
        customer_ids=[uuid.uuid4(), uuid.uuid4()],
        options=options,
        version=7,
        created_at=WHEN,
        updated_at=WHEN,
        changed_by="user-1",
    )


@pytest.mark.parametrize("account_type", list(AccountType))
def test_the_view_equals_the_validated_response_model(account_type: AccountType) -> None:
    s = state(account_type)
    validated = m.Policy.model_validate(s.model_dump(exclude={"partner_id", "changed_by"}))
    view = to_policy(s)
    assert view == validated
    assert view.model_dump_json() == validated.model_dump_json()
    assert set(view.model_dump()).isdisjoint({"partner_id", "changed_by"})


def validated_json(s: PolicyState) -> bytes:
    return (
        m.Policy.model_validate(s.model_dump(exclude={"partner_id", "changed_by"}))
        .model_dump_json()
        .encode()
    )


@pytest.mark.parametrize("with_end_user", [True, False])
@pytest.mark.parametrize("with_admin", [True, False])
def test_effective_policies_render_as_the_response_model(
    with_end_user: bool, with_admin: bool
) -> None:
    end_user = state(AccountType.END_USER) if with_end_user else None
    admin = state(AccountType.ADMINISTRATOR) if with_admin else None
    rendered = RenderedPolicies()
    expected = (
        m.EffectivePolicies(
            end_user=to_policy(end_user) if end_user else None,
            administrator=to_policy(admin) if admin else None,
        )
        .model_dump_json()
        .encode()
    )
    assert rendered.effective(end_user, admin) == expected
    assert rendered.effective(end_user, admin) == expected  # from the cache now


def test_a_changed_policy_is_rendered_again() -> None:
    rendered = RenderedPolicies()
    before = state(AccountType.END_USER)
    assert rendered(before) == validated_json(before)
    renamed = before.model_copy(update={"name": "renamed", "version": before.version + 1})
    assert rendered(renamed) == validated_json(renamed)
    # An id used again (the service never does): version 1 again, another updated_at.
    again = before.model_copy(
        update={"name": "again", "version": 1, "updated_at": datetime.now(UTC)}
    )
    assert rendered(again) == validated_json(again)
    assert rendered(before) == validated_json(before)


def test_the_cache_keeps_only_the_latest_states() -> None:
    rendered = RenderedPolicies(size=2)
    states = [state(AccountType.END_USER) for _ in range(3)]
    for s in states:
        rendered(s)
    assert len(rendered._rendered) == 2
    assert (states[0].id, states[0].version, states[0].updated_at) not in rendered._rendered
    assert rendered(states[0]) == validated_json(states[0])
