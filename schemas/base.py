"""Base classes and constrained types used across the contract models."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

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


class ContractModel(BaseModel):
    """Immutable, closed model: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")
