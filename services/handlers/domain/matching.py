"""The matching rules of docs/contract.md §7, as pure functions.

PSA contact: the account's ``email``, else its ``user_principal_name``, compared
case-insensitively with the contact's email addresses; with neither, its
``display_name`` compared with the contact's full name. Documentation entry: an
entry whose username equals the account's ``username`` or
``user_principal_name``, case-insensitively. One match links, none may create,
more than one is ambiguous. Vendors' searches only narrow the candidates; these
functions decide.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.commands import CommandAccount
from services.handlers.domain.records import PasswordEntry, PsaContact


@dataclass(frozen=True)
class ContactQuery:
    """How to look for the account's contact: by address, or by full name."""

    email: str | None = None
    full_name: str | None = None

    @property
    def usable(self) -> bool:
        return bool(self.email or self.full_name)


def _fold(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def contact_query(account: CommandAccount) -> ContactQuery:
    address = account.email or account.user_principal_name
    if address:
        return ContactQuery(email=address)
    return ContactQuery(full_name=account.display_name or None)


def matching_contacts(query: ContactQuery, candidates: Sequence[PsaContact]) -> list[PsaContact]:
    """The candidates the rule matches, each once (vendors may return one twice)."""
    found: dict[str, PsaContact] = {}
    for contact in candidates:
        if query.email:
            hit = _fold(query.email) in {_fold(e) for e in contact.emails}
        elif query.full_name:
            hit = _fold(query.full_name) == _fold(contact.full_name)
        else:
            hit = False
        if hit:
            found.setdefault(contact.id, contact)
    return list(found.values())


def names_for(account: CommandAccount) -> tuple[str, str]:
    """First and last name of a contact to create: from ``display_name``, else the
    username (``jane.doe`` -> Jane, Doe); a single word is a first name only."""
    if account.display_name and account.display_name.strip():
        words = account.display_name.split()
        return (" ".join(words[:-1]), words[-1]) if len(words) > 1 else (words[0], "")
    base = account.username.split("@", 1)[0]
    for separator in (".", "_", "-", " "):
        if separator in base.strip(separator):
            first, _, last = base.strip(separator).partition(separator)
            return first.capitalize(), last.replace(separator, " ").title()
    return base, ""


def matching_entries(
    account: CommandAccount, entries: Sequence[PasswordEntry]
) -> list[PasswordEntry]:
    wanted = {_fold(account.username)}
    if account.user_principal_name:
        wanted.add(_fold(account.user_principal_name))
    found: dict[str, PasswordEntry] = {}
    for entry in entries:
        if entry.username and _fold(entry.username) in wanted:
            found.setdefault(entry.id, entry)
    return list(found.values())


def entry_name(account: CommandAccount) -> str:
    """The name of a password entry we create: who, and from which directory."""
    who = account.display_name or account.username
    directory = {"active_directory": "AD", "entra_id": "Entra ID", "local": "local"}[
        account.directory.value
    ]
    return f"{who} ({directory})"
