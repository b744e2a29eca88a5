"""The mark a created vendor record carries, so that a redo finds it again.

A crash between a vendor's create and our inbox commit must not make a second
record: the redo searches first and recognises the one it made by this mark.
It is the account key itself, or, where the vendor's field is too short for
it, the SHA-256 hex digest of the key (docs/contract.md §7), cut to the field's
length where even that does not fit (Autotask's ``externalID`` holds 50
characters: the first 50 hex digits, 200 bits, still name one account).
"""

import hashlib

NOTE_PREFIX = "msp-account-import key: "


def marker(account_key: str, limit: int | None = None) -> str:
    if limit is None or len(account_key) <= limit:
        return account_key
    return hashlib.sha256(account_key.encode()).hexdigest()[:limit]


def note(account_key: str) -> str:
    """The line written into a free-text field (IT Glue notes, Hudu description)."""
    return f"{NOTE_PREFIX}{account_key}"


def carries(text: str, account_key: str) -> bool:
    """Whether a free-text field holds our note for ``account_key``."""
    return any(line.strip() == note(account_key) for line in text.splitlines())
