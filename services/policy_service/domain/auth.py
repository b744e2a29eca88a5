"""Who may do what: roles and the principal behind a request."""

from enum import StrEnum

from schemas.base import ContractModel, PartnerId


class Role(StrEnum):
    SUPER = "super"
    PRIMARY = "primary"
    MANAGER = "manager"
    TECHNICIAN = "technician"
    READ_ONLY = "read_only"


WRITER_ROLES = frozenset({Role.SUPER, Role.PRIMARY, Role.MANAGER})
READER_ROLES = frozenset(Role)


class Principal(ContractModel):
    """The authenticated caller: a user (``sub``) of one partner, with one role.

    ``role`` is kept as text: a token may carry a role we do not know, which
    is a 403 (not a 401) when the caller tries to do anything.
    """

    sub: str
    partner_id: PartnerId
    role: str

    def may_read(self) -> bool:
        return self.role in READER_ROLES

    def may_write(self) -> bool:
        return self.role in WRITER_ROLES
