"""The rules of docs/contract.md §3, as one pure function."""

from schemas.commands import (
    Command,
    CommandAccount,
    DocumentationPasswordLink,
    M365PasswordSyncEnable,
    PsaContactLink,
    RotationEnroll,
    SelfServiceResetEnable,
    VaultPasswordStore,
    WelcomeEmailSend,
)
from schemas.decision import DecisionNote, NoteReason, Outcome
from schemas.discovery import DiscoveredAccount, account_key
from schemas.enums import AccountType, Directory
from schemas.options import AdministratorOptions, EndUserOptions, MatchOrCreate
from services.decision.model import CustomerView, Decision, EffectivePolicy

_M365_SYNCABLE = frozenset({Directory.ACTIVE_DIRECTORY, Directory.LOCAL})


def decide(
    account: DiscoveredAccount, customer: CustomerView, policy: EffectivePolicy | None
) -> Decision:
    """Decide what to do for ``account`` of ``customer`` under ``policy``.

    ``policy`` is the customer's effective policy for the account's type, or
    None when it has none: the outcome is then ``no_policy`` and nothing is
    sent. Otherwise the outcome is ``imported`` with the commands the options
    call for, in the contract's order, and a note for every option that was
    on but not acted upon as configured.
    """
    if account.customer_id != customer.id:
        raise ValueError("the account belongs to another customer")
    subject = CommandAccount(key=account_key(customer.partner_id, account), **account.model_dump())
    if policy is None:
        return Decision(
            account=subject,
            outcome=Outcome.NO_POLICY,
            policy_id=None,
            policy_version=None,
            commands=(),
            notes=(),
        )
    if policy.account_type != account.account_type:
        raise ValueError("the policy is for another account type")

    plan = _Plan(subject, customer, policy)
    options = policy.options
    if account.account_type is AccountType.END_USER and isinstance(options, EndUserOptions):
        plan.end_user(options)
    elif isinstance(options, AdministratorOptions):
        plan.administrator(options)
    else:  # pragma: no cover - EffectivePolicy's validator already refuses this
        raise ValueError("the policy's options are not for its account type")
    return Decision(
        account=subject,
        outcome=Outcome.IMPORTED,
        policy_id=policy.id,
        policy_version=policy.version,
        commands=tuple(plan.commands),
        notes=tuple(plan.notes),
    )


class _Plan:
    """Collects commands and notes while the rules are applied in order."""

    def __init__(self, account: CommandAccount, customer: CustomerView, policy: EffectivePolicy):
        self.account = account
        self.customer = customer
        self.policy = policy
        self.commands: list[Command] = []
        self.notes: list[DecisionNote] = []

    def _common(self) -> dict[str, object]:
        return {
            "account": self.account,
            "policy_id": self.policy.id,
            "policy_version": self.policy.version,
        }

    def _note(self, option: str, reason: NoteReason, detail: str) -> None:
        self.notes.append(DecisionNote(option=option, reason=reason, detail=detail))

    def end_user(self, options: EndUserOptions) -> None:
        self.documentation(options.documentation)
        self.psa(options.psa)
        if options.send_welcome_email:
            self.commands.append(WelcomeEmailSend(**self._common(), email=self.account.email))
        if options.enable_self_serve_reset:
            self.commands.append(SelfServiceResetEnable(**self._common()))
        if options.sync_password_to_m365:
            if self.account.directory in _M365_SYNCABLE:
                self.commands.append(M365PasswordSyncEnable(**self._common()))
            else:
                self._note(
                    "sync_password_to_m365",
                    NoteReason.ALREADY_IN_M365,
                    "an Entra ID account is already in Microsoft 365; nothing to sync",
                )

    def administrator(self, options: AdministratorOptions) -> None:
        documented = self.documentation(options.documentation)
        if options.save_password_in_vault:
            if documented:
                self._note(
                    "save_password_in_vault",
                    NoteReason.PASSWORD_IN_DOCUMENTATION,
                    "the password is kept in the documentation tool, not the vault",
                )
            else:
                self.commands.append(VaultPasswordStore(**self._common()))
        if options.enable_password_rotation:
            self.commands.append(RotationEnroll(**self._common()))

    def documentation(self, option: MatchOrCreate) -> bool:
        """Rule 1 of both account types; True when a command was emitted."""
        if not option.match:
            return False
        mapping = self.customer.documentation
        if mapping is None:
            detail = "the customer has no documentation organisation (IT Glue / Hudu)"
            self._note("documentation.match", NoteReason.NO_DOCUMENTATION_ORGANIZATION, detail)
            if option.create_if_missing:
                self._note(
                    "documentation.create_if_missing",
                    NoteReason.NO_DOCUMENTATION_ORGANIZATION,
                    detail,
                )
            return False
        self.commands.append(
            DocumentationPasswordLink(
                **self._common(),
                provider=mapping.provider,
                organization_id=mapping.organization_id,
                create_if_missing=option.create_if_missing,
            )
        )
        return True

    def psa(self, option: MatchOrCreate) -> None:
        if not option.match:
            return
        mapping = self.customer.psa
        if mapping is None:
            detail = "the customer has no PSA company (ConnectWise / Autotask / Halo)"
            self._note("psa.match", NoteReason.NO_PSA_COMPANY, detail)
            if option.create_if_missing:
                self._note("psa.create_if_missing", NoteReason.NO_PSA_COMPANY, detail)
            return
        create = option.create_if_missing
        if create and self.customer.psa_company_shared:
            create = False
            self._note(
                "psa.create_if_missing",
                NoteReason.SHARED_PSA_COMPANY,
                f"several customers map to {mapping.provider.value} company "
                f"{mapping.company_id}; contacts are linked, never created",
            )
        self.commands.append(
            PsaContactLink(
                **self._common(),
                provider=mapping.provider,
                company_id=mapping.company_id,
                create_if_missing=create,
            )
        )
