"""``services.decision.decide`` over every combination of inputs, against an oracle.

``expected()`` restates docs/contract.md §3 on its own, from plain values;
it shares nothing with ``services.decision.rules``. The reasons of the notes
are the vocabulary of ``schemas.decision.NoteReason`` (docs/contract.md names the
option; the schema names the reason).
"""

import itertools
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.discovery import DiscoveredAccount
from schemas.enums import AccountType, Directory, DocumentationProvider, PsaProvider
from schemas.ids import command_id
from schemas.mappings import DocumentationMapping, PsaMapping
from schemas.options import AdministratorOptions, EndUserOptions, MatchOrCreate
from schemas.topics import TopicNames
from services.decision import CustomerView, Decision, EffectivePolicy, decide

pytestmark = pytest.mark.unit

END_USER = AccountType.END_USER
SYNCABLE = {Directory.ACTIVE_DIRECTORY, Directory.LOCAL}

# docs/contract.md §2: command type -> topic (default name).
CONTRACT_TOPIC = {
    "psa.contact.link": "commands.psa",
    "documentation.password.link": "commands.documentation",
    "vault.password.store": "commands.vault",
    "rotation.enroll": "commands.rotation",
    "notification.welcome_email.send": "commands.notification",
    "identity.self_service_reset.enable": "commands.identity",
    "identity.m365_password_sync.enable": "commands.identity",
}

PARTNER = "acme-msp"
CUSTOMER_ID = uuid.UUID("3f6c2b7e-9d41-4c1a-8e0f-2b5d7a9c1e34")

Expected = tuple[str, list[tuple[str, dict[str, Any]]], set[tuple[str, str]]]


def expected(account: DiscoveredAccount, customer: CustomerView, options: Any | None) -> Expected:
    """(outcome, [(command type, handler fields)], {(option, reason)}) per section 3."""
    if options is None:
        return "no_policy", [], set()
    commands: list[tuple[str, dict[str, Any]]] = []
    notes: set[tuple[str, str]] = set()

    def skipped(option: str, reason: str) -> None:
        notes.add((option, reason))

    doc, doc_org = options.documentation, customer.documentation
    documented = doc.match and doc_org is not None
    if documented:
        fields = {
            "provider": doc_org.provider,
            "organization_id": doc_org.organization_id,
            "create_if_missing": doc.create_if_missing,
            "sync_back": True,
        }
        commands.append(("documentation.password.link", fields))
    elif doc.match:
        skipped("documentation.match", "no_documentation_organization")
        if doc.create_if_missing:
            skipped("documentation.create_if_missing", "no_documentation_organization")

    if account.account_type is END_USER:
        psa, company = options.psa, customer.psa
        if psa.match and company is not None:
            create = psa.create_if_missing and not customer.psa_company_shared
            if psa.create_if_missing and customer.psa_company_shared:
                skipped("psa.create_if_missing", "shared_psa_company")
            fields = {
                "provider": company.provider,
                "company_id": company.company_id,
                "create_if_missing": create,
            }
            commands.append(("psa.contact.link", fields))
        elif psa.match:
            skipped("psa.match", "no_psa_company")
            if psa.create_if_missing:
                skipped("psa.create_if_missing", "no_psa_company")
        if options.send_welcome_email:
            commands.append(("notification.welcome_email.send", {"email": account.email}))
        if options.enable_self_serve_reset:
            commands.append(("identity.self_service_reset.enable", {}))
        if options.sync_password_to_m365 and account.directory in SYNCABLE:
            commands.append(("identity.m365_password_sync.enable", {}))
        elif options.sync_password_to_m365:
            skipped("sync_password_to_m365", "already_in_m365")
    else:
        if options.save_password_in_vault and not documented:
            commands.append(("vault.password.store", {}))
        elif options.save_password_in_vault:
            skipped("save_password_in_vault", "password_in_documentation")
        if options.enable_password_rotation:
            commands.append(("rotation.enroll", {}))
    return "imported", commands, notes


def check(account: DiscoveredAccount, customer: CustomerView, policy: Any | None) -> Decision:
    """Decide, and hold the decision to the oracle and to every invariant."""
    decision = decide(account, customer, policy)
    outcome, commands, notes = expected(account, customer, policy.options if policy else None)

    assert decision.outcome.value == outcome
    assert [c.TYPE for c in decision.commands] == [t for t, _ in commands]
    for command, (_type, fields) in zip(decision.commands, commands, strict=True):
        assert command.model_dump(include=set(fields)) == fields
    got_notes = [(n.option, n.reason.value) for n in decision.notes]
    assert sorted(got_notes) == sorted(notes), "one note per option on but not acted upon"

    types = [c.TYPE for c in decision.commands]
    assert len(types) == len(set(types)), "a command type twice"
    defaults = TopicNames.model_fields
    for command in decision.commands:
        assert defaults[command.CHANNEL].default == CONTRACT_TOPIC[command.TYPE]

    key = f"{PARTNER}:{account.customer_id}:{account.directory.value}:{account.external_id}"
    assert decision.account.key == key
    assert decision.account.model_dump(exclude={"key"}) == account.model_dump()
    policy_ref = (policy.id, policy.version) if policy else (None, None)
    assert (decision.policy_id, decision.policy_version) == policy_ref
    for command in decision.commands:
        assert command.account == decision.account
        assert (command.policy_id, command.policy_version) == policy_ref
    ids = [command_id(key, t) for t in types]
    assert decision.command_ids() == ids
    record = decision.record()
    assert record.command_ids == ids
    assert (record.outcome, record.notes) == (decision.outcome, list(decision.notes))
    assert (record.policy_id, record.policy_version) == policy_ref

    assert decide(account, customer, policy) == decision, "not deterministic"
    return decision


# ---------------------------------------------------------------- builders


def make_account(
    account_type: AccountType, directory: Directory, email: str | None = "a@example.com"
) -> DiscoveredAccount:
    return DiscoveredAccount(
        customer_id=CUSTOMER_ID,
        account_type=account_type,
        directory=directory,
        external_id="S-1-5-21-3623811015-3361044348-30300820-1013",
        username="jdoe",
        email=email,
    )


def make_policy(account_type: AccountType, options: Any, version: int = 4) -> EffectivePolicy:
    policy_id = uuid.UUID("b7a1d0c2-5e8f-4a3b-9c6d-1e2f3a4b5c6d")
    return EffectivePolicy(
        id=policy_id, version=version, account_type=account_type, options=options
    )


MATCH_OR_CREATE = [MatchOrCreate(match=m, create_if_missing=c) for m, c in [(0, 0), (1, 0), (1, 1)]]
BOOLS = (False, True)


def all_options(account_type: AccountType) -> list[Any]:
    if account_type is END_USER:
        return [
            EndUserOptions(
                documentation=doc,
                psa=psa,
                send_welcome_email=welcome,
                enable_self_serve_reset=sspr,
                sync_password_to_m365=m365,
            )
            for doc, psa, welcome, sspr, m365 in itertools.product(
                MATCH_OR_CREATE, MATCH_OR_CREATE, BOOLS, BOOLS, BOOLS
            )
        ]
    return [
        AdministratorOptions(
            save_password_in_vault=vault, documentation=doc, enable_password_rotation=rotation
        )
        for vault, doc, rotation in itertools.product(BOOLS, MATCH_OR_CREATE, BOOLS)
    ]


ALL_CUSTOMERS = [
    CustomerView(
        id=CUSTOMER_ID,
        partner_id=PARTNER,
        psa=PsaMapping(provider=PsaProvider.HALO, company_id="halo-3") if psa else None,
        documentation=(
            DocumentationMapping(provider=DocumentationProvider.HUDU, organization_id="h-1")
            if doc
            else None
        ),
        psa_company_shared=shared,
    )
    for psa, doc, shared in itertools.product(BOOLS, BOOLS, BOOLS)
]


@pytest.mark.parametrize("account_type", list(AccountType))
def test_every_combination_matches_the_oracle(account_type: AccountType) -> None:
    seen_types: set[str] = set()
    seen_notes: set[tuple[str, str]] = set()
    policies = [None, *(make_policy(account_type, o) for o in all_options(account_type))]
    for directory, customer, policy in itertools.product(Directory, ALL_CUSTOMERS, policies):
        decision = check(make_account(account_type, directory), customer, policy)
        seen_types.update(c.TYPE for c in decision.commands)
        seen_notes.update((n.option, n.reason.value) for n in decision.notes)
    # The sweep reached every command and every kind of note of this account type.
    no_doc = "no_documentation_organization"
    doc_notes = {("documentation.match", no_doc), ("documentation.create_if_missing", no_doc)}
    if account_type is END_USER:
        assert seen_types == {
            "documentation.password.link",
            "psa.contact.link",
            "notification.welcome_email.send",
            "identity.self_service_reset.enable",
            "identity.m365_password_sync.enable",
        }
        assert seen_notes == doc_notes | {
            ("psa.match", "no_psa_company"),
            ("psa.create_if_missing", "no_psa_company"),
            ("psa.create_if_missing", "shared_psa_company"),
            ("sync_password_to_m365", "already_in_m365"),
        }
    else:
        assert seen_types == {
            "documentation.password.link",
            "vault.password.store",
            "rotation.enroll",
        }
        assert seen_notes == doc_notes | {("save_password_in_vault", "password_in_documentation")}


# ---------------------------------------------------------------- hypothesis

match_or_create = st.booleans().flatmap(
    lambda match: st.builds(
        MatchOrCreate,
        match=st.just(match),
        create_if_missing=st.booleans() if match else st.just(False),
    )
)
end_user_options = st.builds(
    EndUserOptions,
    documentation=match_or_create,
    psa=match_or_create,
    send_welcome_email=st.booleans(),
    enable_self_serve_reset=st.booleans(),
    sync_password_to_m365=st.booleans(),
)
admin_options = st.builds(
    AdministratorOptions,
    save_password_in_vault=st.booleans(),
    documentation=match_or_create,
    enable_password_rotation=st.booleans(),
)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
customers = st.builds(
    CustomerView,
    id=st.just(CUSTOMER_ID),
    partner_id=st.just(PARTNER),
    psa=st.none() | st.builds(PsaMapping, provider=st.sampled_from(PsaProvider), company_id=ids),
    documentation=st.none()
    | st.builds(
        DocumentationMapping, provider=st.sampled_from(DocumentationProvider), organization_id=ids
    ),
    psa_company_shared=st.booleans(),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[DiscoveredAccount, CustomerView, EffectivePolicy | None]:
    account_type = draw(st.sampled_from(AccountType))
    email = draw(st.none() | st.emails(domains=st.just("example.com")))
    account = make_account(account_type, draw(st.sampled_from(Directory)), email)
    options = draw(end_user_options if account_type is END_USER else admin_options)
    version = draw(st.integers(min_value=1, max_value=10_000))
    policy = draw(st.none() | st.just(make_policy(account_type, options, version)))
    return account, draw(customers), policy


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_decision_matches_the_oracle(
    scenario: tuple[DiscoveredAccount, CustomerView, EffectivePolicy | None],
) -> None:
    check(*scenario)


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.sampled_from(Directory))
def test_only_m365_sync_depends_on_the_directory(
    scenario: tuple[DiscoveredAccount, CustomerView, EffectivePolicy | None],
    directory: Directory,
) -> None:
    account, customer, policy = scenario
    moved = account.model_copy(update={"directory": directory})
    kept = ("identity.m365_password_sync.enable",)
    first = [c.TYPE for c in decide(account, customer, policy).commands if c.TYPE not in kept]
    second = [c.TYPE for c in decide(moved, customer, policy).commands if c.TYPE not in kept]
    assert first == second
