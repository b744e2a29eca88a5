"""``documentation.password.link`` and its sync back (docs/contract.md §7).

Link: an entry of the organisation whose username is the account's username or
UPN (case-insensitive). One is ``matched``; more than one ``ambiguous_match``;
none and creating not allowed ``not_found``; none and creating allowed: the
entry is made when the account's password is known, so it is ``created`` at
once if a password change came first, else ``deferred`` until the first
``account.password.changed``, which creates it (a second result, ``created``).
Every later change sets the linked entry's password (``updated``). Created
entries carry the account's key in their notes, so a redo after a lost answer
finds its own entry instead of making a second one.

Once a link is deferred, its entry is the password change's to make: a redo of
the command (its first attempt deferred and died before it was done) that now
sees a password reports ``deferred`` again, as of the first attempt, and leaves
the create to the change, which found the deferred link; two creates at once
would make two entries, neither finding the other by its mark.

A change that arrives while the entry is being matched or created finds no link
yet: once the command has saved its link, it sets the entry to such a change's
password itself (:func:`catch_up`).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.commands import DocumentationPasswordLink
from schemas.results import FailureReason, Outcome, Ref
from services.handlers.domain.errors import MaybeDone
from services.handlers.domain.execution import Execution
from services.handlers.domain.markers import carries, note
from services.handlers.domain.matching import entry_name, matching_entries
from services.handlers.domain.records import NewPasswordEntry, PasswordEntry
from services.handlers.service_layer.ports import DocumentationConnector

REDO_LIMIT = 5


@dataclass(frozen=True)
class DocLink:
    """Where the account's password lives in the documentation tool (or will)."""

    entry_id: str | None  # None while deferred
    url: str | None = None

    @property
    def deferred(self) -> bool:
        return self.entry_id is None


@dataclass(frozen=True)
class Deferred:
    """The entry is not this attempt's to make. ``handed_over_at``: when an earlier
    attempt of the command deferred it; a password change came since and makes it.
    None: this attempt deferred it."""

    handed_over_at: datetime | None = None


KnownOrDefer = Callable[[], Awaitable[str | Deferred]]
DEFERRED = "no entry yet: it is created when the account's password is first known"


def _ref(system: str, entry: PasswordEntry) -> Ref:
    return Ref(system=system, kind="password", id=entry.id, url=entry.url)


async def _create(
    command: DocumentationPasswordLink,
    docs: DocumentationConnector,
    password: str,
    listed: list[PasswordEntry] | None = None,
) -> PasswordEntry:
    """Create the entry, finding it again instead when an earlier create of ours landed
    (``listed``: the entries just read, so the first round needs no second listing)."""
    account, org = command.account, command.organization_id
    for _ in range(REDO_LIMIT):
        entries = (
            listed if listed is not None else await docs.password_entries(org, account.username)
        )
        listed = None
        ours = [e for e in entries if carries(e.marker_text, account.key)]
        if ours:
            return ours[0]
        new = NewPasswordEntry(
            name=entry_name(account),
            username=account.username,
            password=password,
            notes=note(account.key),
        )
        try:
            return await docs.create_entry(org, new)
        except MaybeDone:
            continue
    raise MaybeDone(f"a create in organisation {org} kept failing without an answer")


async def link_password(
    command: DocumentationPasswordLink,
    docs: DocumentationConnector,
    known_or_defer: KnownOrDefer,
) -> tuple[Execution, DocLink | None]:
    """The result and, when there is (or will be) an entry, the link to remember.

    ``known_or_defer`` is asked only when an entry is to be made: the account's password,
    or :class:`Deferred` after it recorded the link as deferred (atomically, so that a
    password change arriving at that moment either is returned or finds the deferred
    link), or when an earlier attempt's deferral stands (the link is the change's then,
    and none is returned to remember)."""
    account, org = command.account, command.organization_id
    entries = await docs.password_entries(org, account.username)
    ours = [e for e in entries if carries(e.marker_text, account.key)]
    if ours:
        entry = ours[0]
        detail = "created (found on a redo)"
        return Execution.succeeded(Outcome.CREATED, detail, (_ref(docs.system, entry),)), DocLink(
            entry.id, entry.url
        )
    matches = matching_entries(account, entries)
    if len(matches) == 1:
        entry = matches[0]
        detail = f"matched by username {entry.username!r}"
        return Execution.succeeded(Outcome.MATCHED, detail, (_ref(docs.system, entry),)), DocLink(
            entry.id, entry.url
        )
    if len(matches) > 1:
        refs = tuple(_ref(docs.system, e) for e in matches)
        detail = f"{len(matches)} entries of organisation {org} have the account's username"
        return Execution.failed(FailureReason.AMBIGUOUS_MATCH, detail, refs), None
    if not command.create_if_missing:
        detail = f"no entry of organisation {org} has username {account.username!r}"
        return Execution.succeeded(Outcome.NOT_FOUND, detail), None
    password = await known_or_defer()
    if isinstance(password, Deferred):
        if password.handed_over_at is None:
            return Execution.succeeded(Outcome.DEFERRED, DEFERRED), DocLink(None)
        again = Execution(
            outcome=Outcome.DEFERRED, detail=DEFERRED, finished_at=password.handed_over_at
        )
        return again, None
    entry = await _create(command, docs, password, entries)
    detail = f"created in organisation {org}"
    return Execution.succeeded(Outcome.CREATED, detail, (_ref(docs.system, entry),)), DocLink(
        entry.id, entry.url
    )


async def catch_up(
    command: DocumentationPasswordLink,
    entry_id: str,
    docs: DocumentationConnector,
    newer: Callable[[], Awaitable[tuple[str, str] | None]],
    used: str | None,
) -> bool:
    """Set the linked entry to a password changed while it was being linked; whether
    one was set.

    ``newer`` saves the link and answers (change id, password) of the account's newest
    change if it came after the command began (that change skipped documentation, the
    link not saved yet); ``used``: the change a create just used. Asked again after each
    set, until the newest is the one set, so that the entry ends at the newest password
    even when a change that found the saved link sets it at the same moment."""
    caught = False
    while (found := await newer()) is not None and found[0] != used:
        used, password = found
        await docs.set_password(command.organization_id, entry_id, password)
        caught = True
    return caught


async def apply_password(
    command: DocumentationPasswordLink,
    link: DocLink,
    docs: DocumentationConnector,
    password: str,
) -> tuple[Execution, DocLink]:
    """A password change for a linked (or deferred) account: set it, or create the entry."""
    if link.deferred:
        entry = await _create(command, docs, password)
        detail = f"created in organisation {command.organization_id} with the first password"
        ref = (_ref(docs.system, entry),)
        return Execution.succeeded(Outcome.CREATED, detail, ref), DocLink(entry.id, entry.url)
    assert link.entry_id is not None
    await docs.set_password(command.organization_id, link.entry_id, password)
    ref = (Ref(system=docs.system, kind="password", id=link.entry_id, url=link.url),)
    return Execution.succeeded(Outcome.UPDATED, "password updated", ref), link


def known(password: str | None) -> KnownOrDefer:
    """A ``known_or_defer`` for :func:`link_password` that answers ``password``, or a
    deferral of this attempt for None (for callers that keep no link, the connector
    tests among them)."""

    async def answer() -> str | Deferred:
        return Deferred() if password is None else password

    return answer
