"""Why a record read from the bus cannot be acted on (docs/contract.md §3 and §7).

Shared by the import worker (``account.discovered.dlq``) and the handlers
(``commands.dlq``): the reasons of the contract, and how a pydantic validation
error of an envelope tells them apart. Details never quote the input (it may
hold what it should not).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError
from pydantic_core import ErrorDetails

DETAIL_LIMIT = 1000


class Reason(StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_DATA = "invalid_data"
    UNKNOWN_CUSTOMER = "unknown_customer"
    PARTNER_MISMATCH = "partner_mismatch"
    PROCESSING_FAILED = "processing_failed"


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reason
    detail: str


def classify(exc: ValidationError) -> Rejected:
    """``invalid_json`` (not JSON), ``invalid_data`` (only ``data`` is wrong), else
    ``invalid_envelope``."""
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return Rejected(Reason.INVALID_JSON, describe(errors))
    if all(e["loc"] and e["loc"][0] == "data" and len(e["loc"]) > 1 for e in errors):
        return Rejected(Reason.INVALID_DATA, describe(errors))
    return Rejected(Reason.INVALID_ENVELOPE, describe(errors))


def describe(errors: Sequence[ErrorDetails]) -> str:
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e["loc"]) or "(value)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)[:DETAIL_LIMIT]


DETAIL_HEADER_BYTES = 2000  # docs/contract.md §2: x-error-detail is at most this long


def utf8_cut(text: str, limit: int) -> bytes:
    """``text`` as UTF-8, at most ``limit`` bytes, never splitting a character.

    Lone surrogates (which cannot be encoded) become ``?``.
    """
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return raw
    return raw[:limit].decode("utf-8", "ignore").encode("utf-8")
