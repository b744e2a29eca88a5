"""What the handlers know of records in the partners' tools: contacts and password
entries, as the connectors read them, and what is asked of a new one."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PsaContact:
    """A contact of a PSA company (ConnectWise contact, Autotask contact, Halo user)."""

    id: str
    first_name: str = ""
    last_name: str = ""
    emails: tuple[str, ...] = ()
    phone: str | None = None
    marker: str | None = None  # what we wrote into the vendor's field for our key
    url: str | None = None

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True)
class NewContact:
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    marker: str


@dataclass(frozen=True)
class PasswordEntry:
    """A password entry of a documentation organisation (IT Glue password, Hudu asset
    password); never with its secret."""

    id: str
    name: str = ""
    username: str = ""
    marker_text: str = ""  # the notes / description, where our marker goes
    url: str | None = None


@dataclass(frozen=True)
class NewPasswordEntry:
    name: str
    username: str
    password: str = field(repr=False)
    notes: str = ""
