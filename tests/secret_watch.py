"""Every secret a test hands to the system, and a scan of every log of the run for them.

Tests register what they give away as a secret (credentials, passwords, keys) with
:func:`watch`; the session fixture in ``tests/conftest.py`` writes the test process's
own log records to a file in the run's temporary directory, and at the end of the run
scans every file there (the subprocesses' logs, the broker's, the in-process log) for
each watched value. A hit fails the run, naming the file but never the secret.
"""

from collections.abc import Iterable
from pathlib import Path

MIN_LENGTH = 6  # shorter values would match by chance
_WATCHED: set[str] = set()


def watch(*values: object) -> None:
    for value in values:
        if isinstance(value, str) and len(value) >= MIN_LENGTH:
            _WATCHED.add(value)


def watch_credentials(credentials: dict[str, object]) -> None:
    """The secret fields of an integration's credentials (not ids such as a tenant id)."""
    for name, value in credentials.items():
        if any(part in name for part in ("secret", "key", "password", "code")):
            watch(value)


def watched() -> frozenset[str]:
    return frozenset(_WATCHED)


def scan(root: Path, secrets: Iterable[str]) -> list[tuple[Path, int]]:
    """(log file, how many watched values it holds) for every ``*.log`` under ``root``
    with any (other files there, a test's own fixtures, may hold secrets on purpose)."""
    needles = [s.encode() for s in secrets]
    found: list[tuple[Path, int]] = []
    for path in sorted(root.rglob("*.log")):
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        hits = sum(1 for needle in needles if needle in data)
        if hits:
            found.append((path, hits))
    return found
