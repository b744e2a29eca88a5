"""Base classes and constrained types used across the contract models."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, WithJsonSchema

# A partner (tenant) id appears inside the colon-separated account key, so it
# may not contain a colon; it is otherwise opaque (a UUID or a slug).
PartnerId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
]
# A directory's own stable id (objectGUID, SID, Entra object id). Free text,
# but bounded so a hostile agent cannot make us store megabytes per key.
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
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


class ContractModel(BaseModel):
    """Immutable, closed model: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")
