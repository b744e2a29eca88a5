"""The API's policy view is what validating the state into the response model gives."""

import uuid
from datetime import UTC, datetime

import pytest

from schemas.enums import AccountType
from schemas.options import AdministratorOptions, EndUserOptions, MatchOrCreate
from schemas.policy import PolicyState
from services.policy_service.api import models as m
from services.policy_service.api.views import to_policy

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
