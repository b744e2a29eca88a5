"""What the handlers' rules need from the vendors, as small protocols.

One adapter per vendor implements them (``adapters/connectors/``), on the base
client that owns auth, pacing, retries and error mapping; unit tests use fakes.
"""

from typing import Protocol

from services.handlers.domain.mail import Mail
from services.handlers.domain.matching import ContactQuery
from services.handlers.domain.records import (
    NewContact,
    NewPasswordEntry,
    PasswordEntry,
    PsaContact,
)


class PsaConnector(Protocol):
    """ConnectWise, Autotask or Halo, for one partner's integration."""

    system: str
    marker_limit: int | None  # longest marker its external-id field holds (None: any)

    async def search_contacts(self, company_id: str, query: ContactQuery) -> list[PsaContact]:
        """Contacts of the company that may match ``query`` (the rule decides)."""
        ...

    async def create_contact(self, company_id: str, new: NewContact) -> PsaContact:
        """Create it; raises ``MaybeDone`` when the create's outcome is unknown."""
        ...


class DocumentationConnector(Protocol):
    """IT Glue or Hudu, for one partner's integration."""

    system: str

    async def password_entries(
        self, organization_id: str, username_hint: str
    ) -> list[PasswordEntry]:
        """Every password entry of the organisation that may be the account's (all of
        them where the vendor cannot filter by username)."""
        ...

    async def create_entry(self, organization_id: str, new: NewPasswordEntry) -> PasswordEntry: ...

    async def set_password(self, organization_id: str, entry_id: str, password: str) -> None: ...


class M365User(Protocol):
    id: str
    user_principal_name: str
    synced: bool  # onPremisesSyncEnabled: password hash sync carries its password


class IdentityConnector(Protocol):
    """Microsoft Graph, for one partner's Microsoft 365 tenant."""

    system: str

    async def find_user(self, user_principal_name: str) -> M365User | None:
        """The user with this UPN (None when Graph has none)."""
        ...

    async def set_password(self, user_id: str, password: str) -> None:
        """Set the user's password (``passwordProfile``), not forcing a change at sign-in."""
        ...


class Mailer(Protocol):
    """The partner's SMTP server."""

    async def send(self, mail: Mail) -> None:
        """Deliver it; a 4xx deferral is retried, a 5xx refusal is VendorRejected, refused
        credentials VendorAuthError, a server that stays away VendorUnavailable."""
        ...
