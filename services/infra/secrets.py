"""AES-256-GCM sealing of secrets under ``SECRETS_KEY`` (docs/contract.md §6 and §7).

Integration credentials (at rest in the policy service, on ``integration.events``)
and passwords (on ``account.passwords``, in the handlers' vault) travel and rest
only as ``base64(nonce[12] || ciphertext || tag)``, with associated data that ties
the ciphertext to what it belongs to (the integration's key, the account key): a
ciphertext copied onto another integration or account does not open.

``cryptography``'s AESGCM does the cryptography; this module only fixes the
format, and never puts a secret in an exception message.
"""

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32


class SecretError(ValueError):
    """A ciphertext that does not open (wrong key, wrong associated data, tampered)."""


def parse_key(encoded: str) -> bytes:
    """``SECRETS_KEY``: base64 of exactly 32 bytes; raises ValueError (never echoing it)."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("SECRETS_KEY must be base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"SECRETS_KEY must be base64 of {KEY_BYTES} bytes, not {len(key)}")
    return key


def new_key() -> str:
    """A fresh ``SECRETS_KEY`` value (the dev stack's)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class SecretBox:
    """Seals and opens secrets with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, encoded: str) -> "SecretBox":
        return cls(parse_key(encoded))

    def seal(self, plaintext: bytes, associated_data: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, associated_data.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, token: str, associated_data: str) -> bytes:
        try:
            raw = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            raise SecretError("the ciphertext is not base64") from None
        if len(raw) < NONCE_BYTES + 16:
            raise SecretError("the ciphertext is too short")
        try:
            return self._aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data.encode()
            )
        except InvalidTag:
            raise SecretError("the ciphertext does not open with this key for this owner") from None

    def seal_json(self, value: dict[str, Any], associated_data: str) -> str:
        return self.seal(json.dumps(value, separators=(",", ":")).encode(), associated_data)

    def open_json(self, token: str, associated_data: str) -> dict[str, Any]:
        try:
            value = json.loads(self.open(token, associated_data))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise SecretError("the sealed value is not JSON") from None
        if not isinstance(value, dict):
            raise SecretError("the sealed value is not a JSON object")
        return value


__all__ = ["SecretBox", "SecretError", "new_key", "parse_key"]
