"""The engine's message encoding is pydantic's, byte for byte.

``dump_with_account`` serialises a decision's account once and splices it into
every command and the record; what leaves must be exactly what
``model_dump_json()`` would have written, for any account (names and ids with
quotes, backslashes, non-ASCII and control characters) and any decision.
"""

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.discovery import DiscoveredAccount
from schemas.enums import AccountType, Directory
from schemas.options import AdministratorOptions, EndUserOptions
from services.decision import CustomerView, decide
from services.import_worker.service_layer.engine import dump_with_account

from ..test_decision_properties import admin_options, customers, end_user_options, make_policy

pytestmark = pytest.mark.unit

CUSTOMER_ID = uuid.UUID("3f6c2b7e-9d41-4c1a-8e0f-2b5d7a9c1e34")
# Any text the contract takes: no NUL, no lone surrogates (not UTF-8), not blank.
characters = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
text = st.text(characters, min_size=1, max_size=40).filter(str.strip)


@st.composite
def accounts(draw: st.DrawFn) -> DiscoveredAccount:
    return DiscoveredAccount(
        customer_id=CUSTOMER_ID,
        account_type=draw(st.sampled_from(AccountType)),
        directory=draw(st.sampled_from(Directory)),
        external_id=draw(text),
        username=draw(text),
        display_name=draw(st.none() | text),
        email=draw(st.none() | st.emails(domains=st.just("example.com"))),
        agent_id=draw(text),
        discovered_at="2026-12-02T07:00:00Z",
    )


@settings(max_examples=300)
@given(accounts(), customers, end_user_options, admin_options, st.integers(1, 10_000))
def test_every_command_and_record_is_encoded_as_pydantic_would(
    account: DiscoveredAccount,
    customer: CustomerView,
    end_user: EndUserOptions,
    admin: AdministratorOptions,
    version: int,
) -> None:
    options = end_user if account.account_type is AccountType.END_USER else admin
    policy = make_policy(account.account_type, options, version)
    for decision in (decide(account, customer, policy), decide(account, customer, None)):
        encoded_account = decision.account.model_dump_json().encode()
        for model in (*decision.commands, decision.record()):
            assert dump_with_account(model, encoded_account) == model.model_dump_json().encode()
