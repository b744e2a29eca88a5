"""Closed vocabularies shared by every message of the contract."""

from enum import StrEnum


class AccountType(StrEnum):
    END_USER = "end_user"
    ADMINISTRATOR = "administrator"


class Directory(StrEnum):
    ACTIVE_DIRECTORY = "active_directory"
    ENTRA_ID = "entra_id"
    LOCAL = "local"


class PsaProvider(StrEnum):
    CONNECTWISE = "connectwise"
    AUTOTASK = "autotask"
    HALO = "halo"


class DocumentationProvider(StrEnum):
    ITGLUE = "itglue"
    HUDU = "hudu"
