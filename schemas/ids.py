"""Identifiers: customer and policy ids, and the deterministic message ids."""

import hashlib
import uuid

# Customers and policies are identified by UUIDs; callers may choose a
# customer's id (any UUID version), the service generates policy ids.
CustomerId = uuid.UUID
PolicyId = uuid.UUID

# The namespace of every deterministic id of this contract (UUIDv5).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:msp-account-import")
_NS_BYTES = ID_NAMESPACE.bytes


def _uuid5(name: str) -> uuid.UUID:
    """``uuid.uuid5(ID_NAMESPACE, name)``, without the stdlib's extra checks (hot path)."""
    digest = hashlib.sha1(_NS_BYTES + name.encode(), usedforsecurity=False).digest()
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return uuid.UUID(bytes=bytes(raw))


def command_id(account_key: str, command_type: str) -> uuid.UUID:
    """The id of ``command_type`` for one account: the same inputs, the same id.

    ``uuid5(ID_NAMESPACE, f"{account_key}|{command_type}")``. A handler that has
    seen the id has seen the command, however often the worker re-sends it.
    """
    return _uuid5(f"{account_key}|{command_type}")


def decision_id(account_key: str, causation_id: str) -> uuid.UUID:
    """The id of the decision taken for one discovery event about one account.

    Re-deciding the same input after a crash gives the same id; a later
    discovery of a ``no_policy`` account is a new decision with a new id.
    """
    return _uuid5(f"{account_key}|import.decision.recorded|{causation_id}")


__all__ = ["ID_NAMESPACE", "CustomerId", "PolicyId", "command_id", "decision_id"]
