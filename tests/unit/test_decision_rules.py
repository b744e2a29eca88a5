"""``services.decision.decide`` against docs/contract.md §3, rule by rule.

Every combination of inputs is checked against an independent oracle in
``test_decision_properties.py``. The reasons of the notes are the vocabulary of
``schemas.decision.NoteReason`` (docs/contract.md names the option, the schema the reason).
"""

import uuid
from typing import Any

import pytest

from schemas.commands import CommandAccount
from schemas.decision import DecisionRecorded
from schemas.discovery import DiscoveredAccount
from schemas.enums import AccountType, Directory, DocumentationProvider, PsaProvider
from schemas.ids import command_id
from schemas.mappings import DocumentationMapping, PsaMapping
from schemas.options import AdministratorOptions, EndUserOptions, MatchOrCreate
from services.decision import CustomerView, Decision, EffectivePolicy, decide

pytestmark = pytest.mark.unit

END_USER, ADMIN = AccountType.END_USER, AccountType.ADMINISTRATOR
AD, ENTRA, LOCAL = Directory.ACTIVE_DIRECTORY, Directory.ENTRA_ID, Directory.LOCAL

DOC_LINK = "documentation.password.link"
PSA_LINK = "psa.contact.link"
WELCOME = "notification.welcome_email.send"
SSPR = "identity.self_service_reset.enable"
M365 = "identity.m365_password_sync.enable"
VAULT = "vault.password.store"
ROTATION = "rotation.enroll"

PARTNER = "acme-msp"
CUSTOMER_ID = uuid.UUID("3f6c2b7e-9d41-4c1a-8e0f-2b5d7a9c1e34")
POLICY_ID = uuid.UUID("b7a1d0c2-5e8f-4a3b-9c6d-1e2f3a4b5c6d")
POLICY_VERSION = 7
PSA = PsaMapping(provider=PsaProvider.CONNECTWISE, company_id="cw-1001")
DOC = DocumentationMapping(provider=DocumentationProvider.ITGLUE, organization_id="itg-77")


def make_account(
    account_type: AccountType = END_USER,
    directory: Directory = AD,
    email: str | None = "jane.doe@example.com",
    customer_id: uuid.UUID = CUSTOMER_ID,
) -> DiscoveredAccount:
    return DiscoveredAccount(
        customer_id=customer_id,
        account_type=account_type,
        directory=directory,
        external_id="7c1e2f3a-8b9d-4e5f-a6b7-c8d9e0f1a2b3",
        username="jdoe",
        email=email,
    )


def make_customer(
    *, psa: bool = True, documentation: bool = True, shared: bool = False
) -> CustomerView:
    return CustomerView(
        id=CUSTOMER_ID,
        partner_id=PARTNER,
        psa=PSA if psa else None,
        documentation=DOC if documentation else None,
        psa_company_shared=shared,
    )


def mc(match: bool = False, create: bool = False) -> MatchOrCreate:
    return MatchOrCreate(match=match, create_if_missing=create)


def end_user_policy(**options: Any) -> EffectivePolicy:
    return EffectivePolicy(
        id=POLICY_ID,
        version=POLICY_VERSION,
        account_type=END_USER,
        options=EndUserOptions(**options),
    )


def admin_policy(**options: Any) -> EffectivePolicy:
    return EffectivePolicy(
        id=POLICY_ID,
        version=POLICY_VERSION,
        account_type=ADMIN,
        options=AdministratorOptions(**options),
    )


def policy_for(account_type: AccountType, **options: Any) -> EffectivePolicy:
    return (end_user_policy if account_type is END_USER else admin_policy)(**options)


def types(decision: Decision) -> list[str]:
    return [c.TYPE for c in decision.commands]


def notes(decision: Decision) -> set[tuple[str, str]]:
    return {(n.option, n.reason.value) for n in decision.notes}


def only(decision: Decision, type_: str) -> Any:
    (command,) = [c for c in decision.commands if type_ == c.TYPE]
    return command


# ---------------------------------------------------------------- rule 1, both types


@pytest.mark.parametrize("account_type", list(AccountType))
@pytest.mark.parametrize("create", [False, True])
def test_documentation_link_when_matched_and_mapped(account_type, create) -> None:
    d = decide(
        make_account(account_type),
        make_customer(),
        policy_for(account_type, documentation=mc(True, create)),
    )
    assert types(d) == [DOC_LINK]
    link = only(d, DOC_LINK)
    assert (link.provider, link.organization_id) == (DOC.provider, DOC.organization_id)
    assert link.create_if_missing is create
    assert link.sync_back is True
    assert d.notes == ()


@pytest.mark.parametrize("account_type", list(AccountType))
@pytest.mark.parametrize("create", [False, True])
def test_documentation_without_organization_is_noted(account_type, create) -> None:
    customer = make_customer(documentation=False)
    d = decide(
        make_account(account_type),
        customer,
        policy_for(account_type, documentation=mc(True, create)),
    )
    assert types(d) == []
    expected = {("documentation.match", "no_documentation_organization")}
    if create:
        expected.add(("documentation.create_if_missing", "no_documentation_organization"))
    assert notes(d) == expected


@pytest.mark.parametrize("account_type", list(AccountType))
def test_documentation_off_means_no_link_even_when_mapped(account_type) -> None:
    d = decide(make_account(account_type), make_customer(), policy_for(account_type))
    assert (types(d), d.notes) == ([], ())


# ---------------------------------------------------------------- end-user rules


@pytest.mark.parametrize("create", [False, True])
def test_psa_link_carries_the_policy_create_flag(create) -> None:
    d = decide(make_account(), make_customer(), end_user_policy(psa=mc(True, create)))
    assert types(d) == [PSA_LINK]
    link = only(d, PSA_LINK)
    assert (link.provider, link.company_id, link.create_if_missing) == (
        PSA.provider,
        PSA.company_id,
        create,
    )
    assert d.notes == ()


def test_shared_psa_company_never_creates_and_says_why() -> None:
    d = decide(make_account(), make_customer(shared=True), end_user_policy(psa=mc(True, True)))
    assert types(d) == [PSA_LINK]
    assert only(d, PSA_LINK).create_if_missing is False
    assert notes(d) == {("psa.create_if_missing", "shared_psa_company")}
    assert PSA.company_id in d.notes[0].detail


def test_shared_psa_company_without_create_is_not_noted() -> None:
    d = decide(make_account(), make_customer(shared=True), end_user_policy(psa=mc(True, False)))
    assert only(d, PSA_LINK).create_if_missing is False
    assert d.notes == ()


@pytest.mark.parametrize("create", [False, True])
def test_psa_without_company_is_noted(create) -> None:
    d = decide(make_account(), make_customer(psa=False), end_user_policy(psa=mc(True, create)))
    assert types(d) == []
    expected = {("psa.match", "no_psa_company")}
    if create:
        expected.add(("psa.create_if_missing", "no_psa_company"))
    assert notes(d) == expected


@pytest.mark.parametrize("email", ["jane.doe@example.com", None])
def test_welcome_email_carries_the_account_email(email) -> None:
    d = decide(make_account(email=email), make_customer(), end_user_policy(send_welcome_email=True))
    assert types(d) == [WELCOME]
    assert only(d, WELCOME).email == email


def test_self_service_reset() -> None:
    d = decide(make_account(), make_customer(), end_user_policy(enable_self_serve_reset=True))
    assert (types(d), d.notes) == ([SSPR], ())


@pytest.mark.parametrize("directory", [AD, LOCAL])
def test_m365_sync_for_directories_outside_m365(directory) -> None:
    d = decide(
        make_account(directory=directory),
        make_customer(),
        end_user_policy(sync_password_to_m365=True),
    )
    assert (types(d), d.notes) == ([M365], ())


def test_m365_sync_for_entra_account_is_noted_not_sent() -> None:
    d = decide(
        make_account(directory=ENTRA), make_customer(), end_user_policy(sync_password_to_m365=True)
    )
    assert types(d) == []
    assert notes(d) == {("sync_password_to_m365", "already_in_m365")}


ALL_END_USER = {
    "documentation": mc(True, True),
    "psa": mc(True, True),
    "send_welcome_email": True,
    "enable_self_serve_reset": True,
    "sync_password_to_m365": True,
}


def test_end_user_commands_in_contract_order() -> None:
    d = decide(make_account(), make_customer(), end_user_policy(**ALL_END_USER))
    assert types(d) == [DOC_LINK, PSA_LINK, WELCOME, SSPR, M365]
    assert d.notes == ()


def test_end_user_everything_on_nothing_mapped_on_entra() -> None:
    customer = make_customer(psa=False, documentation=False)
    d = decide(make_account(directory=ENTRA), customer, end_user_policy(**ALL_END_USER))
    assert types(d) == [WELCOME, SSPR]
    assert {option for option, _ in notes(d)} == {
        "documentation.match",
        "documentation.create_if_missing",
        "psa.match",
        "psa.create_if_missing",
        "sync_password_to_m365",
    }


# ---------------------------------------------------------------- administrator rules


def test_vault_when_documentation_is_off() -> None:
    d = decide(make_account(ADMIN), make_customer(), admin_policy(save_password_in_vault=True))
    assert (types(d), d.notes) == ([VAULT], ())


def test_vault_skipped_when_documentation_link_was_sent() -> None:
    policy = admin_policy(save_password_in_vault=True, documentation=mc(True))
    d = decide(make_account(ADMIN), make_customer(), policy)
    assert types(d) == [DOC_LINK]
    assert notes(d) == {("save_password_in_vault", "password_in_documentation")}


def test_vault_when_documentation_has_no_organization() -> None:
    policy = admin_policy(save_password_in_vault=True, documentation=mc(True))
    d = decide(make_account(ADMIN), make_customer(documentation=False), policy)
    assert types(d) == [VAULT]
    assert notes(d) == {("documentation.match", "no_documentation_organization")}


def test_rotation() -> None:
    d = decide(make_account(ADMIN), make_customer(), admin_policy(enable_password_rotation=True))
    assert (types(d), d.notes) == ([ROTATION], ())


@pytest.mark.parametrize(
    ("documented", "expected"), [(True, [DOC_LINK, ROTATION]), (False, [VAULT, ROTATION])]
)
def test_administrator_commands_in_contract_order(documented, expected) -> None:
    policy = admin_policy(
        save_password_in_vault=True, documentation=mc(True, True), enable_password_rotation=True
    )
    d = decide(make_account(ADMIN, ENTRA), make_customer(documentation=documented), policy)
    assert types(d) == expected


# ---------------------------------------------------------------- outcome, ids, record


@pytest.mark.parametrize("account_type", list(AccountType))
def test_no_policy(account_type) -> None:
    d = decide(make_account(account_type), make_customer(), None)
    assert d.outcome.value == "no_policy"
    assert (d.commands, d.notes, d.policy_id, d.policy_version) == ((), (), None, None)
    record = d.record()
    assert (record.outcome.value, record.command_ids, record.notes) == ("no_policy", [], [])
    assert (record.policy_id, record.policy_version) == (None, None)


@pytest.mark.parametrize("account_type", list(AccountType))
def test_policy_with_every_option_off(account_type) -> None:
    d = decide(make_account(account_type), make_customer(shared=True), policy_for(account_type))
    assert d.outcome.value == "imported"
    assert (d.commands, d.notes) == ((), ())
    assert (d.policy_id, d.policy_version) == (POLICY_ID, POLICY_VERSION)


def expected_account(account: DiscoveredAccount) -> CommandAccount:
    key = f"{PARTNER}:{account.customer_id}:{account.directory.value}:{account.external_id}"
    return CommandAccount(key=key, **account.model_dump())


def check_common(account: DiscoveredAccount, d: Decision) -> None:
    """What every decision carries: account, policy, deterministic ids, its record."""
    subject = expected_account(account)
    assert d.account == subject
    ids = [command_id(subject.key, c.TYPE) for c in d.commands]
    assert d.command_ids() == ids
    for command in d.commands:
        assert command.account == subject
        assert (command.policy_id, command.policy_version) == (d.policy_id, d.policy_version)
    assert d.record() == DecisionRecorded(
        account=subject,
        outcome=d.outcome,
        policy_id=d.policy_id,
        policy_version=d.policy_version,
        command_ids=ids,
        notes=list(d.notes),
    )


@pytest.mark.parametrize("account_type", list(AccountType))
def test_commands_carry_account_policy_and_ids(account_type) -> None:
    account = make_account(account_type)
    options = (
        ALL_END_USER
        if account_type is END_USER
        else {"save_password_in_vault": True, "enable_password_rotation": True}
    )
    d = decide(account, make_customer(), policy_for(account_type, **options))
    assert len(d.commands) >= 2
    assert (d.policy_id, d.policy_version) == (POLICY_ID, POLICY_VERSION)
    check_common(account, d)


# ---------------------------------------------------------------- wrong inputs


@pytest.mark.parametrize("policy", [None, end_user_policy(send_welcome_email=True)])
def test_account_of_another_customer_is_refused(policy) -> None:
    account = make_account(customer_id=uuid.uuid4())
    with pytest.raises(ValueError, match="another customer"):
        decide(account, make_customer(), policy)


@pytest.mark.parametrize(("account_type", "policy_type"), [(END_USER, ADMIN), (ADMIN, END_USER)])
def test_policy_of_another_account_type_is_refused(account_type, policy_type) -> None:
    with pytest.raises(ValueError, match="another account type"):
        decide(make_account(account_type), make_customer(), policy_for(policy_type))


def test_administrator_policy_holding_end_user_options_is_refused() -> None:
    """An administrator account never gets end-user commands (welcome email, PSA, ...).

    A policy belongs to ONE account type with that type's options (docs/contract.md
    §1), so a policy of the administrator type holding end-user options
    is a wrong input, whether it is refused when built or when used.
    """

    def decide_with_mismatched_options() -> Decision:
        policy = EffectivePolicy(
            id=POLICY_ID,
            version=1,
            account_type=ADMIN,
            options=EndUserOptions(send_welcome_email=True, psa=mc(True, True)),
        )
        return decide(make_account(ADMIN), make_customer(), policy)

    with pytest.raises(ValueError):  # noqa: PT011 - a ValidationError is a ValueError too
        decide_with_mismatched_options()
