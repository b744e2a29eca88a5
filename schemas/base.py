"""Base classes and constrained types used across the contract models."""

from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    WithJsonSchema,
)

# A partner (tenant) id appears inside the colon-separated account key, so it
# may not contain a colon; it is otherwise opaque (a UUID or a slug).
PartnerId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
]
# A directory's own stable id (objectGUID, SID, Entra object id). Free text,
# but bounded so a hostile agent cannot make us store megabytes per key, and
# without U+0000: it is part of the account key, which PostgreSQL text columns
# cannot hold with a NUL in it (the worker's ledger stores that key).
ExternalId = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\u0000]+$")
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# Surrounding whitespace is stripped first, so the schema asks for a character that is
# not whitespace (Python's ``\s`` is exactly what ``str.strip`` removes).
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"}),
]
Description = Annotated[str, StringConstraints(max_length=2000)]
# An email address, checked for shape only (one @, a dotted domain, no spaces).
# Full RFC 5321 validation (email-validator) costs ~200 us per address, which
# the worker's hot path cannot afford; deliverability is the handler's job.
Email = Annotated[
    str,
    StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "email",
            "maxLength": 320,
            "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        }
    ),
]


def _not_a_number(value: object) -> object:
    """Pydantic would read a number as Unix time; the contract says RFC 3339 text."""
    if isinstance(value, int | float):
        raise ValueError("must be an RFC 3339 date-time string, not a number")
    return value


# A date-time with a time zone, as RFC 3339 text (a datetime in Python), never a number.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]


class ContractModel(BaseModel):
    """Immutable model of the contract, read as a tolerant reader (docs/contract.md §2).

    A field it does not know is ignored, not an error: agents and services are
    upgraded independently, and a newer producer's extra field must not get
    its messages dead-lettered. Known fields keep their strict types. Dumps
    carry only the declared fields, so producers emit nothing else; the JSON
    Schemas of what this system produces say so (``additionalProperties:
    false``, set by ``schemas.generate``). Boundaries that must refuse unknown
    fields (the HTTP API's request bodies) validate with ``extra="forbid"``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
